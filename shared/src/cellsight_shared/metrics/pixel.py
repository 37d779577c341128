"""Pixel-wise image similarity: MAE, MSE, PSNR, SSIM and Pearson's r.

Every function takes ``(image_true, image_pred, *, ...)`` like ``skimage.metrics`` and an optional
boolean ``mask`` of the same shape: pixels where it is False are ignored. Inputs may be boolean,
integer or float arrays of any dimensionality; arithmetic is done in float64. NaN or infinite
values raise :class:`~cellsight_shared.errors.NonFiniteError` and arrays of different shape
:class:`~cellsight_shared.errors.ShapeMismatchError`. A mask that selects no pixel raises
``ValueError``, since the mean of nothing is undefined.
"""

from __future__ import annotations

import math

import numpy as np

from cellsight_shared.errors import InvalidArgumentError
from cellsight_shared.metrics._checks import (
    as_bool_mask,
    as_numeric,
    check_finite,
    check_same_shape,
)

__all__ = ["mae", "mse", "pearson_r", "psnr", "ssim"]

# Constants of Wang et al. (2004), also skimage's defaults.
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03
# Gaussian truncation used by skimage.metrics.structural_similarity (in standard deviations).
_SSIM_TRUNCATE = 3.5


def _checked_pair(image_true: object, image_pred: object) -> tuple[np.ndarray, np.ndarray]:
    true = as_numeric(image_true, name="image_true")
    pred = as_numeric(image_pred, name="image_pred")
    check_same_shape(true, pred, name_a="image_true", name_b="image_pred")
    check_finite(true, name="image_true")
    check_finite(pred, name="image_pred")
    return true, pred


def _selected_values(
    true: np.ndarray, pred: np.ndarray, mask: object | None
) -> tuple[np.ndarray, np.ndarray]:
    """Return the compared pixel values of a checked pair as float64 (flattened when masked)."""
    if mask is None:
        return true.astype(np.float64, copy=False), pred.astype(np.float64, copy=False)
    region = as_bool_mask(mask, true.shape, name="mask", image_name="image_true")
    if not region.any():
        raise InvalidArgumentError("mask selects no pixels; the metric is undefined on an empty region.")
    return true[region].astype(np.float64), pred[region].astype(np.float64)


def mae(image_true: object, image_pred: object, *, mask: object | None = None) -> float:
    """Mean absolute error between two images (inside ``mask`` when given)."""
    true, pred = _selected_values(*_checked_pair(image_true, image_pred), mask)
    return float(np.mean(np.abs(true - pred)))


def mse(image_true: object, image_pred: object, *, mask: object | None = None) -> float:
    """Mean squared error between two images (inside ``mask`` when given)."""
    true, pred = _selected_values(*_checked_pair(image_true, image_pred), mask)
    diff = true - pred
    return float(np.mean(diff * diff))


def _inferred_data_range(true: np.ndarray, pred: np.ndarray) -> float:
    """Return the dtype range for unsigned-integer or boolean images, else raise."""
    if true.dtype != pred.dtype or true.dtype.kind not in "bu":
        raise InvalidArgumentError(
            f"data_range is required for images of dtype {true.dtype} and {pred.dtype}; "
            "it is only inferred when both are the same unsigned integer or boolean dtype. "
            "Pass data_range=max_possible - min_possible (e.g. 1.0 for images in [0, 1])."
        )
    return 1.0 if true.dtype == bool else float(np.iinfo(true.dtype).max)


def _checked_data_range(data_range: float) -> float:
    value = float(data_range)
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"data_range must be a finite number > 0, got {data_range!r}.")
    return value


