"""The prediction paths: tiled fully convolutional passes, and the original's patchwise loop."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, cast

import numpy as np
import tensorflow as tf

from cellsight_shared.cli import progress
from isl.errors import DataError
from isl.inference.exact import exact_tile_embedding
from isl.inference.geometry import (
    BLOCK,
    DEFAULT_TILE_SIZE,
    PAD_BEFORE,
    auto_tile_size,
    axis_segments,
    exact_segments,
    output_region,
)
from isl.inference.statistics import STATISTICS, tf_logit_statistics, tf_statistics
from isl.inference.store import ArrayStore, DiskStatistics, DiskStore, OutputStore
from isl.model import GRID, MARGIN, PATCH_SIZE, IslNetwork
from isl.model.layers import inference_activation

__all__ = ["naive_patchwise", "predict_image", "predict_statistics"]

logger = logging.getLogger(__name__)

#: Attribute of the network holding its compiled inference functions.
_CACHE = "_isl_functions"


def _prepare(
    net: IslNetwork, stack: np.ndarray, reflect_pad: bool
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Validate the stack and pad it if asked.

    Returns the array to tile and ``(row0, col0, rows, cols)``: the part of the tiled output that
    is returned. Padding puts 128 px (not 121) before the image so that the patch grid stays on
    the unpadded image's 8- and 16-px grid: wherever the unpadded run predicts, both agree.
    """
    array = np.asarray(stack)
    depth = net.config.input_depth
    if array.ndim != 3 or array.shape[-1] != depth:
        raise DataError(
            f"expected a stack of shape [rows, columns, {depth}] ({net.config.num_z_values} "
            f"z-values x {len(net.config.input_channels)} channel(s) x [image, mask], "
            f"interleaved); got {array.shape}"
        )
    if array.size:
        low, high = float(np.min(array)), float(np.max(array))
        if not (0.0 <= low and high <= 1.0):  # also catches NaN
            raise DataError(
                f"stack values must lie in [0, 1] (images divided by their dtype maximum, masks "
                f"0 or 1); found min {low}, max {high}"
            )
    height, width = array.shape[:2]
    if not reflect_pad:
        _, _, rows, cols = output_region(height, width)
        return array, (0, 0, rows, cols)
    skip = PAD_BEFORE - MARGIN  # output rows that lie before the image
    pads = []
    for side in (height, width):
        blocks = -(-(side + skip) // BLOCK)
        pads.append((PAD_BEFORE, PATCH_SIZE + BLOCK * (blocks - 1) - PAD_BEFORE - side))
    array = np.pad(array.astype(np.float32, copy=False), [*pads, (0, 0)], mode="reflect")
    return array, (skip, skip, height, width)


#: ``heads`` of the prediction functions: names, or "targets" (the default) or "all".
Heads = Sequence[str] | Literal["targets", "all"] | None


def _select_heads(net: IslNetwork, heads: Heads) -> list[int]:
    """Head indices: None/"targets" = the target heads only, "all" = every head, or by name."""
    names = list(net.head_names)
    if heads is None or heads == "targets":
        first = net.config.num_input_heads
        return list(range(first, len(names))) if len(names) > first else list(range(len(names)))
    if heads == "all":
        return list(range(len(names)))
    unknown = [h for h in heads if h not in names]
    if unknown:
        raise DataError(f"unknown head(s) {unknown}; the network has {names}")
    return [names.index(h) for h in heads]


def _compiled(net: IslNetwork, key: str, build: Callable[[], Callable]) -> Callable:
    """One ``tf.function`` per network and purpose, kept on the network to avoid retracing."""
    cache = net.__dict__.get(_CACHE)
    if cache is None:  # bypass tf.Module attribute tracking: functions are not checkpoint state
        cache = {}
        object.__setattr__(net, _CACHE, cache)
    if key not in cache:
        cache[key] = build()
    return cache[key]


#: Pixels per head evaluation inside a tile: bounds the [pixels, 256] temporaries (256 MB each).
_HEAD_CHUNK = 1 << 18
#: Pixels per fused head-statistics call: its [4096, 256] logits (4 MB) stay in the cache across
#: the statistics' passes (paper network, 9 heads, 666-px one-pass tile: 0.96 s with 4096, about
#: 1.0-1.1 s with 8192 and 1.16 s with 16384 pixels per call, measured once each).
_STATISTICS_CHUNK = 1 << 12


def _head_statistics(
    embedding: tf.Tensor, scale: tf.Tensor, shift: tf.Tensor, weights: tf.Tensor, biases: tf.Tensor
) -> tf.Tensor:
    """One head on embedding pixels [N, C]: BN -> [ReLU, tanh] -> 1x1 conv -> softmax -> [N, 6].

    The head unit's inference forward written on its tensors rather than by calling the unit,
    so that one compiled cluster serves every head (a unit argument would trace one per head).
    """
    act = inference_activation([embedding], scale, shift)
    return tf_logit_statistics(tf.matmul(act, weights) + biases)


#: A head and its statistics as one XLA cluster: the statistics' dozen passes over the logits
#: fuse into a few loops, and the logits never leave the cache.
_fused_head_statistics = tf.function(_head_statistics, autograph=False, jit_compile=True)


def _heads(net: IslNetwork, embedding: tf.Tensor, indices: list[int], statistics: bool) -> tf.Tensor:
    """Embedding pixels [N, C] -> statistics [N, heads, 6] or probabilities [N, heads, K].

    One head (and one chunk of pixels) at a time: run in parallel, 35 heads' [pixels, 256]
    temporaries would need GBs for a large tile.
    """
    if statistics:
        return _statistics_heads(net, embedding, indices)
    count = int(embedding.shape[0])
    chunks = []
    last: list[tf.Tensor] = []
    for first in range(0, count, _HEAD_CHUNK):
        pixels = embedding[first : first + _HEAD_CHUNK][tf.newaxis, tf.newaxis]  # units want NHWC
        outputs: list[tf.Tensor] = []
        for i in indices:
            with tf.control_dependencies(last):
                outputs.append(tf.nn.softmax(net.head_units[i](pixels, training=False)[0, 0], axis=-1))
            last = outputs[-1:]
        chunks.append(tf.stack(outputs, axis=1))
    return chunks[0] if len(chunks) == 1 else tf.concat(chunks, axis=0)


def _statistics_heads(net: IslNetwork, embedding: tf.Tensor, indices: list[int]) -> tf.Tensor:
    """Statistics [N, heads, 6] in chunks of :data:`_STATISTICS_CHUNK` pixels.

    The last chunk is zero-padded to full size so that one compiled shape serves every chunk.
    """
    count, depth = (int(d) for d in embedding.shape)
    chunk = min(_STATISTICS_CHUNK, count)
    padded = -(-count // chunk) * chunk
    if padded > count:
        embedding = tf.pad(embedding, [[0, padded - count], [0, 0]])
    params = []
    for i in indices:
        unit = net.head_units[i]
        weights = tf.reshape(unit.weights, [2 * depth, -1])
        params.append((*unit.bn.affine(), weights, unit.biases))
    rows = []
    for first in range(0, padded, chunk):
        pixels = embedding[first : first + chunk]
        rows.append(tf.stack([_fused_head_statistics(pixels, *head) for head in params], axis=1))
    values = rows[0] if len(rows) == 1 else tf.concat(rows, axis=0)
    return values[:count]


def _tile_fn(
    net: IslNetwork,
    path: str,
    shape: tuple[int, int],
    phases: tuple[int, int],
    indices: list[int],
    statistics: bool,
) -> Callable:
    """One compiled function per tile shape: input [1, H, W, D] -> [rows, cols, heads, 6 or K].

    ``path`` "exact" runs the shared-trunk tile (both phases, every block exact); "one_pass"
    keeps every output row of a plain pass; "four_pass" keeps every other 8-px block of one
    phase's pass (the earlier exact path). Trunk and heads run in one graph with static shapes,
    so nothing is retraced across tiles of the same shape.
    """

    def run(x: tf.Tensor) -> tf.Tensor:
        if path == "exact":
            embedding = exact_tile_embedding(net, x, phases)
        else:
            embedding = net.embed(x, training=False)[0]
            if path == "four_pass":
                for axis in (0, 1):
                    blocks = (int(embedding.shape[axis]) + BLOCK) // GRID
                    keep = (GRID * np.arange(blocks)[:, None] + np.arange(BLOCK)).reshape(-1)
                    embedding = tf.gather(embedding, keep, axis=axis)
        rows, cols, depth = (int(d) for d in embedding.shape)
        values = _heads(net, tf.reshape(embedding, [rows * cols, depth]), indices, statistics)
        return tf.reshape(values, [rows, cols, *values.shape[1:]])

    key = f"tile-{path}-{shape}-{phases}-{statistics}-{','.join(map(str, indices))}"
    signature = [tf.TensorSpec([1, *shape, net.config.input_depth], tf.float32)]
    return _compiled(net, key, lambda: tf.function(run, input_signature=signature, autograph=False))


# -- the fully convolutional paths ---------------------------------------------------------------


def _predict_tiled(
    net: IslNetwork,
    stack: np.ndarray,
    *,
    tile_size: int | None,
    reflect_pad: bool,
    exact: bool,
    heads: Heads,
    statistics: bool,
    show_progress: bool,
    store_dir: Path | None = None,
    path: str | None = None,
) -> np.ndarray | dict[str, np.ndarray] | DiskStatistics:
    path = path or ("exact" if exact else "one_pass")
    if tile_size is not None and (tile_size < PATCH_SIZE or (tile_size - PATCH_SIZE) % GRID):
        raise DataError(f"tile_size must be 250 + 16k (e.g. {DEFAULT_TILE_SIZE}), got {tile_size}")
    array, region = _prepare(net, stack, reflect_pad)
    indices = _select_heads(net, heads)
    if tile_size is None:
        tile_size = auto_tile_size(net.config, *array.shape[:2], exact=path != "one_pass")
    steps = (tile_size - PATCH_SIZE) // GRID + 1
    n_rows = (array.shape[0] - PATCH_SIZE) // BLOCK + 1
    n_cols = (array.shape[1] - PATCH_SIZE) // BLOCK + 1
    if path == "exact":
        row_segments, col_segments = exact_segments(n_rows, steps), exact_segments(n_cols, steps)
    else:
        row_segments = axis_segments(n_rows, steps, exact=path == "four_pass")
        col_segments = axis_segments(n_cols, steps, exact=path == "four_pass")
    shape = (BLOCK * n_rows, BLOCK * n_cols)
    out: OutputStore
    if store_dir is not None:
        out = DiskStore(store_dir, shape, len(indices))
    else:
        out = ArrayStore(shape, len(indices), statistics, net.config.num_classes)
    tiles = list(itertools.product(row_segments, col_segments))
    logger.debug("predicting %d tiles of %d px per phase (%s)", len(tiles), tile_size, path)
    for r, c in progress(tiles, desc="predict", unit="tile", disable=None if show_progress else True):
        window = array[r.start : r.start + r.length, c.start : c.start + c.length]
        x = np.ascontiguousarray(window, dtype=np.float32)[np.newaxis]
        tile = _tile_fn(net, path, (r.length, c.length), (r.phases, c.phases), indices, statistics)
        result = tile(tf.constant(x)).numpy()
        if path == "one_pass":  # a plain pass computes every row; keep the tile's share
            result = result[np.ix_(r.keep, c.keep)]
        out.write(np.ix_(r.dest, c.dest), result)
    return out.result(region)


def predict_image(
    net: IslNetwork,
    stack: np.ndarray,
    *,
    tile_size: int | None = None,
    reflect_pad: bool = False,
    exact: bool = True,
    heads: Heads = None,
    show_progress: bool = True,
) -> np.ndarray:
    """Per-pixel probabilities [rows, cols, heads, num_classes] for a whole stack.

    ``stack`` is [H, W, input_depth] in [0, 1], planes interleaved as the network takes them. The
    result covers :func:`output_region`. ``exact=True`` reproduces the original's stride-8 patch
    stitching within float32 rounding (the shared-trunk tiles of :mod:`isl.inference.exact`);
    ``exact=False`` makes one plain pass, with about 2.5x fewer multiply-accumulates (a count,
    :func:`tiled_macs`; the measured speeds are in BENCHMARKS.md), but blocks at odd multiples
    of 8 px then see tower 4's grid shifted by 8 px and differ slightly from the original.
    ``tile_size`` (250 + 16k, per phase) bounds the tiles' memory; the default picks, up to 490
    px exact or 714 px one pass, the size with the fewest counted operations for this image.
    ``heads`` selects and orders heads by name; the default (None or "targets") computes only the
    target heads, "all" adds the input-reconstruction heads. The output holds
    ``num_classes`` floats per pixel and head: for large images use :func:`predict_statistics`.
    """
    result = _predict_tiled(
        net, stack, tile_size=tile_size, reflect_pad=reflect_pad, exact=exact, heads=heads,
        statistics=False, show_progress=show_progress,
    )  # fmt: skip
    return cast(np.ndarray, result)


def predict_statistics(
    net: IslNetwork,
    stack: np.ndarray,
    *,
    tile_size: int | None = None,
    reflect_pad: bool = False,
    exact: bool = True,
    heads: Heads = None,
    show_progress: bool = True,
    store_dir: Path | None = None,
) -> dict[str, np.ndarray] | DiskStatistics:
    """Distribution statistics per pixel and head, each [rows, cols, heads] (see :data:`STATISTICS`).

    Same tiling as :func:`predict_image`, but each tile is reduced to six numbers per pixel and
    head right away. In memory the six arrays grow with the image area and the number of heads;
    with ``store_dir`` (a new or empty directory) each tile's statistics go straight to one
    ``.npy`` plane per statistic and head there, and a :class:`~isl.inference.store.DiskStatistics`
    is returned whose ``stats[name][..., head]`` reads one plane, so memory stays flat in the
    image size.
    """
    result = _predict_tiled(
        net, stack, tile_size=tile_size, reflect_pad=reflect_pad, exact=exact, heads=heads,
        statistics=True, show_progress=show_progress, store_dir=store_dir,
    )  # fmt: skip
    return cast("dict[str, np.ndarray] | DiskStatistics", result)


# -- the original's patchwise path --------------------------------------------------------------


def naive_patchwise(
    net: IslNetwork,
    stack: np.ndarray,
    *,
    batch_size: int = 16,
    reflect_pad: bool = False,
    heads: Heads = None,
    statistics: bool = False,
    show_progress: bool = True,
) -> np.ndarray | dict[str, np.ndarray]:
    """The original's inference: one 250x250 patch per 8x8 output block, at stride 8.

    Returns what :func:`predict_image` returns (or, with ``statistics=True``, what
    :func:`predict_statistics` returns) for the same stack and ``heads``, with 6-7x more
    multiply-accumulates than the exact tiled path (counted, :func:`tiled_macs`: each patch
    recomputes a 250-px neighbourhood for 64 pixels). Kept as the reference and for the
    benchmark.
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    array, region = _prepare(net, stack, reflect_pad)
    indices = _select_heads(net, heads)
    n_rows = (array.shape[0] - PATCH_SIZE) // BLOCK + 1
    n_cols = (array.shape[1] - PATCH_SIZE) // BLOCK + 1
    out = ArrayStore((BLOCK * n_rows, BLOCK * n_cols), len(indices), statistics, net.config.num_classes)
    forward = _compiled(
        net,
        "patches",
        lambda: tf.function(lambda x: net(x, training=False), reduce_retracing=True, autograph=False),
    )
    blocks = list(itertools.product(range(n_rows), range(n_cols)))
    batches = [blocks[i : i + batch_size] for i in range(0, len(blocks), batch_size)]
    # The last batch is padded to full size so that one compiled shape serves every batch.
    chosen = tf.constant(indices)
    for batch in progress(batches, desc="patches", unit="batch", disable=None if show_progress else True):
        x = np.zeros((batch_size, PATCH_SIZE, PATCH_SIZE, array.shape[-1]), np.float32)
        for i, (a, b) in enumerate(batch):
            x[i] = array[BLOCK * a : BLOCK * a + PATCH_SIZE, BLOCK * b : BLOCK * b + PATCH_SIZE]
        logits = tf.gather(forward(tf.constant(x))[: len(batch)], chosen, axis=3)
        probs = tf.nn.softmax(logits, axis=-1)
        if statistics:
            flat = tf.reshape(probs, [-1, probs.shape[-1]])
            values = tf.reshape(tf_statistics(flat), [*probs.shape[:-1], len(STATISTICS)])
        else:
            values = probs
        values = values.numpy()
        for (a, b), value in zip(batch, values, strict=True):
            out.write(np.s_[BLOCK * a : BLOCK * (a + 1), BLOCK * b : BLOCK * (b + 1)], value)
    return out.result(region)
