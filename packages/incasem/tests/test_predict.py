"""Blockwise prediction with daisy: layout, exactness, workers, resume, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
import unittest.mock
from pathlib import Path

import mongomock
import mongomock.gridfs
import numpy as np
import pymongo
import pytest
import torch
import zarr

from cellsight_shared.synthetic import em_volume, write_em_volume_zarr
from incasem.checkpoint import save_checkpoint
from incasem.cli import main
from incasem.config.evaluate import EvaluateConfig
from incasem.config.model import ModelConfig
from incasem.config.predict import PredictConfig
from incasem.errors import CheckpointError, ConfigError, DataError
from incasem.evaluate import evaluate
from incasem.model import UNet
from incasem.predict import block_begins, block_window, plan_prediction, predict
from incasem.predict import worker as worker_module

# one downsampling keeps tests fast: input 44 -> output 26, context 9 voxels per side
SMALL = ModelConfig(num_fmaps=2, downsample_factors=((2, 2, 2),))
INPUT = (44, 44, 44)
SHAPE = (64, 64, 72)  # raw volume, voxels
OFFSET_NM = (50, 0, 100)  # first voxel at voxel (10, 0, 20)
GROUP = "volumes/predictions/train_0007/predict_0001"


def _make_case(root: Path, *, seed: int = 1, shape=SHAPE) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_em_volume_zarr(root / "cell.zarr", em_volume(shape=shape, seed=seed), offset=OFFSET_NM)
    torch.manual_seed(seed)
    model = UNet(SMALL)
    save_checkpoint(root / "ckpt.pt", model, metadata={"run_id": 7, "voxel_size": [5, 5, 5]})
    _write_data(root, offset=[10, 0, 20], shape=list(shape))
    return root


def _write_data(root: Path, *, name: str = "data.json", **entry) -> Path:
    item = {"file": "cell.zarr", "voxel_size": [5, 5, 5], "raw": "volumes/raw", "mask": "volumes/mask"}
    item.update(entry)
    path = root / name
    path.write_text(json.dumps({"cell": item}))
    return path


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """A synthetic cell, a random 2-fmap checkpoint and a data JSON covering the whole volume."""
    return _make_case(tmp_path_factory.mktemp("predict_case"))


@pytest.fixture(scope="module")
def reference_group(case, tmp_path_factory):
    """One uninterrupted in-process prediction of ``case`` (into a separate container)."""
    out = tmp_path_factory.mktemp("reference") / "out.zarr"
    return predict(_config(case, out=out, workers=0, threads_per_worker=1))


@pytest.fixture(scope="module")
def reference(reference_group):
    """The reference prediction's arrays."""
    return _arrays(reference_group)


def _config(root: Path, **overrides) -> PredictConfig:
    values = {"data": root / "data.json", "checkpoint": root / "ckpt.pt", "input_shape": INPUT}
    values.update(overrides)
    return PredictConfig(**values)


def _arrays(group: Path) -> dict[str, np.ndarray]:
    g = zarr.open_group(str(group), mode="r")
    return {
        "class_0": g["prob_maps/class_0"][...],
        "class_1": g["prob_maps/class_1"][...],
        "segmentation": g["segmentation"][...],
    }


def _assert_same(a: dict, b: dict) -> None:
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_layout_geometry_and_provenance(case, tmp_path, monkeypatch):
    """Datasets, dtypes, offsets, block-aligned chunks, run record; nothing in the cwd."""
    monkeypatch.chdir(tmp_path)
    group = predict(_config(case, out=tmp_path / "out.zarr", workers=0))
    assert group == tmp_path / "out.zarr" / GROUP
    g = zarr.open_group(str(group), mode="r")
    seg = g["segmentation"]
    # ROI (10, 0, 20) + (64, 64, 72) less a 9-voxel rim
    assert seg.shape == (46, 46, 54) and seg.dtype == np.uint32
    assert seg.chunks == (13, 13, 13)  # half of the 26^3 output block
    assert seg.attrs["offset"] == [95, 45, 145] and seg.attrs["resolution"] == [5, 5, 5]
    assert g["prob_maps/class_1"].dtype == np.float32
    assert g["prob_maps/class_1"].attrs["class_name"] == "class_1"
    assert g.attrs["incasem"]["status"] == "complete"
    assert len(list((group / "run/blocks/cell").iterdir())) == 2 * 2 * 3
    assert json.loads((group / "run/config.json").read_text())["workers"] == 0
    assert (group / "run/sacred/1/run.json").is_file()
    assert "daisy_logs" not in os.listdir(tmp_path)
    probs = _arrays(group)
    total = probs["class_0"] + probs["class_1"]
    np.testing.assert_allclose(total, 1.0, atol=1e-5)  # every voxel written
    mask = zarr.open_array(str(case / "cell.zarr/volumes/mask"), mode="r")[9:55, 9:55, 9:63]
    assert np.all(probs["segmentation"][mask == 0] == 0)
    expected = (probs["class_1"] > probs["class_0"]) & (mask > 0)
    assert np.array_equal(probs["segmentation"] == 1, expected)


