"""Bad input is caught before any work, as one paragraph whose advice names options that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import zarr
from test_predict import _arrays, _config, _make_case

from cellsight_shared.io import write_zarr
from incasem.cli import build_parser, main
from incasem.config.predict import PredictConfig
from incasem.errors import CheckpointError, ConfigError, DataError
from incasem.predict import predict

PREDICTIONS = "volumes/predictions"


def _options(command: str) -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {s for a in sub._actions for s in a.option_strings}


def _advised(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", text))


def _with_raw(root: Path, raw: np.ndarray, name: str = "volumes/raw_other") -> Path:
    """Copy the case's geometry with another raw dataset; return a data JSON using it."""
    write_zarr(root / "cell.zarr", name, raw, offset=(50, 0, 100), resolution=(5, 5, 5), overwrite=True)
    data = json.loads((root / "data.json").read_text())
    data["cell"]["raw"] = name
    path = root / f"{name.rsplit('/', 1)[-1]}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return _make_case(tmp_path_factory.mktemp("inputs"), seed=2)


def _raw(case: Path) -> np.ndarray:
    return zarr.open_array(str(case / "cell.zarr/volumes/raw"), mode="r")[...]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_predict_on_a_missing_gpu_blames_the_machine_not_the_checkpoint(case, tmp_path):
    from incasem.checkpoint import load_checkpoint

    out = tmp_path / "out.zarr"
    with pytest.raises(ConfigError, match="CUDA is not available.*--device cpu") as err:
        predict(_config(case, out=out, device="cuda", workers=0))
    assert "damaged" not in str(err.value) and not out.exists()
    with pytest.raises(ConfigError, match="CUDA is not available"):
        load_checkpoint(case / "ckpt.pt", map_location="cuda")
    with pytest.raises(CheckpointError):  # a truly damaged file is still called damaged
        (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
        load_checkpoint(tmp_path / "bad.pt")


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda raw: raw.astype(np.float32), "raw_range"),  # float in [0, 255]: the net would see 509
        (lambda raw: raw.astype(np.uint16) * 257, "raw_range"),  # uint16 divided silently before
    ],
    ids=["float-0-255", "uint16"],
)
def test_raw_other_than_uint8_is_refused_without_raw_range(case, tmp_path, make, expected):
    data = _with_raw(case, make(_raw(case)))
    out = tmp_path / "out.zarr"
    with pytest.raises(ConfigError, match=expected):
        predict(_config(case, data=data, out=out, workers=0))
    assert not out.exists()


def test_nan_raw_is_refused_before_any_output_even_with_raw_range(case, tmp_path):
    raw = _raw(case).astype(np.float32) / 255
    raw[30, 30, 30] = np.nan
    raw[31, 30, 30] = np.inf
    data = _with_raw(case, raw, "volumes/raw_nan")
    out = tmp_path / "out.zarr"
    with pytest.raises(DataError, match="2 NaN or infinite voxels"):
        predict(_config(case, data=data, out=out, workers=0, raw_range=(0.0, 1.0)))
    assert not out.exists()


def test_raw_range_maps_uint16_like_the_uint8_it_came_from(case, tmp_path):
    reference = _arrays(predict(_config(case, out=tmp_path / "a.zarr", workers=0)))
    data = _with_raw(case, _raw(case).astype(np.uint16) * 257, "volumes/raw16")
    other = _arrays(
        predict(_config(case, data=data, out=tmp_path / "b.zarr", workers=0, raw_range=(0, 65535)))
    )
    np.testing.assert_allclose(other["class_1"], reference["class_1"], atol=1e-5)


def test_raw_range_must_be_increasing():
    with pytest.raises(ValueError, match="low < high"):
        PredictConfig(data="d.json", checkpoint="c.pt", raw_range=(1.0, 0.0))


def test_predict_out_with_several_cells_writes_one_container_per_entry(case, tmp_path):
    item = json.loads((case / "data.json").read_text())["cell"]
    two = {"left": {**item, "offset": [10, 0, 20], "shape": [44, 64, 44]}}
    two["right"] = {**item, "offset": [10, 0, 48], "shape": [44, 64, 44]}
    (case / "two.json").write_text(json.dumps(two))
    out = tmp_path / "predictions"
    first = predict(_config(case, data=case / "two.json", out=out, workers=0))
    group = "volumes/predictions/train_0007/predict_0001"
    assert first == out / "left.zarr" / group
    for name in ("left", "right"):
        g = zarr.open_group(str(out / f"{name}.zarr" / group), mode="r")
        assert g.attrs["incasem"]["status"] == "complete" and g["segmentation"].shape == (26, 46, 26)
    # without --out the two regions of one container collide, and the advice names --out
    with pytest.raises(ConfigError, match=r"--out DIR"):
        predict(_config(case, data=case / "two.json", workers=0))


