"""Helpers shared by the synthetic generators: argument checks, noise fields, shapes."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from cellsight_shared.errors import InvalidArgumentError


def check_shape(shape: Sequence[int], *, ndim: int, minimum: int, name: str = "shape") -> tuple[int, ...]:
    """Return ``shape`` as a tuple of ints, or raise ValueError saying what is wrong."""
    try:
        values = tuple(shape)
    except TypeError:
        values = ()
    if len(values) != ndim or not all(isinstance(v, numbers.Integral) for v in values):
        raise InvalidArgumentError(
            f"{name} must be {ndim} integers, got {shape!r}; pass e.g. {(minimum * 2,) * ndim}."
        )
    if min(values) < minimum:
        raise InvalidArgumentError(f"every axis of {name} must be at least {minimum} pixels, got {values}.")
    return tuple(int(v) for v in values)


def check_count(value: int, *, name: str, minimum: int = 0) -> int:
    """Return ``value`` as an int, or raise ValueError if it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_seed(seed: int) -> int:
    """Return ``seed`` as an int; a seed must be a non-negative integer for bit-identical output."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InvalidArgumentError(f"seed must be a non-negative integer, got {seed!r}.")
    return int(seed)


def check_fraction(value: float, *, name: str, low: float = 0.0, high: float = 1.0) -> float:
    """Return ``value`` as a float in [low, high], or raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= value <= high:
        raise InvalidArgumentError(f"{name} must be a number in [{low}, {high}], got {value!r}.")
    return float(value)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to zero mean and unit SD (float32).

    ``mode="wrap"`` keeps the field free of edge artefacts; its period is the array, which no
    generator here can notice.
    """
    if sigma > 4.0:
        # A wide Gaussian is slow; smooth a coarse grid instead and interpolate it up. The field
        # keeps its correlation length and costs a fraction of the time.
        factor = sigma / 2.0
        coarse_shape = tuple(int(np.ceil(s / factor)) + 1 for s in shape)
        coarse = ndi.gaussian_filter(rng.standard_normal(coarse_shape, dtype=np.float32), 2.0, mode="wrap")
        zoom = [s / c for s, c in zip(shape, coarse_shape, strict=True)]
        field = ndi.zoom(coarse, zoom, order=1).astype(np.float32, copy=False)
    else:
        field = ndi.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma, mode="wrap")
    field -= field.mean()
    field /= max(float(field.std()), 1e-12)
    return field


def star_radius(
    angle: np.ndarray, radius: np.ndarray, amplitude: np.ndarray, phase: np.ndarray
) -> np.ndarray:
    """Radius of a smooth star-convex outline, ``radius * (1 + sum_k a_k cos(k angle + p_k))``.

    ``amplitude`` and ``phase`` have one column per harmonic k = 2, 3, ...; rows follow ``radius``.
    The first harmonic is skipped because it only shifts the shape.
    """
    result = np.ones_like(angle)
    for column in range(amplitude.shape[-1]):
        k = column + 2
        result += amplitude[..., column] * np.cos(k * angle + phase[..., column])
    return radius * result


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3-D rotation matrix (rows are the rotated axes)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def poisson_gaussian_noise(
    rng: np.random.Generator, signal: np.ndarray, *, photons: float, read_noise: float
) -> np.ndarray:
    """Add camera noise: shot noise (Gaussian approximation, ``photons`` counts at 1.0) and read noise.

    The Gaussian approximation of Poisson noise is used because it is cheap and continuous, which
    is all that image-formation realism needs here.
    """
    shot = np.sqrt(np.clip(signal, 0.0, None) / photons)
    noise = rng.standard_normal(signal.shape, dtype=np.float32)
    return signal + noise * np.sqrt(shot**2 + read_noise**2)


def unit_clip(image: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and return float32."""
    return np.clip(image, 0.0, 1.0).astype(np.float32, copy=False)


def place_centres(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n: int,
    *,
    min_distance: float,
    margin: float,
    max_tries: int = 60,
) -> np.ndarray:
    """Draw up to ``n`` points in ``shape`` at least ``min_distance`` apart and ``margin`` from the edges.

    Dart throwing: each point gets ``max_tries`` candidates; a point that finds no room is
    dropped, so a crowded field yields fewer points (the callers document this).
    """
    low = np.array([margin, margin], dtype=float)
    high = np.array(shape, dtype=float) - margin
    high = np.maximum(high, low + 1.0)
    points: list[np.ndarray] = []
    for _ in range(n):
        candidates = rng.uniform(low, high, size=(max_tries, 2))
        if points:
            taken = np.array(points)
            distance = np.linalg.norm(candidates[:, None, :] - taken[None, :, :], axis=-1).min(axis=1)
            ok = np.flatnonzero(distance >= min_distance)
            if ok.size == 0:
                continue
            points.append(candidates[ok[0]])
        else:
            points.append(candidates[0])
    return np.array(points, dtype=float).reshape(-1, 2)
