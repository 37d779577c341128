"""The loss of brief section 3: masked sparse CE / ln 256, 0.5 input + 0.5 target heads."""

from __future__ import annotations

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from isl.losses import (  # noqa: E402
    combine_head_losses,
    head_losses,
    head_sums_and_counts,
    isl_loss,
)


def _reference(logits: np.ndarray, bins: np.ndarray, weights: np.ndarray, n_in: int) -> float:
    """The TF1 computation in plain numpy, head by head."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    ce = -np.take_along_axis(log_softmax, bins[..., None], axis=-1)[..., 0]
    per_head = []
    for h in range(logits.shape[3]):
        w = weights[..., h]
        nonzero = np.count_nonzero(w)
        per_head.append((w * ce[..., h]).sum() / nonzero / math.log(256) if nonzero else 0.0)
    per_head = np.array(per_head)
    return 0.5 * per_head[:n_in].mean() + 0.5 * per_head[n_in:].mean()


def test_uniform_prediction_scores_one_and_perfect_scores_zero() -> None:
    """Scaled by ln 256: a uniform predictor has loss 1, a confident correct one about 0."""
    bins = tf.constant(np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)), tf.int32)
    weights = tf.ones([2, 8, 8, 3])
    uniform, per_head = isl_loss(tf.zeros([2, 8, 8, 3, 256]), bins, weights, num_input_heads=1)
    np.testing.assert_allclose(per_head.numpy(), [1.0, 1.0, 1.0], atol=1e-5)
    assert float(uniform) == pytest.approx(1.0, abs=1e-5)
    perfect = tf.one_hot(bins, 256) * 50.0
    loss, _ = isl_loss(perfect, bins, weights, num_input_heads=1)
    assert float(loss) < 1e-6


def test_loss_matches_numpy_reference_with_masks_and_absent_heads() -> None:
    """Weighted sum / non-zero count per head; an all-zero-weight head counts 0 in its mean."""
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (4, 8, 8, 5, 256)).astype(np.float32)
    bins = rng.integers(0, 256, (4, 8, 8, 5)).astype(np.int32)
    weights = np.ones((4, 8, 8, 5), np.float32)
    weights[:2, ..., 1] = 0.0  # head 1 (input) present in half the batch
    weights[..., 4] = 0.0  # head 4 (target) absent everywhere
    loss, per_head = isl_loss(tf.constant(logits), tf.constant(bins), tf.constant(weights), num_input_heads=2)
    assert float(loss) == pytest.approx(_reference(logits, bins, weights, 2), rel=1e-5)
    assert float(per_head[4]) == 0.0
    # The absent head still counts: target mean is over 3 heads, not 2.
    per = per_head.numpy()
    assert float(loss) == pytest.approx(0.5 * per[:2].mean() + 0.5 * per[2:].sum() / 3, rel=1e-6)


def test_split_batches_add_up_to_the_whole_batch_loss() -> None:
    """Replica sums over global counts add up exactly to the single-device loss."""
    rng = np.random.default_rng(2)
    logits = tf.constant(rng.normal(0, 2, (6, 4, 4, 3, 256)).astype(np.float32))
    bins = tf.constant(rng.integers(0, 256, (6, 4, 4, 3)).astype(np.int32))
    weights = tf.constant((rng.random((6, 4, 4, 3)) > 0.3).astype(np.float32))
    whole, _ = isl_loss(logits, bins, weights, num_input_heads=2)
    parts = [head_sums_and_counts(logits[s], bins[s], weights[s]) for s in (slice(0, 2), slice(2, 6))]
    counts = parts[0][1] + parts[1][1]
    total = sum(combine_head_losses(head_losses(s, counts), 2) for s, _ in parts)
    assert float(total) == pytest.approx(float(whole), rel=1e-6)
