"""Round trips and error messages of the image readers and writers."""

from __future__ import annotations

import numpy as np
import pytest

from cellsight_shared import io
from cellsight_shared.errors import DataFileError, NonFiniteError
from cellsight_shared.testing import require_test_data


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff_round_trip_multipage_keeps_values_and_dtype(tmp_path, rng, dtype):
    """A (plane, row, column) stack written as TIFF reads back identical."""
    stack = (rng.random((5, 32, 40)) * 200).astype(dtype)
    path = io.write_tiff(tmp_path / "stack.tif", stack)
    back = io.read_tiff(path)
    assert back.dtype == stack.dtype
    np.testing.assert_array_equal(back, stack)


def test_ome_tiff_records_axes_and_physical_sizes(tmp_path, rng):
    """OME metadata written with the image is reported by read_tiff_metadata."""
    stack = rng.integers(0, 4000, (3, 2, 16, 16), dtype=np.uint16)
    path = io.write_tiff(
        tmp_path / "x.ome.tif",
        stack,
        axes="ZCYX",
        ome=True,
        metadata={"PhysicalSizeX": 0.65, "PhysicalSizeY": 0.65, "PhysicalSizeZ": 2.0},
    )
    meta = io.read_tiff_metadata(path)
    assert meta["is_ome"] is True
    assert meta["axes"] == "ZCYX"
    assert meta["shape"] == (3, 2, 16, 16)
    assert meta["physical_size"] == {"X": 0.65, "Y": 0.65, "Z": 2.0}
    np.testing.assert_array_equal(io.read_tiff(path), stack)


def test_uncompressed_tiff_is_memory_mapped(tmp_path, rng):
    """memmap=True on an uncompressed TIFF returns a np.memmap with the right content."""
    stack = rng.integers(0, 255, (4, 64, 64), dtype=np.uint8)
    path = io.write_tiff(tmp_path / "raw.tif", stack, compression=None)
    mapped = io.read_tiff(path, memmap=True)
    assert isinstance(mapped, np.memmap)
    np.testing.assert_array_equal(mapped[2], stack[2])


def test_compressed_tiff_memmap_falls_back_to_reading(tmp_path, rng):
    """A compressed TIFF cannot be mapped, so memmap=True still returns the data."""
    stack = rng.integers(0, 255, (2, 16, 16), dtype=np.uint8)
    path = io.write_tiff(tmp_path / "z.tif", stack)
    np.testing.assert_array_equal(io.read_tiff(path, memmap=True), stack)


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((20, 30), np.uint8), ((20, 30), np.uint16), ((20, 30, 3), np.uint8), ((20, 30, 4), np.uint8)],
)
def test_png_round_trip_keeps_bit_depth(tmp_path, rng, shape, dtype):
    """8-bit gray/RGB/RGBA and 16-bit gray PNGs read back bit-identical."""
    image = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    back = io.read_png(io.write_png(tmp_path / "im.png", image))
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, image)


def test_png_refuses_float_and_16bit_colour(tmp_path):
    """Writing PNG needs uint8/uint16 and 16 bits only in grayscale; each refusal says why."""
    with pytest.raises(ValueError, match="uint8 or uint16"):
        io.write_png(tmp_path / "f.png", np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="grayscale"):
        io.write_png(tmp_path / "c.png", np.zeros((4, 4, 3), np.uint16))


def test_real_isl_png_reads_as_16_bit(tmp_path):
    """A real ISL phase-contrast PNG reads as 1024x1024 uint16."""
    folder = require_test_data("isl", "condition_b_sample")
    path = next(p for p in sorted(folder.glob("*.png")) if "PHASE_CONTRAST" in p.name)
    image = io.read_image(path)
    assert image.shape == (1024, 1024)
    assert image.dtype == np.uint16
    assert image.max() > 255


def test_corrupt_png_names_the_file(tmp_path):
    """A truncated PNG raises DataFileError naming the file."""
    good = io.write_png(tmp_path / "good.png", np.full((64, 64), 7, np.uint8))
    bad = tmp_path / "bad.png"
    bad.write_bytes(good.read_bytes()[:40])
    with pytest.raises(DataFileError, match="bad.png"):
        io.read_image(bad)


def test_missing_file_error_names_the_path(tmp_path):
    """Reading a file that does not exist says which path was tried."""
    with pytest.raises(DataFileError, match="nope.tif does not exist"):
        io.read_image(tmp_path / "nope.tif")


