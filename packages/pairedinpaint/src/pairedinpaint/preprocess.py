"""Per-crop intensity normalisation and downscaling exactly as the original (numpy only).

Yeast: every channel of every crop min-max rescaled to [0, 1] on its own. Human: the 128-px crops
are downscaled to 64 px as a 2x2 block mean (what scikit-image 0.13's bilinear resize did for an
exact 2x reduction), the antibody channel is min-max rescaled per crop and the nucleus and
microtubule channels use the fixed window [0.05, 1.0] with clipping. Constant crops become 0
instead of NaN (the original divided by zero).
"""

from __future__ import annotations

import numpy as np

EPS = 1e-12
HUMAN_WINDOW = (0.05, 1.0)


def minmax(image: np.ndarray) -> np.ndarray:
    """Rescale a 2-D crop to [0, 1] from its own min and max; a constant crop gives zeros."""
    image = np.asarray(image, dtype=np.float32)
    low = float(image.min())
    span = float(image.max()) - low
    if span <= EPS:
        return np.zeros_like(image)
    return (image - low) / np.float32(span)


def window(image: np.ndarray, low: float = HUMAN_WINDOW[0], high: float = HUMAN_WINDOW[1]) -> np.ndarray:
    """Map [low, high] linearly to [0, 1], clipping outside (the human marker channels)."""
    image = np.asarray(image, dtype=np.float32)
    return np.clip((image - np.float32(low)) / np.float32(high - low), 0.0, 1.0)


def block_mean_2x(image: np.ndarray) -> np.ndarray:
    """Halve a 2-D image by 2x2 block means (skimage resize order=1, anti_aliasing=False, exact 2x)."""
    h, w = image.shape
    if h % 2 or w % 2:
        raise ValueError(f"2x2 block mean needs even sides, got {image.shape}")
    image = np.asarray(image, dtype=np.float32)
    return image.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def fit_size(image: np.ndarray, size: int) -> np.ndarray:
    """Return a square crop at ``size``: unchanged, or halved by 2x2 means while twice too large."""
    while image.shape[0] >= 2 * size:
        image = block_mean_2x(image)
    return image


def normalise_channels(channels: list[np.ndarray], modes: list[str]) -> np.ndarray:
    """Normalise each channel by its mode ('minmax' or 'window') and stack them channels-last."""
    out = [minmax(c) if m == "minmax" else window(c) for c, m in zip(channels, modes, strict=True)]
    return np.stack(out, axis=-1)
