"""Intensity normalisation: percentile stretch, eps-guarded min-max and dtype-range scaling.

All functions return float32 and never divide by zero: a constant image maps to zeros.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cellsight_shared.errors import InvalidArgumentError
from cellsight_shared.io.atomic import check_finite

__all__ = ["dtype_range_normalize", "minmax_normalize", "percentile_normalize"]

Axis = int | Sequence[int] | None


def _as_tuple(axis: Axis) -> int | tuple[int, ...] | None:
    return tuple(axis) if isinstance(axis, Sequence) else axis


def percentile_normalize(
    image: np.ndarray,
    *,
    low: float = 1.0,
    high: float = 99.0,
    clip: bool = False,
    eps: float = 1e-6,
    axis: Axis = None,
) -> np.ndarray:
    """Map the ``low`` and ``high`` percentiles of ``image`` to 0 and 1 (CSBDeep-style P1/P99).

    ``axis`` selects the axes over which percentiles are taken (e.g. ``(-2, -1)`` for a
    per-channel stretch of a (C, H, W) image); ``None`` uses the whole array.
    """
    if not 0.0 <= low < high <= 100.0:
        raise InvalidArgumentError(f"need 0 <= low < high <= 100, got low={low}, high={high}")
    image = np.asarray(image)
    check_finite(image, name="image")
    axis_t = _as_tuple(axis)
    lo, hi = np.percentile(image, [low, high], axis=axis_t, keepdims=True)
    out = (image.astype(np.float32) - lo.astype(np.float32)) / np.maximum(hi - lo, eps).astype(np.float32)
    if clip:
        np.clip(out, 0.0, 1.0, out=out)
    return out


def minmax_normalize(image: np.ndarray, *, eps: float = 1e-6, axis: Axis = None) -> np.ndarray:
    """Map the minimum of ``image`` to 0 and its maximum to 1; a constant image becomes zeros."""
    image = np.asarray(image)
    check_finite(image, name="image")
    axis_t = _as_tuple(axis)
    lo = image.min(axis=axis_t, keepdims=True).astype(np.float32)
    hi = image.max(axis=axis_t, keepdims=True).astype(np.float32)
    return (image.astype(np.float32) - lo) / np.maximum(hi - lo, eps)


def dtype_range_normalize(image: np.ndarray) -> np.ndarray:
    """Divide an integer image by its dtype's maximum (uint16 / 65535) to get float32 in [0, 1].

    Float images are returned as float32 unchanged, bool as 0/1. This is the scaling the ISL
    original used for its PNG inputs.
    """
    image = np.asarray(image)
    if image.dtype == np.bool_:
        return image.astype(np.float32)
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        if info.min < 0:
            raise InvalidArgumentError(f"dtype-range scaling needs an unsigned image, got {image.dtype}")
        return (image.astype(np.float64) / info.max).astype(np.float32)
    check_finite(image, name="image")
    return image.astype(np.float32)
