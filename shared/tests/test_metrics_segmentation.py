"""Binary segmentation counts and scores against sklearn, plus masks and empty cases."""

import numpy as np
import pytest
from sklearn.metrics import (
    confusion_matrix,
    f1_score,
    jaccard_score,
    precision_score,
    recall_score,
)

from cellsight_shared.errors import NonFiniteError, ShapeMismatchError
from cellsight_shared.metrics import (
    BinaryCounts,
    BinaryScores,
    binary_counts,
    binary_scores,
    binary_scores_at_thresholds,
    f1,
    iou,
    precision,
    recall,
)

SEEDS = [0, 1, 2, 3]


def _masks(seed, shape=(40, 30)):
    rng = np.random.default_rng(seed)
    true = rng.random(shape) < 0.3
    # A noisy prediction: flips some pixels of the truth.
    pred = true ^ (rng.random(shape) < 0.2)
    return true, pred, rng


def _sklearn_scores(true, pred):
    t, p = true.ravel(), pred.ravel()
    return {
        "precision": precision_score(t, p),
        "recall": recall_score(t, p),
        "f1": f1_score(t, p),
        "iou": jaccard_score(t, p),
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_counts_match_sklearn_confusion_matrix(seed):
    true, pred, _ = _masks(seed)
    tn, fp, fn, tp = confusion_matrix(true.ravel(), pred.ravel(), labels=[False, True]).ravel()
    assert binary_counts(true, pred) == BinaryCounts(tp=tp, fp=fp, fn=fn, tn=tn)


@pytest.mark.parametrize("seed", SEEDS)
def test_scores_match_sklearn(seed):
    true, pred, _ = _masks(seed)
    scores = binary_scores(true, pred)
    for name, expected in _sklearn_scores(true, pred).items():
        assert getattr(scores, name) == pytest.approx(expected, rel=1e-12), name
    counts = binary_counts(true, pred)
    assert (precision(counts), recall(counts), f1(counts), iou(counts)) == (
        scores.precision,
        scores.recall,
        scores.f1,
        scores.iou,
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_mask_and_ignore_restrict_counts_to_selected_pixels(seed):
    true, pred, rng = _masks(seed)
    mask = rng.random(true.shape) < 0.6
    ignore = rng.random(true.shape) < 0.25
    keep = mask & ~ignore
    tn, fp, fn, tp = confusion_matrix(true[keep], pred[keep], labels=[False, True]).ravel()
    assert binary_counts(true, pred, mask=mask, ignore=ignore) == BinaryCounts(tp, fp, fn, tn)
    scores = binary_scores(true, pred, mask=mask, ignore=ignore)
    for name, expected in _sklearn_scores(true[keep], pred[keep]).items():
        assert getattr(scores, name) == pytest.approx(expected, rel=1e-12), name
    only_ignore = binary_counts(true, pred, ignore=ignore)
    tn, fp, fn, tp = confusion_matrix(true[~ignore], pred[~ignore], labels=[False, True]).ravel()
    assert only_ignore == BinaryCounts(tp, fp, fn, tn)


def test_hand_computed_example():
    true = np.zeros((4, 4), dtype=bool)
    true[:2, :2] = True  # 4 pixels
    pred = np.zeros((4, 4), dtype=bool)
    pred[:2, 1:3] = True  # 4 pixels, 2 shared
    scores = binary_scores(true, pred)
    assert scores.counts == BinaryCounts(tp=2, fp=2, fn=2, tn=10)
    assert (scores.precision, scores.recall, scores.f1) == (0.5, 0.5, 0.5)
    assert scores.iou == pytest.approx(2 / 6)


def test_integer_masks_count_nonzero_as_positive():
    true, pred, _ = _masks(5)
    labels_true = true * np.arange(true.size).reshape(true.shape)  # various nonzero values
    assert binary_counts(labels_true, pred.astype(np.uint8) * 3) == binary_counts(labels_true != 0, pred)


def test_both_empty_scores_one_matching_sklearn_zero_division_one():
    empty = np.zeros((8, 8), dtype=bool)
    scores = binary_scores(empty, empty)
    assert scores.counts == BinaryCounts(tp=0, fp=0, fn=0, tn=64)
    assert (scores.precision, scores.recall, scores.f1, scores.iou) == (1.0, 1.0, 1.0, 1.0)
    t = empty.ravel()
    assert f1_score(t, t, zero_division=1.0) == scores.f1
    assert jaccard_score(t, t, zero_division=1.0) == scores.iou


def test_one_side_empty_scores_zero():
    empty = np.zeros((8, 8), dtype=bool)
    full = empty.copy()
    full[2:5, 2:5] = True
    missed = binary_scores(full, empty)  # nothing predicted
    spurious = binary_scores(empty, full)  # nothing to find
    for scores in (missed, spurious):
        assert (scores.precision, scores.recall, scores.f1, scores.iou) == (0.0, 0.0, 0.0, 0.0)
    assert missed.counts == BinaryCounts(tp=0, fp=0, fn=9, tn=55)
    # sklearn agrees wherever its denominator is nonzero.
    assert recall_score(full.ravel(), empty.ravel()) == missed.recall
    assert precision_score(empty.ravel(), full.ravel(), zero_division=0.0) == spurious.precision


def test_region_excluding_everything_counts_nothing():
    true, pred, _ = _masks(0)
    scores = binary_scores(true, pred, mask=np.zeros(true.shape, dtype=bool))
    assert scores.counts == BinaryCounts(0, 0, 0, 0)
    assert scores.f1 == 1.0


def test_counts_pool_by_addition():
    true_a, pred_a, _ = _masks(1)
    true_b, pred_b, _ = _masks(2, shape=(10, 13))
    pooled = binary_counts(true_a, pred_a) + binary_counts(true_b, pred_b)
    joined = binary_counts(
        np.concatenate([true_a.ravel(), true_b.ravel()]),
        np.concatenate([pred_a.ravel(), pred_b.ravel()]),
    )
    assert pooled == joined
    assert BinaryScores.from_counts(pooled) == binary_scores(
        np.concatenate([true_a.ravel(), true_b.ravel()]),
        np.concatenate([pred_a.ravel(), pred_b.ravel()]),
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_threshold_sweep_equals_scores_of_thresholded_probabilities(seed):
    true, _, rng = _masks(seed)
    prob = np.clip(0.6 * true + 0.5 * rng.random(true.shape), 0, 1)
    prob[0, :5] = 0.5  # exact ties with a threshold count as positive (prob >= t)
    mask = rng.random(true.shape) < 0.8
    ignore = rng.random(true.shape) < 0.1
    thresholds = [0.9, 0.05, 0.5, 0.35, 0.0, 1.5]
    sweep = binary_scores_at_thresholds(true, prob, thresholds, mask=mask, ignore=ignore)
    assert len(sweep) == len(thresholds)
    for threshold, scores in zip(thresholds, sweep, strict=True):
        assert scores == binary_scores(true, prob >= threshold, mask=mask, ignore=ignore)
    assert sweep[4].recall == 1.0  # t = 0 predicts everything
    assert sweep[5].counts.tp == sweep[5].counts.fp == 0  # t above every probability


def test_threshold_sweep_works_on_float32_probabilities():
    true, _, rng = _masks(7)
    prob = rng.random(true.shape).astype(np.float32)
    sweep = binary_scores_at_thresholds(true, prob, np.linspace(0.05, 0.95, 19))
    for threshold, scores in zip(np.linspace(0.05, 0.95, 19), sweep, strict=True):
        expected = binary_counts(true, prob.astype(np.float64) >= threshold)
        assert scores.counts == expected


def test_invalid_inputs_are_rejected():
    true, pred, _ = _masks(0)
    with pytest.raises(ShapeMismatchError, match=r"\(40, 30\).*\(30, 40\)"):
        binary_counts(true, pred.T)
    with pytest.raises(ShapeMismatchError, match="ignore"):
        binary_counts(true, pred, ignore=np.zeros((3, 3), dtype=bool))
    with pytest.raises(TypeError, match="binary_scores_at_thresholds"):
        binary_scores(true, pred.astype(float))
    prob = np.where(pred, 0.8, 0.1)
    prob[1, 1] = np.nan
    with pytest.raises(NonFiniteError, match="prob"):
        binary_scores_at_thresholds(true, prob, [0.5])
    with pytest.raises(ValueError, match="thresholds"):
        binary_scores_at_thresholds(true, np.zeros(true.shape), [])
