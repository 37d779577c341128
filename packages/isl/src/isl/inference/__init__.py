"""Whole-image prediction: large fully convolutional tiles that reproduce the original's stitching.

The original (``--metric INFER_FULL``) runs one 250x250 patch per 8x8 output block, at stride 8.
The network is equivariant only to shifts of 16 px (tower 4 downsamples 16x), so a tile of
250 + 16k pixels yields the patch results for every second block along each axis. Four passes,
shifted by 0 or 8 px along each axis, therefore reproduce the stitched patch output exactly
(up to float rounding) with about 4x less arithmetic. ``naive_patchwise`` is the original's path
and serves as the reference.

Output pixel (i, j) belongs to image pixel (121 + i, 121 + j); the 121-px border is not
predicted unless ``reflect_pad=True`` mirrors the image outwards first.
"""

from isl.inference.geometry import (
    DEFAULT_TILE_SIZE,
    original_input_crop,
    output_region,
    tiled_macs,
)
from isl.inference.statistics import STATISTICS, distribution_statistics
from isl.inference.stitching import naive_patchwise, predict_image, predict_statistics

__all__ = [
    "DEFAULT_TILE_SIZE",
    "STATISTICS",
    "distribution_statistics",
    "naive_patchwise",
    "original_input_crop",
    "output_region",
    "predict_image",
    "predict_statistics",
    "tiled_macs",
]
