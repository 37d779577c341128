"""Instance segmentation: IoU between objects, matching, AP, panoptic quality and AJI.

Label images are non-negative integer arrays of any dimensionality with 0 as background; each
other value is one object (labels need not be consecutive). Overlaps are counted from the
pixels where both images are foreground with one ``np.bincount`` (or ``np.unique`` for huge
label ranges), so images with thousands of objects are cheap and no dense object-by-object
matrix is built except by :func:`iou_matrix`.

Conventions (the DSB 2018 / StarDist / Cellpose ones):

- a true and a predicted object match when their IoU is ``>= threshold``; each object matches
  at most once, chosen by optimal (Hungarian) assignment that maximises the number of matches
  and then their summed IoU. For ``threshold > 0.5`` an object can have at most one partner
  above the threshold, so the matching is unique and greedy matching gives the same result; at
  exactly 0.5 only an object split into two exact halves ties, with the same count either way.
- "AP" is ``TP / (TP + FP + FN)``, the matching accuracy Cellpose and StarDist report as
  average precision, not the area under a precision-recall curve.
- empty cases: when neither image holds an object, every score is 1.0 (nothing to find, nothing
  found). When only one side is empty every score is 0.0; in general a ratio with a zero
  denominator is 0.0 unless both images are empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cellsight_shared.errors import InvalidArgumentError
from cellsight_shared.metrics._checks import as_labels, check_same_shape

__all__ = [
    "MAP_IOU_THRESHOLDS",
    "MatchResult",
    "aggregated_jaccard_index",
    "average_precision",
    "iou_matrix",
    "match_instances",
    "mean_average_precision",
]

#: IoU thresholds of mean_average_precision: 0.50, 0.55, ..., 0.95 (COCO style).
MAP_IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))

# Largest pair-code range counted with np.bincount (8 bytes each); above it, np.unique.
_MAX_BINCOUNT_CODES = 1 << 24


@dataclass(frozen=True, eq=False)
class MatchResult:
    """Result of :func:`match_instances` at one IoU threshold.

    ``pairs`` holds the matched ``(true_label, pred_label)`` ids, one row per match sorted by
    true label, and ``pair_ious`` their IoUs.
    """

    threshold: float
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    ap: float
    mean_matched_iou: float
    panoptic_quality: float
    pairs: np.ndarray
    pair_ious: np.ndarray


@dataclass(frozen=True)
class _Overlaps:
    """Objects of both images and every overlapping pair (private)."""

    ids_true: np.ndarray
    ids_pred: np.ndarray
    area_true: np.ndarray
    area_pred: np.ndarray
    rows: np.ndarray  # index into ids_true of each overlapping pair
    cols: np.ndarray  # index into ids_pred
    intersection: np.ndarray
    iou: np.ndarray


def _relabel(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map labels to 0..n (0 = background) and return (index image, ids, areas)."""
    flat = labels.ravel()
    max_label = int(flat.max())
    if max_label <= max(1 << 20, 4 * flat.size):
        counts = np.bincount(flat.astype(np.intp, copy=False), minlength=1)
        ids = np.flatnonzero(counts)
        ids = ids[ids != 0]
        lookup = np.zeros(max_label + 1, dtype=np.intp)
        lookup[ids] = np.arange(1, ids.size + 1)
        return lookup[flat], ids.astype(labels.dtype), counts[ids]
    ids, index, counts = np.unique(flat, return_inverse=True, return_counts=True)
    if ids[0] == 0:
        return index.astype(np.intp), ids[1:], counts[1:]
    return index.astype(np.intp) + 1, ids, counts


def _overlaps(labels_true: object, labels_pred: object) -> _Overlaps:
    true = as_labels(labels_true, name="labels_true")
    pred = as_labels(labels_pred, name="labels_pred")
    check_same_shape(true, pred, name_a="labels_true", name_b="labels_pred")
    if true.size == 0:
        raise InvalidArgumentError("labels_true is empty; pass label images with at least one pixel.")
    index_true, ids_true, area_true = _relabel(true)
    index_pred, ids_pred, area_pred = _relabel(pred)
    both = (index_true > 0) & (index_pred > 0)
    n_cols = ids_pred.size + 1
    codes = index_true[both] * n_cols + index_pred[both]
    if (ids_true.size + 1) * n_cols <= _MAX_BINCOUNT_CODES:
        counts = np.bincount(codes, minlength=0)
        codes = np.flatnonzero(counts)
        intersection = counts[codes]
    else:
        codes, intersection = np.unique(codes, return_counts=True)
    rows = codes // n_cols - 1
    cols = codes % n_cols - 1
    union = area_true[rows] + area_pred[cols] - intersection
    return _Overlaps(
        ids_true=ids_true,
        ids_pred=ids_pred,
        area_true=area_true,
        area_pred=area_pred,
        rows=rows,
        cols=cols,
        intersection=intersection,
        iou=intersection / union,
    )