def test_blocks_equal_the_network_on_their_windows(case, reference):
    """Stitched blocks equal one forward pass over the whole ROI; the snapped block its window.

    All block shifts are even (a multiple of the pooling factor), so tiling is exact.
    """
    raw = zarr.open_array(str(case / "cell.zarr/volumes/raw"), mode="r")[...]
    x = torch.from_numpy(raw.astype(np.float32) / 255 * 2 - 1)[None, None]
    torch.manual_seed(1)
    model = UNet(SMALL).eval()
    with torch.inference_mode():
        whole = torch.softmax(model(x), dim=1)[0].numpy()
    assert whole.shape[1:] == reference["class_1"].shape
    np.testing.assert_allclose(reference["class_0"], whole[0], atol=1e-5)
    np.testing.assert_allclose(reference["class_1"], whole[1], atol=1e-5)
    # the last block overhangs the region: its window is shifted back inside the ROI
    entry = plan_prediction(_config(case)).entries[0]
    last = list(block_begins(entry))[-1]
    read, begin, end = block_window(entry, last)
    assert (read, begin, end) == ((30, 20, 48), (45, 35, 81), (65, 55, 83))
    window = x[(..., *(slice(r - o, r - o + 44) for r, o in zip(read, (10, 0, 20), strict=True)))]
    with torch.inference_mode():
        block = torch.softmax(model(window), dim=1)[0, 1].numpy()
    crop = tuple(slice(b - r - 9, e - r - 9) for b, e, r in zip(begin, end, read, strict=True))
    written = tuple(slice(b - o, e - o) for b, e, o in zip(begin, end, (19, 9, 29), strict=True))
    np.testing.assert_allclose(reference["class_1"][written], block[crop], atol=1e-6)


def test_two_worker_processes_give_identical_output(case, reference, tmp_path):
    """max_workers=2 (separate processes, 1 thread each) writes the same numbers."""
    group = predict(_config(case, out=tmp_path / "out.zarr", workers=2))
    _assert_same(_arrays(group), reference)
    logs = group / "run/daisy_logs"
    assert logs.is_dir() and any(logs.rglob("worker_*"))


def test_resume_redoes_only_unfinished_blocks(case, reference, tmp_path, monkeypatch):
    """Blocks whose marker is gone are predicted again, others skipped; output is identical."""
    out = tmp_path / "out.zarr"
    group = predict(_config(case, out=out, workers=0, threads_per_worker=1))
    markers = sorted((group / "run/blocks/cell").iterdir())
    lost = markers[::4]  # 3 of the 12 blocks: as if a killed run never finished them
    for marker in lost:
        marker.unlink()
    seg = zarr.open_array(str(group / "segmentation"), mode="r+")
    seg[...] = 0  # wipe all outputs of the lost blocks (and more)
    calls = []
    real = worker_module.BlockPredictor.predict_block
    monkeypatch.setattr(
        worker_module.BlockPredictor,
        "predict_block",
        lambda self, entry, begin: (calls.append(begin), real(self, entry, begin)),
    )
    again = predict(_config(case, out=out, workers=0, threads_per_worker=1, resume=1))
    assert again == group
    assert sorted("_".join(map(str, c)) for c in calls) == sorted(m.name for m in lost)
    arrays = _arrays(group)
    lost_voxels = np.zeros(arrays["segmentation"].shape, dtype=bool)
    for marker in lost:
        z, y, x = (int(v) - o for v, o in zip(marker.name.split("_"), (19, 9, 29), strict=True))
        lost_voxels[z : z + 26, y : y + 26, x : x + 26] = True
    np.testing.assert_array_equal(arrays["class_1"], reference["class_1"])
    np.testing.assert_array_equal(arrays["segmentation"][lost_voxels], reference["segmentation"][lost_voxels])


