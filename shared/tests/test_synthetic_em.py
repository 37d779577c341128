"""Tests of cellsight_shared.synthetic.em: FIB-SEM-like volumes and their incasem zarr layout."""

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from cellsight_shared.errors import DataFileError
from cellsight_shared.io import read_zarr, zarr_geometry
from cellsight_shared.synthetic import EM_ORGANELLES, em_volume, write_em_volume_zarr

SMALL = {"shape": (48, 64, 64), "n_mito": 4, "n_er": 4, "n_vesicles": 10}


@pytest.fixture(scope="module")
def volume():
    return em_volume(seed=0)


@pytest.fixture(scope="module")
def small():
    return em_volume(seed=1, **SMALL)


def test_same_seed_gives_identical_arrays(small):
    again = em_volume(seed=1, **SMALL)

    np.testing.assert_array_equal(small.raw, again.raw)
    np.testing.assert_array_equal(small.cell_mask, again.cell_mask)
    for name in EM_ORGANELLES:
        np.testing.assert_array_equal(small.labels[name], again.labels[name])


def test_other_seed_gives_other_arrays(small):
    other = em_volume(seed=2, **SMALL)

    assert not np.array_equal(small.raw, other.raw)
    assert not np.array_equal(small.labels["mito"], other.labels["mito"])


def test_volume_and_labels_have_documented_shapes_and_dtypes(volume):
    assert volume.raw.shape == (96, 96, 96) and volume.raw.dtype == np.uint8
    assert tuple(volume.labels) == EM_ORGANELLES == ("mito", "er", "golgi", "nucleus")
    for mask in (*volume.labels.values(), volume.cell_mask):
        assert mask.shape == (96, 96, 96) and mask.dtype == np.uint8
        assert set(np.unique(mask)) == {0, 1}
    assert 0.7 < volume.cell_mask.mean() < 0.95


def test_organelle_labels_do_not_overlap_and_lie_inside_the_cell(volume):
    stacked = np.stack([volume.labels[name] for name in EM_ORGANELLES]).astype(int)

    assert stacked.sum(axis=0).max() == 1
    assert not (stacked.any(axis=0) & (volume.cell_mask == 0)).any()


def test_intensities_follow_fib_sem_contrast(volume):
    raw = volume.raw.astype(float)
    organelles = np.stack(list(volume.labels.values())).any(axis=0)
    cytoplasm = (volume.cell_mask > 0) & ~ndi.binary_dilation(organelles, iterations=2)

    assert raw[volume.labels["mito"] > 0].mean() < raw[cytoplasm].mean() - 30
    assert raw[volume.labels["er"] > 0].mean() < raw[cytoplasm].mean() - 15
    assert raw[volume.cell_mask == 0].mean() > raw[cytoplasm].mean() + 30
    assert raw[cytoplasm].std() > 10  # noisy texture, not flat grey


def test_requested_mitochondria_are_placed_as_separate_objects(volume):
    _, n_mito = ndi.label(volume.labels["mito"])

    assert 8 <= n_mito <= 12  # ten requested; one cut by a face may split in two


def test_mitochondria_are_not_separable_by_a_grey_level_threshold_alone(volume):
    smoothed = ndi.gaussian_filter(volume.raw.astype(float), 1.5)
    mito = volume.labels["mito"] > 0

    best_f1 = 0.0
    for threshold in range(60, 160, 4):
        predicted = smoothed < threshold
        f1 = 2 * (predicted & mito).sum() / (predicted.sum() + mito.sum())
        best_f1 = max(best_f1, f1)

    # Clear contrast (a threshold finds most of them) but nuclei, ER and dense-core vesicles
    # are dark too, so a learned model has something to beat.
    assert 0.4 < best_f1 < 0.85


def test_object_counts_and_nucleus_switch_are_honoured():
    empty = em_volume(shape=(40, 40, 40), n_mito=0, n_er=0, n_golgi=0, n_vesicles=0, nucleus=False)

    for name in EM_ORGANELLES:
        assert not empty.labels[name].any()
    assert empty.cell_mask.any() and not empty.cell_mask.all()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"shape": (16, 96, 96)}, "shape"),
        ({"shape": (96, 96)}, "shape"),
        ({"n_mito": -1}, "n_mito"),
        ({"n_er": 2.5}, "n_er"),
        ({"seed": -3}, "seed"),
        ({"nucleus": 1}, "nucleus"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(kwargs, field):
    with pytest.raises(ValueError, match=field):
        em_volume(**kwargs)


def test_zarr_container_uses_the_incasem_dataset_names_and_geometry(small, tmp_path):
    store = write_em_volume_zarr(tmp_path / "cell.zarr", small, resolution=(5, 5, 5), offset=(50, 100, 150))

    np.testing.assert_array_equal(read_zarr(store, "volumes/raw"), small.raw)
    for name in EM_ORGANELLES:
        np.testing.assert_array_equal(read_zarr(store, f"volumes/labels/{name}"), small.labels[name])
    mask = read_zarr(store, "volumes/mask")
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    np.testing.assert_array_equal(mask > 0, small.cell_mask > 0)
    assert zarr_geometry(store, "volumes/raw") == ((50.0, 100.0, 150.0), (5.0, 5.0, 5.0))
    # incasem reads the raw geometry straight from the zarr v2 JSON files.
    attrs = json.loads((store / "volumes" / "raw" / ".zattrs").read_text())
    zarray = json.loads((store / "volumes" / "raw" / ".zarray").read_text())
    assert attrs["offset"] == [50, 100, 150] and attrs["resolution"] == [5, 5, 5]
    assert zarray["zarr_format"] == 2 and zarray["shape"] == [48, 64, 64]


def test_zarr_writer_refuses_to_overwrite_unless_asked(small, tmp_path):
    store = write_em_volume_zarr(tmp_path / "cell.zarr", small)

    with pytest.raises(DataFileError, match="already exists"):
        write_em_volume_zarr(store, small)
    write_em_volume_zarr(store, small, resolution=(8, 4, 4), overwrite=True)
    assert zarr_geometry(store, "volumes/labels/mito")[1] == (8.0, 4.0, 4.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cell.zarr"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"offset": (1, 0, 0)}, "multiple"),
        ({"resolution": (5, 5)}, "resolution"),
        ({"resolution": (0, 5, 5)}, "resolution"),
        ({"offset": ("a", 0, 0)}, "offset"),
    ],
)
def test_zarr_writer_rejects_bad_geometry_before_writing(small, tmp_path, kwargs, field):
    with pytest.raises(ValueError, match=field):
        write_em_volume_zarr(tmp_path / "cell.zarr", small, **kwargs)

    assert not (tmp_path / "cell.zarr").exists()
