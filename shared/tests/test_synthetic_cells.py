"""Tests of cellsight_shared.synthetic.cells: 2-D cell fields and single-cell crops."""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import regionprops
from skimage.segmentation import find_boundaries

from cellsight_shared.synthetic import CELL_CHANNELS, LOCALIZATIONS, cell_crops, cells_2d


def _protein_above_background(cells):
    """Protein intensity above the background level plus three noise SDs, zero below it."""
    protein = cells.channel("protein").astype(np.float64)
    outside = protein[cells.cell_labels == 0]
    return np.clip(protein - np.median(outside) - 3 * outside.std(), 0.0, None)


def _fraction_in(signal, mask):
    return float(signal[mask].sum() / signal.sum())


def test_same_seed_gives_identical_arrays():
    first = cells_2d(localization="mitochondrial", seed=7)
    second = cells_2d(localization="mitochondrial", seed=7)

    for name in ("image", "cell_labels", "nucleus_labels", "protein_mask"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))


def test_other_seed_gives_other_arrays():
    first = cells_2d(seed=1)
    second = cells_2d(seed=2)

    assert not np.array_equal(first.image, second.image)
    assert not np.array_equal(first.cell_labels, second.cell_labels)


def test_image_and_labels_have_documented_shapes_dtypes_and_ranges():
    cells = cells_2d(shape=(96, 160), n_cells=6, seed=3)

    assert cells.image.shape == (3, 96, 160)
    assert cells.image.dtype == np.float32
    assert 0.0 <= cells.image.min() and cells.image.max() <= 1.0
    assert cells.channel_names == CELL_CHANNELS == ("nucleus", "cell", "protein")
    assert cells.cell_labels.dtype == np.int32 and cells.nucleus_labels.dtype == np.int32
    assert cells.protein_mask.dtype == bool and cells.protein_mask.shape == (96, 160)
    assert set(np.unique(cells.cell_labels)) == set(range(7))


def test_nucleus_of_cell_i_carries_label_i_and_nuclei_never_touch():
    cells = cells_2d(n_cells=12, seed=4)
    nuclei = cells.nucleus_labels > 0

    np.testing.assert_array_equal(cells.nucleus_labels[nuclei], cells.cell_labels[nuclei])
    assert set(np.unique(cells.nucleus_labels)) == set(np.unique(cells.cell_labels))
    _, n_components = ndi.label(nuclei)
    assert n_components == cells.nucleus_labels.max()


def test_nuclear_and_cell_channels_are_bright_inside_their_labels():
    cells = cells_2d(seed=5)
    nucleus, cell = cells.channel("nucleus"), cells.channel("cell")
    in_nucleus = cells.nucleus_labels > 0
    in_cell = cells.cell_labels > 0

    assert nucleus[in_nucleus].mean() - nucleus[~in_nucleus].mean() > 0.3
    assert cell[in_cell].mean() - cell[~in_cell].mean() > 0.3


def test_crowded_field_yields_fewer_cells_instead_of_failing():
    cells = cells_2d(shape=(64, 64), n_cells=40, cell_radius=12, seed=0)

    assert 1 <= cells.cell_labels.max() < 40


@pytest.mark.parametrize("localization", LOCALIZATIONS)
def test_every_localization_puts_the_protein_signal_in_its_compartment(localization):
    cells = cells_2d(localization=localization, seed=11)
    signal = _protein_above_background(cells)
    near_mask = ndi.binary_dilation(cells.protein_mask, iterations=2)

    assert cells.localization == localization
    assert cells.protein_mask.any()
    assert not (cells.protein_mask & (cells.cell_labels == 0)).any()
    rest_of_cells = (cells.cell_labels > 0) & ~near_mask
    assert signal[near_mask].mean() > 3.0 * signal[rest_of_cells].mean()


def test_nuclear_protein_lies_inside_nuclei():
    cells = cells_2d(localization="nuclear", seed=12)

    assert _fraction_in(_protein_above_background(cells), cells.nucleus_labels > 0) > 0.7


def test_nucleolar_protein_is_brighter_in_nucleoli_than_in_the_rest_of_the_nucleus():
    cells = cells_2d(localization="nucleolar", seed=13)
    protein = cells.channel("protein")
    nucleoplasm = (cells.nucleus_labels > 0) & ~ndi.binary_dilation(cells.protein_mask, iterations=2)

    assert protein[cells.protein_mask].mean() > 2.5 * protein[nucleoplasm].mean()
    assert _fraction_in(_protein_above_background(cells), cells.nucleus_labels > 0) > 0.7


def test_nuclear_envelope_protein_rims_the_nucleus():
    cells = cells_2d(localization="nuclear_envelope", seed=14)
    protein = cells.channel("protein")
    nuclei = cells.nucleus_labels > 0
    rim = find_boundaries(cells.nucleus_labels, mode="thick")
    centre = ndi.distance_transform_edt(nuclei) > 4

    assert protein[rim].mean() > 2.0 * protein[centre].mean()


def test_cytoplasmic_protein_fills_the_cytoplasm_not_the_nucleus():
    cells = cells_2d(localization="cytoplasmic", seed=15)
    protein = cells.channel("protein")
    cytoplasm = (cells.cell_labels > 0) & (cells.nucleus_labels == 0)
    nucleus_core = ndi.distance_transform_edt(cells.nucleus_labels > 0) > 2

    assert _fraction_in(_protein_above_background(cells), cytoplasm) > 0.7
    assert protein[nucleus_core].mean() < 0.5 * protein[cytoplasm].mean()


