"""Where every block of a prediction reads and writes, and where the outputs go (no torch).

All coordinates are in voxels of the data, absolute (world position / voxel size), z/y/x.
Output blocks tile the predicted region from its first voxel, and output chunks divide the block,
so every chunk belongs to exactly one block and workers never write the same chunk.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import re
from collections.abc import Iterator, Sequence
from itertools import product
from pathlib import Path

from pydantic import Field

from incasem.config.base import FrozenModel
from incasem.config.model import ModelConfig
from incasem.errors import ConfigError, DataError

__all__ = [
    "PREDICTIONS_ROOT",
    "EntryPlan",
    "WorkerJob",
    "block_begins",
    "block_window",
    "claim_prediction_groups",
    "group_path",
    "marker_name",
    "train_group_path",
]

logger = logging.getLogger(__name__)

PREDICTIONS_ROOT = "volumes/predictions"
"""Group that holds every ``train_<id>/predict_<n>`` prediction of a container."""
RUN_DIR = "run"
"""Folder inside a prediction group with its config, block markers, logs and sacred record."""

Triple = tuple[int, int, int]
_PREDICT_GROUP = re.compile(r"^predict_(\d+)$")


class EntryPlan(FrozenModel):
    """Geometry and outputs of one data-JSON region (everything a worker needs, as JSON)."""

    name: str
    """Entry name in the data JSON."""
    raw_store: str
    """Input zarr container."""
    raw_dataset: str
    """Raw dataset inside it."""
    raw_offset: Triple
    """First voxel of the raw dataset."""
    raw_shape: Triple
    """Shape of the raw dataset in voxels."""
    mask_dataset: str | None = None
    """Optional sample mask (same container); segmentation is 0 where it is 0."""
    mask_offset: Triple | None = None
    """First voxel of the mask dataset."""
    roi_offset: Triple
    """The region (data-JSON offset)."""
    roi_shape: Triple
    """The region's shape (data-JSON shape)."""
    output_offset: Triple
    """First voxel of the predicted region (the ROI, less the context rim unless padded)."""
    output_shape: Triple
    """Shape of the predicted region (= shape of every output dataset)."""
    input_shape: Triple
    """Raw block fed to the network."""
    output_block: Triple
    """Output block of the network (= daisy write block)."""
    context: Triple
    """Raw context per side, (input - output) / 2."""
    pad_context: bool
    """Whether blocks may read beyond the ROI (and constant grey beyond the data)."""
    voxel_size: tuple[float, float, float]
    """Voxel size in nm."""
    out_store: str
    """Output zarr container."""
    group: str
    """Prediction group inside ``out_store``."""
    chunk_shape: Triple
    """Chunks of the output datasets (divide ``output_block``)."""
    class_names: tuple[str, ...]
    """Name of each output channel."""

    @property
    def num_classes(self) -> int:
        """Output channels of the network."""
        return len(self.class_names)

    @property
    def group_dir(self) -> Path:
        """Folder of the prediction group."""
        return Path(self.out_store) / self.group

    @property
    def run_dir(self) -> Path:
        """Folder with the run's config, block markers and logs."""
        return self.group_dir / RUN_DIR

    @property
    def markers_dir(self) -> Path:
        """One empty file per finished block, named after its first voxel."""
        return self.run_dir / "blocks" / self.name


class WorkerJob(FrozenModel):
    """What a worker process needs to predict the blocks of one entry (stored as JSON)."""

    checkpoint: str
    """Checkpoint file."""
    model: ModelConfig
    """Architecture to build."""
    device: str = "cpu"
    """torch device."""
    threads: int | None = None
    """torch CPU threads (None: leave torch's setting)."""
    entry: EntryPlan
    """The region and its outputs."""
    checkpoint_sha256: str = Field("", pattern=r"^([0-9a-f]{64})?$")
    """SHA-256 of the checkpoint when the job was planned (workers verify it when set)."""


def train_group_path(train_id: int) -> str:
    """``volumes/predictions/train_<id:04d>``."""
    return f"{PREDICTIONS_ROOT}/train_{train_id:04d}"


def group_path(train_id: int, number: int) -> str:
    """``volumes/predictions/train_<id:04d>/predict_<n:04d>``."""
    return f"{train_group_path(train_id)}/predict_{number:04d}"


def default_chunk_shape(output_block: Sequence[int]) -> Triple:
    """Half the output block where it is even (55^3 for 110^3, as the original), else the block."""
    z, y, x = (b // 2 if b % 2 == 0 else b for b in output_block)
    return (z, y, x)


def check_chunk_shape(chunk_shape: Sequence[int], output_block: Sequence[int]) -> Triple:
    """Return ``chunk_shape`` if it divides the output block, else raise ConfigError."""
    if any(b % c for c, b in zip(chunk_shape, output_block, strict=True)):
        raise ConfigError(
            f"chunk_shape {list(chunk_shape)} must divide the output block {list(output_block)} so "
            "that no two workers write one chunk; use a divisor such as "
            f"{list(default_chunk_shape(output_block))}"
        )
    z, y, x = (int(c) for c in chunk_shape)
    return (z, y, x)


def output_region(
    roi_offset: Sequence[int], roi_shape: Sequence[int], context: Sequence[int], *, pad: bool
) -> tuple[Triple, Triple]:
    """The predicted region of an ROI: the ROI itself when padded, else the ROI less the rim."""
    if pad:
        o, s = tuple(roi_offset), tuple(roi_shape)
    else:
        o = tuple(a + c for a, c in zip(roi_offset, context, strict=True))
        s = tuple(a - 2 * c for a, c in zip(roi_shape, context, strict=True))
    return (o[0], o[1], o[2]), (s[0], s[1], s[2])


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


def _existing_numbers(store: Path, train_id: int) -> list[int]:
    folder = store / train_group_path(train_id)
    if not folder.is_dir():
        return []
    return [int(m.group(1)) for p in folder.iterdir() if (m := _PREDICT_GROUP.match(p.name))]


def claim_prediction_groups(stores: Sequence[Path], train_id: int) -> int:
    """Create an empty ``predict_<n>`` group in every store, for the lowest ``n`` free in all.

    ``os.mkdir`` is atomic, so two runs started at once never share a number; nothing existing
    is touched.
    """
    number = 1 + max((n for s in stores for n in _existing_numbers(s, train_id)), default=0)
    for _attempt in range(1000):
        created: list[Path] = []
        try:
            for store in stores:
                folder = store / group_path(train_id, number)
                folder.parent.mkdir(parents=True, exist_ok=True)
                os.mkdir(folder)
                created.append(folder)
        except FileExistsError:
            for folder in created:
                folder.rmdir()
            number += 1
            continue
        except OSError as err:
            for folder in created:
                folder.rmdir()
            if err.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                raise DataError(
                    f"cannot create a prediction in {store} ({err.strerror}); set `out` to a "
                    "writable zarr container"
                ) from err
            raise
        for folder in created:
            (folder / ".zgroup").write_text(json.dumps({"zarr_format": 2}) + "\n")
        return number
    raise DataError(f"could not claim a free predict_<n> group in {list(map(str, stores))}")
