"""zarr datasets: format 2 on disk, geometry attributes, errors, and zarr 2 <-> zarr 3 exchange."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

from cellsight_shared import io
from cellsight_shared.errors import DataFileError
from cellsight_shared.io.zarr_store import ZARR_MAJOR


def test_write_read_round_trip_with_geometry(tmp_path, rng):
    """A volume written with offset/resolution reads back identical with the same geometry."""
    volume = rng.integers(0, 255, (20, 30, 40), dtype=np.uint8)
    path = io.write_zarr(tmp_path / "c.zarr", "volumes/raw", volume, offset=(40, 0, 80), resolution=(5, 5, 5))
    assert path == tmp_path / "c.zarr" / "volumes" / "raw"
    np.testing.assert_array_equal(io.read_zarr(tmp_path / "c.zarr", "volumes/raw"), volume)
    assert io.zarr_geometry(tmp_path / "c.zarr", "volumes/raw") == ((40.0, 0.0, 80.0), (5.0, 5.0, 5.0))


def test_format_2_metadata_and_funlib_attributes_on_disk(tmp_path, rng):
    """The store is zarr format 2 with gunpowder's and funlib's attribute names."""
    io.write_zarr(
        tmp_path / "c.zarr", "volumes/labels/mito", np.zeros((8, 8, 8), np.uint8), resolution=(5, 4, 4)
    )
    zarray = json.loads((tmp_path / "c.zarr/volumes/labels/mito/.zarray").read_text())
    assert zarray["zarr_format"] == 2
    for group in ("", "volumes", "volumes/labels"):
        assert json.loads((tmp_path / "c.zarr" / group / ".zgroup").read_text()) == {"zarr_format": 2}
    attrs = json.loads((tmp_path / "c.zarr/volumes/labels/mito/.zattrs").read_text())
    assert attrs["resolution"] == attrs["voxel_size"] == [5, 4, 4]
    assert attrs["offset"] == [0, 0, 0]
    assert attrs["axis_names"] == ["z", "y", "x"]
    assert attrs["units"] == ["nm", "nm", "nm"]


def test_channel_axes_get_channel_names(tmp_path):
    """Leading non-spatial axes are recorded as channels for funlib."""
    io.write_zarr(tmp_path / "p.zarr", "prob", np.zeros((3, 4, 4, 4), np.float32), resolution=(5, 5, 5))
    attrs = json.loads((tmp_path / "p.zarr/prob/.zattrs").read_text())
    assert attrs["axis_names"] == ["c^", "z", "y", "x"]
    assert attrs["types"] == ["channel", "space", "space", "space"]


def test_create_zarr_blockwise_fill_and_chunk_alignment(tmp_path):
    """create_zarr makes an empty chunked array that blocks can be written into independently."""
    array = io.create_zarr(tmp_path / "o.zarr", "seg", shape=(16, 16, 16), dtype=np.uint8, chunks=(8, 8, 8))
    array[0:8, 0:8, 0:8] = 3
    array[8:16, 8:16, 8:16] = 5
    data = io.read_zarr(tmp_path / "o.zarr", "seg")
    assert data.sum() == 3 * 512 + 5 * 512
    with pytest.raises(DataFileError, match="already holds 'seg'"):
        io.create_zarr(tmp_path / "o.zarr", "seg", shape=(4,), dtype=np.uint8)


def test_existing_dataset_is_kept_unless_overwrite(tmp_path):
    """write_zarr refuses to replace a dataset unless asked; with overwrite the new data wins."""
    io.write_zarr(tmp_path / "c.zarr", "raw", np.ones((4, 4), np.uint8))
    with pytest.raises(DataFileError, match="already holds 'raw'"):
        io.write_zarr(tmp_path / "c.zarr", "raw", np.zeros((4, 4), np.uint8))
    assert io.read_zarr(tmp_path / "c.zarr", "raw").sum() == 16
    io.write_zarr(tmp_path / "c.zarr", "raw", np.zeros((4, 4), np.uint8), overwrite=True)
    assert io.read_zarr(tmp_path / "c.zarr", "raw").sum() == 0
    assert not [p for p in (tmp_path / "c.zarr").iterdir() if p.name.startswith(".raw")]


def test_missing_dataset_lists_available_ones(tmp_path):
    """Opening a dataset that is not there names the store and lists what it holds."""
    io.write_zarr(tmp_path / "c.zarr", "volumes/raw", np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(DataFileError, match=r"no dataset 'volumes/mask'.*volumes/raw"):
        io.open_zarr(tmp_path / "c.zarr", "volumes/mask")
    with pytest.raises(DataFileError, match="does not exist"):
        io.open_zarr(tmp_path / "missing.zarr", "raw")


def test_corrupt_chunk_is_reported_with_the_dataset(tmp_path, rng):
    """A damaged chunk file raises DataFileError naming the dataset, not a codec traceback."""
    io.write_zarr(tmp_path / "c.zarr", "raw", rng.random((16, 16)), chunks=(8, 8))
    chunk = tmp_path / "c.zarr" / "raw" / "0.0"
    chunk.write_bytes(b"\x00garbage" * 3)
    with pytest.raises(DataFileError, match="chunk could not be read"):
        io.read_zarr(tmp_path / "c.zarr", "raw")


_READER = """
import json, sys
import numpy as np, zarr
arr = zarr.open_array(store=sys.argv[1], mode="r")
total = int(np.asarray(arr[...]).astype(np.int64).sum())
major = int(zarr.__version__.split(".")[0])
print(json.dumps({"major": major, "sum": total, "shape": list(arr.shape),
                  "resolution": dict(arr.attrs)["resolution"]}))
