"""Pixel metrics against skimage, scipy and sklearn, plus masks and input errors."""

import math

import numpy as np
import pytest
from scipy import stats
from skimage import metrics as skm
from sklearn.metrics import mean_absolute_error

from cellsight_shared.errors import NonFiniteError, ShapeMismatchError
from cellsight_shared.metrics import mae, mse, pearson_r, psnr, ssim

SEEDS = [0, 1, 2]


def _pair(seed, shape=(48, 40), noise=0.1):
    rng = np.random.default_rng(seed)
    true = rng.random(shape)
    pred = np.clip(true + noise * rng.standard_normal(shape), 0, 1)
    return true, pred, rng


@pytest.mark.parametrize("seed", SEEDS)
def test_mae_mse_psnr_match_references_on_random_images(seed):
    true, pred, _ = _pair(seed)
    assert mae(true, pred) == pytest.approx(mean_absolute_error(true.ravel(), pred.ravel()), rel=1e-12)
    assert mse(true, pred) == pytest.approx(skm.mean_squared_error(true, pred), rel=1e-12)
    assert psnr(true, pred, data_range=1.0) == pytest.approx(
        skm.peak_signal_noise_ratio(true, pred, data_range=1.0), rel=1e-12
    )
    assert psnr(true, pred, data_range=2.5) == pytest.approx(
        skm.peak_signal_noise_ratio(true, pred, data_range=2.5), rel=1e-12
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_psnr_infers_data_range_for_uint8_like_skimage(seed):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    pred = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    assert psnr(true, pred) == pytest.approx(skm.peak_signal_noise_ratio(true, pred), rel=1e-12)
    # uint8 arithmetic must not wrap around: 0 - 255 is an error of 255, not 1.
    assert mae(np.array([0], np.uint8), np.array([255], np.uint8)) == 255.0


@pytest.mark.parametrize("seed", SEEDS)
def test_pearson_r_matches_scipy(seed):
    true, pred, _ = _pair(seed, noise=0.5)
    expected = stats.pearsonr(true.ravel(), pred.ravel()).statistic
    assert pearson_r(true, pred) == pytest.approx(expected, abs=1e-12)


def test_pearson_r_of_perfectly_related_images_is_plus_or_minus_one():
    true, _, _ = _pair(0)
    assert pearson_r(true, 3 * true + 2) == pytest.approx(1.0, abs=1e-12)
    assert pearson_r(true, -true) == pytest.approx(-1.0, abs=1e-12)


def test_pearson_r_of_constant_image_is_nan():
    true, _, _ = _pair(0)
    assert math.isnan(pearson_r(true, np.full_like(true, 0.3)))
    assert math.isnan(pearson_r(np.full_like(true, 7.0), true))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"win_size": 5},
        {"gaussian_weights": True, "use_sample_covariance": False},
        {"gaussian_weights": True, "sigma": 1.0},
        {"use_sample_covariance": False},
    ],
)
def test_ssim_matches_skimage_2d(seed, options):
    true, pred, _ = _pair(seed, noise=0.2)
    expected = skm.structural_similarity(true, pred, data_range=1.0, **options)
    assert abs(ssim(true, pred, data_range=1.0, **options) - expected) < 1e-6


@pytest.mark.parametrize("seed", SEEDS)
def test_ssim_matches_skimage_3d_and_multichannel(seed):
    true, pred, _ = _pair(seed, shape=(9, 16, 12), noise=0.2)
    assert (
        abs(ssim(true, pred, data_range=1.0) - skm.structural_similarity(true, pred, data_range=1.0)) < 1e-6
    )
    true, pred, _ = _pair(seed, shape=(20, 24, 3), noise=0.2)
    expected = skm.structural_similarity(true, pred, data_range=1.0, channel_axis=-1)
    assert abs(ssim(true, pred, data_range=1.0, channel_axis=-1) - expected) < 1e-6
    moved = ssim(np.moveaxis(true, -1, 0), np.moveaxis(pred, -1, 0), data_range=1, channel_axis=0)
    assert abs(moved - expected) < 1e-6


