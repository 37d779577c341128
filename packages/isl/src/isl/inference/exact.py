"""Exact tiles with a shared trunk: the stride-8 patch stitching at close to its arithmetic bound.

The network is equivariant to 8-px shifts up to each tower's downscale to 16x, so on a tile that
holds both 8-px phases along an axis (250 + 16(s - 1) + 8 input pixels) the projection, towers 0-3
and tower 4 up to level 3 run once. Only tower 4 from its last downscale on and the upper stack
depend on the phase; they run once per phase, the phases batched. After upper module 9 each kept
8x8 block needs exactly one 16x16 window on the 16-px grid, so modules 10-13 run on those windows
(cut out by a reshape, space-to-batch style) instead of the whole map. The first upper module's
3x3 convolution is split into the shared towers' channels (computed once) and tower 4's
(per phase). Every output block is the original's patch result, in float32 rounding: sums are
reordered, nothing is approximated. Multiply-accumulates: :func:`isl.model.plan.count_exact_tile_macs`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from isl.model.layers import Minception, _add_mismatched, crop_border, fused_inference_activation
from isl.model.network import IslNetwork
from isl.model.plan import GRID, OUTPUT_PATCH_SIZE, UPPER_WINDOW_START, phase_split

__all__ = ["exact_tile_embedding"]

BLOCK = OUTPUT_PATCH_SIZE


def _slice(h: tf.Tensor, row: int, col: int, rows: int, cols: int) -> tf.Tensor:
    return tf.slice(h, [0, row, col, 0], [-1, rows, cols, -1])


def _phase_batch(
    h: tf.Tensor, offsets: list[tuple[int, int]], level: int, shrink: tuple[int, int]
) -> tf.Tensor:
    """The per-phase crops of a shared map at resolution ``level``, stacked on the batch axis."""
    rows, cols = int(h.shape[1]) - (shrink[0] >> level), int(h.shape[2]) - (shrink[1] >> level)
    crops = [_slice(h, r >> level, c >> level, rows, cols) for r, c in offsets]
    return crops[0] if len(crops) == 1 else tf.concat(crops, axis=0)


def _split_first_upper(
    module: Minception,
    shared: tf.Tensor,
    shared_channels: np.ndarray,
    merged: tf.Tensor,
    phase_channels: np.ndarray,
    offsets: list[tuple[int, int]],
    shrink: tuple[int, int],
) -> tf.Tensor:
    """Upper module 0 with its 3x3 convolution split into a shared and a per-phase part.

    BN and the [ReLU, tanh] activation act per channel, so the convolution over the shared
    towers' channels is the same for every phase up to a shift: it runs once on the shared grid
    (``shared`` [1, ...]) and is cropped per phase; tower 4's channels are convolved per phase
    (``merged`` [P, ...] holds every channel in network order).
    """
    spec = module.spec
    expand = module.expand
    if expand.biases is not None or spec.kind != "in_scale":  # pragma: no cover - plan invariant
        raise AssertionError("the first upper module is an in-scale module without a bias")
    depth = spec.in_depth

    def conv(x: tf.Tensor, channels: np.ndarray) -> tf.Tensor:
        act = fused_inference_activation([x], expand.bn, channels)
        weights = tf.gather(expand.weights, np.concatenate([channels, depth + channels]), axis=2)
        return tf.nn.conv2d(act, weights, strides=1, padding="VALID")

    common = _phase_batch(conv(shared, shared_channels), offsets, 0, shrink)
    phase_only = tf.gather(merged, phase_channels, axis=-1)
    y = common + conv(phase_only, phase_channels)
    pooled = tf.nn.max_pool2d(merged, spec.kernel, 1, padding="VALID")
    reduced = module.reduce([y, pooled], training=False)
    return _add_mismatched(crop_border(merged, 1), reduced, pad=True)


def exact_tile_embedding(
    net: IslNetwork, x: tf.Tensor, phases: tuple[int, int], *, split_first_upper: bool = True
) -> tf.Tensor:
    """Embedding [8 s_r p_r, 8 s_c p_c, C] of every output block of one exact tile.

    ``x`` [1, H, W, D] has ``H = 250 + 16 (s_r - 1) + 8 (p_r - 1)`` (likewise W), ``phases`` =
    ``(p_r, p_c)`` are 1 or 2. Row ``8 b + i`` of the result is row ``i`` of the patch whose
    input starts at row ``8 b`` of the tile. Call it inside a ``tf.function`` (static shapes).
    """
    plan = net.plan
    pr, pc = phases
    shrink = (BLOCK * (pr - 1), BLOCK * (pc - 1))
    offsets = [(BLOCK * a, BLOCK * b) for a in range(pr) for b in range(pc)]
    projected = net.projection(x)
    merged_parts: list[tf.Tensor] = []
    shared_parts: list[tf.Tensor] = []
    shared_mask: list[bool] = []
    for index, tower in enumerate(plan.towers):
        split = phase_split(tower)
        if split == len(tower.modules):
            h = net.tower(index, projected)
            shared_parts.append(h)
            merged_parts.append(_phase_batch(h, offsets, 0, shrink))
        else:
            level = tower.modules[split - 1].out_level if split else 0
            h = net.tower(index, projected, stop=split) if split else projected
            # start=0 (a tower split at its first module) crops the phase's input by the margin.
            merged_parts.append(net.tower(index, _phase_batch(h, offsets, level, shrink), start=split))
        shared_mask += [split == len(tower.modules)] * tower.out_depth
    merged = tf.concat(merged_parts, axis=-1)
    mask = np.array(shared_mask)
    start = 0
    if split_first_upper and mask.any() and not mask.all():
        shared = tf.concat(shared_parts, axis=-1)
        h = _split_first_upper(
            net.upper[0], shared, np.flatnonzero(mask), merged, np.flatnonzero(~mask), offsets, shrink
        )
        start = 1
    else:
        h = merged
    h = net.upper_stack(h, start=start, stop=UPPER_WINDOW_START)
    # Each kept block needs one 16x16 window on the 16-px grid: cut them out by a reshape.
    count, rows, cols, depth = (int(d) for d in h.shape)
    sr, sc = rows // GRID, cols // GRID
    h = tf.reshape(h, [count, sr, GRID, sc, GRID, depth])
    h = tf.reshape(tf.transpose(h, [0, 1, 3, 2, 4, 5]), [count * sr * sc, GRID, GRID, depth])
    h = net.upper_stack(h, start=UPPER_WINDOW_START)
    depth = int(h.shape[-1])
    # [phase_r, phase_c, window_r, window_c, 8, 8, C] -> block 2 * window + phase along each axis.
    h = tf.reshape(h, [pr, pc, sr, sc, BLOCK, BLOCK, depth])
    h = tf.transpose(h, [2, 0, 4, 3, 1, 5, 6])
    return tf.reshape(h, [sr * pr * BLOCK, sc * pc * BLOCK, depth])
