"""RandomLocation with the original's soft foreground rule (``reject_probability``)."""

from __future__ import annotations

import logging
import random

import gunpowder as gp
import numpy as np

__all__ = ["RandomLocation"]

logger = logging.getLogger(__name__)


class RandomLocation(gp.RandomLocation):
    """Pick a random location; re-draw most locations with too little foreground.

    A location whose ``foreground`` fraction (inside the requested ROI of ``foreground``) is
    below ``min_foreground`` is re-drawn with probability ``reject_probability`` and otherwise
    accepted, so mostly-background samples still appear now and then (incasem's
    RandomLocationBounded: 0.05 and 0.9). Upstream ``gp.RandomLocation`` only has the hard rule.
    The whole foreground array is read once at setup into an integral image, so it must fit in
    memory.

    Args:
        foreground: binary array key to measure the foreground fraction on.
        min_foreground: fraction below which a location is usually rejected.
        reject_probability: probability of rejecting such a location.
    """

    def __init__(
        self,
        foreground: gp.ArrayKey,
        *,
        min_foreground: float = 0.05,
        reject_probability: float = 0.9,
    ) -> None:
        super().__init__()
        if not 0 <= reject_probability <= 1:
            raise ValueError(f"reject_probability must be in [0, 1], got {reject_probability}")
        self.foreground = foreground
        self.min_foreground = min_foreground
        self.reject_probability = reject_probability
        self.integral: np.ndarray | None = None
        self.foreground_roi: gp.Roi | None = None
        self.foreground_voxel_size: gp.Coordinate | None = None

    def setup(self) -> None:
        upstream = self.get_upstream_provider()
        spec = upstream.spec[self.foreground]
        batch = upstream.request_batch(gp.BatchRequest({self.foreground: spec.copy()}))
        data = (batch[self.foreground].data != 0).astype(np.int64)
        # Zero-padded summed-volume table: box sums in O(1) for any candidate location.
        self.integral = np.pad(data.cumsum(0).cumsum(1).cumsum(2), ((1, 0), (1, 0), (1, 0)))
        self.foreground_roi = spec.roi
        self.foreground_voxel_size = spec.voxel_size
        super().setup()

    def foreground_fraction(self, roi: gp.Roi) -> float:
        """Fraction of foreground voxels in ``roi`` (world units, inside the upstream ROI)."""
        begin = (roi.begin - self.foreground_roi.begin) / self.foreground_voxel_size
        end = (roi.end - self.foreground_roi.begin) / self.foreground_voxel_size
        s = self.integral
        (z0, y0, x0), (z1, y1, x1) = tuple(begin), tuple(end)
        total = (
            s[z1, y1, x1]
            - s[z0, y1, x1]
            - s[z1, y0, x1]
            - s[z1, y1, x0]
            + s[z0, y0, x1]
            + s[z0, y1, x0]
            + s[z1, y0, x0]
            - s[z0, y0, x0]
        )
        volume = int(np.prod(tuple(end - begin)))
        return float(total) / volume if volume else 0.0

    def accepts(self, request: gp.BatchRequest) -> bool:
        """Accept enough foreground always, too little with ``1 - reject_probability``."""
        if self.foreground not in request or self.min_foreground <= 0:
            return True
        fraction = self.foreground_fraction(request[self.foreground].roi)
        if fraction >= self.min_foreground:
            return True
        # gunpowder seeds `random` per request, so this draw is repeatable.
        accepted = random.random() >= self.reject_probability
        logger.debug("foreground %.3f < %.3f, accepted: %s", fraction, self.min_foreground, accepted)
        return accepted
