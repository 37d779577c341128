"""Reading wells in the original naming, z mapping, target assembly and patch sampling."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from cellsight_shared.io import write_png
from cellsight_shared.testing import require_test_data
from isl.config import DataConfig
from isl.config.model import DEFAULT_TARGET_CHANNELS
from isl.data import (
    MAXPROJECT,
    ImageKey,
    PatchLayout,
    PatchStream,
    check_wells,
    find_wells,
    format_image_name,
    index_well,
    interleave,
    load_well,
    parse_image_name,
    to_bins,
    z_index,
    z_labels,
)
from isl.data.sampling import _dihedral
from isl.errors import DataError

REPO_NAME = (
    "lab-FINKBEINER,condition-KEVAN_0_8,acquisition_date,year-2015,month-10,day-5,minute-0,"
    "well-A4,tile_computation-STITCHED,z_depth-7,channel-PHASE_CONTRAST,is_mask-false.png"
)
REPO_TARGET = (
    "lab-FINKBEINER,condition-KEVAN_0_8,acquisition_date,year-2015,month-10,day-5,minute-0,"
    "well-A4,tile_computation-STITCHED,depth_computation-MAXPROJECT,channel-DAPI_CONFOCAL,"
    "is_mask-false.png"
)
PAPER_PLANE = (
    "lab-Finkbeiner,condition-kevan_0_8,well-A4,z_depth-0,channel,value-PHASE_CONTRAST,"
    "is_mask-false,kind,value-ORIGINAL.png"
)
PAPER_TARGET = (
    "lab-Finkbeiner,condition-kevan_0_8,well-A4,depth_computation,value-MAXPROJECT,channel,"
    "value-DAPI_CONFOCAL,is_mask-false,kind,value-ORIGINAL.png"
)
PAPER_PREDICTION = (
    "lab-Finkbeiner,condition-kevan_0_8,well-A4,depth_computation,value-MAXPROJECT,channel,"
    "value-DAPI_CONFOCAL,statistic,value-MEDIAN,kind,value-PREDICTED.png"
)


def _layout(num_z: int = 26, targets=DEFAULT_TARGET_CHANNELS, patch: int = 250, out: int = 8):
    data = DataConfig()
    return PatchLayout(
        num_z_values=num_z,
        model_input_channels=("TRANSMISSION",),
        target_channels=tuple(targets),
        patch_size=patch,
        output_size=out,
        input_channels=data.input_channels,
        derived_channels=dict(data.derived_channels),
    )


def _write_well(directory: Path, *, planes: int = 3, size=(64, 64), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True)
    for z in range(planes):
        image = rng.integers(0, 65535, size, dtype=np.uint16)
        write_png(directory / format_image_name(ImageKey(z, "PHASE_CONTRAST")), image)
    image = rng.integers(0, 65535, size, dtype=np.uint16)
    write_png(directory / format_image_name(ImageKey(MAXPROJECT, "DAPI_CONFOCAL")), image)
    return directory


# ----------------------------------------------------------------------------------- naming


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (REPO_NAME, ImageKey(7, "PHASE_CONTRAST")),
        (REPO_TARGET, ImageKey(MAXPROJECT, "DAPI_CONFOCAL")),
        (PAPER_PLANE, ImageKey(0, "PHASE_CONTRAST")),
        (PAPER_TARGET, ImageKey(MAXPROJECT, "DAPI_CONFOCAL")),
    ],
)
def test_both_naming_schemes_parse_to_z_and_channel(name: str, expected: ImageKey) -> None:
    """The repository's and the paper data's file names give the same (z, channel)."""
    assert parse_image_name(name) == expected


def test_prediction_files_are_skipped_and_unparseable_names_rejected() -> None:
    """PREDICTED images are not data; a name without a channel is an error naming the pattern."""
    assert parse_image_name(PAPER_PREDICTION) is None
    with pytest.raises(ValueError, match="channel-<NAME>"):
        parse_image_name("lab-X,z_depth-3,is_mask-false.png")
    with pytest.raises(ValueError, match="z_depth"):
        parse_image_name("lab-X,channel-DIC,is_mask-false.png")


def test_format_image_name_round_trips() -> None:
    """Names written for synthetic wells parse back to their key."""
    for key in (ImageKey(12, "DIC"), ImageKey(MAXPROJECT, "MAP2_CONFOCAL")):
        assert parse_image_name(format_image_name(key)) == key


def test_z_mapping_reads_each_of_13_planes_twice_for_26_z_values() -> None:
    """int(round((N - 1) * z)) over the 26 labels uses planes 0,0,1,1,...,12,12 (README)."""
    labels = z_labels(26)
    assert labels[:3] == (0.0, 0.04, 0.08) and labels[-1] == 1.0
    indices = [z_index(label, 13) for label in labels]
    assert indices == [k // 2 for k in range(26)]
    assert [z_index(label, 26) for label in labels] == list(range(26))


def test_interleave_puts_image_then_mask_per_z() -> None:
    """Depth index (z * C + c) * 2 + m, m = 0 image and 1 mask."""
    values = np.arange(2 * 2 * 3 * 1, dtype=np.float32).reshape(2, 2, 3, 1)
    masks = np.array([[1.0], [0.0], [1.0]], np.float32)
    stacked = interleave(values, masks)
    assert stacked.shape == (2, 2, 6)
    np.testing.assert_array_equal(stacked[0, 0], [0, 1, 1, 0, 2, 1])


def test_bins_round_half_to_even_like_tf_round() -> None:
    """Bin = round(v * 255) with ties to even, clipped to 0..255."""
    values = np.array([0.0, 0.5 / 255, 1.5 / 255, 1.0, 1.2, -0.1], np.float32)
    np.testing.assert_array_equal(to_bins(values), [0, 0, 2, 255, 255, 0])


# ------------------------------------------------------------------------------- real sample


def test_real_condition_b_sample_loads_with_original_shapes() -> None:
    """The 1024x1024 uint16 Condition B well: 13 planes read as 26 z-values, 9 target heads."""
    directory = require_test_data("isl", "condition_b_sample")
    well = index_well(directory)
    assert well.shape == (1024, 1024)
    assert well.num_planes == 13
    assert well.plane_channels() == {"PHASE_CONTRAST"}
    assert well.projection_channels() == {"DAPI_CONFOCAL", "MAP2_CONFOCAL", "NFH_CONFOCAL"}
    check_wells([well], input_channels=DataConfig().input_channels, min_size=520)

    layout = _layout()
    images = layout.load(well)
    values, masks = images.input_planes(26, ("TRANSMISSION",))
    assert values.shape == (1024, 1024, 26, 1) and values.dtype == np.float32
    assert masks.shape == (26, 1) and masks.min() == 1.0
    np.testing.assert_array_equal(values[..., 0, 0], values[..., 1, 0])  # plane 0 read twice
    assert 0.0 <= values.min() and values.max() <= 1.0
    assert abs(float(values[..., ::2, 0].mean()) - 0.500) < 0.01  # the brief's measured mean

    targets, target_masks = images.target_images(layout.target_channels, layout.derived_channels)
    assert targets.shape == (1024, 1024, 9)
    present = dict(zip(layout.target_channels, target_masks, strict=True))
    assert present == {
        "DAPI_CONFOCAL": 1.0,
        "DAPI_WIDEFIELD": 0.0,
        "CELLMASK_CONFOCAL": 0.0,
        "TUJ1_WIDEFIELD": 0.0,
        "NFH_CONFOCAL": 1.0,
        "MAP2_CONFOCAL": 1.0,
        "ISLET_WIDEFIELD": 0.0,
        "DEAD_CONFOCAL": 0.0,
        "NEURITE_CONFOCAL": 1.0,
    }
    assert abs(float(targets[..., 0].mean()) - 0.245) < 0.03
    assert float(np.abs(targets[..., 1]).max()) == 0.0  # absent: black
    neurite = (targets[..., 4] + targets[..., 5]) / 2  # (NFH + MAP2) / 2
    np.testing.assert_allclose(targets[..., 8], neurite, atol=1e-6)


def test_real_sample_patches_have_network_shapes() -> None:
    """520 crops -> 4 patches of 250x250x52 with 8x8x35 bins and weights."""
    well = index_well(require_test_data("isl", "condition_b_sample"))
    stream = PatchStream([well], _layout(), crop_size=520, patch_stride=256, crops_per_visit=1, seed=0)
    assert stream.patches_per_visit == 4
    patches = [p for _, p in zip(range(4), stream.patches(), strict=False)]
    for network_input, bins, weights in patches:
        assert network_input.shape == (250, 250, 52) and network_input.dtype == np.float32
        assert bins.shape == (8, 8, 35) and bins.dtype == np.int32
        assert weights.shape == (8, 8, 35)
        # Input heads reconstruct the centre of their own input plane.
        np.testing.assert_array_equal(bins[..., 0], to_bins(network_input[121:129, 121:129, 0]))
        np.testing.assert_array_equal(weights[0, 0, :26], np.ones(26))
        assert weights[0, 0, 26 + 1] == 0.0  # DAPI_WIDEFIELD absent


# ------------------------------------------------------------------------------ sampling


def test_patch_stream_is_deterministic_and_resumable(synthetic_wells: list[Path]) -> None:
    """Same seed -> same patches; starting at index k equals skipping k patches."""
    wells = find_wells(synthetic_wells)
    layout = _layout(num_z=5, targets=("DAPI_CONFOCAL", "MAP2_CONFOCAL"), patch=32, out=8)

    def stream(seed: int) -> PatchStream:
        return PatchStream(wells, layout, crop_size=64, patch_stride=32, crops_per_visit=2, seed=seed)

    full = [p for _, p in zip(range(20), stream(3).patches(), strict=False)]
    again = [p for _, p in zip(range(20), stream(3).patches(), strict=False)]
    resumed = [p for _, p in zip(range(9), stream(3).patches(11), strict=False)]
    other = [p for _, p in zip(range(20), stream(4).patches(), strict=False)]
    for a, b in zip(full, again, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
    for a, b in zip(full[11:], resumed, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(full, other, strict=True))
    # Every well is visited once per epoch of visits.
    assert sorted(stream(3).well_of_visit(v) for v in range(3)) == [0, 1, 2]


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("rotations", [0, 1, 2, 3])
def test_patches_equal_the_transformed_crop_cut_at_their_offset(
    synthetic_wells: list[Path], flip: bool, rotations: int
) -> None:
    """Reading only the patch's square gives the same pixels as transforming the whole crop."""
    well = find_wells(synthetic_wells[:1])[0]
    layout = _layout(num_z=5, targets=("DAPI_CONFOCAL",), patch=40, out=8)
    stream = PatchStream([well], layout, crop_size=100, patch_stride=60, crops_per_visit=1, seed=0)
    images = layout.load(well)
    recipe = stream.visit(0)[0]
    recipe = type(recipe)(well=0, crop=(7, 11, 100), flip=flip, rotations=rotations, offset_in_crop=(60, 0))
    network_input, bins, _ = stream.materialize(recipe)

    crop_values, crop_masks = images.input_planes(5, ("TRANSMISSION",), (7, 11, 100, 100))
    crop_targets, _ = images.target_images(("DAPI_CONFOCAL",), {}, (7, 11, 100, 100))
    expected = _dihedral(crop_values, flip, rotations)[60:100, 0:40]
    np.testing.assert_array_equal(network_input, interleave(expected, crop_masks))
    expected_target = _dihedral(crop_targets, flip, rotations)[60 + 16 : 60 + 24, 16:24]
    np.testing.assert_array_equal(bins[..., -1], to_bins(expected_target[..., 0]))


