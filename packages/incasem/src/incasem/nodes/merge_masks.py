"""MergeMasks: several masks -> their logical AND as uint8 0/1."""

from __future__ import annotations

from collections.abc import Sequence

import gunpowder as gp
import numpy as np

__all__ = ["MergeMasks"]


class MergeMasks(gp.BatchFilter):
    """Provide ``target`` = 1 where every mask in ``masks`` is non-zero, else 0 (uint8).

    Used for the sample mask (one dataset, binarised) and the metric masks (several, ANDed).

    Args:
        masks: mask array keys (at least one).
        target: key of the merged mask to provide.
    """

    def __init__(self, masks: Sequence[gp.ArrayKey], target: gp.ArrayKey) -> None:
        if not masks:
            raise ValueError("MergeMasks needs at least one mask array")
        self.masks = list(masks)
        self.target = target

    def setup(self) -> None:
        spec = self.spec[self.masks[0]].copy()
        spec.dtype = np.uint8
        spec.interpolatable = False
        self.provides(self.target, spec)
        self.enable_autoskip()

    def prepare(self, request: gp.BatchRequest) -> gp.BatchRequest:
        deps = gp.BatchRequest()
        for key in self.masks:
            deps[key] = gp.ArraySpec(roi=request[self.target].roi)
        return deps

    def process(self, batch: gp.Batch, request: gp.BatchRequest) -> gp.Batch:
        merged = np.ones(batch[self.masks[0]].data.shape, dtype=bool)
        for key in self.masks:
            merged &= batch[key].data != 0
        spec = self.spec[self.target].copy()
        spec.roi = request[self.target].roi
        outputs = gp.Batch()
        outputs[self.target] = gp.Array(merged.astype(np.uint8), spec)
        return outputs
