"""Data: OpenCell and pair layouts, image lists, splits by image, crops, normalisation, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from protloc.config import DataConfig
from protloc.data import find_images, load_dataset, load_pair, parse_opencell_name, read_nucleus
from protloc.data.dataset import load_set
from protloc.errors import DataError


def test_opencell_names_are_parsed():
    """Gene, Ensembl id, CID, FID and kind come out of an FOV name."""
    parts = parse_opencell_name("OC-FOV_LMNB1_ENSG00000113368_CID000123_FID00012345_proj.tif")
    assert parts == {
        "gene": "LMNB1",
        "ensg": "ENSG00000113368",
        "cid": "CID000123",
        "fid": "FID00012345",
        "kind": "proj",
    }
    with pytest.raises(DataError, match="not an OpenCell FOV name"):
        parse_opencell_name("cells.tif")


def test_split_is_by_image_stratified_and_repeatable(synthetic_root):
    """No image is in two splits, every protein is in each split, the same seed gives the same split."""
    config = DataConfig(root=synthetic_root)
    split = load_dataset(config)
    ids = {s: {r.image_id for r in recs} for s, recs in split.records.items()}
    assert not ids["train"] & ids["test"] and not ids["train"] & ids["val"] and not ids["val"] & ids["test"]
    assert sum(len(v) for v in ids.values()) == 32
    for s in ("train", "val", "test"):
        assert {r.protein for r in split.records[s]} == {"NUCA", "CYTA", "MEMA", "PUNA"}
    assert load_dataset(config).records == split.records
    other = load_dataset(DataConfig(root=synthetic_root, split_seed=5)).records
    assert {r.image_id for r in other["test"]} != ids["test"]


def test_image_list_csv_selects_files_and_may_fix_the_split(synthetic_root, tmp_path):
    """The CSV's filename column selects FOVs; a split column overrides the random split."""
    records = find_images(DataConfig(root=synthetic_root))
    csv_path = tmp_path / "images.csv"
    lines = ["filename,split"] + [
        f"{r.path.name},{'test' if i % 4 == 0 else 'train'}" for i, r in enumerate(records[:8])
    ]
    csv_path.write_text("\n".join(lines) + "\n")
    split = load_dataset(DataConfig(root=synthetic_root, image_list=csv_path))
    assert len(split.records["test"]) == 2 and len(split.records["train"]) == 6
    missing = tmp_path / "missing.csv"
    missing.write_text("filename\nOC-FOV_ZZZ_ENSG1_CID1_FID1_proj.tif\n")
    with pytest.raises(DataError, match="found neither"):
        load_dataset(DataConfig(root=synthetic_root, image_list=missing))


def test_normalisation_is_per_image_percentile(synthetic_root):
    """Each channel's P1 maps to 0 and P99.8 to 1, whatever the file's counts."""
    record = find_images(DataConfig(root=synthetic_root))[0]
    nucleus, protein = load_pair(record, DataConfig(root=synthetic_root))
    for plane in (nucleus, protein):
        assert plane.dtype == np.float32
        assert abs(np.percentile(plane, 1.0)) < 1e-5 and abs(np.percentile(plane, 99.8) - 1) < 1e-5


def test_crops_flip_nucleus_and_protein_together(synthetic_root):
    """Augmentation moves both channels identically (a crop of the pair, not of each)."""
    config = DataConfig(root=synthetic_root)
    split = load_dataset(config)
    images = load_set(split.records["train"][:2], config, split.proteins)
    images.proteins = [n * 2 + 1 for n in images.nuclei]  # protein = affine function of the nucleus
    nuc, pro, ids = images.crops(np.array([0, 1, 0, 1]), np.random.default_rng(0), size=32)
    assert nuc.shape == pro.shape == (4, 1, 32, 32) and ids.dtype == np.int64
    np.testing.assert_allclose(pro, nuc * 2 + 1, rtol=1e-6)
    with pytest.raises(DataError, match="smaller than crop_size"):
        images.crops(np.array([0]), np.random.default_rng(0), size=128)


def test_pair_layout_reads_the_yeast_naming(tmp_path):
    """`_rfp.tif` marker + `_gfp.tif` protein, one folder per protein."""
    rng = np.random.default_rng(0)
    for protein in ("AAC1", "AAH1"):
        (tmp_path / protein).mkdir()
        for cell in range(3):
            base = tmp_path / protein / f"{protein}_1_rfp_{cell}"
            tifffile.imwrite(f"{base}_rfp.tif", rng.random((64, 64), dtype=np.float32))
            tifffile.imwrite(f"{base}_gfp.tif", rng.random((64, 64), dtype=np.float32))
    config = DataConfig(root=tmp_path, layout="pairs")
    records = find_images(config)
    assert len(records) == 6 and {r.protein for r in records} == {"AAC1", "AAH1"}
    assert records[0].protein_path.name.endswith("_gfp.tif")
    (tmp_path / "AAC1" / "AAC1_1_rfp_0_gfp.tif").unlink()
    with pytest.raises(DataError, match="has no protein image"):
        find_images(config)


def test_nan_pixels_are_an_error_naming_the_file(tmp_path):
    """A float image with NaNs is refused before training."""
    folder = tmp_path / "P1"
    folder.mkdir()
    bad = np.ones((32, 32), np.float32)
    bad[3, 4] = np.nan
    tifffile.imwrite(folder / "c_rfp.tif", bad)
    tifffile.imwrite(folder / "c_gfp.tif", np.ones((32, 32), np.float32))
    record = find_images(DataConfig(root=tmp_path, layout="pairs"))[0]
    with pytest.raises(DataError, match=r"c_rfp\.tif.*1 NaN"):
        load_pair(record, DataConfig(root=tmp_path, layout="pairs"))


def test_image_without_a_nucleus_channel_is_an_error(tmp_path):
    """An OpenCell file with one channel, or a predict image lacking the asked channel, fails clearly."""
    folder = tmp_path / "LMNB1_ENSG00000113368"
    folder.mkdir()
    path = folder / "OC-FOV_LMNB1_ENSG00000113368_CID000001_FID00000001_proj.tif"
    tifffile.imwrite(path, np.ones((1, 40, 40), np.uint16))
    record = find_images(DataConfig(root=tmp_path))[0]
    with pytest.raises(DataError, match=r"expected \(C, H, W\) with C >= 2.*nucleus in channel 0"):
        load_pair(record, DataConfig(root=tmp_path))
    three = tmp_path / "three.tif"
    tifffile.imwrite(three, np.ones((2, 40, 40), np.uint16))
    with pytest.raises(DataError, match="no nucleus channel 3"):
        read_nucleus(three, channel=3, low=1, high=99)
    with pytest.raises(DataError, match="--nucleus-channel"):
        read_nucleus(three, channel=None, low=1, high=99)