@pytest.mark.slow
def test_killed_run_resumes_to_identical_output(tmp_path):
    """SIGKILL a 2-worker run mid-way; resume finishes it with the uninterrupted output."""
    root = _make_case(tmp_path / "case", seed=2, shape=(64, 96, 128))
    config = _config(root, out=tmp_path / "killed.zarr", workers=2)
    script = (
        "import sys; from incasem.config.predict import PredictConfig; "
        "from incasem.predict import predict; "
        "predict(PredictConfig.model_validate_json(sys.argv[1]))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, config.model_dump_json()],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    markers = tmp_path / "killed.zarr" / GROUP / "run/blocks/cell"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if markers.is_dir() and len(list(markers.iterdir())) >= 2:
                break
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the run and its worker processes
        process.wait()
    done = len(list(markers.iterdir()))
    total = 2 * 3 * 5
    assert 0 < done < total, f"the run should have been killed mid-way ({done} of {total})"
    group = predict(config.model_copy(update={"resume": 1, "workers": 0, "threads_per_worker": 1}))
    assert len(list(markers.iterdir())) == total
    fresh = predict(_config(root, out=tmp_path / "fresh.zarr", workers=0, threads_per_worker=1))
    _assert_same(_arrays(group), _arrays(fresh))


def test_new_run_never_overwrites_an_existing_prediction(case, tmp_path):
    """A second run takes predict_0002; predict_0001's files are untouched."""
    out = tmp_path / "out.zarr"
    first = predict(_config(case, out=out, workers=0))
    before = {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()}
    second = predict(_config(case, out=out, workers=0))
    assert second == out / "volumes/predictions/train_0007/predict_0002"
    assert {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()} == before


def test_default_output_goes_into_the_input_container(tmp_path):
    """Without `out`, predictions land in the cell's own zarr, like the original."""
    root = _make_case(tmp_path / "case", seed=3)
    group = predict(_config(root, workers=0))
    assert group == root / "cell.zarr" / GROUP
    assert zarr.open_group(str(root / "cell.zarr"), mode="r")["volumes/raw"].shape == SHAPE


def test_pad_context_predicts_the_whole_roi(case, tmp_path):
    """With context padding the output covers the ROI itself, even one smaller than a block."""
    _write_data(case, name="small.json", offset=[12, 2, 22], shape=[20, 30, 40])
    config = _config(case, data=case / "small.json", out=tmp_path / "o.zarr", workers=0)
    with pytest.raises(ConfigError, match="smaller than the network's block"):
        predict(config)
    group = predict(config.model_copy(update={"pad_context": True}))
    arrays = _arrays(group)
    assert arrays["class_1"].shape == (20, 30, 40)
    np.testing.assert_allclose(arrays["class_0"] + arrays["class_1"], 1.0, atol=1e-5)
    assert zarr.open_array(str(group / "segmentation")).attrs["offset"] == [60, 10, 110]


def test_resume_with_other_settings_is_refused(case, tmp_path):
    """Resuming with another input block (or checkpoint) would mix two predictions."""
    out = tmp_path / "out.zarr"
    predict(_config(case, out=out, workers=0))
    with pytest.raises(ConfigError, match="different entries"):
        predict(_config(case, out=out, workers=0, resume=1, input_shape=(52, 52, 52)))
    with pytest.raises(ConfigError, match="no prediction run to continue"):
        predict(_config(case, out=out, workers=0, resume=5))


# ------------------------------------------------------------------------------ bad input


def _no_prediction(root: Path) -> bool:
    return not (root / "cell.zarr/volumes/predictions").exists()


def test_roi_outside_the_volume(tmp_path):
    """An ROI beyond the raw data is refused before any output exists, naming the fix."""
    root = _make_case(tmp_path, seed=4)
    _write_data(root, offset=[10, 0, 60], shape=[64, 64, 72])
    with pytest.raises(ConfigError, match=r"'offset/shape'.*not inside 'volumes/raw'"):
        predict(_config(root, workers=0))
    assert _no_prediction(root)


def test_roi_too_small_for_the_network(tmp_path):
    """An ROI smaller than the input block is refused (or use pad_context)."""
    root = _make_case(tmp_path, seed=4)
    _write_data(root, offset=[10, 0, 20], shape=[40, 64, 72])
    with pytest.raises(ConfigError, match=r"'shape'.*enlarge the ROI to at least \[44, 44, 44\]"):
        predict(_config(root, workers=0))
    assert _no_prediction(root)


def test_missing_dataset_in_the_zarr(tmp_path):
    """A raw dataset that is not in the container is named with the datasets that are."""
    root = _make_case(tmp_path, seed=4)
    _write_data(root, raw="volumes/raw_equalized_0.02", offset=[10, 0, 20], shape=[64, 64, 72])
    with pytest.raises(ConfigError, match=r"no dataset 'volumes/raw_equalized_0.02'.*volumes/raw"):
        predict(_config(root, workers=0))
    assert _no_prediction(root)


def test_voxel_size_mismatch(tmp_path):
    """Data JSON vs zarr, and data vs the model's training voxel size, must agree."""
    root = _make_case(tmp_path, seed=4)
    _write_data(root, voxel_size=[4, 4, 4], offset=[10, 0, 20], shape=[64, 64, 72])
    with pytest.raises(ConfigError, match=r"voxel size \[5.0, 5.0, 5.0\] nm but the entry's"):
        predict(_config(root, workers=0))
    save_checkpoint(root / "hpf.pt", UNet(SMALL), metadata={"run_id": 7, "voxel_size": [4, 4, 4]})
    _write_data(root, offset=[10, 0, 20], shape=[64, 64, 72])
    with pytest.raises(ConfigError, match=r"trained at \[4, 4, 4\] nm"):
        predict(_config(root, checkpoint=root / "hpf.pt", workers=0))
    assert _no_prediction(root)


def test_checkpoint_of_another_architecture(tmp_path):
    """A small-network file given as published model 1847 fails with the mismatching tensors."""
    root = _make_case(tmp_path, seed=4)
    with pytest.raises(CheckpointError, match=r"shape mismatches.*num_fmaps=2"):
        predict(_config(root, model_id="1847", workers=0))
    torch.save({"model_state_dict": {"fc.weight": torch.zeros(2, 2)}}, root / "other.pt")
    with pytest.raises(CheckpointError, match="not an incasem U-Net"):
        predict(_config(root, checkpoint=root / "other.pt", workers=0))
    with pytest.raises(ConfigError, match="204 or 206"):
        predict(_config(root, input_shape=(205, 204, 204), workers=0))
    assert _no_prediction(root)


def test_corrupt_chunk_fails_clearly_and_keeps_earlier_predictions(tmp_path):
    """A damaged raw chunk names the chunk and the fix; predict_0001 stays as it was."""
    root = _make_case(tmp_path, seed=5)
    first = predict(_config(root, workers=0))
    before = _arrays(first)
    chunk = root / "cell.zarr/volumes/raw/0.0.0"
    chunk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(DataError, match=r"volumes/raw: chunk file 0.0.0 could not be decoded"):
        predict(_config(root, workers=1))  # the error travels back from a worker process
    _assert_same(_arrays(first), before)
    failed = root / "cell.zarr/volumes/predictions/train_0007/predict_0002"
    assert zarr.open_group(str(failed)).attrs["incasem"]["status"] == "running"


def test_two_entries_writing_one_group_are_refused(tmp_path):
    """Two regions of one container in one run would collide; the error says what to do."""
    root = _make_case(tmp_path, seed=4)
    item = {"file": "cell.zarr", "voxel_size": [5, 5, 5], "raw": "volumes/raw"}
    data = {
        "a": {**item, "offset": [10, 0, 20], "shape": [44, 44, 44]},
        "b": {**item, "offset": [20, 10, 30], "shape": [44, 44, 44]},
    }
    (root / "two.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="'a' and 'b' would write the same prediction group"):
        predict(_config(root, data=root / "two.json", workers=0))
    assert _no_prediction(root)


def test_cluster_worker_command_runs_the_worker_module(case, reference, tmp_path):
    """worker_command starts `python -m incasem.predict.worker settings.json` (the srun path)."""
    group = predict(_config(case, out=tmp_path / "o.zarr", workers=1, worker_command=[]))
    assert (group / "run/worker_cell.json").is_file()
    _assert_same(_arrays(group), reference)


def test_worker_entry_point_reports_usage_and_bad_settings(tmp_path, capsys):
    """The worker's own command line: 2 without a settings file, 1 naming a missing or bad one."""
    from incasem.predict.worker import main as worker_main

    assert worker_main([]) == 2
    assert "usage: python -m incasem.predict.worker" in capsys.readouterr().err
    missing = tmp_path / "settings.json"
    assert worker_main([str(missing)]) == 1
    assert "settings.json" in capsys.readouterr().err
    missing.write_text('{"not": "a job"}')
    assert worker_main([str(missing)]) == 1
    assert "invalid" in capsys.readouterr().err


def test_config_requires_a_model():
    """Neither checkpoint nor model_id is a config error."""
    with pytest.raises(ValueError, match="checkpoint file .* or a published model id"):
        PredictConfig(data=Path("d.json"))


def test_model_id_without_download_explains_how(tmp_path):
    """A published id whose checkpoint is not in models_dir says how to download it."""
    root = _make_case(tmp_path, seed=4)
    config = PredictConfig(data=root / "data.json", model_id="1841", models_dir=tmp_path / "models")
    with pytest.raises(ConfigError, match="incasem download 1841 --out"):
        predict(config)


def test_prediction_is_scored_by_evaluate(case, reference_group, tmp_path):
    """The evaluation finds the ROI's output through run/plan.json and scores its voxels."""
    data = _write_data(
        case, name="labelled.json", offset=[10, 0, 20], shape=list(SHAPE), labels={"volumes/labels/mito": 1}
    )
    summary = evaluate(EvaluateConfig(data=data, prediction=reference_group, out=tmp_path / "e"))
    rows = (tmp_path / "e" / "metrics.csv").read_text().splitlines()
    row = next(r for r in rows if r.startswith("cell,mask,1,mito,0.5,"))
    mask = zarr.open_array(str(case / "cell.zarr/volumes/mask"), mode="r")[9:55, 9:55, 9:63]
    assert int(row.split(",")[9]) == int((mask > 0).sum())  # voxels: predicted region in the mask
    assert 0.0 <= summary["f1"] <= 1.0


def test_cli_predict_resume_and_bad_input(case, tmp_path, capsys):
    """`incasem predict` runs, `--resume 1` finishes at once, a bad ROI exits 1 cleanly."""
    toml = tmp_path / "predict.toml"
    toml.write_text(
        f'data = "{case / "data.json"}"\ncheckpoint = "{case / "ckpt.pt"}"\ninput_shape = [44, 44, 44]\n'
    )
    out = tmp_path / "o.zarr"
    assert main(["predict", "--config", str(toml), "--out", str(out), "--workers", "0"]) == 0
    assert str(out / GROUP) in capsys.readouterr().out
    assert main(["predict", "--config", str(toml), "--out", str(out), "--workers", "0", "--resume", "1"]) == 0
    assert not (out / "volumes/predictions/train_0007/predict_0002").exists()
    _write_data(case, name="bad.json", offset=[10, 0, 60], shape=list(SHAPE))
    toml.write_text(toml.read_text().replace("data.json", "bad.json"))
    assert main(["predict", "--config", str(toml), "--out", str(out), "--workers", "0"]) == 1
    err = capsys.readouterr().err
    assert "not inside 'volumes/raw'" in err and "Traceback" not in err


def test_run_is_recorded_in_mongodb_when_a_url_is_given(case, tmp_path):
    """With a Mongo URL the run lands in database incasem_predictions (mongomock stands in)."""
    try:
        mongomock.gridfs.enable_gridfs_integration()  # sacred stores artifacts with GridFS
        with mongomock.patch(servers=(("localhost", 27017),)):
            group = predict(
                _config(case, out=tmp_path / "o.zarr", workers=0),
                mongo_url="mongodb://localhost:27017",
            )
            client = pymongo.MongoClient("mongodb://localhost:27017")
            runs = list(client["incasem_predictions"].runs.find())
    finally:
        unittest.mock.patch.stopall()  # the GridFS patches are started, never stopped, by mongomock
    assert len(runs) == 1
    assert runs[0]["status"] == "COMPLETED"
    assert runs[0]["config"]["input_shape"] == [44, 44, 44]
    assert runs[0]["info"]["prediction"] == {"cell": str(group)}
