"""TIFF sequences <-> zarr: numeric section order, geometry attributes, refusals, export."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from incasem.config.tools import ConvertConfig, ExportTiffConfig
from incasem.convert import convert, export_tiff, list_sections, to_uint8_for_viewing
from incasem.errors import ConfigError, DataError


def _write_sections(folder, volume, name="slice_{}.tif"):
    folder.mkdir()
    for z, section in enumerate(volume):
        tifffile.imwrite(folder / name.format(z), section)


def test_sections_sort_by_number_not_by_name(tmp_path):
    folder = tmp_path / "tifs"
    folder.mkdir()
    for z in (10, 9, 11, 8):
        tifffile.imwrite(folder / f"cell2_s{z}.tif", np.zeros((2, 2), np.uint8))
    assert [p.name for p in list_sections(folder)] == [
        "cell2_s8.tif",
        "cell2_s9.tif",
        "cell2_s10.tif",
        "cell2_s11.tif",
    ]


def test_a_missing_section_is_reported(tmp_path):
    folder = tmp_path / "tifs"
    folder.mkdir()
    for z in (0, 1, 3):
        tifffile.imwrite(folder / f"s_{z}.tif", np.zeros((2, 2), np.uint8))
    with pytest.raises(DataError, match="sections 2 are missing"):
        list_sections(folder)


def test_invalid_pattern_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        list_sections(tmp_path, "(")


def test_tiff_sequence_round_trips_through_zarr(tmp_path, rng):
    from cellsight_shared.io import read_zarr, zarr_geometry

    volume = rng.integers(0, 256, size=(13, 20, 17), dtype=np.uint8)
    _write_sections(tmp_path / "tifs", volume)
    config = ConvertConfig(
        input=tmp_path / "tifs",
        output=tmp_path / "c.zarr",
        chunks=(4, 8, 8),
        resolution=(4, 4, 4),
        offset=(40, 0, 8),
        workers=2,
    )
    convert(config)
    np.testing.assert_array_equal(read_zarr(tmp_path / "c.zarr", "volumes/raw"), volume)
    assert zarr_geometry(tmp_path / "c.zarr", "volumes/raw") == ((40, 0, 8), (4, 4, 4))
    back = ConvertConfig(input=tmp_path / "c.zarr", output=tmp_path / "back")
    convert(back)
    files = sorted((tmp_path / "back").iterdir())
    assert len(files) == 13 and files[0].name == "section_0000.tif"
    np.testing.assert_array_equal(np.stack([tifffile.imread(f) for f in files]), volume)


def test_stack_with_dtype_and_inversion(tmp_path):
    from cellsight_shared.io import read_zarr

    volume = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    tifffile.imwrite(tmp_path / "stack.tif", volume)
    convert(ConvertConfig(input=tmp_path / "stack.tif", output=tmp_path / "c.zarr", invert=True))
    np.testing.assert_array_equal(read_zarr(tmp_path / "c.zarr", "volumes/raw"), 255 - volume)


def test_values_that_do_not_fit_the_dtype_are_refused(tmp_path):
    tifffile.imwrite(tmp_path / "stack.tif", np.full((2, 3, 4), 300, np.uint16))
    with pytest.raises(DataError, match="do not fit uint8"):
        convert(ConvertConfig(input=tmp_path / "stack.tif", output=tmp_path / "c.zarr", dtype="uint8"))
    assert not (tmp_path / "c.zarr").exists()  # nothing half-written


def test_unaligned_offset_is_refused(tmp_path):
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((2, 3, 4), np.uint8))
    with pytest.raises(ConfigError, match="not a multiple of the resolution"):
        convert(ConvertConfig(input=tmp_path / "stack.tif", output=tmp_path / "c.zarr", offset=(3, 0, 0)))


def test_existing_dataset_is_not_overwritten(tmp_path):
    from cellsight_shared.io import read_zarr

    tifffile.imwrite(tmp_path / "a.tif", np.zeros((2, 3, 4), np.uint8))
    tifffile.imwrite(tmp_path / "b.tif", np.ones((2, 3, 4), np.uint8))
    convert(ConvertConfig(input=tmp_path / "a.tif", output=tmp_path / "c.zarr"))
    with pytest.raises(DataError, match="--overwrite"):
        convert(ConvertConfig(input=tmp_path / "b.tif", output=tmp_path / "c.zarr"))
    assert read_zarr(tmp_path / "c.zarr", "volumes/raw").max() == 0
    convert(ConvertConfig(input=tmp_path / "b.tif", output=tmp_path / "c.zarr", overwrite=True))
    assert read_zarr(tmp_path / "c.zarr", "volumes/raw").min() == 1


def test_viewing_conversion_rules():
    labels = np.array([0, 1, 70000], dtype=np.uint32)
    assert to_uint8_for_viewing(labels).tolist() == [0, 255, 255]
    assert to_uint8_for_viewing(np.array([0.0, 0.5, 1.0], np.float32)).tolist() == [0, 128, 255]
    with pytest.raises(DataError, match=r"not probabilities in \[0, 1\]"):
        to_uint8_for_viewing(np.array([2.0]))


def test_export_tiff_writes_one_folder_per_dataset(em_zarr, tmp_path):
    folders = export_tiff(
        ExportTiffConfig(
            zarr=em_zarr, datasets=["volumes/labels/mito", "volumes/raw"], out=tmp_path / "tiffs"
        )
    )
    assert [f.name for f in folders] == ["volumes_labels_mito", "volumes_raw"]
    sections = sorted(folders[0].iterdir())
    assert len(sections) == 64
    assert set(np.unique(tifffile.imread(sections[32]))) <= {0, 1}
    with pytest.raises(DataError, match="already exists"):
        export_tiff(ExportTiffConfig(zarr=em_zarr, datasets=["volumes/raw"], out=tmp_path / "tiffs"))
