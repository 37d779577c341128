"""Shared fixtures: a small synthetic FIB-SEM zarr container and data-JSON writers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

SHAPE = (64, 64, 64)
RESOLUTION = (5, 5, 5)


@pytest.fixture(scope="session")
def em_zarr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64^3 synthetic cell (seed 3): raw, mask, labels/<organelle>, metric_masks/mito."""
    return synthetic_cell(tmp_path_factory.mktemp("data") / "cell.zarr", shape=SHAPE, seed=3)


def synthetic_cell(path: Path, *, shape: tuple[int, int, int], seed: int) -> Path:
    """Write a synthetic cell with ``raw_equalized_0.02`` (the training CLAHE) and a mito metric mask."""
    from cellsight_shared.io import write_zarr
    from cellsight_shared.synthetic.em import em_volume, write_em_volume_zarr
    from incasem.equalize import clahe_fast
    from incasem.metric_mask import metric_mask_array

    small = min(shape) < 96
    em = em_volume(shape=shape, seed=seed, **({"n_mito": 6, "n_er": 4} if small else {}))
    write_em_volume_zarr(path, em, resolution=RESOLUTION)
    geometry = {"offset": (0, 0, 0), "resolution": RESOLUTION}
    write_zarr(path, "volumes/raw_equalized_0.02", clahe_fast(em.raw, kernel_size=128), **geometry)
    mask = metric_mask_array(em.labels["mito"], inwards=1, outwards=1)
    write_zarr(path, "volumes/metric_masks/mito", mask, **geometry)
    return path


@pytest.fixture
def write_data_json(tmp_path: Path) -> Callable[..., Path]:
    """Write a data JSON of entries (name -> dict) and return its path."""

    def write(entries: dict, name: str = "data.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(entries))
        return path

    return write


def entry(
    store: Path,
    *,
    offset: tuple[int, int, int] = (10, 10, 10),
    shape: tuple[int, int, int] = (44, 44, 44),
    **extra: object,
) -> dict:
    """One data-JSON entry on the synthetic container (mito as class 1)."""
    value = {
        "file": str(store),
        "offset": list(offset),
        "shape": list(shape),
        "voxel_size": list(RESOLUTION),
        "raw": "volumes/raw",
        "mask": "volumes/mask",
        "metric_masks": ["volumes/metric_masks/mito"],
        "labels": {"volumes/labels/mito": 1},
    }
    value.update(extra)
    return value


def small_train_config(data: Path, out: Path, **overrides: object):
    """A TrainConfig for a tiny, fast network (context 9, 36^3 -> 18^3)."""
    from incasem.config.train import TrainConfig

    values: dict = {
        "data": data,
        "out": out,
        "model": {"num_fmaps": 2, "downsample_factors": [[2, 2, 2]]},
        "input_shape": (36, 36, 36),
        "iterations": 2,
        "save_every": 2,
        "log_every": 1,
        "metrics_every": 1,
        "lr": 1e-3,
        "device": "cpu",
        "threads": 1,
        "seed": 5,
        "augmentation": {"elastic": {"control_point_spacing": (8, 8, 8)}},
    }
    values.update(overrides)
    return TrainConfig.model_validate(values)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator."""
    return np.random.default_rng(0)
