"""Input checks shared by the metric modules (private)."""

from __future__ import annotations

import numpy as np

from cellsight_shared.errors import InvalidArgumentError, NonFiniteError, ShapeMismatchError


def as_numeric(array: object, *, name: str) -> np.ndarray:
    """Return ``array`` as a non-empty real-valued ndarray (bool, integer or float)."""
    out = np.asarray(array)
    if out.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must be a real-valued numeric array (bool, integer or float), "
            f"got dtype {out.dtype}; convert it with np.asarray(..., dtype=float)."
        )
    if out.size == 0:
        raise InvalidArgumentError(f"{name} is empty (shape {out.shape}); pass an array with data.")
    return out


def check_finite(array: np.ndarray, *, name: str) -> None:
    """Raise NonFiniteError, saying how many NaN and infinite values ``array`` holds."""
    if array.dtype.kind != "f":
        return
    finite = np.isfinite(array)
    if finite.all():
        return
    n_nan = int(np.count_nonzero(np.isnan(array)))
    n_inf = int(array.size - np.count_nonzero(finite) - n_nan)
    raise NonFiniteError(
        f"{name} holds {n_nan} NaN and {n_inf} infinite values; metrics need finite input. "
        "Replace them (e.g. np.nan_to_num) or crop them away first."
    )


def check_same_shape(a: np.ndarray, b: np.ndarray, *, name_a: str, name_b: str) -> None:
    """Raise ShapeMismatchError naming both shapes when ``a`` and ``b`` differ in shape."""
    if a.shape != b.shape:
        raise ShapeMismatchError(
            f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}; "
            "they must have the same shape (crop or resample one of them)."
        )


def as_bool_mask(mask: object, shape: tuple[int, ...], *, name: str, image_name: str) -> np.ndarray:
    """Return ``mask`` as a boolean array of ``shape``; integers count as True where nonzero."""
    out = np.asarray(mask)
    if out.dtype.kind not in "biu":
        raise TypeError(
            f"{name} must be a boolean (or integer 0/1) array, got dtype {out.dtype}; "
            f"pass e.g. {name}=(values > 0)."
        )
    if out.shape != shape:
        raise ShapeMismatchError(
            f"{name} has shape {out.shape} but {image_name} has shape {shape}; "
            "the mask must cover the images pixel for pixel."
        )
    return out if out.dtype == bool else out != 0


def as_labels(labels: object, *, name: str) -> np.ndarray:
    """Return ``labels`` as a non-negative integer label image (0 = background)."""
    out = np.asarray(labels)
    if out.dtype == bool:
        return out.astype(np.uint8)
    if out.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must be an integer label image (0 = background), got dtype {out.dtype}; "
            "label a binary mask first, e.g. with scipy.ndimage.label."
        )
    if out.dtype.kind == "i" and out.size and out.min() < 0:
        raise InvalidArgumentError(
            f"{name} holds negative labels (minimum {out.min()}); labels must be >= 0 with 0 as background."
        )
    return out
