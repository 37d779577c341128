"""Statistics of the per-pixel 256-bin distributions: mode, median, mean, std, P(>0), entropy."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from isl.errors import DataError

__all__ = ["STATISTICS", "distribution_statistics", "tf_logit_statistics", "tf_statistics"]

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


def _median_counts(probs: tf.Tensor) -> tf.Tensor:
    """How many bins have a cumulative probability below 0.5: [N, K] -> [N] (float).

    With ``K`` a multiple of 16 the cumulative sums are taken within 16-bin blocks and over the
    block totals, as small triangular matmuls: the same sums reordered, where XLA's ``cumsum``
    over 256 bins (a windowed reduction) was 40 % of the fused statistics' time.
    """
    k = int(probs.shape[-1])
    if k % 16:
        return tf.reduce_sum(tf.cast(tf.cumsum(probs, axis=-1) < 0.5, tf.float32), axis=-1)
    blocks = k // 16
    grouped = tf.reshape(probs, [-1, blocks, 16])
    before = tf.matmul(tf.reduce_sum(grouped, axis=-1), np.triu(np.ones((blocks, blocks), np.float32), 1))
    within = tf.reshape(
        tf.matmul(tf.reshape(grouped, [-1, 16]), np.triu(np.ones((16, 16), np.float32))), [-1, blocks, 16]
    )
    return tf.reduce_sum(tf.cast(within + before[:, :, tf.newaxis] < 0.5, tf.float32), axis=[1, 2])


def tf_statistics(probs: tf.Tensor) -> tf.Tensor:
    """The statistics of :func:`distribution_statistics` in TensorFlow: [N, K] -> [N, 6].

    Written for XLA (see :func:`tf_logit_statistics`): the mode is the first bin that reaches the
    maximum (``argmax``'s tie rule, without XLA's slower argmax) and the median is
    :func:`_median_counts`.
    """
    k = int(probs.shape[-1])
    values = tf.linspace(0.0, 1.0, k)
    bins = tf.range(k, dtype=tf.float32)
    mean = tf.linalg.matvec(probs, values)
    peak = tf.reduce_max(probs, axis=-1, keepdims=True)
    stats = [
        tf.reduce_min(tf.where(probs >= peak, bins, float(k)), axis=-1) / (k - 1),
        _median_counts(probs) / (k - 1),
        mean,
        tf.sqrt(tf.reduce_sum(probs * tf.square(values - mean[:, tf.newaxis]), axis=-1)),
        1.0 - probs[:, 0],
        -tf.reduce_sum(probs * tf.math.log(probs + _ENTROPY_EPSILON), axis=-1) / math.log(k),
    ]
    return tf.stack(stats, axis=-1)


def tf_logit_statistics(logits: tf.Tensor) -> tf.Tensor:
    """Softmax, then :func:`tf_statistics`: logits [N, K] -> statistics [N, 6]."""
    return tf_statistics(tf.nn.softmax(logits, axis=-1))
