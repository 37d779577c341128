"""Whole-image prediction: large fully convolutional tiles that reproduce the original's stitching.

The original (``--metric INFER_FULL``) runs one 250x250 patch per 8x8 output block, at stride 8.
The network is equivariant only to shifts of 16 px (tower 4 downsamples 16x), so a tile of
250 + 16k pixels yields the patch results for every second block along each axis. Four passes,
shifted by 0 or 8 px along each axis, therefore reproduce the stitched patch output exactly
(up to float rounding), with far fewer operations. ``naive_patchwise`` is the original's path
and serves as the reference.

Output pixel (i, j) belongs to image pixel (121 + i, 121 + j); the 121-px border is not
predicted unless ``reflect_pad=True`` mirrors the image outwards first.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from cellsight_shared.cli import progress
from isl.config.model import ModelConfig
from isl.errors import DataError
from isl.model import GRID, MARGIN, OUTPUT_PATCH_SIZE, PATCH_SIZE, IslNetwork
from isl.model.plan import count_macs, head_macs_per_pixel

__all__ = [
    "DEFAULT_TILE_SIZE",
    "STATISTICS",
    "distribution_statistics",
    "naive_patchwise",
    "original_input_crop",
    "output_region",
    "predict_image",
    "predict_statistics",
    "tiled_macs",
]

logger = logging.getLogger(__name__)

#: Default tile side: 250 + 16 * 16 input pixels -> 264 output pixels per pass.
DEFAULT_TILE_SIZE = PATCH_SIZE + GRID * 16
#: The per-pixel statistics of the 256-bin distribution, in the original's order.
STATISTICS: tuple[str, ...] = (
    "mode",
    "median",
    "mean",
    "std",
    "probability_nonzero",
    "entropy",
)
_CACHE = "_isl_functions"
#: Reflect padding before the image: 121 px of margin rounded up to the 16-px grid.
_PAD_BEFORE = 128
_BLOCK = OUTPUT_PATCH_SIZE  # 8: output rows per patch, and the patch stride
#: Added inside the logarithm of the entropy, as the original does.
_ENTROPY_EPSILON = 1e-7


# -- statistics ---------------------------------------------------------------------------------


def distribution_statistics(probs: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics of per-pixel categorical distributions over the last axis (numpy).

    Bin ``i`` of ``K`` has the value ``i / (K - 1)``. ``mode`` is the first most probable bin;
    ``median`` is the number of bins whose cumulative probability is below 0.5, over ``K - 1``
    (the original's definition); ``entropy`` is ``-sum p ln(p + 1e-7) / ln K``, in [0, 1].
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim < 1 or p.shape[-1] < 2:
        raise DataError(f"probabilities need a last axis of >= 2 bins, got shape {p.shape}")
    sums = p.sum(axis=-1)
    if p.size and not np.allclose(sums, 1.0, atol=1e-4):
        worst = float(np.max(np.abs(sums - 1.0)))
        raise DataError(f"probabilities must sum to 1 over the last axis (worst |sum - 1| {worst})")
    k = p.shape[-1]
    values = np.linspace(0.0, 1.0, k)
    mean = p @ values
    stats = {
        "mode": np.argmax(p, axis=-1) / (k - 1),
        "median": np.sum(np.cumsum(p, axis=-1) < 0.5, axis=-1) / (k - 1),
        "mean": mean,
        "std": np.sqrt(np.sum(p * (values - mean[..., None]) ** 2, axis=-1)),
        "probability_nonzero": 1.0 - p[..., 0],
        "entropy": -np.sum(p * np.log(p + _ENTROPY_EPSILON), axis=-1) / np.log(k),
    }
    return {name: stats[name].astype(np.float32) for name in STATISTICS}


def _tf_statistics(probs: tf.Tensor) -> tf.Tensor:
    """The statistics of :func:`distribution_statistics` in TensorFlow: [N, K] -> [N, 6]."""
    k = probs.shape[-1]
    values = tf.linspace(0.0, 1.0, k)
    mean = tf.linalg.matvec(probs, values)
    stats = [
        tf.cast(tf.argmax(probs, axis=-1), tf.float32) / (k - 1),
        tf.reduce_sum(tf.cast(tf.cumsum(probs, axis=-1) < 0.5, tf.float32), axis=-1) / (k - 1),
        mean,
        tf.sqrt(tf.reduce_sum(probs * tf.square(values - mean[:, tf.newaxis]), axis=-1)),
        1.0 - probs[:, 0],
        -tf.reduce_sum(probs * tf.math.log(probs + _ENTROPY_EPSILON), axis=-1) / math.log(k),
    ]
    return tf.stack(stats, axis=-1)


# -- geometry ------------------------------------------------------------------------------------


def output_region(height: int, width: int, *, reflect_pad: bool = False) -> tuple[int, int, int, int]:
    """Where the prediction lies in the image: ``(row0, col0, rows, cols)``.

    Without padding every complete 250-px patch at stride 8 is used: the output starts at image
    pixel (121, 121) and has ``8 * (floor((side - 250) / 8) + 1)`` pixels per axis. With
    ``reflect_pad`` it is the whole image.
    """
    if reflect_pad:
        return 0, 0, height, width
    if min(height, width) < PATCH_SIZE:
        raise DataError(
            f"image of {height}x{width} px is smaller than the network's 250x250 patch; "
            "predict with reflect_pad=True (or use a larger image)"
        )
    rows = _BLOCK * ((height - PATCH_SIZE) // _BLOCK + 1)
    cols = _BLOCK * ((width - PATCH_SIZE) // _BLOCK + 1)
    return MARGIN, MARGIN, rows, cols


def original_input_crop(
    height: int, width: int, *, stitch_crop_size: int = 500, infer_size: int = 16
) -> tuple[int, int]:
    """Rows and columns of the top-left input crop that yield exactly the original's output.

    The original predicts the top-left ``stitch_crop_size`` region in runs of ``infer_size``^2
    patches and drops what does not fill a whole run: ``128 * floor((region - 250) / 128)``
    output pixels per axis for the default ``infer_size`` 16 (1152 for a 1500 crop).
    """
    run = infer_size * _BLOCK
    sides = []
    for side in (height, width):
        region = min(side, stitch_crop_size)
        out = run * ((region - PATCH_SIZE) // run)
        if out <= 0:
            raise DataError(
                f"a {height}x{width} image with stitch_crop_size {stitch_crop_size} gives no "
                f"complete run of {infer_size}x{infer_size} patches; use a larger crop or image"
            )
        sides.append(out + 2 * MARGIN)
    return sides[0], sides[1]


@dataclass(frozen=True)
class _Segment:
    """Along one axis: the input span of a tile and which of its output rows go where."""

    start: int
    length: int
    keep: np.ndarray
    dest: np.ndarray


def _segment(first_block: int, count: int, *, every_other: bool) -> _Segment:
    """A tile whose input starts at block ``first_block`` and covers ``count`` grid steps."""
    length = PATCH_SIZE + GRID * (count - 1)
    rows = np.arange(_BLOCK)
    if every_other:  # keep the blocks at 16-px steps: the patch results of one phase
        keep = np.concatenate([GRID * j + rows for j in range(count)])
        dest = np.concatenate([_BLOCK * (first_block + 2 * j) + rows for j in range(count)])
    else:  # keep every block: one phase-0 pass, the grid anchored at the image origin
        keep = np.arange(length - 2 * MARGIN)
        dest = _BLOCK * first_block + keep
    return _Segment(_BLOCK * first_block, length, keep, dest)


def _groups(firsts: list[int], size: int) -> list[list[int]]:
    """Split ``firsts`` into runs of ``size``; the last run is shifted back to stay full."""
    if len(firsts) <= size:
        return [firsts]
    groups = [firsts[i : i + size] for i in range(0, len(firsts), size)]
    groups[-1] = firsts[-size:]
    return groups


def _axis_segments(num_blocks: int, steps: int, *, exact: bool) -> list[_Segment]:
    """Tiles along one axis covering ``num_blocks`` output blocks with tiles of ``steps`` steps."""
    segments = []
    if exact:
        for phase in (0, 1):
            for group in _groups(list(range(phase, num_blocks, 2)), steps):
                segments.append(_segment(group[0], len(group), every_other=True))
        return segments
    last_even = num_blocks - 1 - (num_blocks - 1) % 2
    for group in _groups(list(range(0, last_even + 1, 2)), steps):
        segments.append(_segment(group[0], len(group), every_other=False))
    if last_even < num_blocks - 1:  # the last block is odd: one patch-aligned row of tiles
        segments.append(_segment(num_blocks - 1, 1, every_other=True))
    return segments


def tiled_macs(
    net_config: ModelConfig,
    height: int,
    width: int,
    *,
    tile_size: int = DEFAULT_TILE_SIZE,
    exact: bool = True,
) -> int:
    """Multiply-accumulates of :func:`predict_image` on an (unpadded) ``height`` x ``width`` stack.

    Compare with ``count_macs(config) * patches`` for the patchwise path.
    """
    steps = (tile_size - PATCH_SIZE) // GRID + 1
    n_rows = (height - PATCH_SIZE) // _BLOCK + 1
    n_cols = (width - PATCH_SIZE) // _BLOCK + 1
    rows = _axis_segments(n_rows, steps, exact=exact)
    cols = _axis_segments(n_cols, steps, exact=exact)
    per_pixel = head_macs_per_pixel(net_config)
    total = 0
    for r, c in itertools.product(rows, cols):
        total += count_macs(net_config, (r.length, c.length), heads=False)
        total += len(r.keep) * len(c.keep) * per_pixel
    return total


# -- input handling ------------------------------------------------------------------------------


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
    height, width = array.shape[:2]
    if not reflect_pad:
        _, _, rows, cols = output_region(height, width)
        return array, (0, 0, rows, cols)
    skip = _PAD_BEFORE - MARGIN  # output rows that lie before the image
    pads = []
    for side in (height, width):
        blocks = -(-(side + skip) // _BLOCK)
        pads.append((_PAD_BEFORE, PATCH_SIZE + _BLOCK * (blocks - 1) - _PAD_BEFORE - side))
    array = np.pad(array.astype(np.float32, copy=False), [*pads, (0, 0)], mode="reflect")
    return array, (skip, skip, height, width)


def _select_heads(net: IslNetwork, heads: Sequence[str] | None) -> list[int]:
    if heads is None:
        return list(range(net.num_heads))
    names = list(net.head_names)
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


def _embed_fn(net: IslNetwork) -> Callable:
    return _compiled(
        net,
        "embed",
        lambda: tf.function(lambda x: net.embed(x, training=False), reduce_retracing=True, autograph=False),
    )


def _head_fn(net: IslNetwork, indices: list[int], statistics: bool) -> Callable:
    """Embedding pixels [N, C] -> statistics [N, heads, 6] or probabilities [N, heads, K]."""

    def run(embedding: tf.Tensor) -> tf.Tensor:
        pixels = embedding[tf.newaxis, tf.newaxis]  # the fused BN kernel wants NHWC
        outputs = []
        for i in indices:
            probs = tf.nn.softmax(net.head_units[i](pixels, training=False)[0, 0], axis=-1)
            outputs.append(_tf_statistics(probs) if statistics else probs)
        return tf.stack(outputs, axis=1)

    key = f"heads-{statistics}-{','.join(map(str, indices))}"
    return _compiled(net, key, lambda: tf.function(run, reduce_retracing=True, autograph=False))


def _finish(
    out: np.ndarray, statistics: bool, region: tuple[int, int, int, int]
) -> np.ndarray | dict:
    row0, col0, rows, cols = region
    out = out[row0 : row0 + rows, col0 : col0 + cols]
    if not statistics:
        return out
    return {name: np.ascontiguousarray(out[..., i]) for i, name in enumerate(STATISTICS)}


# -- the fully convolutional path ---------------------------------------------------------------


def _predict_tiled(
    net: IslNetwork,
    stack: np.ndarray,
    *,
    tile_size: int,
    reflect_pad: bool,
    exact: bool,
    heads: Sequence[str] | None,
    statistics: bool,
    show_progress: bool,
) -> np.ndarray | dict[str, np.ndarray]:
    if tile_size < PATCH_SIZE or (tile_size - PATCH_SIZE) % GRID:
        raise DataError(f"tile_size must be 250 + 16k (e.g. {DEFAULT_TILE_SIZE}), got {tile_size}")
    array, region = _prepare(net, stack, reflect_pad)
    indices = _select_heads(net, heads)
    steps = (tile_size - PATCH_SIZE) // GRID + 1
    n_rows = (array.shape[0] - PATCH_SIZE) // _BLOCK + 1
    n_cols = (array.shape[1] - PATCH_SIZE) // _BLOCK + 1
    row_segments = _axis_segments(n_rows, steps, exact=exact)
    col_segments = _axis_segments(n_cols, steps, exact=exact)
    last = len(STATISTICS) if statistics else net.config.num_classes
    out = np.zeros((_BLOCK * n_rows, _BLOCK * n_cols, len(indices), last), np.float32)
    embed, head = _embed_fn(net), _head_fn(net, indices, statistics)
    tiles = list(itertools.product(row_segments, col_segments))
    logger.debug("predicting %d tiles of at most %d px (exact=%s)", len(tiles), tile_size, exact)
    for r, c in progress(tiles, desc="predict", unit="tile", disable=None if show_progress else True):
        window = array[r.start : r.start + r.length, c.start : c.start + c.length]
        x = np.ascontiguousarray(window, dtype=np.float32)[np.newaxis]
        embedding = embed(tf.constant(x)).numpy()[0]
        kept = embedding[np.ix_(r.keep, c.keep)]
        result = head(tf.constant(kept.reshape(-1, kept.shape[-1]))).numpy()
        out[np.ix_(r.dest, c.dest)] = result.reshape(len(r.keep), len(c.keep), *result.shape[1:])
    return _finish(out, statistics, region)


def predict_image(
    net: IslNetwork,
    stack: np.ndarray,
    *,
    tile_size: int = DEFAULT_TILE_SIZE,
    reflect_pad: bool = False,
    exact: bool = True,
    heads: Sequence[str] | None = None,
    show_progress: bool = True,
) -> np.ndarray:
    """Per-pixel probabilities [rows, cols, heads, num_classes] for a whole stack.

    ``stack`` is [H, W, input_depth] in [0, 1], planes interleaved as the network takes them. The
    result covers :func:`output_region`. ``exact=True`` reproduces the original's stride-8 patch
    stitching (four phase-shifted passes); ``exact=False`` makes one pass (about 4x faster; blocks
    at odd multiples of 8 px then see tower 4's grid shifted by 8 px, so they differ slightly from
    the original). ``heads`` selects and orders heads by name (default: all). The output holds
    ``num_classes`` floats per pixel and head: for large images use :func:`predict_statistics`.
    """
    result = _predict_tiled(
        net, stack, tile_size=tile_size, reflect_pad=reflect_pad, exact=exact, heads=heads,
        statistics=False, show_progress=show_progress,
    )  # fmt: skip
    assert isinstance(result, np.ndarray)
    return result


def predict_statistics(
    net: IslNetwork,
    stack: np.ndarray,
    *,
    tile_size: int = DEFAULT_TILE_SIZE,
    reflect_pad: bool = False,
    exact: bool = True,
    heads: Sequence[str] | None = None,
    show_progress: bool = True,
) -> dict[str, np.ndarray]:
    """Distribution statistics per pixel and head, each [rows, cols, heads] (see :data:`STATISTICS`).

    Same tiling as :func:`predict_image`, but each tile is reduced to six numbers per pixel and
    head right away, so memory stays bounded by the tile size and the output.
    """
    result = _predict_tiled(
        net, stack, tile_size=tile_size, reflect_pad=reflect_pad, exact=exact, heads=heads,
        statistics=True, show_progress=show_progress,
    )  # fmt: skip
    assert isinstance(result, dict)
    return result


# -- the original's patchwise path --------------------------------------------------------------


def naive_patchwise(
    net: IslNetwork,
    stack: np.ndarray,
    *,
    batch_size: int = 16,
    reflect_pad: bool = False,
    heads: Sequence[str] | None = None,
    statistics: bool = False,
    show_progress: bool = True,
) -> np.ndarray | dict[str, np.ndarray]:
    """The original's inference: one 250x250 patch per 8x8 output block, at stride 8.

    Returns what :func:`predict_image` returns (or, with ``statistics=True``, what
    :func:`predict_statistics` returns) for the same stack; about 64x more arithmetic per pixel
    than the tiled path. Kept as the reference and for the benchmark.
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    array, region = _prepare(net, stack, reflect_pad)
    indices = _select_heads(net, heads)
    n_rows = (array.shape[0] - PATCH_SIZE) // _BLOCK + 1
    n_cols = (array.shape[1] - PATCH_SIZE) // _BLOCK + 1
    last = len(STATISTICS) if statistics else net.config.num_classes
    out = np.zeros((_BLOCK * n_rows, _BLOCK * n_cols, len(indices), last), np.float32)
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
            x[i] = array[_BLOCK * a : _BLOCK * a + PATCH_SIZE, _BLOCK * b : _BLOCK * b + PATCH_SIZE]
        logits = tf.gather(forward(tf.constant(x))[: len(batch)], chosen, axis=3)
        probs = tf.nn.softmax(logits, axis=-1)
        if statistics:
            flat = tf.reshape(probs, [-1, probs.shape[-1]])
            values = tf.reshape(_tf_statistics(flat), [*probs.shape[:-1], len(STATISTICS)])
        else:
            values = probs
        values = values.numpy()
        for (a, b), value in zip(batch, values, strict=True):
            out[_BLOCK * a : _BLOCK * (a + 1), _BLOCK * b : _BLOCK * (b + 1)] = value
    return _finish(out, statistics, region)
