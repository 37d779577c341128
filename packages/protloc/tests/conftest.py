"""Shared fixtures: a synthetic OpenCell-layout dataset and one small trained regression run."""

from __future__ import annotations

from pathlib import Path

import pytest

from protloc.config import DataConfig, GanConfig, RegressionConfig, TrainConfig

TINY_REGRESSION = RegressionConfig(depth=3, wf=3, down_factor=2)
TINY_GAN = GanConfig(num_downs=4, ngf=8, ndf=8)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 proteins (nuclear, cytoplasmic, membrane, punctate) x 8 fields of 64x64, OpenCell layout."""
    from protloc.synthetic import write_synthetic_opencell

    return write_synthetic_opencell(
        tmp_path_factory.mktemp("synthetic") / "data", images_per_protein=8, size=64
    )


def tiny_train_config(root: Path, out: Path, **overrides: object) -> TrainConfig:
    """A CPU-second-scale training config on ``root``."""
    values = {
        "data": DataConfig(root=root),
        "model": TINY_REGRESSION,
        "out": out,
        "crop_size": 48,
        "batch_size": 8,
        "crops_per_image": 4,
        "n_epochs": 15,
        "n_epochs_decay": 0,
        "lr": 3e-3,
        "tensorboard": False,
        "num_threads": 2,
    }
    values.update(overrides)
    return TrainConfig.model_validate(values)


@pytest.fixture(scope="session")
def regression_run(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A regression run trained for 15 short epochs (about 20 s on 2 cores)."""
    from protloc.train import train

    return train(
        tiny_train_config(synthetic_root, tmp_path_factory.mktemp("runs") / "regression", tensorboard=True)
    )
