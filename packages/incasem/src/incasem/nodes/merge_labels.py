"""MergeLabels: binary label datasets -> one class-id array (overlaps become background)."""

from __future__ import annotations

from collections.abc import Mapping

import gunpowder as gp
import numpy as np

__all__ = ["MergeLabels"]


class MergeLabels(gp.BatchFilter):
    """Combine several label arrays into ``target`` = sum of ``(label != 0) * class_id``.

    A voxel claimed by more than one label array is set to 0 (background), as the original did:
    ambiguous annotation is not trusted. The result is uint32 (cast it for the loss later).

    Args:
        labels: label array key -> class id (1..K).
        target: key of the merged array to provide.
    """

    def __init__(self, labels: Mapping[gp.ArrayKey, int], target: gp.ArrayKey) -> None:
        if not labels:
            raise ValueError("MergeLabels needs at least one label array")
        self.labels = dict(labels)
        self.target = target

    def setup(self) -> None:
        first = next(iter(self.labels))
        spec = self.spec[first].copy()
        spec.dtype = np.uint32
        spec.interpolatable = False
        self.provides(self.target, spec)
        self.enable_autoskip()

    def prepare(self, request: gp.BatchRequest) -> gp.BatchRequest:
        deps = gp.BatchRequest()
        for key in self.labels:
            deps[key] = gp.ArraySpec(roi=request[self.target].roi)
        return deps

    def process(self, batch: gp.Batch, request: gp.BatchRequest) -> gp.Batch:
        merged = None
        claims = None
        for key, class_id in self.labels.items():
            binary = batch[key].data != 0
            if merged is None:
                merged = binary.astype(np.uint32) * np.uint32(class_id)
                claims = binary.astype(np.uint8)
            else:
                merged += binary.astype(np.uint32) * np.uint32(class_id)
                claims += binary
        merged[claims > 1] = 0
        spec = self.spec[self.target].copy()
        spec.roi = request[self.target].roi
        outputs = gp.Batch()
        outputs[self.target] = gp.Array(merged, spec)
        return outputs
