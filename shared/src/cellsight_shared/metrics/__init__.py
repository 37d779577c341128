"""Evaluation metrics in the style of ``skimage.metrics``: pure numpy/scipy functions.

- :mod:`~cellsight_shared.metrics.pixel`: MAE, MSE, PSNR, SSIM and Pearson's r between images;
- :mod:`~cellsight_shared.metrics.segmentation`: binary precision, recall, F1/Dice and IoU;
- :mod:`~cellsight_shared.metrics.instance`: object IoU, matching, AP, mAP, PQ and AJI;
- :mod:`~cellsight_shared.metrics.classification`: leave-one-out kNN accuracy of features.

Functions take ``(truth, prediction, *, options)`` and return a float, an array or a small
frozen dataclass. Each module's docstring states its conventions for empty inputs.
"""

from cellsight_shared.metrics.classification import KnnAccuracy, knn_accuracy
from cellsight_shared.metrics.instance import (
    MAP_IOU_THRESHOLDS,
    MatchResult,
    aggregated_jaccard_index,
    average_precision,
    iou_matrix,
    match_instances,
    mean_average_precision,
)
from cellsight_shared.metrics.pixel import mae, mse, pearson_r, psnr, ssim
from cellsight_shared.metrics.segmentation import (
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

__all__ = [
    "MAP_IOU_THRESHOLDS",
    "BinaryCounts",
    "BinaryScores",
    "KnnAccuracy",
    "MatchResult",
    "aggregated_jaccard_index",
    "average_precision",
    "binary_counts",
    "binary_scores",
    "binary_scores_at_thresholds",
    "f1",
    "iou",
    "iou_matrix",
    "knn_accuracy",
    "mae",
    "match_instances",
    "mean_average_precision",
    "mse",
    "pearson_r",
    "precision",
    "psnr",
    "recall",
    "ssim",
]
