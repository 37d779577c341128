"""Shared fixtures: the real Vectra fixture (skipped when absent) and small synthetic samples."""

from __future__ import annotations

import numpy as np
import pytest

from impartial.data.readers import Sample


@pytest.fixture
def vectra_dir():
    """The real Vectra 2-channel TIFF + ROI zip fixture (../shared/data/impartial/vectra_2ch)."""
    from cellsight_shared.testing import require_test_data

    return require_test_data("impartial", "vectra_2ch")


@pytest.fixture
def tiny_sample() -> Sample:
    """A 64x64 two-channel sample with two square cells and scribbles on both classes."""
    rng = np.random.default_rng(0)
    label = np.zeros((64, 64), np.int32)
    label[8:24, 8:24] = 1
    label[36:56, 30:50] = 2
    image = np.stack([(label > 0) * 0.8, (label > 0) * 0.5]).astype(np.float32) + rng.normal(
        0, 0.05, (2, 64, 64)
    ).astype(np.float32)
    scribble = np.zeros((2, 64, 64), np.uint8)
    scribble[0, 14:18, 10:20] = 1
    scribble[1, 2:4, 2:60] = 1
    val = np.zeros((64, 64), np.uint8)
    val[40:60, 4:24] = 1
    return Sample("tiny", image, label[None], scribble, val)
