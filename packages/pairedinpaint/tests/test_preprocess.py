"""Normalisation exactly as the original, without its NaN on constant crops."""

import numpy as np

from pairedinpaint.preprocess import block_mean_2x, fit_size, minmax, window


def test_minmax_maps_each_crop_to_its_own_unit_range():
    x = np.array([[0.002, 0.004], [0.003, 0.010]], np.float32)
    np.testing.assert_allclose(minmax(x), [[0, 0.25], [0.125, 1]], atol=1e-6)


def test_constant_crop_gives_zeros_not_nan():
    out = minmax(np.full((8, 8), 0.3, np.float32))
    assert np.all(out == 0)


def test_human_window_clips_below_005_and_above_1():
    x = np.array([0.0, 0.05, 0.525, 1.0, 1.2], np.float32)
    np.testing.assert_allclose(window(x), [0, 0, 0.5, 1, 1], atol=1e-6)


def test_2x_downscale_is_the_2x2_block_mean():
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_allclose(block_mean_2x(x), [[2.5, 4.5], [10.5, 12.5]])
    assert fit_size(np.zeros((128, 128), np.float32), 64).shape == (64, 64)


def test_2x_downscale_equals_skimage_bilinear_without_antialiasing():
    """What the original's scikit-image 0.13 resize did (anti_aliasing did not exist yet)."""
    from skimage.transform import resize

    x = np.random.default_rng(0).random((128, 128)).astype(np.float32)
    ref = resize(x, (64, 64), order=1, mode="constant", anti_aliasing=False)
    np.testing.assert_allclose(block_mean_2x(x), ref, atol=1e-6)
