"""The hand-crafted baseline: mahotas Haralick texture and Zernike moments per cell and channel.

Stands in for the CellProfiler-style features the paper compared against: 13 Haralick features
(mean over the four directions, 8-bit quantised crop) and 25 Zernike moments (degree 8, radius
half the crop) for each channel, so 76 features for a yeast cell.
"""

from __future__ import annotations

import numpy as np


def handcrafted_features(crops: np.ndarray) -> np.ndarray:
    """Features (N, 38 * C) of normalised crops (N, H, W, C) in [0, 1]."""
    import mahotas

    n, h, _, c = crops.shape
    out = np.zeros((n, 38 * c), np.float64)
    for i in range(n):
        row = []
        for ch in range(c):
            image = crops[i, ..., ch]
            quantised = np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
            if quantised.max() == quantised.min():  # Haralick is undefined on a flat crop
                row.append(np.zeros(13))
            else:
                row.append(mahotas.features.haralick(quantised, return_mean=True, ignore_zeros=False))
            row.append(mahotas.features.zernike_moments(image, h // 2, degree=8))
        out[i] = np.concatenate(row)
    return np.nan_to_num(out)
