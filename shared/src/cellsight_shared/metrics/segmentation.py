"""Binary (semantic) segmentation scores from pixel counts: precision, recall, F1/Dice, IoU.

Masks are boolean arrays, or integer arrays that count as True where nonzero. ``mask`` keeps
only the pixels where it is True and ``ignore`` drops the pixels where it is True (for example a
boundary exclusion zone); both may be given.

Empty cases: a ratio whose denominator is 0 is 1.0 when truth and prediction are both empty
(nothing to find and nothing found is a perfect result) and 0.0 otherwise. So an empty
prediction of a non-empty truth has precision 0.0, and a non-empty prediction of an empty truth
has recall 0.0. (sklearn's ``zero_division`` applies one value to every case; this rule does
not reward a prediction that missed everything.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cellsight_shared.errors import InvalidArgumentError
from cellsight_shared.metrics._checks import (
    as_bool_mask,
    as_numeric,
    check_finite,
    check_same_shape,
)

__all__ = [
    "BinaryCounts",
    "BinaryScores",
    "binary_counts",
    "binary_scores",
    "binary_scores_at_thresholds",
    "f1",
    "iou",
    "precision",
    "recall",
]


@dataclass(frozen=True)
class BinaryCounts:
    """Confusion counts of a binary segmentation; ``a + b`` pools two regions or images."""

    tp: int
    fp: int
    fn: int
    tn: int

    def __add__(self, other: BinaryCounts) -> BinaryCounts:
        """Return the element-wise sum, for pooling counts over images or ROIs."""
        if not isinstance(other, BinaryCounts):
            return NotImplemented
        return BinaryCounts(
            self.tp + other.tp,
            self.fp + other.fp,
            self.fn + other.fn,
            self.tn + other.tn,
        )


@dataclass(frozen=True)
class BinaryScores:
    """Precision, recall, F1 (= Dice) and IoU (= Jaccard) with the counts they came from."""

    precision: float
    recall: float
    f1: float
    iou: float
    counts: BinaryCounts

    @classmethod
    def from_counts(cls, counts: BinaryCounts) -> BinaryScores:
        """Compute all four scores from ``counts``."""
        return cls(precision(counts), recall(counts), f1(counts), iou(counts), counts)


def _ratio(numerator: int, denominator: int, counts: BinaryCounts) -> float:
    if denominator == 0:
        return 1.0 if counts.tp + counts.fp + counts.fn == 0 else 0.0
    return numerator / denominator


def precision(counts: BinaryCounts) -> float:
    """TP / (TP + FP); see the module docstring for the empty cases."""
    return _ratio(counts.tp, counts.tp + counts.fp, counts)


def recall(counts: BinaryCounts) -> float:
    """TP / (TP + FN); see the module docstring for the empty cases."""
    return _ratio(counts.tp, counts.tp + counts.fn, counts)


def f1(counts: BinaryCounts) -> float:
    """F1 score = Dice coefficient = 2 TP / (2 TP + FP + FN); 1.0 when both are empty."""
    return _ratio(2 * counts.tp, 2 * counts.tp + counts.fp + counts.fn, counts)


def iou(counts: BinaryCounts) -> float:
    """Intersection over union = Jaccard index = TP / (TP + FP + FN); 1.0 when both are empty."""
    return _ratio(counts.tp, counts.tp + counts.fp + counts.fn, counts)


def _as_binary(array: object, *, name: str) -> np.ndarray:
    values = as_numeric(array, name=name)
    if values.dtype.kind == "f":
        raise TypeError(
            f"{name} must be a boolean or integer mask, got dtype {values.dtype}; threshold "
            "probabilities first (prob >= 0.5) or use binary_scores_at_thresholds."
        )
    return values if values.dtype == bool else values != 0


def _region(shape: tuple[int, ...], mask: object | None, ignore: object | None) -> np.ndarray | None:
    """Return the boolean region to count in, or None for every pixel."""
    region = None
    if mask is not None:
        region = as_bool_mask(mask, shape, name="mask", image_name="mask_true")
    if ignore is not None:
        dropped = as_bool_mask(ignore, shape, name="ignore", image_name="mask_true")
        region = ~dropped if region is None else region & ~dropped
    return region


def binary_counts(
    mask_true: object,
    mask_pred: object,
    *,
    mask: object | None = None,
    ignore: object | None = None,
) -> BinaryCounts:
    """Count true/false positives and negatives of ``mask_pred`` against ``mask_true``.

    Only pixels where ``mask`` is True and ``ignore`` is not True are counted.
    """
    true = _as_binary(mask_true, name="mask_true")
    pred = _as_binary(mask_pred, name="mask_pred")
    check_same_shape(true, pred, name_a="mask_true", name_b="mask_pred")
    region = _region(true.shape, mask, ignore)
    if region is not None:
        true = true[region]
        pred = pred[region]
    n_true = int(np.count_nonzero(true))
    n_pred = int(np.count_nonzero(pred))
    tp = int(np.count_nonzero(true & pred))
    return BinaryCounts(tp=tp, fp=n_pred - tp, fn=n_true - tp, tn=true.size - n_true - n_pred + tp)


def binary_scores(
    mask_true: object,
    mask_pred: object,
    *,
    mask: object | None = None,
    ignore: object | None = None,
) -> BinaryScores:
    """Precision, recall, F1 and IoU of ``mask_pred`` against ``mask_true``.

    ``mask`` and ``ignore`` restrict the counted pixels as in :func:`binary_counts`.
    """
    return BinaryScores.from_counts(binary_counts(mask_true, mask_pred, mask=mask, ignore=ignore))


def binary_scores_at_thresholds(
    mask_true: object,
    prob: object,
    thresholds: Sequence[float] | np.ndarray,
    *,
    mask: object | None = None,
    ignore: object | None = None,
) -> list[BinaryScores]:
    """Scores of the prediction ``prob >= t`` for every threshold ``t``, in the given order.

    One sort of the probabilities serves all thresholds, so a sweep over a large volume costs
    little more than one threshold. The comparison is done in float64.
    """
    true = _as_binary(mask_true, name="mask_true")
    values = as_numeric(prob, name="prob")
    check_same_shape(true, values, name_a="mask_true", name_b="prob")
    check_finite(values, name="prob")
    levels = np.asarray(thresholds, dtype=np.float64)
    if levels.ndim != 1 or levels.size == 0:
        raise InvalidArgumentError(
            f"thresholds must be a non-empty 1-D sequence of numbers, got shape {levels.shape}."
        )
    check_finite(levels, name="thresholds")

    region = _region(true.shape, mask, ignore)
    if region is None:
        positives = values[true]
        negatives = values[~true]
    else:
        positives = values[region & true]
        negatives = values[region & ~true]
    positives = np.sort(positives.astype(np.float64, copy=False), axis=None)
    negatives = np.sort(negatives.astype(np.float64, copy=False), axis=None)
    # Pixels with prob >= t lie at and after the left insertion point of t.
    tps = positives.size - np.searchsorted(positives, levels, side="left")
    fps = negatives.size - np.searchsorted(negatives, levels, side="left")
    return [
        BinaryScores.from_counts(
            BinaryCounts(
                tp=int(tp),
                fp=int(fp),
                fn=positives.size - int(tp),
                tn=negatives.size - int(fp),
            )
        )
        for tp, fp in zip(tps, fps, strict=True)
    ]
