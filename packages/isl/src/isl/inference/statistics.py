"""Statistics of the per-pixel 256-bin distributions: mode, median, mean, std, P(>0), entropy."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from isl.errors import DataError

__all__ = ["STATISTICS", "distribution_statistics", "tf_statistics"]

#: The per-pixel statistics of the 256-bin distribution, in the original's order.
STATISTICS: tuple[str, ...] = (
    "mode",
    "median",
    "mean",
    "std",
    "probability_nonzero",
    "entropy",
)
#: Added inside the logarithm of the entropy, as the original does.
_ENTROPY_EPSILON = 1e-7


def distribution_statistics(probs: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics of per-pixel categorical distributions over the last axis (numpy).

    Bin ``i`` of ``K`` has the value ``i / (K - 1)``. ``mode`` is the first most probable bin;
    ``median`` is the number of bins whose cumulative probability is below 0.5, over ``K - 1``
    (the original's definition); ``entropy`` is ``-sum p ln(p + 1e-7) / ln K``, in [0, 1].
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim < 1 or p.shape[-1] < 2:
        raise DataError(f"probabilities need a last axis of >= 2 bins, got shape {p.shape}")
    sums = p.sum(axis=-1)
    if p.size and not np.allclose(sums, 1.0, atol=1e-4):
        worst = float(np.max(np.abs(sums - 1.0)))
        raise DataError(f"probabilities must sum to 1 over the last axis (worst |sum - 1| {worst})")
    k = p.shape[-1]
    values = np.linspace(0.0, 1.0, k)
    mean = p @ values
    stats = {
        "mode": np.argmax(p, axis=-1) / (k - 1),
        "median": np.sum(np.cumsum(p, axis=-1) < 0.5, axis=-1) / (k - 1),
        "mean": mean,
        "std": np.sqrt(np.sum(p * (values - mean[..., None]) ** 2, axis=-1)),
        "probability_nonzero": 1.0 - p[..., 0],
        "entropy": -np.sum(p * np.log(p + _ENTROPY_EPSILON), axis=-1) / np.log(k),
    }
    return {name: stats[name].astype(np.float32) for name in STATISTICS}


def tf_statistics(probs: tf.Tensor) -> tf.Tensor:
    """The statistics of :func:`distribution_statistics` in TensorFlow: [N, K] -> [N, 6]."""
    k = probs.shape[-1]
    values = tf.linspace(0.0, 1.0, k)
    mean = tf.linalg.matvec(probs, values)
    stats = [
        tf.cast(tf.argmax(probs, axis=-1), tf.float32) / (k - 1),
        tf.reduce_sum(tf.cast(tf.cumsum(probs, axis=-1) < 0.5, tf.float32), axis=-1) / (k - 1),
        mean,
        tf.sqrt(tf.reduce_sum(probs * tf.square(values - mean[:, tf.newaxis]), axis=-1)),
        1.0 - probs[:, 0],
        -tf.reduce_sum(probs * tf.math.log(probs + _ENTROPY_EPSILON), axis=-1) / math.log(k),
    ]
    return tf.stack(stats, axis=-1)
