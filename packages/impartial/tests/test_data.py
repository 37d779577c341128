"""Readers of the original layouts and bad input: each a clear error before any work."""

import zipfile

import numpy as np
import pytest
import tifffile

from impartial.config import DataConfig
from impartial.data import load_dataset, read_image, read_roi_zip
from impartial.data.readers import normalize_image, read_label_image, read_scribble_file
from impartial.errors import DataError


def test_vectra_fixture_tiff_and_roi_zips(vectra_dir):
    """Real files: 400x400x2 float32 images; ROI zips give 259/104/84/260 cells, ROI 1 included."""
    image = read_image(vectra_dir / "image0.tif")
    assert image.shape == (2, 400, 400) and image.dtype == np.float32
    counts = {
        n: int(read_roi_zip(vectra_dir / "labels" / "final" / f"{n}.zip", (400, 400)).max())
        for n in ("image0", "image1", "image2", "image4")
    }
    assert counts == {"image0": 259, "image1": 104, "image2": 84, "image4": 260}
    lab = read_roi_zip(vectra_dir / "labels" / "final" / "image1.zip", (400, 400))
    assert (lab == 1).sum() > 20  # the first ROI is a cell, not background (the v3 bug)
    samples = load_dataset(
        DataConfig(root=vectra_dir, train=["image0"], test=["image2"], scribble_budget=30),
        n_scribble_channels=2,
    )
    train, test = samples
    assert train.scribble.shape == (2, 400, 400) and train.val_mask.sum() == 160 * 160
    assert train.scribble.mean() < 0.05  # scribbles cover under 5 % of the pixels
    assert test.scribble is None and test.label.max() == 84
    lo, hi = np.percentile(read_image(vectra_dir / "image0.tif"), [1, 98])
    assert np.allclose(train.image, (read_image(vectra_dir / "image0.tif") - lo) / (hi - lo), atol=1e-5)


def test_global_p1_p98_is_over_all_channels_and_unclipped():
    """Percentiles over the whole multichannel array: channel 1 keeps its relative scale."""
    img = np.stack([np.linspace(0, 1, 1000), np.linspace(0, 10, 1000)]).reshape(2, 10, 100).astype(np.float32)
    out = normalize_image(img)
    lo, hi = np.percentile(img, [1, 98])
    assert out.max() == pytest.approx((10 - lo) / (hi - lo), rel=1e-5)
    assert out.min() < 0


def _v2_dataset(tmp_path):
    rng = np.random.default_rng(0)
    lab = np.zeros((32, 32, 1), np.int64)
    lab[4:12, 4:12] = 1
    np.savez(tmp_path / "image0.npz", image=rng.random((32, 32, 2)).astype(np.float32), label=lab)
    scr = np.zeros((32, 32, 2))
    scr[6, 6, 0] = scr[20, 20, 1] = 1
    val = np.zeros((32, 32))
    val[:8, :8] = 1
    np.savez(tmp_path / "image0_scribble_n2.npz", scribble=scr, val_mask=val)
    csv = tmp_path / "files_1task1class_1images_scribble_train_2.csv"
    csv.write_text(
        ",prefix,input_dir,input_file,scribble_file,gt_index_task0\n"
        "0,image0,/data/natalia/stale/,image0.npz,image0_scribble_n2.npz,[0]\n"
    )
    return csv


def test_v2_npz_csv_layout_with_a_stale_input_dir(tmp_path):
    """v2 npz image + scribble npz + val_mask; a stale absolute input_dir resolves beside the CSV."""
    csv = _v2_dataset(tmp_path)
    (s,) = load_dataset(DataConfig(format="npz_csv", csv=csv), n_scribble_channels=2)
    assert s.image.shape == (2, 32, 32) and s.scribble.shape == (2, 32, 32)
    assert s.scribble[0, 6, 6] == 1 and s.val_mask.sum() == 64 and s.label.max() == 1
    assert s.group == "train"


def test_tiff_pairs_with_scribble_label_image(tmp_path):
    """images/ + labels/ + scribbles/ as label images (1 = cell, 2 = background)."""
    for d in ("images", "labels", "scribbles"):
        (tmp_path / d).mkdir()
    img = np.random.default_rng(0).random((48, 48)).astype(np.float32)
    lab = np.zeros((48, 48), np.uint16)
    lab[5:15, 5:15] = 1
    scr = np.zeros((48, 48), np.uint8)
    scr[8:10, 8:12] = 1
    scr[30, 5:40] = 2
    tifffile.imwrite(tmp_path / "images" / "a.tif", img)
    tifffile.imwrite(tmp_path / "labels" / "a.tif", lab)
    tifffile.imwrite(tmp_path / "scribbles" / "a.tif", scr)
    (s,) = load_dataset(DataConfig(format="tiff_pairs", root=tmp_path), n_scribble_channels=2)
    assert s.image.shape == (1, 48, 48) and s.scribble[:, 30, 20].tolist() == [0, 1]
    assert s.val_mask is not None and s.label.max() == 1


def test_bad_inputs_are_clear_errors(tmp_path):
    """Wrong scribble shape, gaps in ids, NaN pixels, corrupt TIFF, corrupt or foreign ROI zip."""
    scr = np.zeros((10, 12), np.uint8)
    tifffile.imwrite(tmp_path / "s.tif", scr)
    with pytest.raises(DataError, match="same image"):
        read_scribble_file(tmp_path / "s.tif", (12, 12), 2)
    tifffile.imwrite(tmp_path / "s3.tif", np.full((12, 12), 5, np.uint8))
    with pytest.raises(DataError, match="1..2"):
        read_scribble_file(tmp_path / "s3.tif", (12, 12), 2)
    lab = np.zeros((12, 12), np.int32)
    lab[:3, :3], lab[6:, 6:] = 1, 3
    tifffile.imwrite(tmp_path / "l.tif", lab)
    with pytest.raises(DataError, match="gaps"):
        read_label_image(tmp_path / "l.tif", (12, 12))
    assert read_label_image(tmp_path / "l.tif", (12, 12), relabel=True).max() == 2
    nan = np.zeros((12, 12), np.float32)
    nan[3, 3] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", nan)
    with pytest.raises(DataError, match="NaN"):
        read_image(tmp_path / "nan.tif")
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(DataError, match="not a readable TIFF"):
        read_image(tmp_path / "bad.tif")
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04broken")
    with pytest.raises(DataError, match="not a readable zip"):
        read_roi_zip(tmp_path / "bad.zip", (12, 12))
    with zipfile.ZipFile(tmp_path / "junk.zip", "w") as zf:
        zf.writestr("1.roi", b"nope" * 20)
    with pytest.raises(DataError, match="Iout"):
        read_roi_zip(tmp_path / "junk.zip", (12, 12))


def test_roi_outside_the_image_is_refused(vectra_dir):
    """The Vectra ROIs do not fit a 50x50 image: an error that suggests the wrong zip."""
    with pytest.raises(DataError, match="outside"):
        read_roi_zip(vectra_dir / "labels" / "final" / "image0.zip", (50, 50))
