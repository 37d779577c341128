"""Where the tiles of the fully convolutional path go, and what the original's output covers.

Along each axis the output is a row of 8-px blocks, block ``a`` being the centre of the 250-px patch
at offset ``8a``. A tile of 250 + 16(c - 1) input pixels computes ``2c - 1`` consecutive blocks, but
only every second one equals the patch result (the net is equivariant to 16-px shifts), so the
exact path tiles each parity ("phase") separately and keeps every other block.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from isl.config.model import ModelConfig
from isl.errors import DataError
from isl.model.plan import (
    GRID,
    MARGIN,
    OUTPUT_PATCH_SIZE,
    PATCH_SIZE,
    count_macs,
    head_macs_per_pixel,
)

__all__ = [
    "BLOCK",
    "DEFAULT_TILE_SIZE",
    "PAD_BEFORE",
    "Segment",
    "axis_segments",
    "original_input_crop",
    "output_region",
    "tiled_macs",
]

#: Default tile side: 250 + 16 * 16 input pixels -> 264 output pixels per pass.
DEFAULT_TILE_SIZE = PATCH_SIZE + GRID * 16
#: Output rows per patch, and the patch stride.
BLOCK = OUTPUT_PATCH_SIZE
#: Reflect padding before the image: the 121-px margin rounded up to the 16-px grid.
PAD_BEFORE = 128


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
    rows = BLOCK * ((height - PATCH_SIZE) // BLOCK + 1)
    cols = BLOCK * ((width - PATCH_SIZE) // BLOCK + 1)
    return MARGIN, MARGIN, rows, cols


def original_input_crop(
    height: int, width: int, *, stitch_crop_size: int = 500, infer_size: int = 16
) -> tuple[int, int]:
    """Rows and columns of the top-left input crop that yield exactly the original's output.

    The original predicts the top-left ``stitch_crop_size`` region in runs of ``infer_size``^2
    patches and drops what does not fill a whole run: ``128 * floor((region - 250) / 128)``
    output pixels per axis for the default ``infer_size`` 16 (1152 for a 1500 crop).
    """
    run = infer_size * BLOCK
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
class Segment:
    """Along one axis: the input span of a tile and which of its output rows go where."""

    start: int
    length: int
    keep: np.ndarray
    dest: np.ndarray


def _segment(first_block: int, count: int, *, every_other: bool) -> Segment:
    """A tile whose input starts at block ``first_block`` and covers ``count`` grid steps."""
    length = PATCH_SIZE + GRID * (count - 1)
    rows = np.arange(BLOCK)
    if every_other:  # keep the blocks at 16-px steps: the patch results of one phase
        keep = np.concatenate([GRID * j + rows for j in range(count)])
        dest = np.concatenate([BLOCK * (first_block + 2 * j) + rows for j in range(count)])
    else:  # keep every block: one phase-0 pass, the grid anchored at the image origin
        keep = np.arange(length - 2 * MARGIN)
        dest = BLOCK * first_block + keep
    return Segment(BLOCK * first_block, length, keep, dest)


def _even_starts(count: int, size: int) -> tuple[int, list[int]]:
    """Fewest equal windows of at most ``size`` covering ``count`` items: (window, starts).

    Equal windows keep one tile shape (one compiled graph) and spread the overlap: the last
    window is shifted back by less than one window's share.
    """
    windows = -(-count // size)
    window = -(-count // windows)
    return window, [min(i * window, count - window) for i in range(windows)]


def _groups(firsts: list[int], size: int) -> list[list[int]]:
    """Split ``firsts`` into the fewest runs of at most ``size`` items, all of the same length."""
    if not firsts:
        return []
    window, starts = _even_starts(len(firsts), size)
    return [firsts[a : a + window] for a in starts]


def axis_segments(num_blocks: int, steps: int, *, exact: bool) -> list[Segment]:
    """Tiles along one axis covering ``num_blocks`` output blocks with tiles of ``steps`` steps."""
    segments = []
    if exact:
        for phase in (0, 1):
            for group in _groups(list(range(phase, num_blocks, 2)), steps):
                segments.append(_segment(group[0], len(group), every_other=True))
        return segments
    if steps == 1:  # a one-patch tile computes one block: nothing to gain
        return axis_segments(num_blocks, steps, exact=True)
    # One pass: tiles start on even blocks and compute every block up to their last even one;
    # consecutive tiles share that block so that the odd blocks between them are covered.
    evens = list(range(0, num_blocks, 2))
    if len(evens) == 1:
        segments.append(_segment(0, 1, every_other=False))
    else:
        window, starts = _even_starts(len(evens) - 1, steps - 1)
        for a in starts:
            segments.append(_segment(evens[a], window + 1, every_other=False))
    if num_blocks % 2 == 0:  # the last block is odd: one patch-aligned row of tiles
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
    n_rows = (height - PATCH_SIZE) // BLOCK + 1
    n_cols = (width - PATCH_SIZE) // BLOCK + 1
    rows = axis_segments(n_rows, steps, exact=exact)
    cols = axis_segments(n_cols, steps, exact=exact)
    per_pixel = head_macs_per_pixel(net_config)
    total = 0
    for r, c in itertools.product(rows, cols):
        total += count_macs(net_config, (r.length, c.length), heads=False)
        total += len(r.keep) * len(c.keep) * per_pixel
    return total