def test_input_noise_corrupts_pixels_but_not_masks(synthetic_wells: list[Path]) -> None:
    """Gain/offset/noise change image planes only and keep them in [0, 1]; seeded."""
    wells = find_wells(synthetic_wells[:1])
    layout = _layout(num_z=5, targets=("DAPI_CONFOCAL",), patch=32, out=8)
    kwargs = dict(crop_size=64, patch_stride=32, crops_per_visit=4, seed=1)
    clean = PatchStream(wells, layout, **kwargs)
    noisy = PatchStream(wells, layout, offset_std=0.1, multiplier_std=0.1, noise_std=0.1, **kwargs)
    a = [p[0] for _, p in zip(range(16), clean.patches(), strict=False)]
    b = [p[0] for _, p in zip(range(16), noisy.patches(), strict=False)]
    changed = [not np.array_equal(x[..., 0::2], y[..., 0::2]) for x, y in zip(a, b, strict=True)]
    assert any(changed)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x[..., 1::2], y[..., 1::2])
        assert 0.0 <= y.min() and y.max() <= 1.0


# ------------------------------------------------------------------------------ bad input


def test_missing_z_plane_is_reported_before_work(tmp_path: Path) -> None:
    """Z values must be 0..N-1: a gap names the directory and the found z values."""
    well = _write_well(tmp_path / "w", planes=4)
    (well / format_image_name(ImageKey(2, "PHASE_CONTRAST"))).unlink()
    with pytest.raises(DataError, match=r"0\.\.N-1.*\[0, 1, 3\]"):
        index_well(well)