def iou_matrix(labels_true: object, labels_pred: object) -> np.ndarray:
    """IoU of every true object with every predicted object, as a dense float64 matrix.

    Row ``i`` is the ``i``-th smallest nonzero label of ``labels_true`` and column ``j`` the
    ``j``-th smallest of ``labels_pred`` (``np.unique(labels[labels > 0])``); the shape is
    ``(n_true, n_pred)``. Memory grows with ``n_true * n_pred``; the other functions here work
    on the overlapping pairs only.
    """
    overlaps = _overlaps(labels_true, labels_pred)
    matrix = np.zeros((overlaps.ids_true.size, overlaps.ids_pred.size), dtype=np.float64)
    matrix[overlaps.rows, overlaps.cols] = overlaps.iou
    return matrix


def _check_threshold(threshold: float) -> float:
    value = float(threshold)
    if not 0.0 < value <= 1.0:
        raise InvalidArgumentError(f"IoU threshold must be in (0, 1], got {threshold!r}.")
    return value


def _match(overlaps: _Overlaps, threshold: float) -> np.ndarray:
    """Return the indices (into the pair arrays) of the optimal one-to-one matching."""
    candidates = np.flatnonzero(overlaps.iou >= threshold)
    rows = overlaps.rows[candidates]
    cols = overlaps.cols[candidates]
    if np.unique(rows).size == rows.size and np.unique(cols).size == cols.size:
        return candidates  # no object has two candidates: nothing to assign
    # Imported here: scipy.optimize and scipy.sparse take about a second to import and are
    # needed only when candidates compete (thresholds <= 0.5).
    from scipy import sparse
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse.csgraph import connected_components

    # Solve each connected group of competing candidates on its own small dense matrix.
    n_true = overlaps.ids_true.size
    graph = sparse.coo_matrix(
        (np.ones(rows.size), (rows, n_true + cols)),
        shape=(n_true + overlaps.ids_pred.size,) * 2,
    )
    _, component = connected_components(graph, directed=False)
    group = component[rows]
    order = np.argsort(group, kind="stable")
    starts = np.flatnonzero(np.r_[True, group[order][1:] != group[order][:-1]])
    chosen = []
    for members in np.split(order, starts[1:]):
        if members.size == 1:
            chosen.append(candidates[members])
            continue
        local_rows, row_index = np.unique(rows[members], return_inverse=True)
        local_cols, col_index = np.unique(cols[members], return_inverse=True)
        # Weight 1 per match plus a summed-IoU bonus below 1: more matches always win.
        weights = np.zeros((local_rows.size, local_cols.size))
        bonus = overlaps.iou[candidates[members]] / (2 * min(weights.shape))
        weights[row_index, col_index] = 1.0 + bonus
        pair_of = np.full(weights.shape, -1, dtype=np.intp)
        pair_of[row_index, col_index] = candidates[members]
        assigned_rows, assigned_cols = linear_sum_assignment(weights, maximize=True)
        picked = pair_of[assigned_rows, assigned_cols]
        chosen.append(picked[picked >= 0])
    return np.sort(np.concatenate(chosen))


def _safe_ratio(numerator: float, denominator: float, *, both_empty: bool) -> float:
    if denominator == 0:
        return 1.0 if both_empty else 0.0
    return float(numerator / denominator)


