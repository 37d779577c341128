"""The original layouts load; bad crops fail before work; pairs are seeded and from one group."""

import numpy as np
import pytest
import tifffile

from pairedinpaint.data import (
    PairSampler,
    assemble,
    check_crops,
    index_cells,
    load_crops,
    pair_groups,
    read_cell,
    write_layout,
)
from pairedinpaint.errors import DataError


def test_real_yeast_subset_loads(yeast_subset):
    """5 strains x 40 cells, [protein, marker] each min-max normalised."""
    cells = index_cells(yeast_subset, "yeast")
    assert len(cells) == 200
    assert sorted({c.label for c in cells}) == ["AAC1", "AAC3", "AAH1", "AAP1", "AAR2"]
    assert all(c.paths[1].name.endswith("_rfp.tif") for c in cells)
    crops = load_crops(cells[:10], layout="yeast", size=64, progress=False)
    assert crops.shape == (10, 64, 64, 2)
    np.testing.assert_allclose(crops.min(axis=(1, 2)), 0, atol=1e-7)
    np.testing.assert_allclose(crops.max(axis=(1, 2)), 1, atol=1e-6)
    raw = tifffile.imread(cells[0].paths[0]).astype(np.float32)
    np.testing.assert_allclose(crops[0, ..., 0], (raw - raw.min()) / (raw.max() - raw.min()), rtol=1e-5)


def test_brightfield_marker_is_preferred_over_rfp(tmp_path):
    d = tmp_path / "P"
    d.mkdir()
    for suffix in ("gfp", "rfp", "bf"):
        tifffile.imwrite(d / f"P_1_rfp_1_{suffix}.tif", np.random.rand(64, 64).astype(np.float32))
    assert index_cells(tmp_path)[0].paths[1].name == "P_1_rfp_1_bf.tif"


def test_human_layout_reads_128_px_crops_with_window_and_block_mean(tmp_path):
    """[antibody min-max, nucleus window, microtubule window] at 64 px from 128-px crops."""
    d = tmp_path / "A1CF_762_F2"
    d.mkdir()
    rng = np.random.default_rng(0)
    raw = {c: rng.random((128, 128)).astype(np.float32) for c in ("green", "blue", "red")}
    for c, image in raw.items():
        tifffile.imwrite(d / f"762_F2_1_10_{c}.tif", image)
    cells = index_cells(tmp_path, "human")
    assert cells[0].name == "762_F2_1_10" and cells[0].field == "A1CF_762_F2/762_F2_1"
    crop = read_cell(cells[0], layout="human", size=64)
    small = raw["blue"].reshape(64, 2, 64, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(crop[..., 1], np.clip((small - 0.05) / 0.95, 0, 1), atol=1e-6)
    assert crop[..., 0].max() == pytest.approx(1.0)


def test_crops_of_the_wrong_size_are_refused_naming_the_file(tmp_path):
    write_layout(tmp_path, np.random.rand(2, 2, 48, 48), ["A", "A"])
    cells = index_cells(tmp_path)
    with pytest.raises(DataError, match=r"A_1_rfp_2_gfp.tif is 48x48 px; expected 64x64"):
        check_crops(cells, layout="yeast", size=64)


def test_crops_with_extra_channels_are_refused(tmp_path):
    d = tmp_path / "A"
    d.mkdir()
    tifffile.imwrite(
        d / "A_1_rfp_1_gfp.tif", np.random.rand(3, 64, 64).astype(np.float32), photometric="minisblack"
    )
    tifffile.imwrite(d / "A_1_rfp_1_rfp.tif", np.random.rand(64, 64).astype(np.float32))
    with pytest.raises(DataError, match="expected one grey channel"):
        check_crops(index_cells(tmp_path), layout="yeast", size=64)


def test_missing_marker_and_empty_folder_are_refused(tmp_path):
    (tmp_path / "A").mkdir()
    with pytest.raises(DataError, match="no cells found"):
        index_cells(tmp_path)
    tifffile.imwrite(tmp_path / "A" / "A_1_rfp_1_gfp.tif", np.zeros((64, 64), np.float32))
    with pytest.raises(DataError, match="lack a marker channel"):
        index_cells(tmp_path)


def test_constant_crops_give_zeros_not_nan(tmp_path):
    write_layout(tmp_path, np.full((2, 2, 64, 64), 0.5), ["A", "A"])
    crops = load_crops(index_cells(tmp_path), layout="yeast", size=64, progress=False)
    assert np.all(np.isfinite(crops)) and np.all(crops == 0)


def test_a_directory_with_one_cell_is_refused_or_skipped(tmp_path):
    cells = write_layout(tmp_path, np.random.rand(4, 2, 64, 64), ["A", "A", "A", "B"])
    with pytest.raises(DataError, match=r"1 directory group\(s\) hold a single cell.*'B'"):
        pair_groups(cells)
    groups = pair_groups(cells, singletons="skip")
    assert [len(g) for g in groups] == [3]


def test_pairs_are_seeded_distinct_and_from_the_same_group(synthetic_yeast_dir):
    cells = index_cells(synthetic_yeast_dir)
    groups = pair_groups(cells)
    sampler = PairSampler(groups, batch_size=16, seed=5)
    a = sampler.batch(3, 2)
    b = PairSampler(groups, batch_size=16, seed=5).batch(3, 2)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    src, tgt, flips = a
    assert np.all(src != tgt)
    assert all(cells[s].label == cells[t].label for s, t in zip(src, tgt, strict=True))
    epoch = np.concatenate([sampler.batch(0, i)[0] for i in range(len(sampler))])
    assert len(set(epoch.tolist())) == len(epoch)  # every source at most once per epoch
    assert 0.3 < flips.mean() < 0.7
    assert not np.array_equal(sampler.batch(4, 2)[0], src)


def test_field_pairing_keeps_pairs_within_a_field(synthetic_yeast_dir):
    cells = index_cells(synthetic_yeast_dir)
    sampler = PairSampler(pair_groups(cells, pair_with="field"), batch_size=32, seed=0)
    src, tgt, _ = sampler.batch(0, 0)
    assert all(cells[s].field == cells[t].field for s, t in zip(src, tgt, strict=True))


def test_assemble_flips_source_and_target_independently():
    crops = np.random.default_rng(0).random((2, 8, 8, 2)).astype(np.float32)
    flips = np.array([[True, False, False, True]])
    x, y_rfp, y_gfp = assemble(crops, np.array([0]), np.array([1]), flips)
    np.testing.assert_array_equal(x[0], crops[0, :, ::-1])
    np.testing.assert_array_equal(y_rfp[0, ..., 0], crops[1, ::-1, :, 1])
    np.testing.assert_array_equal(y_gfp[0, ..., 0], crops[1, ::-1, :, 0])