def test_wrong_z_count_is_reported(tmp_path: Path) -> None:
    """expected_z_planes rejects a well with another number of planes."""
    well = index_well(_write_well(tmp_path / "w", planes=5))
    with pytest.raises(DataError, match="expected 13 z-planes, found 5"):
        check_wells([well], input_channels=DataConfig().input_channels, expected_z_planes=13)


def test_missing_channels_are_reported(tmp_path: Path) -> None:
    """No transmitted-light planes, or a required target missing, is a DataError."""
    directory = _write_well(tmp_path / "w")
    well = index_well(directory)
    with pytest.raises(DataError, match=r"missing required channel\(s\) \['MAP2_CONFOCAL'\]"):
        check_wells([well], input_channels=("PHASE_CONTRAST",), required_channels=("MAP2_CONFOCAL",))
    with pytest.raises(DataError, match="no transmitted-light z-planes.*DIC"):
        check_wells([well], input_channels=("DIC",))


def test_two_modalities_in_one_well_are_rejected(tmp_path: Path) -> None:
    """The original sums modalities assuming one is present; two present is an error."""
    directory = _write_well(tmp_path / "w", planes=2)
    for z in range(2):
        write_png(directory / format_image_name(ImageKey(z, "DIC")), np.zeros((64, 64), np.uint16))
    with pytest.raises(DataError, match="several transmitted-light modalities"):
        check_wells([index_well(directory)], input_channels=DataConfig().input_channels)


