"""Tests of cellsight_shared.synthetic.zstack: transmitted-light z-stacks with fluorescence targets."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from cellsight_shared.synthetic import ZSTACK_TARGETS, zstack


@pytest.fixture(scope="module")
def stack():
    return zstack(seed=0)


def test_same_seed_gives_identical_arrays():
    first = zstack(shape=(96, 96), n_planes=5, n_cells=3, seed=4)
    second = zstack(shape=(96, 96), n_planes=5, n_cells=3, seed=4)

    np.testing.assert_array_equal(first.planes, second.planes)
    for name in ZSTACK_TARGETS:
        np.testing.assert_array_equal(first.targets[name], second.targets[name])
    np.testing.assert_array_equal(first.nucleus_labels, second.nucleus_labels)
    np.testing.assert_array_equal(first.neurite_mask, second.neurite_mask)


def test_other_seed_gives_other_arrays():
    first = zstack(shape=(96, 96), n_planes=5, n_cells=3, seed=4)
    second = zstack(shape=(96, 96), n_planes=5, n_cells=3, seed=5)

    assert not np.array_equal(first.planes, second.planes)
    assert not np.array_equal(first.targets["nuclei"], second.targets["nuclei"])


def test_planes_targets_and_labels_have_documented_shapes_dtypes_and_ranges(stack):
    assert stack.planes.shape == (13, 256, 256) and stack.planes.dtype == np.float32
    assert 0.0 <= stack.planes.min() and stack.planes.max() <= 1.0
    assert tuple(stack.targets) == ZSTACK_TARGETS == ("nuclei", "cell", "neurite")
    for target in stack.targets.values():
        assert target.shape == (256, 256) and target.dtype == np.float32
        assert 0.0 <= target.min() and target.max() <= 1.0
    assert stack.cell_labels.dtype == np.int32 and stack.nucleus_labels.dtype == np.int32
    assert stack.cell_labels.max() == 10
    np.testing.assert_allclose(stack.defocus, np.linspace(-1, 1, 13), atol=1e-6)


def test_planes_follow_the_isl_intensity_statistics(stack):
    means = stack.planes.mean(axis=(1, 2))
    sds = stack.planes.std(axis=(1, 2))

    np.testing.assert_allclose(means, 0.5, atol=0.02)
    np.testing.assert_allclose(sds, 0.11, atol=0.02)
    background = stack.targets["nuclei"][stack.cell_labels == 0]
    assert 0.17 < np.median(background) < 0.23


def test_targets_are_bright_on_their_structures(stack):
    nuclei = stack.nucleus_labels > 0
    somata = stack.cell_labels > 0
    outside = ~somata & ~ndi.binary_dilation(stack.neurite_mask, iterations=2)

    assert stack.targets["nuclei"][nuclei].mean() - stack.targets["nuclei"][~nuclei].mean() > 0.4
    assert stack.targets["cell"][somata].mean() - stack.targets["cell"][outside].mean() > 0.4
    neurite = stack.targets["neurite"]
    assert neurite[stack.neurite_mask].mean() - neurite[outside].mean() > 0.3


def test_nucleus_of_soma_i_carries_label_i(stack):
    nuclei = stack.nucleus_labels > 0

    np.testing.assert_array_equal(stack.nucleus_labels[nuclei], stack.cell_labels[nuclei])
    assert set(np.unique(stack.nucleus_labels)) == set(np.unique(stack.cell_labels))
    assert not (stack.neurite_mask & (stack.cell_labels > 0)).any()


def test_nuclear_target_is_linearly_predictable_from_smoothed_planes(stack):
    features = [np.ones_like(stack.planes[0])]
    for sigma in (1.0, 3.0):
        features += [ndi.gaussian_filter(plane, sigma) for plane in stack.planes]
    features = np.stack(features, axis=-1)
    target = stack.targets["nuclei"]
    half = target.shape[1] // 2

    weights, *_ = np.linalg.lstsq(
        features[:, :half].reshape(-1, features.shape[-1]), target[:, :half].ravel(), rcond=None
    )
    predicted = features[:, half:].reshape(-1, features.shape[-1]) @ weights
    r = np.corrcoef(predicted, target[:, half:].ravel())[0, 1]

    assert r > 0.5


def test_defocus_contrast_reverses_sign_through_focus(stack):
    focus = stack.planes[6]
    below = stack.planes[0] - focus
    above = stack.planes[-1] - focus
    cells = ndi.binary_dilation(stack.cell_labels > 0, iterations=3)

    r = np.corrcoef(below[cells], above[cells])[0, 1]

    assert r < -0.3


def test_planes_get_blurrier_with_distance_from_focus():
    noiseless = zstack(shape=(128, 128), n_cells=4, noise=0.0, seed=1)
    sharpness = [np.abs(ndi.laplace(plane)).mean() for plane in noiseless.planes]

    # The in-focus plane of a phase object has little contrast; blur shows from the next planes on.
    assert sharpness[5] > sharpness[3] > sharpness[0]
    assert sharpness[7] > sharpness[9] > sharpness[12]


def test_single_plane_stack_is_in_focus():
    single = zstack(shape=(64, 64), n_planes=1, n_cells=2, seed=0)

    assert single.planes.shape == (1, 64, 64)
    np.testing.assert_array_equal(single.defocus, [0.0])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"shape": (32, 256)}, "shape"),
        ({"n_planes": 0}, "n_planes"),
        ({"n_cells": -1}, "n_cells"),
        ({"seed": 1.5}, "seed"),
        ({"noise": -0.1}, "noise"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(kwargs, field):
    with pytest.raises(ValueError, match=field):
        zstack(**kwargs)
