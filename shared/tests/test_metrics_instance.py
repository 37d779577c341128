"""Instance metrics against a loop-based reference and hand-computed examples."""

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from cellsight_shared.errors import ShapeMismatchError
from cellsight_shared.metrics import (
    MAP_IOU_THRESHOLDS,
    aggregated_jaccard_index,
    average_precision,
    iou_matrix,
    match_instances,
    mean_average_precision,
)
from cellsight_shared.metrics import instance as instance_module

SEEDS = [0, 1, 2, 3, 4]


# --- reference implementations: explicit masks, one pair at a time ---------------------------


def _ids(labels):
    return [int(v) for v in np.unique(labels) if v != 0]


def _reference_iou(labels_true, labels_pred):
    ids_true, ids_pred = _ids(labels_true), _ids(labels_pred)
    matrix = np.zeros((len(ids_true), len(ids_pred)))
    for i, a in enumerate(ids_true):
        for j, b in enumerate(ids_pred):
            mask_a, mask_b = labels_true == a, labels_pred == b
            matrix[i, j] = (mask_a & mask_b).sum() / (mask_a | mask_b).sum()
    return matrix


def _reference_match(labels_true, labels_pred, threshold):
    """Return (tp, summed matched IoU) of a maximum matching by one dense Hungarian solve."""
    matrix = _reference_iou(labels_true, labels_pred)
    if matrix.size == 0:
        return 0, 0.0
    # Cellpose's cost: each match is worth 1, the IoU bonus of all matches together < 1.
    cost = -(matrix >= threshold).astype(float) - matrix / (2 * min(matrix.shape))
    rows, cols = linear_sum_assignment(cost)
    ok = matrix[rows, cols] >= threshold
    return int(ok.sum()), float(matrix[rows, cols][ok].sum())


def _reference_aji(labels_true, labels_pred):
    intersection = union = 0
    used = set()
    for a in _ids(labels_true):
        mask_a = labels_true == a
        best, best_iou = None, 0.0
        for b in _ids(labels_pred):  # ascending, so ties keep the smaller label
            mask_b = labels_pred == b
            value = (mask_a & mask_b).sum() / (mask_a | mask_b).sum()
            if value > best_iou:
                best, best_iou = b, value
        if best is None:
            union += mask_a.sum()
            continue
        mask_b = labels_pred == best
        intersection += (mask_a & mask_b).sum()
        union += (mask_a | mask_b).sum()
        used.add(best)
    for b in _ids(labels_pred):
        if b not in used:
            union += (labels_pred == b).sum()
    return intersection / union


# --- synthetic label images ---------------------------------------------------------------


def _disk(shape, center, radius):
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum((g - c) ** 2 for g, c in zip(grid, center, strict=True)) <= radius**2


def _label_pair(seed, shape=(64, 64), n_objects=12):
    """A truth of overlapping disks with sparse ids and a jittered, incomplete prediction."""
    rng = np.random.default_rng(seed)
    true = np.zeros(shape, dtype=np.int32)
    pred = np.zeros(shape, dtype=np.int32)
    ids_true = rng.choice(np.arange(1, 1000), n_objects, replace=False)
    ids_pred = rng.choice(np.arange(1, 1000), n_objects + 3, replace=False)
    for k in range(n_objects):
        center = rng.uniform(4, np.array(shape) - 4)
        radius = rng.uniform(3, 8)
        true[_disk(shape, center, radius)] = ids_true[k]
        if rng.random() < 0.85:  # some objects are missed
            jitter = rng.normal(0, 1.5, size=len(shape))
            pred[_disk(shape, center + jitter, radius * rng.uniform(0.7, 1.3))] = ids_pred[k]
    for k in range(n_objects, n_objects + 3):  # spurious detections
        pred[_disk(shape, rng.uniform(4, np.array(shape) - 4), rng.uniform(2, 5))] = ids_pred[k]
    return true, pred


def _squares(shift, size=10, shape=(30, 40)):
    true = np.zeros(shape, dtype=np.uint16)
    pred = np.zeros(shape, dtype=np.uint16)
    true[5 : 5 + size, 5 : 5 + size] = 3
    pred[5 : 5 + size, 5 + shift : 5 + shift + size] = 8
    return true, pred


# --- iou_matrix -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_iou_matrix_matches_reference(seed):
    true, pred = _label_pair(seed)
    np.testing.assert_allclose(iou_matrix(true, pred), _reference_iou(true, pred), rtol=1e-12)


def test_iou_matrix_in_3d_and_with_huge_label_ids():
    true, pred = _label_pair(11, shape=(12, 20, 20), n_objects=6)
    expected = _reference_iou(true, pred)
    big_true = np.where(true > 0, true.astype(np.uint64) + 2**40, 0).astype(np.uint64)
    big_pred = np.where(pred > 0, pred.astype(np.uint64) * 2**33, 0).astype(np.uint64)
    np.testing.assert_allclose(iou_matrix(true, pred), expected, rtol=1e-12)
    np.testing.assert_allclose(iou_matrix(big_true, big_pred), expected, rtol=1e-12)


