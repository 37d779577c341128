"""Reading and writing the file formats cellsight uses, with atomic writes and clear errors.

Axis order is the file's: (row, column) for 2-D images, (plane, row, column) for stacks and
(z, y, x) for volumes.
"""

from cellsight_shared.io.atomic import atomic_write, check_finite, ensure_absent, read_json, write_json
from cellsight_shared.io.hdf5 import read_hdf5, write_hdf5
from cellsight_shared.io.images import (
    read_image,
    read_npz,
    read_png,
    read_tiff,
    read_tiff_metadata,
    write_image,
    write_npz,
    write_png,
    write_tiff,
)
from cellsight_shared.io.zarr_store import (
    create_zarr,
    geometry_attrs,
    open_zarr,
    read_zarr,
    write_zarr,
    zarr_geometry,
)

__all__ = [
    "atomic_write",
    "check_finite",
    "create_zarr",
    "ensure_absent",
    "geometry_attrs",
    "open_zarr",
    "read_hdf5",
    "read_image",
    "read_json",
    "read_npz",
    "read_png",
    "read_tiff",
    "read_tiff_metadata",
    "read_zarr",
    "write_hdf5",
    "write_image",
    "write_json",
    "write_npz",
    "write_png",
    "write_tiff",
    "write_zarr",
    "zarr_geometry",
]