def test_ssim_infers_data_range_for_uint8_like_skimage():
    rng = np.random.default_rng(3)
    true = rng.integers(0, 256, (30, 30), dtype=np.uint8)
    pred = (true // 2 + rng.integers(0, 60, true.shape)).astype(np.uint8)
    assert abs(ssim(true, pred) - skm.structural_similarity(true, pred)) < 1e-6


def test_identical_images_are_perfect():
    true, _, _ = _pair(0)
    assert mse(true, true) == 0.0
    assert mae(true, true) == 0.0
    assert psnr(true, true, data_range=1.0) == math.inf
    assert ssim(true, true, data_range=1.0) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_mask_restricts_simple_metrics_to_selected_pixels(seed):
    true, pred, rng = _pair(seed, noise=0.3)
    mask = rng.random(true.shape) < 0.3
    # Wreck the pixels outside the mask: the masked metrics must not notice.
    wrecked = np.where(mask, pred, 1e3)
    t, p = true[mask], pred[mask]
    assert mae(true, wrecked, mask=mask) == pytest.approx(mean_absolute_error(t, p), rel=1e-12)
    assert mse(true, wrecked, mask=mask) == pytest.approx(skm.mean_squared_error(t, p), rel=1e-12)
    assert psnr(true, wrecked, data_range=1.0, mask=mask) == pytest.approx(
        skm.peak_signal_noise_ratio(t, p, data_range=1.0), rel=1e-12
    )
    assert pearson_r(true, wrecked, mask=mask) == pytest.approx(stats.pearsonr(t, p).statistic, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_ssim_with_mask_is_mean_of_skimage_map_inside_mask(seed):
    true, pred, rng = _pair(seed, noise=0.2)
    mask = rng.random(true.shape) < 0.4
    _, full_map = skm.structural_similarity(true, pred, data_range=1.0, full=True)
    interior = np.zeros(true.shape, dtype=bool)
    interior[3:-3, 3:-3] = True  # skimage averages away from the 7-pixel window's border
    expected = full_map[mask & interior].mean()
    assert abs(ssim(true, pred, data_range=1.0, mask=mask) - expected) < 1e-6
    all_true = np.ones(true.shape, dtype=bool)
    assert ssim(true, pred, data_range=1.0, mask=all_true) == pytest.approx(
        skm.structural_similarity(true, pred, data_range=1.0), abs=1e-6
    )


@pytest.mark.parametrize("function", [mae, mse, pearson_r])
@pytest.mark.parametrize("argument", ["image_true", "image_pred"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_is_rejected_naming_the_argument(function, argument, bad):
    true, pred, _ = _pair(0)
    images = {"image_true": true.copy(), "image_pred": pred.copy()}
    images[argument][5, 7] = bad
    with pytest.raises(NonFiniteError, match=argument):
        function(images["image_true"], images["image_pred"])


def test_non_finite_input_is_rejected_by_psnr_and_ssim():
    true, pred, _ = _pair(0)
    pred[0, 0] = np.nan
    with pytest.raises(NonFiniteError, match="image_pred holds 1 NaN"):
        psnr(true, pred, data_range=1.0)
    with pytest.raises(NonFiniteError, match="image_pred"):
        ssim(true, pred, data_range=1.0)


@pytest.mark.parametrize("function", [mae, mse, pearson_r])
def test_shape_mismatch_is_rejected_naming_both_shapes(function):
    with pytest.raises(ShapeMismatchError, match=r"\(10, 12\).*\(12, 10\)"):
        function(np.zeros((10, 12)), np.zeros((12, 10)))


def test_shape_mismatch_is_rejected_by_psnr_ssim_and_mask():
    with pytest.raises(ShapeMismatchError, match=r"\(10, 12\).*\(10, 11\)"):
        psnr(np.zeros((10, 12)), np.zeros((10, 11)), data_range=1.0)
    with pytest.raises(ShapeMismatchError, match=r"\(10, 12\).*\(10, 11\)"):
        ssim(np.zeros((10, 12)), np.zeros((10, 11)), data_range=1.0)
    with pytest.raises(ShapeMismatchError, match="mask"):
        mse(np.zeros((10, 12)), np.zeros((10, 12)), mask=np.ones((12, 10), dtype=bool))


def test_float_images_need_an_explicit_data_range():
    true, pred, _ = _pair(0)
    with pytest.raises(ValueError, match="data_range is required"):
        psnr(true, pred)
    with pytest.raises(ValueError, match="data_range is required"):
        ssim(true, pred)
    with pytest.raises(ValueError, match="data_range must be"):
        psnr(true, pred, data_range=0)


def test_empty_mask_is_rejected():
    true, pred, _ = _pair(0)
    empty = np.zeros(true.shape, dtype=bool)
    for function in (mae, mse, pearson_r):
        with pytest.raises(ValueError, match="mask selects no pixels"):
            function(true, pred, mask=empty)
    border_only = np.zeros(true.shape, dtype=bool)
    border_only[0, :] = True
    with pytest.raises(ValueError, match="mask selects no pixel"):
        ssim(true, pred, data_range=1.0, mask=border_only)


def test_ssim_rejects_window_larger_than_image_and_bad_window_options():
    with pytest.raises(ValueError, match="larger than the image"):
        ssim(np.zeros((5, 20)), np.zeros((5, 20)), data_range=1.0)
    with pytest.raises(ValueError, match="odd"):
        ssim(np.zeros((20, 20)), np.zeros((20, 20)), data_range=1.0, win_size=4)
    with pytest.raises(ValueError, match="win_size must be None"):
        ssim(
            np.zeros((20, 20)),
            np.zeros((20, 20)),
            data_range=1.0,
            win_size=7,
            gaussian_weights=True,
        )
