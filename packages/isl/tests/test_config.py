"""Configuration: TOML loading, strictness, cross-field rules, CLI overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from isl.config import (
    DataConfig,
    DemoConfig,
    EvaluateConfig,
    PredictConfig,
    TrainConfig,
    load_config,
    save_config,
)
from isl.errors import ConfigError


def test_defaults_are_the_original_settings() -> None:
    """520 crops, 256 stride, 250 patches (4 per crop), batch 16, Adam 1e-4, flips/rotations."""
    config = TrainConfig(wells=("w",), out="run")
    assert config.data.crop_size == 520 and config.data.patch_stride == 256
    assert config.data.patch_size == 250 and config.data.patches_per_crop == 4
    assert config.batch_size == 16 and config.learning_rate == 1e-4
    assert config.data.flip_and_rotate and config.data.augment_noise_std == 0.0
    assert config.data.input_channels == ("BRIGHTFIELD", "PHASE_CONTRAST", "DIC")
    assert config.data.derived_channels == {"NEURITE_CONFOCAL": ("NFH_CONFOCAL", "MAP2_CONFOCAL")}
    assert config.model.num_z_values == 26 and len(config.model.target_channels) == 9


def test_toml_file_and_overrides_build_a_nested_config(tmp_path: Path) -> None:
    """Nested tables become sub-models; command-line overrides win over the file."""
    path = tmp_path / "train.toml"
    path.write_text(
        'wells = ["data/well_a"]\nout = "runs/a"\nsteps = 50\n'
        "[model]\nnum_z_values = 13\n"
        '[data]\ncrop_size = 600\ninput_channels = ["DIC"]\n'
    )
    config = load_config(TrainConfig, path, {"out": tmp_path / "other", "seed": 7})
    assert config.model.num_z_values == 13 and config.data.crop_size == 600
    assert config.data.input_channels == ("DIC",)
    assert config.out == tmp_path / "other" and config.seed == 7 and config.steps == 50


def test_misspelt_key_and_bad_values_name_the_file_and_field(tmp_path: Path) -> None:
    """extra='forbid': an unknown key fails; so do out-of-range values and broken TOML."""
    path = tmp_path / "train.toml"
    path.write_text('wells = ["w"]\nout = "r"\nbatchsize = 8\n')
    with pytest.raises(ConfigError, match=r"train\.toml.*batchsize"):
        load_config(TrainConfig, path)
    path.write_text('wells = ["w"]\nout = "r"\nbatch_size = 0\n')
    with pytest.raises(ConfigError, match="batch_size"):
        load_config(TrainConfig, path)
    path.write_text("wells = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(TrainConfig, path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(TrainConfig, tmp_path / "missing.toml")


def test_cross_field_rules_are_checked() -> None:
    """Crop smaller than patch, tile off the 16-grid, demo patch larger than its images."""
    with pytest.raises(ValidationError, match="crop_size"):
        DataConfig(crop_size=200, patch_size=250)
    with pytest.raises(ValidationError, match="250 \\+ 16k"):
        PredictConfig(checkpoint="c", wells=("w",), out="o", tile_size=300)
    with pytest.raises(ValidationError, match="image_size"):
        DemoConfig(out="d", patch_size=410, image_size=400)


def test_configs_are_frozen_and_round_trip_through_json(tmp_path: Path) -> None:
    """config.json written next to outputs reads back to an equal config."""
    config = EvaluateConfig(predictions=tmp_path / "p", out=tmp_path / "e", channels=("DAPI_CONFOCAL",))
    with pytest.raises(ValidationError):
        config.statistic = "mean"  # type: ignore[misc]
    path = save_config(config, tmp_path)
    assert EvaluateConfig.model_validate_json(path.read_text()) == config
