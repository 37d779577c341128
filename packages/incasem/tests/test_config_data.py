"""The data-JSON contract: valid entries load; each kind of bad input names file, field and fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import entry

from incasem.config.data import CONTEXT_VOXELS, DataConfig, load_data_config
from incasem.errors import ConfigError


def test_valid_entry_loads_with_its_geometry(em_zarr, write_data_json):
    path = write_data_json({"train": entry(em_zarr), "val": entry(em_zarr, offset=(11, 11, 11))})
    config = load_data_config(path, context=9)
    assert list(config.entries) == ["train", "val"]
    assert config.voxel_size == (5.0, 5.0, 5.0)
    assert config.num_classes == 2
    assert config.entries["train"].roi_nm() == ((50, 50, 50), (220, 220, 220))


def test_relative_file_is_resolved_beside_the_json(em_zarr, tmp_path, write_data_json):
    local = tmp_path / "cell.zarr"
    shutil.copytree(em_zarr, local)
    path = write_data_json({"a": entry(Path("cell.zarr"))})
    assert load_data_config(path, context=9).entries["a"].file == "cell.zarr"


def test_roi_outside_the_volume_is_rejected(em_zarr, write_data_json):
    path = write_data_json({"far": entry(em_zarr, offset=(40, 10, 10), shape=(44, 44, 44))})
    with pytest.raises(ConfigError, match=r"data.json.*'far'.*offset/shape.*not inside") as info:
        load_data_config(path, context=0)
    assert "move or shrink the ROI" in str(info.value)


def test_missing_context_is_rejected(em_zarr, write_data_json):
    path = write_data_json({"edge": entry(em_zarr, offset=(0, 10, 10), shape=(40, 40, 40))})
    load_data_config(path, context=0)  # fine without context
    with pytest.raises(ConfigError, match=f"{CONTEXT_VOXELS} voxels of raw context"):
        load_data_config(path)


def test_roi_smaller_than_the_network_block_is_rejected(em_zarr, write_data_json):
    path = write_data_json({"small": entry(em_zarr, shape=(20, 44, 44))})
    with pytest.raises(ConfigError, match=r"'shape'.*smaller than.*\[36, 36, 36\]"):
        load_data_config(path, context=0, min_shape=(36, 36, 36))


def test_missing_dataset_lists_the_available_ones(em_zarr, write_data_json):
    path = write_data_json({"a": entry(em_zarr, raw="volumes/raw_equalized_0.05")})
    with pytest.raises(ConfigError, match=r"'raw'.*no dataset 'volumes/raw_equalized_0.05'") as info:
        load_data_config(path, context=0)
    assert "volumes/raw" in str(info.value)


def test_missing_container_is_rejected(tmp_path, write_data_json):
    path = write_data_json({"a": entry(tmp_path / "nowhere.zarr")})
    with pytest.raises(ConfigError, match=r"'file'.*does not exist"):
        load_data_config(path, context=0)


def test_voxel_size_mismatch_with_the_zarr_is_rejected(em_zarr, write_data_json):
    path = write_data_json({"a": entry(em_zarr, voxel_size=[4, 4, 4])})
    with pytest.raises(ConfigError, match=r"voxel size \[5.0, 5.0, 5.0\] nm but the entry's"):
        load_data_config(path, context=0)


def test_voxel_sizes_must_agree_between_entries(em_zarr, write_data_json):
    path = write_data_json({"a": entry(em_zarr), "b": entry(em_zarr, voxel_size=[4, 4, 4])})
    with pytest.raises(ConfigError, match="voxel_size differs between entries"):
        load_data_config(path, check_zarr=False)


def test_class_ids_must_be_contiguous(em_zarr, write_data_json):
    labels = {"volumes/labels/mito": 1, "volumes/labels/er": 3}
    path = write_data_json({"a": entry(em_zarr, labels=labels)})
    with pytest.raises(ConfigError, match=r"entry a\.labels.*1\.\.K without gaps, got \[1, 3\]"):
        load_data_config(path, check_zarr=False)


def test_unknown_field_is_rejected(em_zarr, write_data_json):
    path = write_data_json({"a": entry(em_zarr, resolution=[5, 5, 5])})
    with pytest.raises(ConfigError, match=r"a.resolution.*Extra inputs are not permitted"):
        load_data_config(path, check_zarr=False)


def test_trailing_comma_names_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"a": {"file": "x.zarr",}}')
    with pytest.raises(ConfigError, match=r"bad.json is not valid JSON at line 1, column 25"):
        load_data_config(path)


def test_training_requires_labels(em_zarr, write_data_json):
    path = write_data_json({"a": entry(em_zarr, labels={})})
    assert load_data_config(path, context=0).num_classes == 1
    with pytest.raises(ConfigError, match=r"'labels'.*need labels"):
        load_data_config(path, context=0, require_labels=True)


def test_data_config_validates_without_files():
    config = DataConfig.model_validate(
        {
            "x": {
                "file": "a.zarr",
                "offset": [0, 0, 0],
                "shape": [1, 2, 3],
                "voxel_size": [4, 4, 4],
                "raw": "volumes/raw",
                "labels": {"l/a": 1, "l/b": 2},
            }
        }
    )
    assert config.num_classes == 3
    assert config.entries["x"].metric_masks == []
