"""Normalisation maps the chosen statistics to 0 and 1 and never divides by zero."""

from __future__ import annotations

import numpy as np
import pytest

from cellsight_shared.errors import NonFiniteError
from cellsight_shared.normalize import dtype_range_normalize, minmax_normalize, percentile_normalize


def test_percentile_normalize_maps_p1_p99_to_0_1(rng):
    """The 1st and 99th percentiles land on 0 and 1 (checked against np.percentile)."""
    image = rng.gamma(2.0, 100.0, (64, 64))
    out = percentile_normalize(image)
    lo, hi = np.percentile(image, [1, 99])
    np.testing.assert_allclose(out, (image - lo) / (hi - lo), rtol=1e-5, atol=1e-6)
    assert out.dtype == np.float32
    assert np.isclose(np.percentile(out, 1), 0.0, atol=1e-5)
    assert np.isclose(np.percentile(out, 99), 1.0, atol=1e-5)


def test_percentile_normalize_per_channel_and_clip(rng):
    """Axis selects per-channel statistics; clip bounds the output to [0, 1]."""
    image = np.stack([rng.random((16, 16)), 1000 + 50 * rng.random((16, 16))])
    out = percentile_normalize(image, low=0, high=100, axis=(1, 2), clip=True)
    assert out.min() == 0.0 and out.max() == 1.0
    for c in range(2):
        assert out[c].min() == 0.0 and np.isclose(out[c].max(), 1.0)


def test_constant_images_become_zero_not_nan():
    """Eps guards the division: a constant image maps to zeros under both stretches."""
    flat = np.full((8, 8), 42.0)
    assert np.array_equal(percentile_normalize(flat), np.zeros((8, 8), np.float32))
    assert np.array_equal(minmax_normalize(flat), np.zeros((8, 8), np.float32))


def test_minmax_normalize_range(rng):
    """Min-max maps the extremes exactly to 0 and 1."""
    out = minmax_normalize(rng.normal(5, 3, (10, 10)))
    assert out.min() == 0.0 and np.isclose(out.max(), 1.0)


def test_dtype_range_normalize_divides_by_dtype_max():
    """uint16 is divided by 65535, uint8 by 255; signed integers are refused."""
    np.testing.assert_allclose(
        dtype_range_normalize(np.array([0, 65535, 32768], np.uint16)), [0, 1, 32768 / 65535]
    )
    np.testing.assert_allclose(dtype_range_normalize(np.array([255], np.uint8)), [1.0])
    with pytest.raises(ValueError, match="unsigned"):
        dtype_range_normalize(np.array([-1], np.int16))


def test_nan_input_is_rejected():
    """NaN input raises before any arithmetic."""
    with pytest.raises(NonFiniteError):
        percentile_normalize(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="low < high"):
        percentile_normalize(np.ones(3), low=50, high=10)