def test_unknown_suffix_lists_supported_formats(tmp_path):
    """An unsupported suffix is refused with the list of supported ones."""
    path = tmp_path / "x.xyz"
    path.write_text("?")
    with pytest.raises(DataFileError, match=r"\.tif/\.tiff"):
        io.read_image(path)


def test_npz_round_trip_and_pickle_refused(tmp_path, rng):
    """NPZ keeps every array; a file holding pickled objects is refused, not unpickled."""
    arrays = {"a": rng.random((3, 4)), "b": np.arange(5)}
    back = io.read_npz(io.write_npz(tmp_path / "d.npz", arrays))
    assert set(back) == {"a", "b"}
    np.testing.assert_array_equal(back["a"], arrays["a"])
    evil = tmp_path / "evil.npz"
    np.savez(evil, obj=np.array([{"x": 1}], dtype=object))
    with pytest.raises(DataFileError, match="pickled"):
        io.read_npz(evil)
    with pytest.raises(ValueError, match="dtype object"):
        io.write_npz(tmp_path / "o.npz", {"o": np.array([None], dtype=object)})


def test_write_image_dispatches_and_npy_memmaps(tmp_path, rng):
    """write_image/read_image agree for .npy (memory-mapped on request) and single-array .npz."""
    image = rng.random((8, 9)).astype(np.float32)
    io.write_image(tmp_path / "a.npy", image)
    mapped = io.read_image(tmp_path / "a.npy", memmap=True)
    assert isinstance(mapped, np.memmap)
    np.testing.assert_array_equal(mapped, image)
    io.write_image(tmp_path / "b.npz", image)
    np.testing.assert_array_equal(io.read_image(tmp_path / "b.npz"), image)


def test_existing_output_is_not_overwritten(tmp_path):
    """Writing onto an existing file raises and leaves the old content in place."""
    path = io.write_png(tmp_path / "keep.png", np.full((4, 4), 9, np.uint8))
    with pytest.raises(DataFileError, match="already exists"):
        io.write_png(path, np.zeros((4, 4), np.uint8))
    assert io.read_png(path).max() == 9
    io.write_png(path, np.zeros((4, 4), np.uint8), overwrite=True)
    assert io.read_png(path).max() == 0


def test_failed_write_leaves_no_file_behind(tmp_path):
    """An exception inside atomic_write removes the temporary file and creates nothing."""
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), io.atomic_write(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_directories_when_asked(tmp_path):
    """A directory output (a zarr store) can be replaced as a whole with overwrite=True."""
    target = tmp_path / "store.zarr"
    for content in ("old", "new"):
        with io.atomic_write(target, overwrite=True) as tmp:
            tmp.mkdir()
            (tmp / "f").write_text(content)
    assert (target / "f").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.zarr"]


def test_json_round_trip_and_bad_json_position(tmp_path):
    """write_json handles numpy values; a broken JSON file reports line and column."""
    path = io.write_json(tmp_path / "c.json", {"a": np.float32(1.5), "b": np.arange(3)})
    assert io.read_json(path) == {"a": 1.5, "b": [0, 1, 2]}
    broken = tmp_path / "broken.json"
    broken.write_text('{"a": 1,\n "b": }')
    with pytest.raises(DataFileError, match=r"broken.json is not valid JSON \(line 2"):
        io.read_json(broken)


def test_check_finite_counts_nan_and_inf():
    """check_finite names the array and counts NaN and infinite values."""
    with pytest.raises(NonFiniteError, match="stack holds 2 NaN and 1 infinite"):
        io.check_finite(np.array([np.nan, np.nan, np.inf, 1.0]), name="stack")
    io.check_finite(np.arange(4), name="ints")  # integers cannot be NaN


def test_hdf5_round_trip_with_attrs(tmp_path, rng):
    """HDF5 datasets and their attributes round-trip; a missing dataset lists the present ones."""
    pytest.importorskip("h5py")
    data = rng.random((4, 5, 6)).astype(np.float32)
    path = io.write_hdf5(
        tmp_path / "v.h5", {"volumes/raw": data}, attrs={"volumes/raw": {"resolution": [5, 5, 5]}}
    )
    np.testing.assert_array_equal(io.read_hdf5(path, "volumes/raw"), data)
    with pytest.raises(DataFileError, match="volumes/raw"):
        io.read_hdf5(path, "labels")