def test_iou_matrix_fallback_for_many_pair_codes_agrees(monkeypatch):
    true, pred = _label_pair(2)
    expected = iou_matrix(true, pred)
    monkeypatch.setattr(instance_module, "_MAX_BINCOUNT_CODES", 0)  # force the np.unique path
    np.testing.assert_array_equal(iou_matrix(true, pred), expected)


@pytest.mark.parametrize(("shift", "expected"), [(0, 1.0), (2, 80 / 120), (5, 50 / 150), (10, 0)])
def test_iou_of_shifted_squares(shift, expected):
    true, pred = _squares(shift)
    assert iou_matrix(true, pred) == pytest.approx(np.array([[expected]]))


# --- matching, AP, PQ -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("threshold", [0.1, 0.3, 0.5, 0.75])
def test_match_instances_matches_reference(seed, threshold):
    true, pred = _label_pair(seed)
    result = match_instances(true, pred, threshold=threshold)
    tp, iou_sum = _reference_match(true, pred, threshold)
    n_true, n_pred = len(_ids(true)), len(_ids(pred))
    assert (result.tp, result.fn, result.fp) == (tp, n_true - tp, n_pred - tp)
    assert result.pair_ious.sum() == pytest.approx(iou_sum, rel=1e-12)
    assert result.precision == pytest.approx(tp / n_pred)
    assert result.recall == pytest.approx(tp / n_true)
    assert result.f1 == pytest.approx(2 * tp / (n_true + n_pred))
    assert result.ap == pytest.approx(tp / (n_true + n_pred - tp))
    assert result.panoptic_quality == pytest.approx(iou_sum / (tp + 0.5 * (n_true + n_pred - 2 * tp)))
    assert result.mean_matched_iou == pytest.approx(iou_sum / tp if tp else 0.0)
    # Every reported pair really has the reported IoU, and no object is used twice.
    for (a, b), value in zip(result.pairs, result.pair_ious, strict=True):
        mask_a, mask_b = true == a, pred == b
        assert value == pytest.approx((mask_a & mask_b).sum() / (mask_a | mask_b).sum())
        assert value >= threshold
    assert len(set(result.pairs[:, 0])) == len(set(result.pairs[:, 1])) == result.tp


def test_shifted_squares_give_known_scores():
    true, pred = _squares(2)  # IoU 2/3
    result = match_instances(true, pred, threshold=0.5)
    assert (result.tp, result.fp, result.fn) == (1, 0, 0)
    assert result.pairs.tolist() == [[3, 8]]
    assert result.mean_matched_iou == pytest.approx(2 / 3)
    assert result.panoptic_quality == pytest.approx(2 / 3)
    np.testing.assert_array_equal(
        average_precision(true, pred, thresholds=(0.5, 0.65, 0.7, 0.9)), [1, 1, 0, 0]
    )
    # Thresholds 0.50, 0.55, 0.60, 0.65 of the ten are passed.
    assert mean_average_precision(true, pred) == pytest.approx(0.4)
    missed = match_instances(true, pred, threshold=0.75)
    assert (missed.tp, missed.fp, missed.fn, missed.ap, missed.panoptic_quality) == (
        1 - 1,
        1,
        1,
        0,
        0,
    )


def test_optimal_matching_beats_greedy_at_low_threshold():
    # One row of pixels: A = [0, 10), B = [10, 20); P1 = [2, 14), P2 = [0, 2).
    true = np.zeros((1, 24), dtype=np.int32)
    true[0, 0:10], true[0, 10:20] = 1, 2
    pred = np.zeros((1, 24), dtype=np.int32)
    pred[0, 2:14], pred[0, 0:2] = 1, 2
    # IoU(A, P1) = 8/14, IoU(A, P2) = 2/10, IoU(B, P1) = 4/18: greedy takes A-P1 and stops.
    low = match_instances(true, pred, threshold=0.2)
    assert low.tp == 2
    assert sorted(low.pairs.tolist()) == [[1, 2], [2, 1]]
    assert match_instances(true, pred, threshold=0.5).pairs.tolist() == [[1, 1]]


