"""Configs reject unknown keys and bad values with the file named; TOML and flags combine."""

import pytest

from pairedinpaint.config import ExtractConfig, ModelConfig, TrainConfig, load_config
from pairedinpaint.errors import ConfigError


def test_toml_values_and_overrides_combine(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text('out = "run"\nepochs = 3\n[data]\nroot = "cells"\n')
    config = load_config(TrainConfig, path, {"batch_size": 8, "data.layout": "human", "seed": None})
    assert (config.epochs, config.batch_size, config.data.layout) == (3, 8, "human")
    assert (config.learning_rate, config.beta_1, config.epsilon) == (1e-4, 0.5, 1e-8)


def test_unknown_key_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('out = "run"\nepoch = 3\n[data]\nroot = "x"\n')
    with pytest.raises(ConfigError, match=r"(?s)bad.toml.*epoch"):
        load_config(TrainConfig, path, {})


def test_bad_layers_and_sizes_are_refused():
    with pytest.raises(ValueError, match="layers must be"):
        ExtractConfig(data={"root": "x"}, out="o", layers=("conv9_1",))
    with pytest.raises(ValueError, match="divisible by 4"):
        ModelConfig(size=30)
    with pytest.raises(ConfigError, match="organism"):
        ModelConfig.for_organism("mouse")