def _result(overlaps: _Overlaps, threshold: float) -> MatchResult:
    matched = _match(overlaps, threshold)
    n_true = overlaps.ids_true.size
    n_pred = overlaps.ids_pred.size
    tp = int(matched.size)
    fp = n_pred - tp
    fn = n_true - tp
    both_empty = n_true == 0 and n_pred == 0
    pair_ious = overlaps.iou[matched]
    iou_sum = float(pair_ious.sum())
    pairs = np.stack(
        [
            overlaps.ids_true[overlaps.rows[matched]],
            overlaps.ids_pred[overlaps.cols[matched]],
        ],
        axis=1,
    )
    return MatchResult(
        threshold=threshold,
        tp=tp,
        fp=fp,
        fn=fn,
        precision=_safe_ratio(tp, tp + fp, both_empty=both_empty),
        recall=_safe_ratio(tp, tp + fn, both_empty=both_empty),
        f1=_safe_ratio(2 * tp, 2 * tp + fp + fn, both_empty=both_empty),
        ap=_safe_ratio(tp, tp + fp + fn, both_empty=both_empty),
        mean_matched_iou=_safe_ratio(iou_sum, tp, both_empty=both_empty),
        panoptic_quality=_safe_ratio(iou_sum, tp + 0.5 * fp + 0.5 * fn, both_empty=both_empty),
        pairs=pairs,
        pair_ious=pair_ious,
    )


def match_instances(labels_true: object, labels_pred: object, *, threshold: float = 0.5) -> MatchResult:
    """Match predicted to true objects at IoU ``>= threshold`` and score the matching.

    Returns TP/FP/FN, precision, recall, F1, AP (= TP / (TP + FP + FN)), the mean IoU of the
    matched pairs and panoptic quality (summed matched IoU / (TP + FP/2 + FN/2)). See the module
    docstring for the matching rule and the empty cases.
    """
    return _result(_overlaps(labels_true, labels_pred), _check_threshold(threshold))


def average_precision(
    labels_true: object,
    labels_pred: object,
    *,
    thresholds: Sequence[float] = (0.5, 0.75, 0.9),
) -> np.ndarray:
    """AP = TP / (TP + FP + FN) at each IoU threshold, as a float64 array.

    The default thresholds are Cellpose's. Overlaps are computed once for all thresholds.
    """
    levels = [_check_threshold(t) for t in np.atleast_1d(np.asarray(thresholds, dtype=float))]
    if not levels:
        raise InvalidArgumentError("thresholds is empty; pass at least one IoU threshold.")
    overlaps = _overlaps(labels_true, labels_pred)
    return np.array([_result(overlaps, t).ap for t in levels], dtype=np.float64)


def mean_average_precision(labels_true: object, labels_pred: object) -> float:
    """Mean of :func:`average_precision` over the IoU thresholds 0.50, 0.55, ..., 0.95."""
    return float(average_precision(labels_true, labels_pred, thresholds=MAP_IOU_THRESHOLDS).mean())


def aggregated_jaccard_index(labels_true: object, labels_pred: object) -> float:
    """Compute the Aggregated Jaccard Index of Kumar et al. (2017, IEEE TMI 36:1550).

    Each true object G is paired with the predicted object S of highest IoU with it (ties go to
    the smaller predicted label; a prediction may serve several true objects). AJI is the sum
    of ``|G & S|`` over the pairs divided by the sum of ``|G | S|`` plus the areas of the
    predicted objects never paired. A true object that overlaps no prediction adds its area
    to the denominator only (as in HoVer-Net's reference code). Both images empty gives 1.0,
    one side empty 0.0.
    """
    overlaps = _overlaps(labels_true, labels_pred)
    if overlaps.ids_true.size == 0 and overlaps.ids_pred.size == 0:
        return 1.0
    # Per true object, the first pair after sorting by (row, -IoU, predicted index).
    order = np.lexsort((overlaps.cols, -overlaps.iou, overlaps.rows))
    sorted_rows = overlaps.rows[order]
    first = order[np.r_[True, sorted_rows[1:] != sorted_rows[:-1]]] if order.size else order
    intersection = int(overlaps.intersection[first].sum())
    union = int(
        (
            overlaps.area_true[overlaps.rows[first]]
            + overlaps.area_pred[overlaps.cols[first]]
            - overlaps.intersection[first]
        ).sum()
    )
    unpaired_true = np.ones(overlaps.ids_true.size, dtype=bool)
    unpaired_true[overlaps.rows[first]] = False
    unpaired_pred = np.ones(overlaps.ids_pred.size, dtype=bool)
    unpaired_pred[overlaps.cols[first]] = False
    union += int(overlaps.area_true[unpaired_true].sum() + overlaps.area_pred[unpaired_pred].sum())
    return intersection / union
