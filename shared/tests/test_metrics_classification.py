"""Leave-one-out kNN accuracy against sklearn, plus tie-breaking rules and input errors."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import LeaveOneOut, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.preprocessing import StandardScaler

from cellsight_shared.errors import NonFiniteError, ShapeMismatchError
from cellsight_shared.metrics import KnnAccuracy, knn_accuracy
from cellsight_shared.metrics import classification as classification_module

SEEDS = [0, 1]


def _dataset(seed, n=60, n_features=5, n_classes=3):
    """Overlapping Gaussian clusters: accuracy well between chance and 1."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    centers = rng.normal(0, 1.0, (n_classes, n_features))
    features = centers[labels] + rng.normal(0, 1.0, (n, n_features))
    return features, labels


def _sklearn_loo(features, labels, k, metric):
    # kd_tree is exact and, on tiny sets, much faster than sklearn's threaded brute force.
    algorithm = "kd_tree" if metric == "euclidean" else "brute"
    model = KNeighborsClassifier(n_neighbors=k, metric=metric, algorithm=algorithm)
    return cross_val_predict(model, features, labels, cv=LeaveOneOut())


def _vote_is_tied(features, labels, k, metric):
    """Per sample: True where its k leave-one-out neighbours split the vote."""
    neighbours = NearestNeighbors(n_neighbors=k + 1, metric=metric, algorithm="brute")
    _, index = neighbours.fit(features).kneighbors(features)
    tied = []
    for i, row in enumerate(index):
        others = [j for j in row if j != i][:k]
        counts = np.bincount(labels[others])
        tied.append(np.count_nonzero(counts == counts.max()) > 1)
    return np.array(tied)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("k", [1, 7])
def test_binary_knn_matches_sklearn_leave_one_out(seed, metric, k):
    features, labels = _dataset(seed, n_classes=2)  # odd k and two classes: no split votes
    result = knn_accuracy(features, labels, k=k, metric=metric)
    expected = _sklearn_loo(features, labels, k, metric)
    np.testing.assert_array_equal(result.predictions, expected)
    assert result.accuracy == pytest.approx(accuracy_score(labels, expected))
    assert result.mean_class_accuracy == pytest.approx(balanced_accuracy_score(labels, expected))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [2, 5, 11])
def test_multiclass_knn_matches_sklearn_where_the_vote_is_not_split(seed, k):
    features, labels = _dataset(seed, n=80, n_classes=4)
    result = knn_accuracy(features, labels, k=k)
    expected = _sklearn_loo(features, labels, k, "euclidean")
    clear = ~_vote_is_tied(features, labels, k, "euclidean")
    assert clear.sum() > 40
    np.testing.assert_array_equal(result.predictions[clear], expected[clear])
    for c, accuracy in zip(result.classes, result.class_accuracy, strict=True):
        members = labels == c
        assert accuracy == pytest.approx(np.mean(result.predictions[members] == c))


@pytest.mark.parametrize("seed", SEEDS)
def test_standardize_equals_sklearn_on_z_scored_features(seed):
    features, labels = _dataset(seed, n_classes=2)
    features = features * np.array([1.0, 100.0, 0.01, 5.0, 1.0]) + 3.0
    features[:, 4] = 2.5  # a constant feature must not produce NaN
    result = knn_accuracy(features, labels, k=5, standardize=True)
    expected = _sklearn_loo(StandardScaler().fit_transform(features), labels, 5, "euclidean")
    np.testing.assert_array_equal(result.predictions, expected)


def test_knn_on_separated_clusters_is_perfect_and_beats_chance_on_overlapping_ones():
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 20)
    features = np.array([[0, 0], [10, 0], [0, 10]])[np.repeat([0, 1, 2], 20)] + rng.normal(0, 0.5, (60, 2))
    result = knn_accuracy(features, labels, k=3)
    assert isinstance(result, KnnAccuracy)
    assert (result.accuracy, result.mean_class_accuracy) == (1.0, 1.0)
    assert result.classes.tolist() == ["a", "b", "c"]
    features, labels = _dataset(1, n=90)
    assert knn_accuracy(features, labels, k=5).accuracy > 0.5  # chance is about 1/3


def test_split_vote_goes_to_the_nearest_neighbours_label():
    # Sample 0 at x=0: its neighbours are x=1 (label 9) and x=2 (label 1); with k=2 the vote
    # is 1:1 and the nearest neighbour's label (9) wins, where sklearn would pick the smaller.
    features = np.array([[0.0], [1.0], [2.0], [50.0], [51.0]])
    labels = np.array([5, 9, 1, 5, 5])
    result = knn_accuracy(features, labels, k=2)
    assert result.predictions[0] == 9
    assert _sklearn_loo(features, labels, 2, "euclidean")[0] == 1


def test_equal_distances_are_ordered_by_sample_index():
    features = np.array([[0.0], [-1.0], [1.0], [30.0]])
    assert knn_accuracy(features, np.array([0, 1, 2, 2]), k=1).predictions[0] == 1
    assert knn_accuracy(features, np.array([0, 2, 1, 2]), k=1).predictions[0] == 2


def test_duplicate_samples_are_neighbours_but_self_is_not():
    features = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0], [5.1, 5.0]])
    result = knn_accuracy(features, np.array([1, 0, 0, 1]), k=1)
    # Sample 0's only zero-distance neighbour is its duplicate (label 0), not itself.
    np.testing.assert_array_equal(result.predictions, [0, 1, 1, 0])
    assert result.accuracy == 0.0


def test_class_accuracy_and_its_mean_are_per_class():
    features = np.array([[0.0], [0.1], [0.2], [0.3], [15.0], [20.0]])
    labels = np.array(["x", "x", "x", "x", "y", "z"])
    result = knn_accuracy(features, labels, k=1)
    # Every x finds another x; the lone y and z find each other.
    np.testing.assert_array_equal(result.predictions, ["x", "x", "x", "x", "z", "y"])
    np.testing.assert_allclose(result.class_accuracy, [1.0, 0.0, 0.0])
    assert result.accuracy == pytest.approx(4 / 6)
    assert result.mean_class_accuracy == pytest.approx(1 / 3)


def test_blockwise_distances_give_the_same_predictions(monkeypatch):
    features, labels = _dataset(2, n=50, n_classes=3)
    expected = knn_accuracy(features, labels, k=4).predictions
    monkeypatch.setattr(classification_module, "_BLOCK", 7)
    np.testing.assert_array_equal(knn_accuracy(features, labels, k=4).predictions, expected)


def test_invalid_inputs_are_rejected():
    features, labels = _dataset(0, n=10)
    with pytest.raises(ValueError, match="k must be"):
        knn_accuracy(features, labels, k=10)
    with pytest.raises(ValueError, match="k must be"):
        knn_accuracy(features, labels, k=0)
    with pytest.raises(ShapeMismatchError, match="one label per feature row"):
        knn_accuracy(features, labels[:-1])
    with pytest.raises(ValueError, match="2-D"):
        knn_accuracy(features.ravel(), labels)
    with pytest.raises(ValueError, match="metric"):
        knn_accuracy(features, labels, metric="manhattan")
    zero_row = features.copy()
    zero_row[3] = 0
    with pytest.raises(ValueError, match=r"rows \[3\]"):
        knn_accuracy(zero_row, labels, metric="cosine")
    bad = features.copy()
    bad[2, 1] = np.nan
    with pytest.raises(NonFiniteError, match="features"):
        knn_accuracy(bad, labels)