def psnr(
    image_true: object,
    image_pred: object,
    *,
    data_range: float | None = None,
    mask: object | None = None,
) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range**2 / mse)``.

    ``data_range`` is the difference between the largest and smallest possible value. It is
    required for float and signed-integer images; for unsigned-integer and boolean images it
    defaults to the dtype maximum (255 for uint8), as in skimage. Identical images give
    ``inf``.
    """
    true, pred = _checked_pair(image_true, image_pred)
    if data_range is None:
        value_range = _inferred_data_range(true, pred)
    else:
        value_range = _checked_data_range(data_range)
    true, pred = _selected_values(true, pred, mask)
    diff = true - pred
    error = float(np.mean(diff * diff))
    if error == 0.0:
        return math.inf
    return float(10.0 * np.log10(value_range**2 / error))


def pearson_r(image_true: object, image_pred: object, *, mask: object | None = None) -> float:
    """Pearson correlation coefficient of the pixel values (inside ``mask`` when given).

    Returns ``nan`` when either image is constant over the compared pixels: the correlation
    is 0/0 there, and ``nan`` (as ``scipy.stats.pearsonr`` returns) keeps such an image from
    passing silently as "uncorrelated". Average per-image values with ``np.nanmean`` or
    report them as missing.
    """
    true, pred = _selected_values(*_checked_pair(image_true, image_pred), mask)
    if true.min() == true.max() or pred.min() == pred.max():
        return math.nan
    true = true - true.mean()
    pred = pred - pred.mean()
    denominator = math.sqrt(float(np.dot(true.ravel(), true.ravel()))) * math.sqrt(
        float(np.dot(pred.ravel(), pred.ravel()))
    )
    if denominator == 0.0:  # variance underflowed although the values differ
        return math.nan
    r = float(np.dot(true.ravel(), pred.ravel())) / denominator
    return min(1.0, max(-1.0, r))


def ssim(
    image_true: object,
    image_pred: object,
    *,
    data_range: float | None = None,
    win_size: int | None = None,
    gaussian_weights: bool = False,
    sigma: float = 1.5,
    use_sample_covariance: bool = True,
    channel_axis: int | None = None,
    mask: object | None = None,
) -> float:
    """Mean structural similarity index (Wang et al. 2004), computed like skimage.

    Defaults match ``skimage.metrics.structural_similarity``: a uniform ``win_size`` window
    (7) with sample covariance, or with ``gaussian_weights=True`` a Gaussian window of
    ``sigma`` truncated at 3.5 sigma (``win_size`` is then derived from ``sigma`` and must be
    left as None); reflect padding; K1 = 0.01, K2 = 0.03. For Wang et al.'s exact setting use
    ``gaussian_weights=True, use_sample_covariance=False``. ``data_range`` follows the rule of
    :func:`psnr`.

    The SSIM map is averaged over the pixels at least ``(win_size - 1) // 2`` away from the
    border (as skimage does) and, when ``mask`` is given, inside the mask as well, so an
    all-True mask gives the unmasked value. With ``channel_axis`` SSIM is computed per channel
    and averaged; ``mask`` then has the shape of one channel.
    """
    true, pred = _checked_pair(image_true, image_pred)
    value_range = _inferred_data_range(true, pred) if data_range is None else _checked_data_range(data_range)
    if channel_axis is not None:
        axis = int(channel_axis)
        if not -true.ndim <= axis < true.ndim:
            raise InvalidArgumentError(
                f"channel_axis={channel_axis} is out of range for images with {true.ndim} axes."
            )
        true = np.moveaxis(true, axis, 0)
        pred = np.moveaxis(pred, axis, 0)
    else:
        true = true[np.newaxis]
        pred = pred[np.newaxis]
    spatial_shape = true.shape[1:]
    if not spatial_shape:
        raise InvalidArgumentError("ssim needs at least one spatial axis besides the channel axis.")

    if sigma <= 0:
        raise InvalidArgumentError(f"sigma must be > 0, got {sigma}.")
    if gaussian_weights:
        if win_size is not None:
            raise InvalidArgumentError(
                "win_size must be None when gaussian_weights=True; the window size follows "
                "from sigma (2 * int(3.5 * sigma + 0.5) + 1)."
            )
        size = 2 * int(_SSIM_TRUNCATE * sigma + 0.5) + 1
    else:
        size = 7 if win_size is None else int(win_size)
        if size < 1 or size % 2 == 0:
            raise InvalidArgumentError(f"win_size must be an odd integer >= 1, got {win_size}.")
    if min(spatial_shape) < size:
        raise InvalidArgumentError(
            f"the SSIM window ({size} pixels) is larger than the image (spatial shape "
            f"{spatial_shape}); pass a smaller odd win_size or a smaller sigma, or set "
            "channel_axis if one axis holds channels."
        )

    pad = (size - 1) // 2
    region = np.zeros(spatial_shape, dtype=bool)
    region[tuple(slice(pad, n - pad) for n in spatial_shape)] = True
    if mask is not None:
        region &= as_bool_mask(mask, spatial_shape, name="mask", image_name="one image channel")
        if not region.any():
            raise InvalidArgumentError(
                f"mask selects no pixel at least {pad} pixels away from the border; "
                "the SSIM map is undefined there."
            )

    values = [
        _ssim_map(
            t.astype(np.float64),
            p.astype(np.float64),
            data_range=value_range,
            size=size,
            gaussian_sigma=sigma if gaussian_weights else None,
            use_sample_covariance=use_sample_covariance,
        )[region].mean()
        for t, p in zip(true, pred, strict=True)
    ]
    return float(np.mean(values))


def _ssim_map(
    true: np.ndarray,
    pred: np.ndarray,
    *,
    data_range: float,
    size: int,
    gaussian_sigma: float | None,
    use_sample_covariance: bool,
) -> np.ndarray:
    """Return the SSIM value of every pixel's window."""
    from scipy import ndimage  # imported here: it is slow to import and only SSIM needs it

    if gaussian_sigma is None:

        def local_mean(x: np.ndarray) -> np.ndarray:
            return ndimage.uniform_filter(x, size=size, mode="reflect")
    else:

        def local_mean(x: np.ndarray) -> np.ndarray:
            return ndimage.gaussian_filter(x, sigma=gaussian_sigma, truncate=_SSIM_TRUNCATE, mode="reflect")

    n_window = size**true.ndim
    # skimage applies the N/(N-1) factor for the window size even with Gaussian weights.
    cov_norm = n_window / (n_window - 1) if use_sample_covariance and n_window > 1 else 1.0
    mean_t = local_mean(true)
    mean_p = local_mean(pred)
    var_t = cov_norm * (local_mean(true * true) - mean_t * mean_t)
    var_p = cov_norm * (local_mean(pred * pred) - mean_p * mean_p)
    cov = cov_norm * (local_mean(true * pred) - mean_t * mean_p)
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    numerator = (2 * mean_t * mean_p + c1) * (2 * cov + c2)
    denominator = (mean_t * mean_t + mean_p * mean_p + c1) * (var_t + var_p + c2)
    return numerator / denominator
