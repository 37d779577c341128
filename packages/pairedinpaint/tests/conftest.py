"""Shared fixtures: real-data location, tiny models, synthetic crops in the original layouts."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]


def test_data_dir() -> Path:
    """The team's real data folder: $CELLSIGHT_TEST_DATA or ../shared/data next to the repo."""
    return Path(os.environ.get("CELLSIGHT_TEST_DATA", ROOT.parent / "shared" / "data"))


test_data_dir.__test__ = False  # not a test


@pytest.fixture(scope="session")
def yeast_subset() -> Path:
    """The real yeast toy subset (5 strains x 40 cells); skips when absent."""
    path = test_data_dir() / "pairedinpaint" / "yeast_toy_subset"
    if not path.is_dir():
        pytest.skip(f"real test data not found at {path} (set CELLSIGHT_TEST_DATA)")
    return path


@pytest.fixture(scope="session")
def synthetic_cells():
    """Synthetic labelled crops, 4 classes x 24 cells, channels (nucleus, cell, protein)."""
    from cellsight_shared.synthetic import cell_crops

    return cell_crops(24, size=32, classes=("nuclear", "cytoplasmic", "membrane", "punctate"), seed=3)


@pytest.fixture(scope="session")
def synthetic_yeast_dir(tmp_path_factory, synthetic_cells) -> Path:
    """The synthetic crops written in the yeast layout: protein + cell marker, one dir per class."""
    from pairedinpaint.data import write_layout

    root = tmp_path_factory.mktemp("yeast")
    images = synthetic_cells.images[:, [2, 1]]
    labels = [synthetic_cells.class_names[i] for i in synthetic_cells.labels]
    write_layout(root, images, labels, layout="yeast")
    return root


@pytest.fixture(scope="session")
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