def test_a_failed_prediction_says_how_to_resume_or_remove_it(tmp_path):
    root = _make_case(tmp_path, seed=6)
    (root / "cell.zarr/volumes/raw/0.0.0").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(DataError) as err:
        predict(_config(root, workers=0))
    group = root / "cell.zarr/volumes/predictions/train_0007/predict_0001"
    assert zarr.open_group(str(group)).attrs["incasem"]["status"] == "running"
    message = str(err.value)
    assert "--resume 1" in message and f"rm -r {group}" in message
    assert _advised(message) <= _options("predict")


def test_nan_raw_in_equalize_is_one_paragraph_before_any_output(tmp_path, capsys):
    raw = np.full((16, 16, 16), 0.5, dtype=np.float32)
    raw[3, 4, 5] = np.nan
    write_zarr(tmp_path / "c.zarr", "volumes/raw", raw, offset=(0, 0, 0), resolution=(5, 5, 5))
    assert main(["equalize", str(tmp_path / "c.zarr"), "--kernel-size", "8", "--block-size", "8"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "1 NaN or infinite voxels" in err and "Traceback" not in err
    assert not (tmp_path / "c.zarr/volumes/raw_equalized_0.02").exists()
    bright = np.full_like(raw, 300.0)
    write_zarr(tmp_path / "d.zarr", "volumes/raw", bright, offset=(0, 0, 0), resolution=(5, 5, 5))
    assert main(["equalize", str(tmp_path / "d.zarr")]) == 1
    assert "must lie in [0, 1]" in " ".join(capsys.readouterr().err.split())


def test_corrupt_tiff_section_in_convert_is_one_paragraph_before_any_output(tmp_path, capsys, rng):
    sections = tmp_path / "sections"
    sections.mkdir()
    for z in range(4):
        tifffile.imwrite(sections / f"s_{z}.tif", rng.integers(0, 255, size=(8, 8), dtype=np.uint8))
    (sections / "s_2.tif").write_bytes(b"II*\x00garbage-not-a-tiff")
    assert main(["convert", str(sections), str(tmp_path / "c.zarr")]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "s_2.tif is not a readable TIFF" in err and "Traceback" not in err
    assert not (tmp_path / "c.zarr").exists()


def test_every_commands_advice_names_options_it_has(em_zarr, tmp_path, capsys, rng):
    """Existing outputs: the option each command suggests is one of that command's options."""
    import shutil

    store = tmp_path / "cell.zarr"
    shutil.copytree(em_zarr, store)
    (tmp_path / "eval").mkdir()
    toml = tmp_path / "evaluate.toml"
    toml.write_text(f'data = "{tmp_path / "d.json"}"\nprediction = "{tmp_path}"\n')
    tiffs = tmp_path / "tiffs"
    (tiffs / "volumes_raw").mkdir(parents=True)
    cases = {
        "evaluate": ["evaluate", "--config", str(toml), "--out", str(tmp_path / "eval")],
        "equalize": ["equalize", str(store), "--dataset", "volumes/raw", "--out-dataset", "volumes/raw"],
        "metric-mask": ["metric-mask", str(store), "--labels", "volumes/labels/mito"],
        "convert": [
            "convert",
            str(store),
            str(tmp_path / "tiffs" / "volumes_raw"),
            "--dataset",
            "volumes/raw",
        ],
        "export-tiff": [
            "export-tiff",
            str(store),
            "--dataset",
            "volumes/raw",
            "--out",
            str(tmp_path / "tiffs"),
        ],
    }
    for command, argv in cases.items():
        assert main(argv) == 1, command
        err = " ".join(capsys.readouterr().err.split())
        advised = _advised(err)
        assert "--overwrite" in advised, (command, err)
        assert advised <= _options(command), (command, advised - _options(command))


def test_channels_last_predicts_the_same_to_float32_rounding(case, tmp_path):
    reference = _arrays(predict(_config(case, out=tmp_path / "a.zarr", workers=0)))
    other = _arrays(predict(_config(case, out=tmp_path / "b.zarr", workers=0, channels_last=True)))
    np.testing.assert_allclose(other["class_1"], reference["class_1"], atol=1e-5)
