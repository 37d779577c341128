"""HDF5 datasets through h5py (the optional extra ``cellsight-shared[hdf5]``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from cellsight_shared.errors import DataFileError
from cellsight_shared.io.atomic import atomic_write

__all__ = ["read_hdf5", "write_hdf5"]


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as err:  # optional dependency
        raise DataFileError(
            "HDF5 support needs h5py: pip install 'cellsight-shared[hdf5]' (or pip install h5py)."
        ) from err
    return h5py


def read_hdf5(path: str | os.PathLike[str], dataset: str) -> np.ndarray:
    """Read one dataset of an HDF5 file into memory."""
    h5py = _h5py()
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path} does not exist; check the path.")
    try:
        with h5py.File(path, "r") as handle:
            if dataset not in handle:
                names: list[str] = []
                handle.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
                raise DataFileError(
                    f"{path} has no dataset {dataset!r}; it holds: {', '.join(names) or 'none'}."
                )
            return np.asarray(handle[dataset])
    except OSError as err:
        raise DataFileError(f"{path} is not a readable HDF5 file ({err}).") from err


def write_hdf5(
    path: str | os.PathLike[str],
    datasets: dict[str, np.ndarray],
    *,
    attrs: dict[str, dict[str, Any]] | None = None,
    compression: str | None = "gzip",
    overwrite: bool = False,
) -> Path:
    """Write a new HDF5 file holding ``datasets`` (name -> array) atomically."""
    h5py = _h5py()
    target = Path(path)
    with atomic_write(target, overwrite=overwrite) as tmp, h5py.File(tmp, "w") as handle:
        for name, array in datasets.items():
            ds = handle.create_dataset(name, data=np.asarray(array), compression=compression)
            for key, value in (attrs or {}).get(name, {}).items():
                ds.attrs[key] = value
    return target