def test_images_of_different_sizes_are_reported(tmp_path: Path) -> None:
    """All images of a well must share one size; the message lists the sizes."""
    directory = _write_well(tmp_path / "w", planes=2)
    write_png(
        directory / format_image_name(ImageKey(MAXPROJECT, "MAP2_CONFOCAL")),
        np.zeros((60, 64), np.uint16),
    )
    with pytest.raises(DataError, match=r"same size.*60x64"):
        index_well(directory)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_unreadable_png_is_reported_with_its_path(tmp_path: Path, damage: str) -> None:
    """A garbage or truncated PNG fails at indexing, naming the file."""
    directory = _write_well(tmp_path / "w", planes=2)
    victim = directory / format_image_name(ImageKey(1, "PHASE_CONTRAST"))
    data = victim.read_bytes()
    victim.write_bytes(b"not a png" if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(DataError, match="not a readable PNG") as info:
        index_well(directory)
    assert "z_depth-1" in str(info.value)


def test_find_wells_accepts_a_well_or_a_folder_of_wells(tmp_path: Path) -> None:
    """A directory with PNGs is one well; otherwise each sub-directory with PNGs is."""
    _write_well(tmp_path / "wells" / "a")
    _write_well(tmp_path / "wells" / "b", seed=1)
    assert [w.name for w in find_wells([tmp_path / "wells"])] == ["a", "b"]
    assert [w.name for w in find_wells([tmp_path / "wells" / "a"])] == ["a"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no PNGs"):
        find_wells([tmp_path / "empty"])


def test_load_well_reads_only_needed_channels(tmp_path: Path) -> None:
    """Unused channels stay on disk; absent targets are black with mask 0."""
    directory = _write_well(tmp_path / "w", planes=2)
    shutil.copy(
        directory / format_image_name(ImageKey(MAXPROJECT, "DAPI_CONFOCAL")),
        directory / format_image_name(ImageKey(MAXPROJECT, "TUJ1_WIDEFIELD")),
    )
    images = load_well(
        index_well(directory),
        input_channels=("PHASE_CONTRAST",),
        target_channels=("DAPI_CONFOCAL", "ISLET_WIDEFIELD"),
    )
    assert set(images.projections) == {"DAPI_CONFOCAL"}
    values, masks = images.target_images(("DAPI_CONFOCAL", "ISLET_WIDEFIELD"), {})
    np.testing.assert_array_equal(masks, [1.0, 0.0])
    assert values[..., 1].max() == 0.0
