"""BinarizeLabels: class ids -> a foreground mask (any organelle = 1)."""

from __future__ import annotations

import gunpowder as gp
import numpy as np

__all__ = ["BinarizeLabels"]


class BinarizeLabels(gp.BatchFilter):
    """Provide ``target`` = ``(source != 0)`` as uint8, leaving ``source`` as it is.

    The training pipeline derives its foreground mask (the original's BACKGROUND_MASK) this
    way; RandomLocation's foreground rule reads it.

    Args:
        source: label array key.
        target: key of the binary array to provide.
    """

    def __init__(self, source: gp.ArrayKey, target: gp.ArrayKey) -> None:
        self.source = source
        self.target = target

    def setup(self) -> None:
        spec = self.spec[self.source].copy()
        spec.dtype = np.uint8
        spec.interpolatable = False
        self.provides(self.target, spec)
        self.enable_autoskip()

    def prepare(self, request: gp.BatchRequest) -> gp.BatchRequest:
        deps = gp.BatchRequest()
        deps[self.source] = gp.ArraySpec(roi=request[self.target].roi)
        return deps

    def process(self, batch: gp.Batch, request: gp.BatchRequest) -> gp.Batch:
        spec = self.spec[self.target].copy()
        spec.roi = request[self.target].roi
        outputs = gp.Batch()
        outputs[self.target] = gp.Array((batch[self.source].data != 0).astype(np.uint8), spec)
        return outputs
