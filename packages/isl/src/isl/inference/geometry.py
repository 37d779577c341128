"""Where the tiles of the fully convolutional paths go, and what the original's output covers.

Along each axis the output is a row of 8-px blocks, block ``a`` being the centre of the 250-px patch
at offset ``8a``. A plain pass over 250 + 16(c - 1) input pixels computes ``2c - 1`` consecutive
blocks, but only every second one equals the patch result (the net is equivariant to 16-px
shifts). The exact path (:mod:`isl.inference.exact`) therefore takes tiles of 250 + 16(c - 1) + 8
pixels that hold both 8-px phases: the shared trunk runs once on the whole tile, the
phase-dependent rest once per phase, and the tile yields ``2c`` consecutive exact blocks. The
older four-pass layout (each phase tiled separately, every other block kept) is kept for
comparison and for the one-pass mode's odd last block.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass

import numpy as np

from isl.config.model import ModelConfig
from isl.errors import DataError
from isl.model.plan import (
    GRID,
    MARGIN,
    OUTPUT_PATCH_SIZE,
    PATCH_SIZE,
    count_exact_tile_macs,
    count_macs,
    network_plan,
)

__all__ = [
    "BLOCK",
    "DEFAULT_TILE_SIZE",
    "PAD_BEFORE",
    "MAX_AUTO_TILE_EXACT",
    "MAX_AUTO_TILE_ONE_PASS",
    "Segment",
    "auto_tile_size",
    "axis_segments",
    "exact_segments",
    "original_input_crop",
    "output_region",
    "tiled_macs",
]

#: Default tile side, 250 + 16 * 16: a plain pass gives 264 output pixels, an exact tile (8 px
#: larger, both phases) 272.
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
    """Along one axis: the input span of a tile and which of its output rows go where.

    ``phases`` is 2 for an exact tile holding both 8-px phases (see :func:`exact_segments`), else 1.
    """

    start: int
    length: int
    keep: np.ndarray
    dest: np.ndarray
    phases: int = 1

    @property
    def steps(self) -> int:
        """16-px steps of the tile per phase: its per-phase input is 250 + 16 (steps - 1)."""
        return (self.length - BLOCK * (self.phases - 1) - PATCH_SIZE) // GRID + 1


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


def exact_segments(num_blocks: int, steps: int) -> list[Segment]:
    """Exact tiles along one axis: each holds both phases and yields ``2 * s`` consecutive blocks.

    ``s <= steps`` is the same for every tile (one tile shape, one compiled graph); the fewest
    tiles cover the axis and the last one is shifted back to end at the last block, so tiles
    overlap by less than one tile's share. A single-block axis gets one one-phase 250-px tile.
    """
    if num_blocks < 1:
        raise DataError(f"need at least one output block, got {num_blocks}")
    if num_blocks == 1:
        return [Segment(0, PATCH_SIZE, np.arange(BLOCK), np.arange(BLOCK), phases=1)]
    largest = 2 * min(steps, num_blocks // 2)  # blocks per tile: even, and inside the axis
    tiles = -(-num_blocks // largest)
    share = -(-num_blocks // tiles)  # blocks per tile, rounded up to whole pairs below
    window = 2 * -(-share // 2)
    length = PATCH_SIZE + GRID * (window // 2 - 1) + BLOCK
    rows = np.arange(BLOCK * window)
    segments = []
    for i in range(tiles):
        first = min(i * window, num_blocks - window)
        segments.append(Segment(BLOCK * first, length, rows, BLOCK * first + rows, phases=2))
    return segments


def tiled_macs(
    net_config: ModelConfig,
    height: int,
    width: int,
    *,
    tile_size: int = DEFAULT_TILE_SIZE,
    exact: bool = True,
    path: str | None = None,
    heads: int | None = None,
) -> int:
    """Multiply-accumulates of :func:`predict_image` on an (unpadded) ``height`` x ``width`` stack.

    ``path`` is "exact" (the shared-trunk exact path, ``exact=True``), "one_pass"
    (``exact=False``) or "four_pass" (the earlier exact path: four full passes); ``heads`` is the
    number of heads computed (default all). Compare with ``count_macs(config) * patches`` for the
    patchwise path.
    """
    path = path or ("exact" if exact else "one_pass")
    if path not in ("exact", "one_pass", "four_pass"):
        raise ValueError(f"path must be 'exact', 'one_pass' or 'four_pass', got {path!r}")
    plan = network_plan(net_config)
    n_heads = len(plan.head_names) if heads is None else heads
    per_pixel = n_heads * 2 * plan.embedding_depth * plan.num_classes
    steps = (tile_size - PATCH_SIZE) // GRID + 1
    n_rows = (height - PATCH_SIZE) // BLOCK + 1
    n_cols = (width - PATCH_SIZE) // BLOCK + 1
    total = 0
    if path == "exact":
        shapes = Counter(
            ((r.steps, c.steps), (r.phases, c.phases))
            for r, c in itertools.product(exact_segments(n_rows, steps), exact_segments(n_cols, steps))
        )
        for (tile_steps, phases), n in shapes.items():
            total += n * count_exact_tile_macs(net_config, tile_steps, phases, heads=heads)
        return total
    rows = axis_segments(n_rows, steps, exact=path == "four_pass")
    cols = axis_segments(n_cols, steps, exact=path == "four_pass")
    passes = Counter((r.length, c.length) for r, c in itertools.product(rows, cols))
    for shape, n in passes.items():
        total += n * count_macs(net_config, shape, heads=False)
    kept = sum(len(r.keep) for r in rows) * sum(len(c.keep) for c in cols)
    return total + kept * per_pixel


#: Largest automatic tile sides: an exact tile batches four phases, so its per-phase side is
#: kept smaller than a one-pass tile's. With 554 (exact) a 1500x1500 crop peaked at 4.09 GiB,
#: measured; 490 keeps the paper network's tile temporaries near 2 GB (by scaling).
MAX_AUTO_TILE_EXACT = PATCH_SIZE + GRID * 15
MAX_AUTO_TILE_ONE_PASS = PATCH_SIZE + GRID * 29


def auto_tile_size(net_config: ModelConfig, height: int, width: int, *, exact: bool = True) -> int:
    """The tile side (250 + 16k, per phase) with the fewest counted multiply-accumulates.

    Tried up to :data:`MAX_AUTO_TILE_EXACT` (exact) or :data:`MAX_AUTO_TILE_ONE_PASS` (one pass);
    larger tiles waste less on their 242-px margins, but a size that divides the image badly
    recomputes overlapping blocks, so the count, not the largest size, decides.
    """
    largest = MAX_AUTO_TILE_EXACT if exact else MAX_AUTO_TILE_ONE_PASS
    best = (0, 0)
    for size in range(PATCH_SIZE, largest + 1, GRID):
        macs = tiled_macs(net_config, height, width, tile_size=size, exact=exact, heads=0)
        if not best[1] or macs < best[0]:
            best = (macs, size)
        if size >= max(height, width):  # a larger tile than the image changes nothing
            break
    return best[1]
