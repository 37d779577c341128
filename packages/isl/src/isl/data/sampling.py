"""Training patches: random crops of wells, dihedral augmentation, optional input noise.

Every random choice is drawn from a generator seeded by (seed, stream, visit), so the patch
sequence is a pure function of the seed: a resumed run asks for the stream from patch
``step * batch_size`` and sees exactly the patches the uninterrupted run would have seen.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from isl.data.images import WellImages, load_well
from isl.data.well import WellFiles

__all__ = [
    "PatchLayout",
    "PatchRecipe",
    "PatchStream",
    "interleave",
    "to_bins",
]

logger = logging.getLogger(__name__)

NUM_CLASSES = 256


def interleave(values: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Network input [..., Z*C*2] from values [..., Z, C] and masks [Z, C].

    Depth index = (z * C + c) * 2 + m with m = 0 the pixels and m = 1 the presence mask.
    """
    masks_full = np.broadcast_to(masks, values.shape)
    stacked = np.stack([values, masks_full], axis=-1)
    return stacked.reshape(*values.shape[:-2], -1).astype(np.float32, copy=False)


def to_bins(values: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Class index of values in [0, 1]: round(v * (num_classes - 1)), ties to even like tf.round."""
    scaled = np.asarray(values, np.float32) * np.float32(num_classes - 1)
    return np.clip(np.rint(scaled), 0, num_classes - 1).astype(np.int32)


@dataclass(frozen=True)
class PatchLayout:
    """What a patch holds: the model's channels and heads, and the patch geometry."""

    num_z_values: int
    model_input_channels: tuple[str, ...]
    target_channels: tuple[str, ...]
    patch_size: int
    output_size: int
    input_channels: tuple[str, ...] = ("BRIGHTFIELD", "PHASE_CONTRAST", "DIC")
    derived_channels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def input_depth(self) -> int:
        """Depth of the network input: z * channels * 2."""
        return self.num_z_values * len(self.model_input_channels) * 2

    @property
    def num_input_heads(self) -> int:
        """Reconstruction heads, one per (z, input channel)."""
        return self.num_z_values * len(self.model_input_channels)

    @property
    def num_heads(self) -> int:
        """All heads: input reconstruction heads then target heads."""
        return self.num_input_heads + len(self.target_channels)

    @property
    def margin(self) -> int:
        """Offset of the first output pixel inside the patch (121 for 250 -> 8)."""
        return (self.patch_size - self.output_size) // 2

    def load(self, files: WellFiles) -> WellImages:
        """Read the channels this layout needs from a well."""
        return load_well(
            files,
            input_channels=self.input_channels,
            model_input_channels=self.model_input_channels,
            target_channels=self.target_channels,
            derived=self.derived_channels,
        )


class PatchStream:
    """A deterministic, endless stream of training patches drawn from wells.

    The stream is cut into *visits*: a visit loads one well (wells are visited in a fresh
    permutation every epoch), takes ``crops_per_visit`` random crops, augments each, cuts each into
    patches and shuffles the visit's patches. Only ``cache_size`` wells are held in memory.
    """

    def __init__(
        self,
        wells: Sequence[WellFiles],
        layout: PatchLayout,
        *,
        crop_size: int,
        patch_stride: int,
        crops_per_visit: int,
        seed: int,
        stream_id: int = 0,
        flip_and_rotate: bool = True,
        offset_std: float = 0.0,
        multiplier_std: float = 0.0,
        noise_std: float = 0.0,
        cache_size: int = 1,
    ) -> None:
        if not wells:
            raise ValueError("PatchStream needs at least one well")
        self.wells = list(wells)
        self.layout = layout
        self.crop_size = crop_size
        self.patch_stride = patch_stride
        self.crops_per_visit = crops_per_visit
        self.seed = seed
        self.stream_id = stream_id
        self.flip_and_rotate = flip_and_rotate
        self.noise = {
            "offset_std": offset_std,
            "multiplier_std": multiplier_std,
            "noise_std": noise_std,
        }
        self.cache_size = cache_size
        self._cache: OrderedDict[int, WellImages] = OrderedDict()
        starts = range(0, crop_size - layout.patch_size + 1, patch_stride)
        self._offsets = [(r, c) for r in starts for c in starts]

    @property
    def patches_per_visit(self) -> int:
        """Patches produced by one visit."""
        return self.crops_per_visit * len(self._offsets)

    def _well(self, index: int) -> WellImages:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        images = self.layout.load(self.wells[index])
        self._cache[index] = images
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return images

    def well_of_visit(self, visit: int) -> int:
        """Index of the well a visit reads: a fresh permutation of the wells every epoch."""
        n = len(self.wells)
        epoch, position = divmod(visit, n)
        order = np.random.default_rng([self.seed, self.stream_id, epoch, 1]).permutation(n)
        return int(order[position])

    def visit(self, visit: int) -> list[PatchRecipe]:
        """The recipes of one visit's patches, in their shuffled order (no pixels yet)."""
        rng = np.random.default_rng([self.seed, self.stream_id, visit, 0])
        well_index = self.well_of_visit(visit)
        rows, cols = self.wells[well_index].shape
        size = self.crop_size
        if rows < size or cols < size:
            raise ValueError(
                f"well {self.wells[well_index].directory} is {rows}x{cols}, smaller than crop_size {size}"
            )
        planes = self.layout.num_input_heads
        recipes = []
        for crop in range(self.crops_per_visit):
            y = int(rng.integers(0, rows - size + 1))
            x = int(rng.integers(0, cols - size + 1))
            flip, k = False, 0
            if self.flip_and_rotate:
                flip, k = bool(rng.random() < 0.5), int(rng.integers(0, 4))
            # One coin per corruption and crop, as in the original; values per crop and plane.
            noise = self.noise
            gain = offset = None
            noise_std = 0.0
            if noise["multiplier_std"] > 0 and rng.random() < 0.5:
                gain = rng.normal(1.0, noise["multiplier_std"], planes).astype(np.float32)
            if noise["offset_std"] > 0 and rng.random() < 0.5:
                offset = rng.normal(0.0, noise["offset_std"], planes).astype(np.float32)
            if noise["noise_std"] > 0 and rng.random() < 0.5:
                noise_std = noise["noise_std"]
            for index, (r, c) in enumerate(self._offsets):
                recipes.append(
                    PatchRecipe(
                        well=well_index,
                        crop=(y, x, size),
                        flip=flip,
                        rotations=k,
                        offset_in_crop=(r, c),
                        gain=gain,
                        offset=offset,
                        noise_std=noise_std,
                        noise_seed=(self.seed, self.stream_id, visit, crop, index),
                    )
                )
        order = rng.permutation(len(recipes))
        return [recipes[i] for i in order]

    def materialize(self, recipe: PatchRecipe) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixels of one patch: (input [P,P,D], bins [o,o,H] int32, weights [o,o,H] float32).

        Only the patch's own square is read: a dihedral transform of a crop, cut at (r, c),
        equals the same transform of the matching square of the untransformed crop.
        """
        layout = self.layout
        p, m, o = layout.patch_size, layout.margin, layout.output_size
        y, x, size = recipe.crop
        by, bx = _source_square(size, p, recipe.offset_in_crop, recipe.flip, recipe.rotations)
        well = self._well(recipe.well)
        in_values, in_masks = well.input_planes(
            layout.num_z_values, layout.model_input_channels, (y + by, x + bx, p, p)
        )
        t_values, t_masks = well.target_images(
            layout.target_channels, layout.derived_channels, (y + by + m, x + bx + m, o, o)
        )
        in_values = _dihedral(in_values, recipe.flip, recipe.rotations)
        t_values = _dihedral(t_values, recipe.flip, recipe.rotations)
        flat = in_values.reshape(p, p, -1)
        if recipe.gain is not None or recipe.offset is not None or recipe.noise_std > 0:
            if recipe.gain is not None:
                flat = flat * recipe.gain
            if recipe.offset is not None:
                flat = flat + recipe.offset
            if recipe.noise_std > 0:
                noise_rng = np.random.default_rng(list(recipe.noise_seed))
                flat = flat + noise_rng.normal(0.0, recipe.noise_std, flat.shape).astype(np.float32)
            flat = np.clip(flat, 0.0, 1.0).astype(np.float32)
            in_values = flat.reshape(in_values.shape)
        network_input = interleave(in_values, in_masks)
        # Input heads reconstruct the (corrupted) input planes; target heads the labels.
        head_values = np.concatenate([flat[m : m + o, m : m + o], t_values], axis=-1)
        head_masks = np.concatenate([in_masks.reshape(-1), t_masks])
        weights = np.ascontiguousarray(np.broadcast_to(head_masks, head_values.shape))
        return np.ascontiguousarray(network_input), to_bins(head_values), weights

    def patches(self, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yield (input [P,P,D], bins [o,o,H] int32, weights [o,o,H]) from patch ``start`` on."""
        visit, offset = divmod(start, self.patches_per_visit)
        while True:
            for recipe in self.visit(visit)[offset:]:
                yield self.materialize(recipe)
            visit, offset = visit + 1, 0


@dataclass(frozen=True)
class PatchRecipe:
    """Everything random about one patch; pixels are read only when it is materialized."""

    well: int
    crop: tuple[int, int, int]
    """(row, column, size) of the crop in the well."""
    flip: bool
    rotations: int
    offset_in_crop: tuple[int, int]
    """(row, column) of the patch in the transformed crop."""
    gain: np.ndarray | None = None
    offset: np.ndarray | None = None
    noise_std: float = 0.0
    noise_seed: tuple[int, ...] = ()


def _dihedral(array: np.ndarray, flip: bool, rotations: int) -> np.ndarray:
    """Left-right flip then ``rotations`` counter-clockwise quarter turns of axes (0, 1)."""
    if flip:
        array = array[:, ::-1]
    if rotations:
        array = np.rot90(array, rotations, axes=(0, 1))
    return array


def _source_square(
    size: int, patch: int, offset: tuple[int, int], flip: bool, rotations: int
) -> tuple[int, int]:
    """Top-left corner, in the untransformed crop, of the square that becomes the patch."""
    r, c = offset
    corners = [(r, c), (r + patch - 1, c + patch - 1)]
    mapped = []
    for i, j in corners:
        # Undo the quarter turns (each maps out[i, j] = in[j, size - 1 - i]), then the flip.
        for _ in range(rotations % 4):
            i, j = j, size - 1 - i
        if flip:
            j = size - 1 - j
        mapped.append((i, j))
    return min(a for a, _ in mapped), min(b for _, b in mapped)
