"""Reject: re-draw batches with too little sample mask, with a new seed for every retry."""

from __future__ import annotations

import logging
import random

import gunpowder as gp
from gunpowder.nodes.batch_filter import BatchFilterError

__all__ = ["Reject"]

logger = logging.getLogger(__name__)


class Reject(gp.BatchFilter):
    """Accept a batch if the mean of ``mask`` exceeds ``min_masked``, else usually retry.

    A failing batch is still accepted with probability ``1 - reject_probability`` (the
    original: 0.75 and 0.95). gunpowder 1.4.4's ``Reject`` sends the identical request again, so
    with a seeded request the retry returns the identical batch and draws the identical random
    number: a rejected batch repeats forever. Like incasem's own Reject, this one bumps the
    request's seed for every retry (``BatchRequest.copy``) and draws from a generator seeded by
    the request, so retries differ and the result stays repeatable.

    Args:
        mask: array key of the (binary) sample mask.
        min_masked: fraction of the mask a batch needs to be accepted outright.
        reject_probability: probability of rejecting a batch below ``min_masked``.
    """

    def __init__(
        self, mask: gp.ArrayKey, *, min_masked: float = 0.5, reject_probability: float = 1.0
    ) -> None:
        if not 0 <= reject_probability <= 1:
            raise ValueError(f"reject_probability must be in [0, 1], got {reject_probability}")
        self.mask = mask
        self.min_masked = min_masked
        self.reject_probability = reject_probability

    def setup(self) -> None:
        if self.mask not in self.spec:
            raise BatchFilterError(self, f"needs {self.mask}, which is not provided upstream")
        self.upstream_provider = self.get_upstream_provider()

    def provide(self, request: gp.BatchRequest) -> gp.Batch:
        if self.mask not in request:
            raise BatchFilterError(self, f"needs {self.mask} in the request")
        draw = random.Random(request.random_seed)
        attempt = request
        for tries in range(1, 100_000):
            batch = self.upstream_provider.request_batch(attempt)
            ratio = float(batch.arrays[self.mask].data.mean())
            if ratio > self.min_masked or draw.random() >= self.reject_probability:
                logger.debug("accepted batch with mask ratio %.3f after %d tries", ratio, tries)
                return batch
            attempt = attempt.copy()  # a new seed: the next batch comes from elsewhere
        raise BatchFilterError(
            self, f"no batch with more than {self.min_masked} of {self.mask} in 100000 tries"
        )
