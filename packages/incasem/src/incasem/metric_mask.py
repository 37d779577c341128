"""Metric masks: the exclusion zone around label surfaces that F1 ignores (brief section 4).

For a binary label ``L``: ``zone = dilate(L, outwards) XOR erode(L, inwards)``, both with the
6-connected cross (scipy's default structuring element, an L1 ball per iteration), and the
metric mask is ``NOT zone`` stored as uint8 0/255 (0 = excluded). Erosion treats the outside of
the volume as background, so objects touching the volume border are eroded from it too, as in
the original ``60_create_metric_mask.py``. Blocks are read with ``max(inwards, outwards)`` voxels
of context (zero outside the volume), so the blockwise mask equals the whole-volume one.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from incasem.errors import DataError

if TYPE_CHECKING:
    from incasem.config.tools import MetricMaskConfig

__all__ = ["exclusion_zone", "metric_mask", "metric_mask_array"]

logger = logging.getLogger(__name__)


def exclusion_zone(labels: np.ndarray, *, inwards: int = 4, outwards: int = 4) -> np.ndarray:
    """Boolean band of ``inwards`` voxels inside and ``outwards`` outside every label surface."""
    from scipy import ndimage

    if inwards < 0 or outwards < 0:
        raise ValueError(f"inwards and outwards must be >= 0, got {inwards}, {outwards}")
    binary = np.asarray(labels) != 0
    # scipy treats iterations=0 as "until nothing changes", so 0 must mean "no operation" here.
    dilated = ndimage.binary_dilation(binary, iterations=outwards) if outwards else binary
    eroded = ndimage.binary_erosion(binary, iterations=inwards) if inwards else binary
    return dilated ^ eroded


def metric_mask_array(labels: np.ndarray, *, inwards: int = 4, outwards: int = 4) -> np.ndarray:
    """The metric mask of a whole label volume: uint8, 255 where counted, 0 in the zone."""
    zone = exclusion_zone(labels, inwards=inwards, outwards=outwards)
    return np.where(zone, 0, 255).astype(np.uint8)


def metric_mask_block(
    block: object, *, store: str, labels: str, out_dataset: str, inwards: int, outwards: int
) -> None:
    """Write the metric mask of one daisy block (read with context, zero outside the volume)."""
    from funlib.geometry import Roi

    from cellsight_shared.io import open_zarr
    from incasem.volume_blocks import block_slices

    source = open_zarr(store, labels)
    read_roi, write_roi = block.read_roi, block.write_roi  # type: ignore[attr-defined]
    inside = read_roi.intersect(Roi((0,) * 3, source.shape))
    data = np.zeros(tuple(read_roi.shape), dtype=bool)
    data[block_slices(inside, read_roi.begin)] = np.asarray(source[block_slices(inside)]) != 0
    mask = metric_mask_array(data, inwards=inwards, outwards=outwards)
    target = open_zarr(store, out_dataset, mode="r+")
    target[block_slices(write_roi)] = mask[block_slices(write_roi, read_roi.begin)]


def _count(store: Path, labels: str, out_dataset: str, slab: int) -> dict[str, int]:
    from cellsight_shared.io import open_zarr

    label_array = open_zarr(store, labels)
    mask_array = open_zarr(store, out_dataset)
    total = foreground = excluded = excluded_fg = 0
    for z in range(0, label_array.shape[0], slab):
        fg = np.asarray(label_array[z : z + slab]) != 0
        out = np.asarray(mask_array[z : z + slab]) == 0
        total += fg.size
        foreground += int(fg.sum())
        excluded += int(out.sum())
        excluded_fg += int((out & fg).sum())
    return {
        "voxels": total,
        "foreground_voxels": foreground,
        "excluded_voxels": excluded,
        "counted_foreground_voxels": foreground - excluded_fg,
        "counted_background_voxels": total - foreground - (excluded - excluded_fg),
    }


def metric_mask(config: MetricMaskConfig, *, progress: bool | None = None) -> dict[str, int]:
    """Write the metric mask of ``config.labels`` blockwise; return voxel counts.

    Counts: all voxels, foreground (organelle) voxels, voxels in the exclusion zone, and the
    foreground and background voxels that remain counted by F1. They are also stored in the
    output dataset's ``counts`` attribute. The dataset follows :mod:`incasem.dataset_status`
    (``running`` until the last block, resumed by a rerun); ``progress``: block progress bar
    (None: on a terminal).
    """
    from cellsight_shared.errors import CellsightSharedError
    from cellsight_shared.io import create_zarr, open_zarr, zarr_geometry
    from incasem.dataset_status import MARKERS_DIR, finish_output, prepare_output
    from incasem.volume_blocks import run_volume_blocks

    out_dataset = config.output_dataset
    try:
        source = open_zarr(config.zarr, config.labels)
        offset, resolution = zarr_geometry(config.zarr, config.labels)
    except CellsightSharedError as err:
        raise DataError(str(err)) from err
    if source.ndim != 3:
        raise DataError(f"{config.zarr / config.labels}: expected 3-D labels, got {source.shape}")
    block = (config.block_size,) * 3
    params = {
        "exclude_voxels_inwards": config.inwards,
        "exclude_voxels_outwards": config.outwards,
        "labels": config.labels,
    }

    def create(attrs: dict) -> None:
        try:
            create_zarr(
                config.zarr,
                out_dataset,
                shape=source.shape,
                dtype=np.uint8,
                chunks=block,
                offset=offset,
                resolution=resolution,
                attrs={**params, **attrs},
            )
        except CellsightSharedError as err:
            raise DataError(str(err)) from err

    prepare_output(
        config.zarr,
        out_dataset,
        command="metric-mask",
        settings={**params, "shape": list(source.shape), "block_size": config.block_size},
        overwrite=config.overwrite,
        create=create,
    )
    process = functools.partial(
        metric_mask_block,
        store=str(config.zarr),
        labels=config.labels,
        out_dataset=out_dataset,
        inwards=config.inwards,
        outwards=config.outwards,
    )
    total = run_volume_blocks(
        f"metric-mask-{Path(config.zarr).name}-{out_dataset}".replace("/", "_"),
        process,
        shape=source.shape,
        block_shape=block,
        markers=Path(config.zarr) / out_dataset / MARKERS_DIR,
        context=max(config.inwards, config.outwards),
        workers=config.workers,
        progress=progress,
        desc="metric-mask",
    )
    counts = _count(Path(config.zarr), config.labels, out_dataset, config.block_size)
    finish_output(config.zarr, out_dataset, total_blocks=total, extra={"counts": counts})
    logger.info("metric mask %s: %s", out_dataset, counts)
    return counts
