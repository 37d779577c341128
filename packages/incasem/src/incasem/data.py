"""Numpy-level reading of data-JSON regions: raw with context, merged labels and masks.

The gunpowder pipeline (``pipeline.py``) streams random blocks for training; validation, the
demo and the learning test read whole (small) regions with :func:`read_region`, which applies
the same rules: labels binarised then multiplied by their class id (voxels claimed twice become
background), the sample mask binarised (all ones without one), metric masks binarised and ANDed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from incasem.config.data import DataEntry, resolve_file
from incasem.errors import DataError

__all__ = ["Region", "class_names", "merge_labels", "read_dataset_box", "read_region"]


@dataclass(frozen=True)
class Region:
    """One data-JSON region in memory (z, y, x).

    ``raw`` covers the ROI grown by ``context`` voxels per side; the other arrays cover the ROI.
    """

    raw: np.ndarray
    labels: np.ndarray
    mask: np.ndarray
    metric_mask: np.ndarray
    context: tuple[int, int, int]


def read_dataset_box(
    store: Path, dataset: str, offset: Sequence[int], shape: Sequence[int], *, fill: int = 0
) -> np.ndarray:
    """Read the voxel box ``offset, shape`` (absolute voxels) of a dataset; ``fill`` outside it.

    A chunk that cannot be decoded raises :class:`DataError` naming the dataset.
    """
    from cellsight_shared.errors import CellsightSharedError
    from cellsight_shared.io import open_zarr, zarr_geometry

    try:
        array = open_zarr(store, dataset)
        ds_offset_nm, resolution = zarr_geometry(store, dataset)
    except CellsightSharedError as err:
        raise DataError(str(err)) from err
    ds_offset = [round(o / r) for o, r in zip(ds_offset_nm, resolution, strict=True)]
    out = np.full(tuple(shape), fill, dtype=array.dtype)
    src, dst = [], []
    for o, s, d, n in zip(offset, shape, ds_offset, array.shape, strict=True):
        lo, hi = max(o, d), min(o + s, d + n)
        if hi <= lo:
            return out
        src.append(slice(lo - d, hi - d))
        dst.append(slice(lo - o, hi - o))
    try:
        out[tuple(dst)] = array[tuple(src)]
    except Exception as err:  # numcodecs/zarr raise many types for a damaged chunk
        raise DataError(
            f"{store / dataset}: a chunk could not be read ({type(err).__name__}: {err}); the "
            "dataset is damaged: rewrite it from its source (incasem convert)"
        ) from err
    return out


def merge_labels(binary_by_class: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
    """Sum of ``(label != 0) * class_id``; voxels claimed by two labels become 0 (uint32)."""
    merged: np.ndarray | None = None
    claims: np.ndarray | None = None
    for array, class_id in binary_by_class:
        binary = np.asarray(array) != 0
        if merged is None:
            merged = np.zeros(binary.shape, dtype=np.uint32)
            claims = np.zeros(binary.shape, dtype=np.uint8)
        merged += binary.astype(np.uint32) * np.uint32(class_id)
        claims += binary
    if merged is None:
        raise ValueError("merge_labels needs at least one label array")
    merged[claims > 1] = 0
    return merged


def read_region(
    entry: DataEntry,
    *,
    data_dir: Path | None = None,
    json_path: Path | None = None,
    context: int | Sequence[int] = 0,
    raw_fill: int = 0,
) -> Region:
    """Read one entry's ROI (and ``context`` voxels of raw around it) into memory."""
    store = resolve_file(entry, data_dir=data_dir, json_path=json_path)
    ctx = (context,) * 3 if isinstance(context, int) else tuple(context)
    raw = read_dataset_box(
        store,
        entry.raw,
        [o - c for o, c in zip(entry.offset, ctx, strict=True)],
        [s + 2 * c for s, c in zip(entry.shape, ctx, strict=True)],
        fill=raw_fill,
    )
    shape = tuple(entry.shape)
    if entry.labels:
        labels = merge_labels(
            [
                (read_dataset_box(store, ds, entry.offset, shape), class_id)
                for ds, class_id in entry.labels.items()
            ]
        )
    else:
        labels = np.zeros(shape, dtype=np.uint32)
    mask = np.ones(shape, dtype=bool)
    if entry.mask:
        mask = read_dataset_box(store, entry.mask, entry.offset, shape) != 0
    metric = np.ones(shape, dtype=bool)
    for ds in entry.metric_masks:
        metric &= read_dataset_box(store, ds, entry.offset, shape) != 0
    return Region(raw=raw, labels=labels, mask=mask, metric_mask=metric, context=ctx)  # type: ignore[arg-type]


def class_names(entries: Sequence[DataEntry]) -> list[str]:
    """Class names by id: ``background``, then each label dataset's last path component."""
    names: dict[int, str] = {}
    for entry in entries:
        for dataset, class_id in entry.labels.items():
            names.setdefault(class_id, dataset.rstrip("/").rsplit("/", 1)[-1])
    return ["background"] + [names.get(i, f"class_{i}") for i in range(1, max(names, default=0) + 1)]