def test_object_split_in_exact_halves_matches_once_at_threshold_half():
    true = np.zeros((4, 8), dtype=np.int32)
    true[:, :] = 1
    pred = np.zeros((4, 8), dtype=np.int32)
    pred[:, :4], pred[:, 4:] = 1, 2
    result = match_instances(true, pred, threshold=0.5)
    assert (result.tp, result.fp, result.fn) == (1, 1, 0)
    assert result.pair_ious.tolist() == [0.5]


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_average_precision_equals_match_ap_at_each_threshold(seed):
    true, pred = _label_pair(seed)
    thresholds = (0.3, 0.5, 0.75, 0.9)
    expected = [match_instances(true, pred, threshold=t).ap for t in thresholds]
    np.testing.assert_allclose(average_precision(true, pred, thresholds=thresholds), expected)
    per_threshold = [match_instances(true, pred, threshold=t).ap for t in MAP_IOU_THRESHOLDS]
    assert mean_average_precision(true, pred) == pytest.approx(np.mean(per_threshold))
    assert MAP_IOU_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def test_perfect_prediction_with_other_ids_scores_one():
    true, _ = _label_pair(4)
    pred = np.where(true > 0, true * 7 + 1, 0)
    result = match_instances(true, pred, threshold=0.95)
    assert (result.ap, result.f1, result.panoptic_quality, result.mean_matched_iou) == (1, 1, 1, 1)
    assert aggregated_jaccard_index(true, pred) == 1.0
    assert mean_average_precision(true, pred) == 1.0


# --- AJI ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_aggregated_jaccard_index_matches_reference(seed):
    true, pred = _label_pair(seed)
    assert aggregated_jaccard_index(true, pred) == pytest.approx(_reference_aji(true, pred), rel=1e-12)


def test_aggregated_jaccard_index_hand_example():
    true, pred = _squares(2)
    assert aggregated_jaccard_index(true, pred) == pytest.approx(80 / 120)
    # Add a missed true object (area 16) and a spurious prediction (area 9).
    true[20:24, 20:24] = 5
    pred[20:23, 30:33] = 9
    assert aggregated_jaccard_index(true, pred) == pytest.approx(80 / (120 + 16 + 9))


def test_aji_counts_a_prediction_shared_by_two_true_objects_twice():
    true = np.zeros((1, 20), dtype=np.int32)
    true[0, 0:10], true[0, 10:20] = 1, 2
    pred = np.ones((1, 20), dtype=np.int32)  # one object covering both
    # Each true object pairs with the one prediction: C = 10 + 10, U = 20 + 20.
    assert aggregated_jaccard_index(true, pred) == pytest.approx(0.5)


# --- empty cases and errors ----------------------------------------------------------------


def test_no_instances_on_either_side_scores_one():
    empty = np.zeros((16, 16), dtype=np.int32)
    result = match_instances(empty, empty)
    assert (result.tp, result.fp, result.fn) == (0, 0, 0)
    assert result.pairs.shape == (0, 2)
    scores = (result.precision, result.recall, result.f1, result.ap, result.panoptic_quality)
    assert scores == (1.0, 1.0, 1.0, 1.0, 1.0)
    assert result.mean_matched_iou == 1.0
    np.testing.assert_array_equal(average_precision(empty, empty), [1.0, 1.0, 1.0])
    assert mean_average_precision(empty, empty) == 1.0
    assert aggregated_jaccard_index(empty, empty) == 1.0
    assert iou_matrix(empty, empty).shape == (0, 0)


@pytest.mark.parametrize("empty_side", ["true", "pred"])
def test_one_side_without_instances_scores_zero(empty_side):
    labels, _ = _label_pair(0)
    empty = np.zeros_like(labels)
    true, pred = (empty, labels) if empty_side == "true" else (labels, empty)
    result = match_instances(true, pred)
    n = len(_ids(labels))
    assert (result.tp, result.fp + result.fn) == (0, n)
    scores = (result.precision, result.recall, result.f1, result.ap, result.panoptic_quality)
    assert scores == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert result.mean_matched_iou == 0.0
    assert mean_average_precision(true, pred) == 0.0
    assert aggregated_jaccard_index(true, pred) == 0.0
    assert iou_matrix(true, pred).shape == ((0, n) if empty_side == "true" else (n, 0))


def test_boolean_masks_are_single_objects():
    true, pred = _squares(2)
    assert match_instances(true > 0, pred > 0).pair_ious == pytest.approx([2 / 3])


def test_invalid_inputs_are_rejected():
    true, pred = _squares(2)
    with pytest.raises(ShapeMismatchError, match=r"\(30, 40\).*\(40, 30\)"):
        match_instances(true, pred.T)
    with pytest.raises(TypeError, match="labels_pred must be an integer"):
        iou_matrix(true, pred.astype(float))
    with pytest.raises(ValueError, match="negative"):
        aggregated_jaccard_index(true.astype(np.int32) - 1, pred)
    with pytest.raises(ValueError, match="threshold"):
        match_instances(true, pred, threshold=0.0)
    with pytest.raises(ValueError, match="threshold"):
        average_precision(true, pred, thresholds=(0.5, 1.5))
