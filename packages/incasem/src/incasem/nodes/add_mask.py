"""AddMask: a constant mask of ones where no mask dataset exists."""

from __future__ import annotations

import gunpowder as gp
import numpy as np

__all__ = ["AddMask"]


class AddMask(gp.BatchFilter):
    """Provide ``target`` filled with ``value`` (uint8) on the ROI and voxel size of ``reference``.

    Stands in for the sample mask or the metric mask of a data-JSON entry that has none, so
    every voxel counts.

    Args:
        target: key of the mask to provide.
        reference: array key whose ROI and voxel size the mask takes.
        value: the constant (default 1).
    """

    def __init__(self, target: gp.ArrayKey, reference: gp.ArrayKey, value: int = 1) -> None:
        self.target = target
        self.reference = reference
        self.value = value

    def setup(self) -> None:
        spec = self.spec[self.reference].copy()
        spec.dtype = np.uint8
        spec.interpolatable = False
        self.provides(self.target, spec)
        self.enable_autoskip()

    def prepare(self, request: gp.BatchRequest) -> gp.BatchRequest:
        # The values are constant, but sources need a non-empty request: ask for the reference.
        deps = gp.BatchRequest()
        deps[self.reference] = gp.ArraySpec(roi=request[self.target].roi)
        return deps

    def process(self, batch: gp.Batch, request: gp.BatchRequest) -> gp.Batch:
        spec = self.spec[self.target].copy()
        spec.roi = request[self.target].roi
        shape = spec.roi.shape / spec.voxel_size
        outputs = gp.Batch()
        outputs[self.target] = gp.Array(np.full(tuple(shape), self.value, dtype=np.uint8), spec)
        return outputs
