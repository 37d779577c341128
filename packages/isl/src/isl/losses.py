"""The original's loss: masked sparse cross-entropy per head, scaled by ln(256), split 50/50.

Per head: ``sum(w * CE) / count(w != 0)`` over batch and pixels (TF1 ``tf.losses`` default
reduction; 0 when every weight is 0), divided by ``ln(num_classes)`` so that 0 is perfect and 1 is
a uniform predictor. Total = 0.5 * mean over input heads + 0.5 * mean over target heads, where the
means count absent heads (loss 0) in their denominators.

The loss is split into sums and counts so that replicas of a distributed step can add their sums
and share global counts: the per-replica losses then add up to the single-device loss exactly.
"""

from __future__ import annotations

import math

import tensorflow as tf

__all__ = ["combine_head_losses", "head_losses", "head_sums_and_counts", "isl_loss"]


def head_sums_and_counts(
    logits: tf.Tensor, bins: tf.Tensor, weights: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Weighted CE sums [heads] and non-zero weight counts [heads].

    logits [B, h, w, heads, C]; bins [B, h, w, heads] int; weights [B, h, w, heads] float.
    """
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(bins, tf.int32), logits=tf.cast(logits, tf.float32)
    )
    weights = tf.cast(weights, tf.float32)
    axes = [0, 1, 2]
    sums = tf.reduce_sum(ce * weights, axis=axes)
    counts = tf.reduce_sum(tf.cast(tf.not_equal(weights, 0.0), tf.float32), axis=axes)
    return sums, counts


def head_losses(sums: tf.Tensor, counts: tf.Tensor, num_classes: int = 256) -> tf.Tensor:
    """Per-head scaled loss [heads]: sums / counts / ln(num_classes), 0 where counts is 0."""
    return tf.math.divide_no_nan(sums, counts) / math.log(num_classes)


def combine_head_losses(per_head: tf.Tensor, num_input_heads: int) -> tf.Tensor:
    """0.5 * mean(input heads) + 0.5 * mean(target heads) (a group without heads counts 0)."""
    num_heads = int(per_head.shape[-1])
    parts = []
    if num_input_heads > 0:
        parts.append(0.5 * tf.reduce_mean(per_head[..., :num_input_heads], axis=-1))
    if num_heads > num_input_heads:
        parts.append(0.5 * tf.reduce_mean(per_head[..., num_input_heads:], axis=-1))
    return tf.add_n(parts)


def isl_loss(
    logits: tf.Tensor,
    bins: tf.Tensor,
    weights: tf.Tensor,
    *,
    num_input_heads: int,
    num_classes: int = 256,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Total loss (scalar) and per-head losses [heads] of one batch on one device."""
    sums, counts = head_sums_and_counts(logits, bins, weights)
    per_head = head_losses(sums, counts, num_classes)
    return combine_head_losses(per_head, num_input_heads), per_head