def test_membrane_protein_concentrates_at_cell_boundaries():
    cells = cells_2d(localization="membrane", seed=16)
    protein = cells.channel("protein")
    inside = cells.cell_labels > 0
    depth = ndi.distance_transform_edt(~find_boundaries(cells.cell_labels, mode="inner")) * inside
    band = inside & (depth < 2)
    interior = inside & (depth > 4)

    assert protein[band].mean() > 3.0 * protein[interior].mean()


def test_punctate_protein_forms_many_small_spots_in_the_cytoplasm():
    cells = cells_2d(localization="punctate", seed=17)
    spots, n_spots = ndi.label(cells.protein_mask)
    sizes = np.bincount(spots.ravel())[1:]
    cytoplasm = (cells.cell_labels > 0) & (cells.nucleus_labels == 0)

    assert n_spots >= 5 * cells.cell_labels.max()
    assert np.median(sizes) <= 6
    assert _fraction_in(_protein_above_background(cells), cytoplasm) > 0.7


def test_mitochondrial_protein_forms_elongated_tubules_in_the_cytoplasm():
    cells = cells_2d(localization="mitochondrial", seed=18)
    tubules, _ = ndi.label(cells.protein_mask)
    large = [p for p in regionprops(tubules) if p.area >= 8]
    elongation = np.median([p.axis_major_length / max(p.axis_minor_length, 1.0) for p in large])
    cytoplasm = (cells.cell_labels > 0) & (cells.nucleus_labels == 0)

    assert len(large) >= cells.cell_labels.max()
    assert elongation > 2.0
    assert _fraction_in(_protein_above_background(cells), cytoplasm) > 0.7


def test_golgi_protein_sits_on_one_side_of_the_nucleus():
    cells = cells_2d(localization="golgi", seed=19)
    rows, cols = np.indices(cells.cell_labels.shape)
    one_sidedness = []
    for label in range(1, cells.cell_labels.max() + 1):
        golgi = cells.protein_mask & (cells.cell_labels == label)
        nucleus = cells.nucleus_labels == label
        if golgi.sum() < 5:
            continue
        angles = np.arctan2(rows[golgi] - rows[nucleus].mean(), cols[golgi] - cols[nucleus].mean())
        one_sidedness.append(np.abs(np.exp(1j * angles).mean()))
    gap = ndi.distance_transform_edt(cells.nucleus_labels == 0)

    assert len(one_sidedness) >= cells.cell_labels.max() - 1
    assert np.median(one_sidedness) > 0.7
    assert np.median(gap[cells.protein_mask]) < 5


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"shape": (16, 128)}, "shape"),
        ({"shape": (128,)}, "shape"),
        ({"localization": "vacuole"}, "localization"),
        ({"seed": -1}, "seed"),
        ({"n_cells": 0}, "n_cells"),
        ({"cell_radius": 2.0}, "cell_radius"),
        ({"noise": 2.0}, "noise"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(kwargs, field):
    with pytest.raises(ValueError, match=field):
        cells_2d(**kwargs)


def test_cell_crops_have_documented_layout_and_grouped_labels():
    crops = cell_crops(3, size=48, classes=("nuclear", "membrane"), seed=0)

    assert crops.images.shape == (6, 3, 48, 48)
    assert crops.images.dtype == np.float32
    assert 0.0 <= crops.images.min() and crops.images.max() <= 1.0
    np.testing.assert_array_equal(crops.labels, [0, 0, 0, 1, 1, 1])
    assert crops.labels.dtype == np.int64
    assert crops.class_names == ("nuclear", "membrane")
    assert crops.channel_names == CELL_CHANNELS


def test_cell_crops_are_deterministic_and_extending_keeps_the_first_crops():
    small = cell_crops(2, size=48, classes=("punctate", "golgi"), seed=3)
    large = cell_crops(4, size=48, classes=("punctate", "golgi"), seed=3)
    other = cell_crops(2, size=48, classes=("punctate", "golgi"), seed=4)

    np.testing.assert_array_equal(small.images[:2], large.images[:2])
    np.testing.assert_array_equal(small.images[2:], large.images[4:6])
    assert not np.array_equal(small.images, other.images)


def test_cell_crop_classes_are_separable_by_simple_radial_features():
    crops = cell_crops(12, size=48, seed=0)
    rows, cols = np.indices((48, 48))
    ring = np.minimum((np.hypot(rows - 23.5, cols - 23.5) / 2.5).astype(int), 9)
    features = []
    for image in crops.images:
        protein = image[2] / (image[2].max() + 1e-6)
        nucleus = image[0] / (image[0].max() + 1e-6)
        profile = np.bincount(ring.ravel(), protein.ravel()) / np.bincount(ring.ravel())
        overlap = (protein * nucleus).sum() / (protein.sum() + 1e-6)
        spottiness = protein.std() / (protein.mean() + 1e-6)
        features.append([*profile, overlap, spottiness])
    features = np.asarray(features)
    features = (features - features.mean(0)) / (features.std(0) + 1e-9)
    distance = np.linalg.norm(features[:, None] - features[None], axis=-1)
    np.fill_diagonal(distance, np.inf)
    nearest = crops.labels[np.argmin(distance, axis=1)]

    accuracy = (nearest == crops.labels).mean()
    assert accuracy > 0.6  # chance is 1/8


def test_cell_crops_reject_unknown_or_repeated_classes():
    with pytest.raises(ValueError, match="localization"):
        cell_crops(2, classes=("nuclear", "cilia"))
    with pytest.raises(ValueError, match="distinct"):
        cell_crops(2, classes=("nuclear", "nuclear"))
