"""Leave-one-out k-nearest-neighbour classification accuracy of feature vectors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from cellsight_shared.errors import InvalidArgumentError, ShapeMismatchError
from cellsight_shared.metrics._checks import as_numeric, check_finite

__all__ = ["KnnAccuracy", "knn_accuracy"]

# Query rows per distance block: bounds memory at _BLOCK * n_samples float64 values.
_BLOCK = 512


@dataclass(frozen=True, eq=False)
class KnnAccuracy:
    """Result of :func:`knn_accuracy`.

    ``classes`` are the sorted distinct labels, ``class_accuracy`` the fraction of each class
    classified correctly (its recall), ``mean_class_accuracy`` their unweighted mean (balanced
    accuracy) and ``predictions`` the leave-one-out prediction of every sample.
    """

    accuracy: float
    mean_class_accuracy: float
    classes: np.ndarray
    class_accuracy: np.ndarray
    predictions: np.ndarray
    k: int
    metric: str


def _prepared_features(features: object, *, metric: str, standardize: bool) -> np.ndarray:
    data = as_numeric(features, name="features")
    if data.ndim != 2:
        raise InvalidArgumentError(
            f"features must be a 2-D array (n_samples, n_features), got shape {data.shape}; "
            "flatten each sample's features into one row."
        )
    check_finite(data, name="features")
    data = data.astype(np.float64)
    if standardize:
        scale = data.std(axis=0)
        scale[scale == 0] = 1.0  # a constant feature stays 0 instead of dividing by 0
        data = (data - data.mean(axis=0)) / scale
    if metric == "cosine":
        norms = np.linalg.norm(data, axis=1)
        if np.any(norms == 0):
            rows = np.flatnonzero(norms == 0)[:5].tolist()
            raise InvalidArgumentError(
                f"cosine distance is undefined for all-zero feature vectors (rows {rows}); "
                'drop them or use metric="euclidean".'
            )
        data = data / norms[:, np.newaxis]
    return data


def _block_distances(queries: np.ndarray, data: np.ndarray, *, metric: str) -> np.ndarray:
    """Return distances (squared for euclidean: same order) from each query to every sample."""
    products = queries @ data.T
    if metric == "cosine":
        return 1.0 - products
    query_norms = np.einsum("ij,ij->i", queries, queries)
    data_norms = np.einsum("ij,ij->i", data, data)
    return np.maximum(query_norms[:, np.newaxis] + data_norms[np.newaxis, :] - 2 * products, 0)


def _nearest(distances: np.ndarray, k: int) -> np.ndarray:
    """Return the k nearest samples of each row, ordered by (distance, index)."""
    part = np.argpartition(distances, k - 1, axis=1)[:, :k]
    part_dist = np.take_along_axis(distances, part, axis=1)
    order = np.lexsort((part, part_dist), axis=1)
    nearest = np.take_along_axis(part, order, axis=1)
    # argpartition picks arbitrarily among samples tied with the k-th distance; redo those rows.
    kth = np.take_along_axis(distances, nearest[:, -1:], axis=1)
    for row in np.flatnonzero(np.count_nonzero(distances <= kth, axis=1) > k):
        nearest[row] = np.argsort(distances[row], kind="stable")[:k]
    return nearest


def knn_accuracy(
    features: object,
    labels: object,
    *,
    k: int = 1,
    metric: Literal["euclidean", "cosine"] = "euclidean",
    standardize: bool = False,
) -> KnnAccuracy:
    """Leave-one-out kNN accuracy: each sample is classified by its k nearest other samples.

    A sample is never its own neighbour (duplicates of it still count). Neighbours are ordered
    by distance, equal distances by sample index; euclidean distances are computed as
    ``|a|^2 + |b|^2 - 2 a.b`` (fast, like sklearn), so distances equal in exact arithmetic may
    differ by rounding. The prediction is the majority label among the ``k`` neighbours; a tie
    between labels goes to the tied label of the nearest neighbour (so ``k=2`` behaves like
    ``k=1`` on a split vote; sklearn picks the smallest label instead). ``standardize=True``
    z-scores every feature over all samples first (population std; constant features are left
    at 0), as the CyCLOPS benchmark does.
    """
    if metric not in ("euclidean", "cosine"):
        raise InvalidArgumentError(f'metric must be "euclidean" or "cosine", got {metric!r}.')
    data = _prepared_features(features, metric=metric, standardize=standardize)
    names = np.asarray(labels)
    if names.ndim != 1 or names.shape[0] != data.shape[0]:
        raise ShapeMismatchError(
            f"labels has shape {names.shape} but features has shape {data.shape}; "
            "pass one label per feature row."
        )
    n_samples = data.shape[0]
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k < n_samples:
        raise InvalidArgumentError(
            f"k must be an integer in [1, n_samples - 1] = [1, {n_samples - 1}], got {k!r}."
        )
    classes, codes = np.unique(names, return_inverse=True)
    codes = codes.reshape(-1)
    n_classes = classes.size

    predicted = np.empty(n_samples, dtype=np.intp)
    for start in range(0, n_samples, _BLOCK):
        stop = min(start + _BLOCK, n_samples)
        distances = _block_distances(data[start:stop], data, metric=metric)
        distances[np.arange(stop - start), np.arange(start, stop)] = np.inf  # leave self out
        neighbour_codes = codes[_nearest(distances, int(k))]
        votes = np.zeros((stop - start, n_classes), dtype=np.intp)
        np.add.at(votes, (np.arange(stop - start)[:, np.newaxis], neighbour_codes), 1)
        top = votes == votes.max(axis=1, keepdims=True)
        # The first neighbour (nearest) whose label is among the top-voted labels decides.
        first_tied = np.argmax(np.take_along_axis(top, neighbour_codes, axis=1), axis=1)
        predicted[start:stop] = neighbour_codes[np.arange(stop - start), first_tied]

    correct = predicted == codes
    class_accuracy = np.bincount(codes, weights=correct, minlength=n_classes) / np.bincount(
        codes, minlength=n_classes
    )
    return KnnAccuracy(
        accuracy=float(correct.mean()),
        mean_class_accuracy=float(class_accuracy.mean()),
        classes=classes,
        class_accuracy=class_accuracy,
        predictions=classes[predicted],
        k=int(k),
        metric=metric,
    )
