"""Batch norm in training: statistics across replicas, and re-estimating them ("precise BN")."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from isl.config import TrainConfig
from isl.data import PatchLayout, WellFiles
from isl.train.dataset import patch_stream

__all__ = ["recalibrate_batch_norm", "recalibrate_from_stream", "set_batch_norm_sync"]

logger = logging.getLogger(__name__)


def set_batch_norm_sync(net: Any, enabled: bool) -> int:
    """Choose global-batch (``True``) or per-replica (``False``) BN statistics; return the layer count.

    Only matters under a strategy with several replicas. ``True`` makes a ``mirrored`` step equal
    the one-device step on the whole batch (one all-reduce per BN layer in the forward pass and
    one in the backward pass); ``False`` is the original's behaviour, where each asynchronous
    worker normalised its own batch. Networks without :class:`isl.model.layers.BatchNorm` layers
    are left alone (0).
    """
    from isl.model.layers import BatchNorm

    layers = [m for m in getattr(net, "submodules", ()) if isinstance(m, BatchNorm)]
    for layer in layers:
        layer.synchronized = bool(enabled)
    return len(layers)


def recalibrate_batch_norm(net: Any, batches: Iterable[tf.Tensor]) -> int:
    """Set every BN layer's moving statistics to its average batch statistics over ``batches``.

    "Precise BN": with the original's decay of 0.999 the moving averages need thousands of
    steps to settle, and lag the weights in any case. This re-estimates them for the final
    weights. Each training-mode pass with the moving statistics zeroed leaves
    ``(1 - decay) * batch statistic`` in them, which is read back and averaged. Returns the number
    of BN layers updated. ``batches`` are network inputs [B, H, W, D].
    """
    from isl.model.layers import BN_MOMENTUM, BatchNorm

    layers = [m for m in net.submodules if isinstance(m, BatchNorm)]
    if not layers:
        return 0
    factor = 1.0 - BN_MOMENTUM
    means = [tf.zeros_like(b.moving_mean) for b in layers]
    variances = [tf.zeros_like(b.moving_variance) for b in layers]
    count = 0
    for batch in batches:
        for layer in layers:
            layer.moving_mean.assign(tf.zeros_like(layer.moving_mean))
            layer.moving_variance.assign(tf.zeros_like(layer.moving_variance))
        net(batch, training=True)
        means = [m + b.moving_mean / factor for m, b in zip(means, layers, strict=True)]
        variances = [v + b.moving_variance / factor for v, b in zip(variances, layers, strict=True)]
        count += 1
    if count == 0:
        raise ValueError("recalibrate_batch_norm needs at least one batch")
    for layer, mean, variance in zip(layers, means, variances, strict=True):
        layer.moving_mean.assign(mean / count)
        layer.moving_variance.assign(variance / count)
    return len(layers)


def recalibrate_from_stream(
    net: Any, wells: Sequence[WellFiles], layout: PatchLayout, config: TrainConfig
) -> None:
    """Precise BN from patches of a separate stream (the training stream's order is untouched)."""
    stream = patch_stream(wells, layout, config, stream_id=1_000_003, augment_intensity=False)
    patches = stream.patches()

    def batches() -> Iterator[tf.Tensor]:
        for _ in range(config.recalibrate_batch_norm):
            inputs = [next(patches)[0] for _ in range(config.batch_size)]
            yield tf.constant(np.stack(inputs))

    layers = recalibrate_batch_norm(net, batches())
    logger.info(
        "re-estimated the statistics of %d BN layers from %d batches",
        layers,
        config.recalibrate_batch_norm,
    )
