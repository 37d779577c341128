"""The layer plan of the concordance network: sizes, depths and TF1 variable names, without TensorFlow.

The plan follows the original's rules (``isl/models/concordance.py`` and ``model_util.py``): every
module's depths come from ``size_to_depth(base_depth, final_size)``, the sizes from VALID
convolutions on a 250-px patch. The TensorFlow network (``isl.model.network``) is built from it, and
the parameter and multiply-accumulate counts are computed from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from isl.config.model import ModelConfig

__all__ = [
    "GRID",
    "MARGIN",
    "OUTPUT_PATCH_SIZE",
    "PATCH_SIZE",
    "TOWER_CROPS",
    "TOWER_MARGINS",
    "ModuleSpec",
    "NetworkPlan",
    "UPPER_WINDOW_START",
    "TowerPlan",
    "count_exact_tile_macs",
    "count_macs",
    "count_parameters",
    "head_macs_per_pixel",
    "input_size",
    "module_macs",
    "network_plan",
    "next_even",
    "output_size",
    "phase_split",
    "size_to_depth",
    "variable_shapes",
]

#: Side of the network input patch in the original.
PATCH_SIZE = 250
#: Side of the output block of one patch (the centre of the patch).
OUTPUT_PATCH_SIZE = 8
#: Input pixels lost on each side: output pixel (i, j) sits at input pixel (121 + i, 121 + j).
MARGIN = (PATCH_SIZE - OUTPUT_PATCH_SIZE) // 2
#: Inputs of 250 + 16k give outputs of 8 + 16k; the net is equivariant to shifts of 16 px (tower 4).
GRID = 16
#: Centre crop of the projected input per tower (the first column of the original's ``lls``).
TOWER_CROPS: tuple[int, ...] = (72, 102, 146, 202, 250)
#: The same crops as margins per side, so larger inputs keep the towers aligned (89, 74, 52, 24, 0).
TOWER_MARGINS: tuple[int, ...] = tuple((PATCH_SIZE - c) // 2 for c in TOWER_CROPS)
#: Size of every tower's output and of the upper stack's input.
_MERGE_SIZE = 36
#: In-scale modules per tower: 18 - 4s.
_LOWER_MODULES = tuple(18 - 4 * s for s in range(len(TOWER_CROPS)))
#: In-scale modules of the upper stack (36 -> 8).
_UPPER_MODULES = 14
#: The deconvolution depths use base_depth - 4 (the original's learned_defovea).
_DECONV_BASE_OFFSET = 4
#: The original's "magic number from an old hyper-parameter search".
_EXPANSION_RATIO = 211.0 / 39.0

ModuleKind = Literal["in_scale", "down", "up"]


def next_even(n: float) -> int:
    """Ceil of ``n``, rounded up to an even integer."""
    k = int(math.ceil(n))
    return k + (k % 2)


def size_to_depth(base_depth: int, size: int, *, expand: bool) -> int:
    """Depth of a layer of side ``size`` (the original's ``size_to_depth``)."""
    reduction = math.ceil(base_depth / float(size))
    if expand:
        return next_even(_EXPANSION_RATIO * reduction)
    return next_even(reduction)


@dataclass(frozen=True)
class ModuleSpec:
    """One Minception module: a strided, in-scale or transposed expansion, then a 1x1 reduction.

    ``in_size``/``out_size`` are for a 250-px input patch; ``in_level``/``out_level`` are the number of
    times the resolution was halved, so a 250 + 16k input adds ``16k / 2**level`` to each size.
    """

    name: str
    kind: ModuleKind
    in_depth: int
    expansion: int
    reduction: int
    out_depth: int
    in_size: int
    out_size: int
    in_level: int
    out_level: int

    @property
    def kernel(self) -> int:
        """Expansion kernel: 3 in-scale, 4 for the strided and transposed modules."""
        return 3 if self.kind == "in_scale" else 4

    @property
    def stride(self) -> int:
        """Expansion stride."""
        return 1 if self.kind == "in_scale" else 2


@dataclass(frozen=True)
class TowerPlan:
    """One tower: crop, downscale modules, in-scale ("lower") modules, upscale modules."""

    scale: int
    crop: int
    margin: int
    down: tuple[ModuleSpec, ...]
    lower: tuple[ModuleSpec, ...]
    up: tuple[ModuleSpec, ...]

    @property
    def modules(self) -> tuple[ModuleSpec, ...]:
        """All modules in execution order."""
        return self.down + self.lower + self.up

    @property
    def out_depth(self) -> int:
        """Depth of the tower's 36x36 output."""
        return self.modules[-1].out_depth if self.modules else 0


@dataclass(frozen=True)
class NetworkPlan:
    """The whole trunk: five towers concatenated at 36x36, then the upper stack to 8x8."""

    input_depth: int
    projection_depth: int
    towers: tuple[TowerPlan, ...]
    upper: tuple[ModuleSpec, ...]
    embedding_depth: int
    head_names: tuple[str, ...]
    num_classes: int

    @property
    def modules(self) -> tuple[ModuleSpec, ...]:
        """All Minception modules in execution order."""
        return tuple(m for t in self.towers for m in t.modules) + self.upper


class _Builder:
    """Walks the original's construction order, tracking size, depth and resolution level."""

    def __init__(self, base_depth: int) -> None:
        self.base_depth = base_depth

    def conv(
        self, name: str, kind: ModuleKind, size: int, depth: int, level: int, final_size: int
    ) -> ModuleSpec:
        # min_depth_from_residual=True for every convolutional module of the concordance net.
        expansion = max(size_to_depth(self.base_depth, final_size, expand=True), depth)
        reduction = max(size_to_depth(self.base_depth, final_size, expand=False), depth)
        if kind == "in_scale":
            out_size, out_level = size - 2, level
        else:
            out_size, out_level = (size - 4) // 2 + 1, level + 1
        return ModuleSpec(
            name, kind, depth, expansion, reduction, max(reduction, depth), size, out_size, level,
            out_level,
        )  # fmt: skip

    def deconv(self, name: str, size: int, depth: int, level: int, final_size: int) -> ModuleSpec:
        base = self.base_depth - _DECONV_BASE_OFFSET
        expansion = size_to_depth(base, final_size, expand=True)
        reduction = size_to_depth(base, final_size, expand=False)
        # The residual of a transposed module is cropped to the smaller depth (no min-depth rule).
        return ModuleSpec(
            name, "up", depth, expansion, reduction, min(reduction, depth), size, 2 * size + 2,
            level, level - 1,
        )  # fmt: skip


def network_plan(config: ModelConfig) -> NetworkPlan:
    """Sizes and depths of every module for ``config`` (for a 250-px patch)."""
    builder = _Builder(config.base_depth)
    towers = []
    for s, crop in enumerate(TOWER_CROPS):
        size, depth, level = crop, config.projection_depth, 0
        down: list[ModuleSpec] = []
        for i in range(s):
            final = (size - 4) // 2 + 1 - 2  # learned_fovea: strided module, then in-scale
            name = f"downscale_{s}_{i}"
            spec = builder.conv(name, "down", size, depth, level, final)
            down.append(spec)
            size, depth, level = spec.out_size, spec.out_depth, spec.out_level
            spec = builder.conv(f"{name}_in_scale", "in_scale", size, depth, level, final)
            down.append(spec)
            size, depth = spec.out_size, spec.out_depth
        lower: list[ModuleSpec] = []
        for r in range(_LOWER_MODULES[s]):
            spec = builder.conv(f"lower_scale_{s}_recursion_{r}", "in_scale", size, depth, level, size - 2)
            lower.append(spec)
            size, depth = spec.out_size, spec.out_depth
        up: list[ModuleSpec] = []
        for i in range(s):
            # learned_defovea: transposed module, crop 2 px per side, in-scale module.
            final = 2 * size + 2 - 4 - 2
            name = f"upscale_{s}_{i}"
            spec = builder.deconv(name, size, depth, level, final)
            up.append(spec)
            size, depth, level = spec.out_size - 4, spec.out_depth, spec.out_level
            spec = builder.conv(f"{name}_in_scale", "in_scale", size, depth, level, final)
            up.append(spec)
            size, depth = spec.out_size, spec.out_depth
        if size != _MERGE_SIZE or level != 0:  # pragma: no cover - guards the geometry rules
            raise AssertionError(f"tower {s} ends at {size} px, level {level}; expected 36, 0")
        towers.append(TowerPlan(s, crop, TOWER_MARGINS[s], tuple(down), tuple(lower), tuple(up)))
    size, depth = _MERGE_SIZE, sum(t.out_depth for t in towers)
    upper = []
    for r in range(_UPPER_MODULES):
        spec = builder.conv(f"upper_recursion_{r}", "in_scale", size, depth, 0, size - 2)
        upper.append(spec)
        size, depth = spec.out_size, spec.out_depth
    if size != OUTPUT_PATCH_SIZE:  # pragma: no cover - guards the geometry rules
        raise AssertionError(f"the upper stack ends at {size} px; expected 8")
    return NetworkPlan(
        input_depth=config.input_depth,
        projection_depth=config.projection_depth,
        towers=tuple(towers),
        upper=tuple(upper),
        embedding_depth=depth,
        head_names=config.head_names,
        num_classes=config.num_classes,
    )


def _rv2_shapes(
    scope: str, in_depth: int, kernel: int, depth: int, *, deconv: bool = False, bias: bool = False
) -> dict[str, tuple[int, ...]]:
    shapes = {
        f"{scope}/BatchNorm/beta": (in_depth,),
        f"{scope}/BatchNorm/gamma": (in_depth,),
        f"{scope}/BatchNorm/moving_mean": (in_depth,),
        f"{scope}/BatchNorm/moving_variance": (in_depth,),
    }
    if deconv:  # slim's conv2d_transpose kernel layout is [k, k, out, in]
        shapes[f"{scope}/Conv2d_transpose/weights"] = (kernel, kernel, depth, 2 * in_depth)
    else:
        shapes[f"{scope}/Conv/weights"] = (kernel, kernel, 2 * in_depth, depth)
    if bias:
        shapes[f"{scope}/Conv/biases"] = (depth,)
    return shapes


def module_variable_shapes(spec: ModuleSpec) -> dict[str, tuple[int, ...]]:
    """TF1 variable names and shapes of one Minception module."""
    deconv = spec.kind == "up"
    shapes = _rv2_shapes(f"{spec.name}/expand_rv2", spec.in_depth, spec.kernel, spec.expansion, deconv=deconv)
    # The strided and in-scale expansions append a max-pool of their input to the conv output.
    reduce_in = spec.expansion if deconv else spec.expansion + spec.in_depth
    shapes.update(_rv2_shapes(f"{spec.name}/reduce_rv2", reduce_in, 1, spec.reduction))
    return shapes


def head_scope(head_name: str) -> str:
    """Variable scope of a head: ``head/<z>/<channel>/residual_v2_conv``."""
    return f"head/{head_name}/residual_v2_conv"


def variable_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every model variable of the TF1 checkpoint layout, name -> shape, in creation order."""
    plan = network_plan(config)
    shapes: dict[str, tuple[int, ...]] = {
        "Conv/weights": (1, 1, plan.input_depth, plan.projection_depth),
        "Conv/biases": (plan.projection_depth,),
    }
    for spec in plan.modules:
        shapes.update(module_variable_shapes(spec))
    for name in plan.head_names:
        shapes.update(_rv2_shapes(head_scope(name), plan.embedding_depth, 1, plan.num_classes, bias=True))
    return shapes


def count_parameters(config: ModelConfig, *, trainable_only: bool = True) -> int:
    """Number of parameters; BN moving statistics count only with ``trainable_only=False``."""
    total = 0
    for name, shape in variable_shapes(config).items():
        if trainable_only and name.endswith(("moving_mean", "moving_variance")):
            continue
        total += math.prod(shape)
    return total


def output_size(input_size: int) -> int:
    """Output side for an input side of 250 + 16k (the network's only valid input sizes)."""
    if input_size < PATCH_SIZE or (input_size - PATCH_SIZE) % GRID:
        raise ValueError(
            f"input side {input_size} is not 250 + 16k; use e.g. "
            f"{PATCH_SIZE + GRID * max(0, -(-(input_size - PATCH_SIZE) // GRID))}"
        )
    return input_size - 2 * MARGIN


def input_size(output_size: int) -> int:
    """Input side needed for an output side of 8 + 16k."""
    if output_size < OUTPUT_PATCH_SIZE or (output_size - OUTPUT_PATCH_SIZE) % GRID:
        raise ValueError(f"output side {output_size} is not 8 + 16k")
    return output_size + 2 * MARGIN


def _side(spec_size: int, level: int, extra: int) -> int:
    return spec_size + extra // (2**level)


#: Upper modules from this one on run only on the 16x16 windows that kept 8x8 blocks need: after
#: it, four 3x3 modules shrink a 16-px window to the 8-px block (exact inference, ``_UPPER_MODULES
#: - (GRID - OUTPUT_PATCH_SIZE) / 2``).
UPPER_WINDOW_START = _UPPER_MODULES - (GRID - OUTPUT_PATCH_SIZE) // 2
#: The 8-px phase of the stride-8 patch grid changes only what follows a downscale to 16x.
_PHASE_LEVEL = int(math.log2(GRID))


def phase_split(tower: TowerPlan) -> int:
    """Index of the first module of ``tower`` that depends on the 8-px phase of the patch grid.

    Everything before a tower's downscale to 16x (level 4) is equivariant to 8-px shifts and can
    be shared by the four phases; towers 0-3 never reach 16x and are shared whole (the index is
    then ``len(tower.modules)``). For the paper network only tower 4 splits, at ``downscale_4_3``.
    """
    for index, spec in enumerate(tower.modules):
        if spec.out_level >= _PHASE_LEVEL:
            return index
    return len(tower.modules)


def module_macs(spec: ModuleSpec, in_area: int, out_area: int) -> int:
    """Multiply-accumulates of one Minception module with the given input and output areas."""
    if spec.kind == "up":
        return (
            in_area * spec.kernel**2 * 2 * spec.in_depth * spec.expansion
            + out_area * 2 * spec.expansion * spec.reduction
        )
    return (
        out_area * spec.kernel**2 * 2 * spec.in_depth * spec.expansion
        + out_area * 2 * (spec.expansion + spec.in_depth) * spec.reduction
    )


def _areas(spec: ModuleSpec, extra: tuple[int, ...]) -> tuple[int, int]:
    in_area = math.prod(_side(spec.in_size, spec.in_level, e) for e in extra)
    out_area = math.prod(_side(spec.out_size, spec.out_level, e) for e in extra)
    return in_area, out_area


def count_macs(config: ModelConfig, input_shape: tuple[int, int] = (250, 250), *, heads: bool = True) -> int:
    """Multiply-accumulates of one forward pass on an input of ``input_shape`` (250 + 16k each).

    Counts the convolutions, transposed convolutions and (with ``heads``) the heads; BN,
    activations, pools and adds are a few percent on top. 4.08 G for the paper network on one
    250-px patch. Used by the benchmark to state the theoretical speed-up.
    """
    plan = network_plan(config)
    extra = tuple(s - PATCH_SIZE for s in input_shape)
    for side in input_shape:
        output_size(side)  # validates
    macs = input_shape[0] * input_shape[1] * plan.input_depth * plan.projection_depth
    for spec in plan.modules:
        macs += module_macs(spec, *_areas(spec, extra))
    if not heads:
        return macs
    out_area = math.prod(s - 2 * MARGIN for s in input_shape)
    macs += out_area * len(plan.head_names) * 2 * plan.embedding_depth * plan.num_classes
    return macs


def count_exact_tile_macs(
    config: ModelConfig,
    steps: tuple[int, int],
    phases: tuple[int, int] = (2, 2),
    *,
    heads: int | None = None,
    split_first_upper: bool = True,
) -> int:
    """Multiply-accumulates of one tile of the shared-trunk exact path (``isl.inference.exact``).

    Along each axis the tile has ``steps`` 16-px steps and ``phases`` 8-px phases (2, or 1 for an
    axis with a single output block): its input side is ``250 + 16 (steps - 1) + 8 (phases - 1)``
    and it yields ``8 * steps * phases`` output pixels, every block exact. The projection,
    towers 0-3 and tower 4 up to level 3 run once on the whole input; the rest of tower 4 and
    upper modules 0-9 once per phase on ``250 + 16 (steps - 1)`` px; upper modules 10-13 on one
    16x16 window per kept block. With ``split_first_upper`` the first upper module's 3x3
    convolution over the shared towers' channels runs once, not per phase. ``heads`` (default:
    all of them) heads run on every output pixel.
    """
    plan = network_plan(config)
    pairs = list(zip(steps, phases, strict=True))
    shared_extra = tuple(GRID * (s - 1) + OUTPUT_PATCH_SIZE * (p - 1) for s, p in pairs)
    phase_extra = tuple(GRID * (s - 1) for s in steps)
    count = math.prod(phases)
    sides = [PATCH_SIZE + e for e in shared_extra]
    macs = sides[0] * sides[1] * plan.input_depth * plan.projection_depth
    shared_depth = 0
    for tower in plan.towers:
        split = phase_split(tower)
        if split == len(tower.modules):
            shared_depth += tower.out_depth
        for index, spec in enumerate(tower.modules):
            if index < split:
                macs += module_macs(spec, *_areas(spec, shared_extra))
            else:
                macs += count * module_macs(spec, *_areas(spec, phase_extra))
    windows = count * math.prod(steps)
    for index, spec in enumerate(plan.upper):
        if index >= UPPER_WINDOW_START:
            macs += windows * module_macs(spec, *_areas(spec, (0, 0)))
        elif index == 0 and split_first_upper:
            in_area, out_area = _areas(spec, phase_extra)
            shared_in, shared_out = _areas(spec, shared_extra)
            conv = spec.kernel**2 * 2 * spec.expansion
            macs += shared_out * conv * shared_depth
            macs += count * out_area * conv * (spec.in_depth - shared_depth)
            macs += count * out_area * 2 * (spec.expansion + spec.in_depth) * spec.reduction
        else:
            macs += count * module_macs(spec, *_areas(spec, phase_extra))
    n_heads = len(plan.head_names) if heads is None else heads
    pixels = math.prod(OUTPUT_PATCH_SIZE * s * p for s, p in zip(steps, phases, strict=True))
    return macs + pixels * n_heads * 2 * plan.embedding_depth * plan.num_classes


def head_macs_per_pixel(config: ModelConfig) -> int:
    """Multiply-accumulates of all heads for one output pixel (1.15 M for the paper network)."""
    plan = network_plan(config)
    return len(plan.head_names) * 2 * plan.embedding_depth * plan.num_classes
