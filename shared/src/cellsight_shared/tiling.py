"""Split an N-D array into tiles with context margins and stitch per-tile outputs back.

For a fully convolutional function whose output at a pixel depends only on input within
``margin`` pixels, the stitched result equals the untiled result exactly: each tile is computed
with its margin of real context (clipped at the image border, where the untiled run sees the
same border) and only its core is kept. Tiles may instead overlap and be blended with a linear
ramp, for functions that are not exactly translation-equivariant.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cellsight_shared.errors import InvalidArgumentError, ShapeMismatchError

__all__ = ["Tile", "plan_tiles", "predict_tiled"]


@dataclass(frozen=True)
class Tile:
    """One tile: where to read its input, which part of its output to keep, where to put it.

    All slices cover the spatial axes only.
    """

    input_slices: tuple[slice, ...]
    """Region of the full image read for this tile, core plus margin (clipped to the image)."""
    crop_slices: tuple[slice, ...]
    """Region of the tile's output that is kept (the core), relative to the tile."""
    output_slices: tuple[slice, ...]
    """Where the kept region goes in the full output."""


def _as_tuple(value: int | Sequence[int], ndim: int, name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * ndim
    value = tuple(int(v) for v in value)
    if len(value) != ndim:
        raise InvalidArgumentError(f"{name} has {len(value)} entries for {ndim} spatial axes")
    return value


def plan_tiles(
    shape: Sequence[int], *, tile_shape: int | Sequence[int], margin: int | Sequence[int] = 0
) -> list[Tile]:
    """Cover an array of spatial ``shape`` with cores of at most ``tile_shape`` plus ``margin``.

    ``tile_shape`` is the core size (what each tile contributes); the region read is the core
    grown by ``margin`` on each side, clipped to the array. Tiles are in C order.
    """
    shape = tuple(int(s) for s in shape)
    ndim = len(shape)
    core = _as_tuple(tile_shape, ndim, "tile_shape")
    margin_t = _as_tuple(margin, ndim, "margin")
    if any(c <= 0 for c in core) or any(m < 0 for m in margin_t):
        raise InvalidArgumentError(
            f"tile_shape must be positive and margin non-negative, got {core} and {margin_t}"
        )
    starts = [range(0, s, c) for s, c in zip(shape, core, strict=True)]
    tiles = []
    for corner in itertools.product(*starts):
        inp, crop, out = [], [], []
        for start, size, c, m in zip(corner, shape, core, margin_t, strict=True):
            stop = min(start + c, size)
            lo, hi = max(0, start - m), min(size, stop + m)
            inp.append(slice(lo, hi))
            crop.append(slice(start - lo, stop - lo))
            out.append(slice(start, stop))
        tiles.append(Tile(tuple(inp), tuple(crop), tuple(out)))
    return tiles


def _full_index(spatial: tuple[slice, ...], spatial_axes: tuple[int, ...], ndim: int) -> tuple[slice, ...]:
    index = [slice(None)] * ndim
    for axis, sl in zip(spatial_axes, spatial, strict=True):
        index[axis] = sl
    return tuple(index)


def _ramp(length: int, core: slice, margin: int) -> np.ndarray:
    """1-D blending weights: 1 on the core, falling linearly to ~0 across the margins."""
    w = np.ones(length, dtype=np.float32)
    if margin > 0:
        ramp = (np.arange(1, margin + 1, dtype=np.float32)) / (margin + 1)
        left = core.start
        w[:left] = ramp[-left:] if left else w[:0]
        right = length - core.stop
        w[length - right :] = ramp[::-1][:right] if right else w[:0]
    return w


def predict_tiled(
    image: np.ndarray,
    fn: Callable[[np.ndarray], np.ndarray],
    *,
    tile_shape: int | Sequence[int],
    margin: int | Sequence[int],
    spatial_axes: Sequence[int] | None = None,
    blend: bool = False,
    progress: Callable[[list[Tile]], object] | None = None,
) -> np.ndarray:
    """Apply ``fn`` tile by tile and stitch the outputs into one array.

    ``fn`` maps an input tile to an output with the same size along ``spatial_axes`` (other axes,
    e.g. channels, may change size). Without ``blend`` each output pixel comes from exactly one
    tile core: exact for fully convolutional functions when ``margin`` covers the receptive
    field. With ``blend`` the margins are kept too and overlapping tiles are averaged with
    linear ramps. ``progress`` may wrap the tile list (e.g. with tqdm).
    """
    image = np.asarray(image)
    axes = (
        tuple(range(image.ndim))
        if spatial_axes is None
        else tuple(sorted({a % image.ndim for a in spatial_axes}))
    )
    shape = tuple(image.shape[a] for a in axes)
    tiles = plan_tiles(shape, tile_shape=tile_shape, margin=margin)
    margin_t = _as_tuple(margin, len(axes), "margin")
    iterable = progress(tiles) if progress is not None else tiles
    output: np.ndarray | None = None
    weights: np.ndarray | None = None
    for tile in iterable:  # type: ignore[union-attr]
        result = np.asarray(fn(image[_full_index(tile.input_slices, axes, image.ndim)]))
        expected = tuple(s.stop - s.start for s in tile.input_slices)
        got = tuple(result.shape[a] for a in axes) if result.ndim == image.ndim else None
        if got != expected:
            raise ShapeMismatchError(
                f"the tiled function returned shape {result.shape} for an input tile of spatial shape "
                f"{expected} on axes {axes}; it must keep the spatial size (use 'same' padding)."
            )
        if output is None:
            out_shape = list(result.shape)
            for a, s in zip(axes, shape, strict=True):
                out_shape[a] = s
            output = np.zeros(out_shape, dtype=np.float32 if blend else result.dtype)
            if blend:
                weights = np.zeros(shape, dtype=np.float32)
        if not blend:
            output[_full_index(tile.output_slices, axes, output.ndim)] = result[
                _full_index(tile.crop_slices, axes, result.ndim)
            ]
            continue
        w = np.ones((1,) * len(axes), dtype=np.float32)
        for i, (sl, crop) in enumerate(zip(tile.input_slices, tile.crop_slices, strict=True)):
            ramp = _ramp(sl.stop - sl.start, crop, margin_t[i])
            w = w[..., None] * ramp if i else ramp
        w_full = w.reshape([w.shape[axes.index(a)] if a in axes else 1 for a in range(result.ndim)])
        output[_full_index(tile.input_slices, axes, output.ndim)] += result * w_full
        weights[tile.input_slices] += w  # type: ignore[index]
    if output is None:
        raise InvalidArgumentError(f"cannot tile an array with an empty spatial shape {shape}")
    if blend:
        output /= weights.reshape(
            [weights.shape[axes.index(a)] if a in axes else 1 for a in range(output.ndim)]
        )  # type: ignore[union-attr]
    return output
