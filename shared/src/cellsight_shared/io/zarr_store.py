"""Zarr arrays in zarr format 2, readable by zarr 2.18 (gunpowder) and zarr 3 alike.

A dataset is addressed as ``(store, dataset)``: ``store`` is a directory such as ``cell.zarr``
and ``dataset`` a slash path inside it such as ``volumes/raw``. Geometry lives in the array's
attributes in world units (nm), axis order (z, y, x): ``offset`` and ``resolution`` (gunpowder's
names) and ``voxel_size``/``axis_names``/``units``/``types`` (funlib.persistence's names).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cellsight_shared.errors import DataFileError, InvalidArgumentError

__all__ = [
    "ZARR_MAJOR",
    "create_zarr",
    "geometry_attrs",
    "open_zarr",
    "read_zarr",
    "write_zarr",
    "zarr_geometry",
]


def _zarr_major() -> int:
    import zarr

    return int(zarr.__version__.split(".")[0])


ZARR_MAJOR = _zarr_major()


def geometry_attrs(
    ndim: int,
    *,
    offset: Sequence[float] | None,
    resolution: Sequence[float] | None,
    units: str = "nm",
) -> dict[str, Any]:
    """Attributes that both gunpowder and funlib.persistence read for an ``ndim`` array.

    Leading axes beyond the spatial ones (as many as ``resolution`` has entries) are channels.
    """
    if resolution is None and offset is None:
        return {}
    n_spatial = len(resolution if resolution is not None else offset)  # type: ignore[arg-type]
    if n_spatial > ndim:
        raise InvalidArgumentError(f"{n_spatial} spatial axes given for a {ndim}-D array")
    resolution = [float(r) for r in (resolution if resolution is not None else [1] * n_spatial)]
    offset = [float(o) for o in (offset if offset is not None else [0] * n_spatial)]
    if len(offset) != len(resolution):
        raise InvalidArgumentError(f"offset {offset} and resolution {resolution} differ in length")
    spatial_names = ["z", "y", "x"][-n_spatial:] if n_spatial <= 3 else [f"d{i}" for i in range(n_spatial)]
    n_channel = ndim - n_spatial
    channel_names = ["c^"] if n_channel == 1 else [f"c{i}^" for i in range(n_channel)]
    as_int = [int(v) if float(v).is_integer() else v for v in resolution]
    off_int = [int(v) if float(v).is_integer() else v for v in offset]
    return {
        "offset": off_int,
        "resolution": as_int,
        "voxel_size": as_int,
        "axis_names": channel_names + spatial_names,
        "units": [units] * n_spatial,
        "types": ["channel"] * n_channel + ["space"] * n_spatial,
    }


def _dataset_path(store: str | os.PathLike[str], dataset: str) -> Path:
    dataset = dataset.strip("/")
    if not dataset or ".." in dataset.split("/"):
        raise InvalidArgumentError(f"invalid dataset name {dataset!r}")
    return Path(store) / dataset


def _ensure_groups(store: Path, dataset: str) -> None:
    """Write format-2 ``.zgroup`` files for the store root and every parent group of ``dataset``."""
    parts = dataset.strip("/").split("/")[:-1]
    group = store
    for part in [None, *parts]:
        if part is not None:
            group = group / part
        group.mkdir(parents=True, exist_ok=True)
        zgroup = group / ".zgroup"
        if (group / ".zarray").exists():
            raise DataFileError(f"{group} is an array, so it cannot hold {dataset!r}")
        if not zgroup.exists():
            zgroup.write_text(json.dumps({"zarr_format": 2}) + "\n")


def _open_new_array(path: Path, *, shape, chunks, dtype, fill_value) -> Any:
    import zarr

    kwargs: dict[str, Any] = {
        "mode": "w-",
        "shape": tuple(int(s) for s in shape),
        "chunks": tuple(int(c) for c in chunks),
        "dtype": np.dtype(dtype),
        "fill_value": fill_value,
    }
    if ZARR_MAJOR >= 3:
        kwargs["zarr_format"] = 2
    return zarr.open_array(store=str(path), **kwargs)


def _default_chunks(shape: Sequence[int], itemsize: int) -> tuple[int, ...]:
    # About 1-2 MiB per chunk, cubic in the trailing (spatial) axes.
    target = max(1, (1 << 21) // max(itemsize, 1))
    chunks = [1] * len(shape)
    side = max(1, int(round(target ** (1 / max(1, min(3, len(shape)))))))
    for axis in range(len(shape) - 1, max(-1, len(shape) - 4), -1):
        chunks[axis] = min(int(shape[axis]), side)
    return tuple(max(1, c) for c in chunks)


def create_zarr(
    store: str | os.PathLike[str],
    dataset: str,
    *,
    shape: Sequence[int],
    dtype: Any,
    chunks: Sequence[int] | None = None,
    offset: Sequence[float] | None = None,
    resolution: Sequence[float] | None = None,
    fill_value: Any = 0,
    attrs: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Any:
    """Create an empty format-2 zarr array to be filled blockwise, and return it opened for writing.

    Unlike :func:`write_zarr` this is not atomic (blocks arrive over time); it refuses to replace
    an existing dataset unless ``overwrite`` is true.
    """
    store = Path(store)
    path = _dataset_path(store, dataset)
    if path.exists():
        if not overwrite:
            raise DataFileError(
                f"{store} already holds {dataset!r}; choose another dataset name or remove it first."
            )
        shutil.rmtree(path)
    _ensure_groups(store, dataset)
    chunks = tuple(chunks) if chunks is not None else _default_chunks(shape, np.dtype(dtype).itemsize)
    array = _open_new_array(path, shape=shape, chunks=chunks, dtype=dtype, fill_value=fill_value)
    all_attrs = geometry_attrs(len(shape), offset=offset, resolution=resolution)
    all_attrs.update(attrs or {})
    if all_attrs:
        array.attrs.update(all_attrs)
    return array


def write_zarr(
    store: str | os.PathLike[str],
    dataset: str,
    array: np.ndarray,
    *,
    offset: Sequence[float] | None = None,
    resolution: Sequence[float] | None = None,
    chunks: Sequence[int] | None = None,
    attrs: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``array`` as ``store/dataset`` (zarr format 2) atomically and return its path.

    The array is written under a temporary name inside its parent group and renamed into place,
    so readers never see a half-written dataset.
    """
    array = np.asarray(array)
    store = Path(store)
    path = _dataset_path(store, dataset)
    if path.exists() and not overwrite:
        raise DataFileError(
            f"{store} already holds {dataset!r}; choose another dataset name or pass overwrite=True."
        )
    _ensure_groups(store, dataset)
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    try:
        chunks = tuple(chunks) if chunks is not None else _default_chunks(array.shape, array.dtype.itemsize)
        out = _open_new_array(tmp, shape=array.shape, chunks=chunks, dtype=array.dtype, fill_value=0)
        out[...] = array
        all_attrs = geometry_attrs(array.ndim, offset=offset, resolution=resolution)
        all_attrs.update(attrs or {})
        if all_attrs:
            out.attrs.update(all_attrs)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def open_zarr(store: str | os.PathLike[str], dataset: str, *, mode: str = "r") -> Any:
    """Open ``store/dataset`` as a zarr array (lazy), with errors that name what is missing."""
    import zarr

    store = Path(store)
    if not store.exists():
        raise DataFileError(f"zarr store {store} does not exist; check the path.")
    path = _dataset_path(store, dataset)
    if not (path / ".zarray").exists() and not (path / "zarr.json").exists():
        available = _list_arrays(store)
        raise DataFileError(
            f"{store} has no dataset {dataset!r}. Available datasets: "
            f"{', '.join(available) if available else 'none'}."
        )
    try:
        return zarr.open_array(store=str(path), mode=mode)
    except Exception as err:  # zarr raises many types for damaged metadata
        raise DataFileError(f"{path} is not a readable zarr array ({err}); is its metadata corrupt?") from err


