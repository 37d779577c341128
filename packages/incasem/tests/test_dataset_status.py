"""Nothing half-written: equalize, convert and metric-mask mark, resume and refuse like predict."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from cellsight_shared.io import read_zarr, write_zarr
from incasem import equalize as equalize_module
from incasem import metric_mask as metric_mask_module
from incasem.config.data import load_data_config
from incasem.config.tools import ConvertConfig, EqualizeConfig, MetricMaskConfig
from incasem.convert import convert
from incasem.equalize import equalize
from incasem.errors import ConfigError, DataError
from incasem.metric_mask import metric_mask


def _status(path: Path) -> dict:
    return json.loads((path / ".zattrs").read_text())["incasem"]


def _failing_after(monkeypatch, module, name: str, good_blocks: int) -> list:
    """Make ``module.name`` (a block function) fail after ``good_blocks`` calls."""
    real = getattr(module, name)
    calls: list = []

    def flaky(block, **kwargs):
        calls.append(tuple(block.write_roi.begin))
        if len(calls) > good_blocks:
            raise DataError("simulated crash")
        real(block, **kwargs)

    monkeypatch.setattr(module, name, flaky)
    return calls


@pytest.fixture
def raw_store(tmp_path, rng) -> Path:
    store = tmp_path / "c.zarr"
    volume = rng.integers(20, 220, size=(24, 16, 16), dtype=np.uint8)
    write_zarr(store, "volumes/raw", volume, offset=(0, 0, 0), resolution=(5, 5, 5))
    return store


def _data_json(tmp_path: Path, store: Path, raw: str) -> Path:
    path = tmp_path / "data.json"
    entry = {
        "file": str(store),
        "offset": [0, 0, 0],
        "shape": [24, 16, 16],
        "voxel_size": [5, 5, 5],
        "raw": raw,
    }
    path.write_text(json.dumps({"cell": entry}))
    return path


def test_interrupted_equalize_is_running_refused_by_readers_and_resumes_identically(
    raw_store, tmp_path, monkeypatch
):
    config = EqualizeConfig(zarr=raw_store, kernel_size=8, block_size=8)
    out = raw_store / config.out_dataset
    _failing_after(monkeypatch, equalize_module, "equalize_block", good_blocks=2)
    with pytest.raises(DataError, match="simulated crash") as failure:
        equalize(config)
    assert "Traceback" not in str(failure.value) and "rerun the same command to resume" in str(failure.value)
    info = _status(out)
    assert info["status"] == "running" and info["command"] == "equalize"
    assert len(list((out / ".blocks").iterdir())) == 2
    # a reader refuses it and says how to finish or remove it
    with pytest.raises(ConfigError, match="incomplete.*rerun `incasem equalize`.*rm -r"):
        load_data_config(_data_json(tmp_path, raw_store, config.out_dataset), context=0)
    monkeypatch.undo()
    calls = _failing_after(monkeypatch, equalize_module, "equalize_block", good_blocks=100)
    equalize(config)  # the same command resumes: only the 10 missing blocks of 12 run
    assert len(calls) == 10
    assert _status(out)["status"] == "complete" and not (out / ".blocks").exists()
    clean = EqualizeConfig(zarr=raw_store, kernel_size=8, block_size=8, out_dataset="eq/clean")
    equalize(clean)
    np.testing.assert_array_equal(read_zarr(raw_store, config.out_dataset), read_zarr(raw_store, "eq/clean"))
    load_data_config(_data_json(tmp_path, raw_store, config.out_dataset), context=0)  # accepted now
    with pytest.raises(DataError, match="complete dataset.*--overwrite"):
        equalize(config)


def test_resuming_with_other_settings_is_refused(raw_store, monkeypatch):
    _failing_after(monkeypatch, equalize_module, "equalize_block", good_blocks=1)
    with pytest.raises(DataError):
        equalize(EqualizeConfig(zarr=raw_store, kernel_size=8, block_size=8))
    monkeypatch.undo()
    with pytest.raises(DataError, match=r"other settings \(changed: clip_limit\).*--overwrite"):
        equalize(EqualizeConfig(zarr=raw_store, kernel_size=8, block_size=8, clip_limit=0.05))
    equalize(EqualizeConfig(zarr=raw_store, kernel_size=8, block_size=8, clip_limit=0.05, overwrite=True))
    assert _status(raw_store / "volumes/raw_equalized_0.02")["settings"]["clip_limit"] == 0.05


def test_interrupted_metric_mask_resumes_to_the_whole_volume_mask(em_zarr, tmp_path, monkeypatch):
    store = tmp_path / "cell.zarr"
    shutil.copytree(em_zarr, store)
    config = MetricMaskConfig(zarr=store, labels="volumes/labels/mito", inwards=1, outwards=2, block_size=32)
    out = store / config.output_dataset
    shutil.rmtree(out)  # the fixture's own metric mask
    _failing_after(monkeypatch, metric_mask_module, "metric_mask_block", good_blocks=3)
    with pytest.raises(DataError, match="simulated crash"):
        metric_mask(config)
    assert _status(out)["status"] == "running" and "counts" not in json.loads((out / ".zattrs").read_text())
    monkeypatch.undo()
    counts = metric_mask(config)
    labels = read_zarr(store, "volumes/labels/mito")
    np.testing.assert_array_equal(
        read_zarr(store, config.output_dataset),
        metric_mask_module.metric_mask_array(labels, inwards=1, outwards=2),
    )
    assert _status(out)["status"] == "complete"
    assert json.loads((out / ".zattrs").read_text())["counts"] == counts


def test_convert_into_an_existing_container_resumes(tmp_path, monkeypatch, rng):
    from incasem import convert as convert_module

    sections = tmp_path / "sections"
    sections.mkdir()
    volume = rng.integers(0, 255, size=(6, 10, 12), dtype=np.uint8)
    for z, plane in enumerate(volume):
        tifffile.imwrite(sections / f"s_{z}.tif", plane)
    store = tmp_path / "c.zarr"
    zarr.open_group(str(store), mode="w")
    config = ConvertConfig(input=sections, output=store, chunks=(2, 10, 12))
    _failing_after(monkeypatch, convert_module, "convert_block", good_blocks=1)
    with pytest.raises(DataError, match="simulated crash"):
        convert(config)
    assert _status(store / "volumes/raw")["status"] == "running"
    monkeypatch.undo()
    calls = _failing_after(monkeypatch, convert_module, "convert_block", good_blocks=100)
    convert(config)
    assert len(calls) == 2
    np.testing.assert_array_equal(read_zarr(store, "volumes/raw"), volume)
    assert _status(store / "volumes/raw")["status"] == "complete"
    with pytest.raises(DataError, match="--overwrite.*--dataset"):
        convert(config)


def test_datasets_without_a_status_are_still_read(em_zarr, write_data_json):
    from conftest import entry

    load_data_config(write_data_json({"cell": entry(em_zarr)}), context=0)


def test_block_progress_is_shown(raw_store, capsys):
    equalize(EqualizeConfig(zarr=raw_store, kernel_size=8, block_size=8), progress=True)
    err = capsys.readouterr().err
    assert "equalize" in err and "12/12" in err and "block" in err


def test_predict_and_evaluate_refuse_an_incomplete_dataset(raw_store, tmp_path, monkeypatch):
    """The readers themselves, not only the data-JSON loader, refuse a running dataset."""
    from test_predict import SMALL

    from incasem.checkpoint import save_checkpoint
    from incasem.config.evaluate import EvaluateConfig
    from incasem.config.predict import PredictConfig
    from incasem.evaluate import evaluate
    from incasem.model import UNet
    from incasem.predict import predict

    _failing_after(monkeypatch, equalize_module, "equalize_block", good_blocks=1)
    with pytest.raises(DataError):
        equalize(EqualizeConfig(zarr=raw_store, kernel_size=8, block_size=8))
    data = _data_json(tmp_path, raw_store, "volumes/raw_equalized_0.02")
    save_checkpoint(tmp_path / "c.pt", UNet(SMALL), metadata={"run_id": 3, "voxel_size": [5, 5, 5]})
    config = PredictConfig(
        data=data, checkpoint=tmp_path / "c.pt", input_shape=(20, 20, 20), pad_context=True
    )
    with pytest.raises(ConfigError, match="is incomplete"):
        predict(config)
    assert not (raw_store / "volumes/predictions").exists()
    labelled = json.loads(data.read_text())
    labelled["cell"]["labels"] = {"volumes/raw": 1}
    data.write_text(json.dumps(labelled))
    with pytest.raises(ConfigError, match="is incomplete"):
        evaluate(EvaluateConfig(data=data, prediction=tmp_path, out=tmp_path / "eval"))


@pytest.mark.parametrize("command", ["convert", "metric-mask"])
def test_block_progress_of_convert_and_metric_mask(command, em_zarr, tmp_path, capsys, rng):
    if command == "convert":
        sections = tmp_path / "s"
        sections.mkdir()
        for z in range(4):
            tifffile.imwrite(sections / f"s_{z}.tif", rng.integers(0, 255, size=(8, 8), dtype=np.uint8))
        convert(ConvertConfig(input=sections, output=tmp_path / "c.zarr", chunks=(1, 8, 8)), progress=True)
        expected = "4/4"
    else:
        store = tmp_path / "cell.zarr"
        shutil.copytree(em_zarr, store)
        config = MetricMaskConfig(zarr=store, labels="volumes/labels/mito", out_dataset="m", block_size=32)
        metric_mask(config, progress=True)
        expected = "8/8"
    err = capsys.readouterr().err
    assert command in err and expected in err
