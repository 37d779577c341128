"""Training runs: never overwritten, resumable where they stopped, checkpoints loaded safely."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_train_config

from protloc.checkpoint import load_checkpoint
from protloc.errors import CheckpointError, ConfigError
from protloc.train import train


def test_resume_continues_and_matches_an_uninterrupted_run(synthetic_root, tmp_path):
    """2 epochs + resume to 3 equals 3 epochs in one go (same crops, same weights)."""
    kw = {"n_epochs": 2, "crop_size": 32, "crops_per_image": 1, "num_threads": 1}
    train(tiny_train_config(synthetic_root, tmp_path / "a", **kw))
    resumed = train(tiny_train_config(synthetic_root, tmp_path / "a", **{**kw, "n_epochs": 3}), resume=True)
    straight = train(tiny_train_config(synthetic_root, tmp_path / "b", **{**kw, "n_epochs": 3}))
    a = load_checkpoint(resumed / "checkpoints" / "latest.pt")
    b = load_checkpoint(straight / "checkpoints" / "latest.pt")
    assert a["epoch"] == b["epoch"] == 2 and len(a["history"]) == 3
    np.testing.assert_allclose(a["history"][-1]["mse"], b["history"][-1]["mse"], rtol=1e-4)
    for key, value in a["generator"].items():
        torch.testing.assert_close(value, b["generator"][key], rtol=1e-4, atol=1e-5)


def test_existing_run_folder_is_never_overwritten(synthetic_root, tmp_path):
    """A second train into the same folder fails before any work; resume needs latest.pt."""
    (tmp_path / "run").mkdir()
    with pytest.raises(ConfigError, match="already exists"):
        train(tiny_train_config(synthetic_root, tmp_path / "run", n_epochs=1))
    with pytest.raises(CheckpointError, match="cannot resume"):
        train(tiny_train_config(synthetic_root, tmp_path / "run", n_epochs=1), resume=True)


def test_crop_size_that_does_not_fit_the_network_is_a_config_error(synthetic_root, tmp_path):
    """The default U-Net pools by 4 four times, so crops must be multiples of 256 and fit the images."""
    from protloc.config import RegressionConfig

    with pytest.raises(ConfigError, match="exceeds the smallest training image side 64"):
        train(tiny_train_config(synthetic_root, tmp_path / "r", model=RegressionConfig(), crop_size=256))
    with pytest.raises(ConfigError, match="multiples of 4"):
        train(tiny_train_config(synthetic_root, tmp_path / "r2", crop_size=30))
