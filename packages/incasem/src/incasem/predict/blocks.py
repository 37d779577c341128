"""Where every block of a prediction reads and writes, and which blocks are done (no torch).

All coordinates are in voxels of the data, absolute (world position / voxel size), z/y/x.
Output blocks tile the predicted region from its first voxel; a block that would overhang the
ROI is shifted back inside it. A block is done when its marker file exists.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from itertools import product
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from incasem.predict.plan import EntryPlan

__all__ = ["block_begins", "block_window", "finished_blocks", "marker_name", "num_blocks"]

Triple = tuple[int, int, int]


def block_begins(entry: EntryPlan) -> Iterator[Triple]:
    """First voxel of every output block, in z, y, x order."""
    ranges = [
        range(o, o + s, b)
        for o, s, b in zip(entry.output_offset, entry.output_shape, entry.output_block, strict=True)
    ]
    yield from product(*ranges)  # type: ignore[misc]  # tuples of 3 ints


def num_blocks(entry: EntryPlan) -> int:
    """How many output blocks tile the predicted region."""
    return math.prod(-(-s // b) for s, b in zip(entry.output_shape, entry.output_block, strict=True))


def block_window(entry: EntryPlan, write_begin: Sequence[int]) -> tuple[Triple, Triple, Triple]:
    """``(read_begin, write_begin, write_end)`` of the block whose output starts at ``write_begin``.

    The read window is ``input_shape`` voxels. Without padding, a block that would overhang the
    ROI is shifted back inside it (like gunpowder's Scan snaps its last tile to the end); it
    then writes only its own part of the region, which its shifted output still covers.
    """
    read, end = [], []
    for axis in range(3):
        w = int(write_begin[axis])
        out_end = entry.output_offset[axis] + entry.output_shape[axis]
        r = w - entry.context[axis]
        if not entry.pad_context:
            roi_begin = entry.roi_offset[axis]
            roi_end = roi_begin + entry.roi_shape[axis]
            r = max(roi_begin, min(r, roi_end - entry.input_shape[axis]))
        read.append(r)
        end.append(min(w + entry.output_block[axis], out_end))
    begin = tuple(int(w) for w in write_begin)
    return (read[0], read[1], read[2]), (begin[0], begin[1], begin[2]), (end[0], end[1], end[2])


def marker_name(write_begin: Sequence[int]) -> str:
    """File name of a block's done marker: its first output voxel, ``<z>_<y>_<x>``."""
    return "_".join(str(int(v)) for v in write_begin)


def finished_blocks(entry: EntryPlan) -> set[str]:
    """Marker names of the blocks already written."""
    if not entry.markers_dir.is_dir():
        return set()
    return {p.name for p in entry.markers_dir.iterdir()}
