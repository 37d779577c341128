"""Whole-image prediction: large fully convolutional tiles that reproduce the original's stitching.

The original (``--metric INFER_FULL``) runs one 250x250 patch per 8x8 output block, at stride 8.
The network is equivariant only to shifts of 16 px (tower 4 downsamples 16x), so one plain pass
yields the patch results for every second block along each axis. The exact path computes what
does not depend on the 8-px phase once per tile and the rest once per phase
(:mod:`isl.inference.exact`): the stitched patch output within float32 rounding with 6-7x fewer
multiply-accumulates (counted by :func:`tiled_macs`). ``naive_patchwise`` is the original's path
and serves as the reference.

Output pixel (i, j) belongs to image pixel (121 + i, 121 + j); the 121-px border is not
predicted unless ``reflect_pad=True`` mirrors the image outwards first.
"""

from isl.inference.geometry import (
    DEFAULT_TILE_SIZE,
    auto_tile_size,
    original_input_crop,
    output_region,
    tiled_macs,
)
from isl.inference.statistics import STATISTICS, distribution_statistics
from isl.inference.stitching import naive_patchwise, predict_image, predict_statistics

__all__ = [
    "DEFAULT_TILE_SIZE",
    "STATISTICS",
    "auto_tile_size",
    "distribution_statistics",
    "naive_patchwise",
    "original_input_crop",
    "output_region",
    "predict_image",
    "predict_statistics",
    "tiled_macs",
]