"""


def test_zarr3_written_store_reads_in_zarr2(tmp_path, rng):
    """A dataset written by this process is read by the other zarr major version.

    The nox ``shared`` session provides ``CELLSIGHT_OTHER_ZARR_PYTHON``: a Python whose zarr has
    the other major version (2.18 when this one is 3, and the reverse).
    """
    other = os.environ.get("CELLSIGHT_OTHER_ZARR_PYTHON")
    if not other:
        pytest.skip("CELLSIGHT_OTHER_ZARR_PYTHON not set (the nox shared session sets it)")
    volume = rng.integers(0, 255, (10, 12, 14), dtype=np.uint8)
    path = io.write_zarr(tmp_path / "x.zarr", "volumes/raw", volume, resolution=(8, 4, 4))
    result = subprocess.run([other, "-c", _READER, str(path)], capture_output=True, text=True, check=True)
    seen = json.loads(result.stdout)
    assert seen["major"] != ZARR_MAJOR
    assert seen["sum"] == int(volume.astype(np.int64).sum())
    assert seen["shape"] == [10, 12, 14]
    assert seen["resolution"] == [8, 4, 4]


def test_store_written_by_other_zarr_version_reads_here(tmp_path, rng):
    """A format-2 array written by the other zarr major version reads identically here."""
    other = os.environ.get("CELLSIGHT_OTHER_ZARR_PYTHON")
    if not other:
        pytest.skip("CELLSIGHT_OTHER_ZARR_PYTHON not set (the nox shared session sets it)")
    writer = (
        "import sys, numpy as np, zarr\n"
        "kw = {'zarr_format': 2} if int(zarr.__version__[0]) >= 3 else {}\n"
        "a = zarr.open_array(store=sys.argv[1], mode='w', shape=(6, 7), chunks=(3, 3), dtype='u2', **kw)\n"
        "a[...] = np.arange(42, dtype='u2').reshape(6, 7)\n"
        "a.attrs['resolution'] = [4, 4]\n"
    )
    subprocess.run([other, "-c", writer, str(tmp_path / "o.zarr" / "raw")], check=True)
    (tmp_path / "o.zarr" / ".zgroup").write_text('{"zarr_format": 2}')
    np.testing.assert_array_equal(io.read_zarr(tmp_path / "o.zarr", "raw"), np.arange(42).reshape(6, 7))
    assert io.zarr_geometry(tmp_path / "o.zarr", "raw") == ((0.0, 0.0), (4.0, 4.0))