def _list_arrays(store: Path) -> list[str]:
    found = []
    for meta in sorted(store.rglob(".zarray")) + sorted(store.rglob("zarr.json")):
        rel = meta.parent.relative_to(store).as_posix()
        if meta.name == ".zarray" or '"node_type": "array"' in meta.read_text():
            found.append(rel)
    return found


def read_zarr(
    store: str | os.PathLike[str], dataset: str, *, region: tuple[slice, ...] | None = None
) -> np.ndarray:
    """Read ``store/dataset`` (or a ``region`` of it, in voxels) into memory.

    A chunk that cannot be decoded raises DataFileError naming the dataset.
    """
    array = open_zarr(store, dataset)
    try:
        return np.asarray(array[region if region is not None else ...])
    except Exception as err:
        raise DataFileError(
            f"{Path(store) / dataset}: a chunk could not be read ({type(err).__name__}: {err}); "
            "the store may be corrupt: rewrite the dataset from its source."
        ) from err


def zarr_geometry(store: str | os.PathLike[str], dataset: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Return ``(offset, resolution)`` in world units from a dataset's attributes.

    Reads gunpowder's ``offset``/``resolution`` or funlib's ``voxel_size``; without any, the offset
    is zero and the resolution one per spatial axis (all axes spatial).
    """
    array = open_zarr(store, dataset)
    attrs = dict(array.attrs)
    resolution = attrs.get("resolution", attrs.get("voxel_size"))
    if resolution is None:
        resolution = [1] * array.ndim
    offset = attrs.get("offset", [0] * len(resolution))
    if len(offset) != len(resolution):
        raise DataFileError(
            f"{Path(store) / dataset}: attribute offset {offset} and resolution {resolution} differ in "
            "length; fix the attributes."
        )
    return tuple(float(o) for o in offset), tuple(float(r) for r in resolution)
