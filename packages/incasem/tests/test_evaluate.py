"""Evaluation: counts inside mask and metric masks, per ROI and pooled, over thresholds."""

import csv
import json
import sys

import numpy as np
import pytest

from cellsight_shared.io import write_zarr
from incasem.config.evaluate import EvaluateConfig
from incasem.errors import ConfigError, DataError
from incasem.evaluate import evaluate, merge_labels

GROUP = "volumes/predictions/train_0001/predict_0001"


def _cell(store, *, seed, rim=2, status="complete"):
    """A 12 x 14 x 16 ROI with labels, mask, metric mask and a prediction missing a 2-voxel rim."""
    rng = np.random.default_rng(seed)
    shape = (12, 14, 16)
    labels = (rng.random(shape) < 0.3).astype(np.uint8)
    mask = np.ones(shape, np.uint8) * 255
    mask[:, :3] = 0
    metric = np.where(rng.random(shape) < 0.2, 0, 255).astype(np.uint8)
    prob1 = np.clip(labels * 0.6 + rng.random(shape) * 0.7, 0, 1).astype(np.float32)
    geometry = {"offset": (50, 0, 0), "resolution": (5, 5, 5)}
    write_zarr(store, "volumes/raw", np.zeros(shape, np.uint8), **geometry)
    write_zarr(store, "volumes/labels/er", labels * 7, **geometry)  # any nonzero is foreground
    write_zarr(store, "volumes/mask", mask, **geometry)
    write_zarr(store, "volumes/metric_masks/er", metric, **geometry)
    inner = tuple(slice(rim, s - rim) for s in shape)
    pred_geometry = {"offset": (50 + 5 * rim, 5 * rim, 5 * rim), "resolution": (5, 5, 5)}
    write_zarr(store, f"{GROUP}/prob_maps/class_0", 1 - prob1[inner], **pred_geometry)
    write_zarr(store, f"{GROUP}/prob_maps/class_1", prob1[inner], **pred_geometry)
    seg = (prob1 > 0.5).astype(np.uint32) * (mask > 0)
    write_zarr(store, f"{GROUP}/segmentation", seg[inner], **pred_geometry)
    (store / GROUP / ".zgroup").write_text('{"zarr_format": 2}')
    (store / GROUP / ".zattrs").write_text(json.dumps({"incasem": {"status": status}}))
    return {"labels": labels, "mask": mask > 0, "metric": metric > 0, "prob": prob1, "inner": inner}


def _entry(file, **extra):
    item = {
        "file": file,
        "offset": [10, 0, 0],
        "shape": [12, 14, 16],
        "voxel_size": [5, 5, 5],
        "raw": "volumes/raw",
        "mask": "volumes/mask",
        "metric_masks": ["volumes/metric_masks/er"],
        "labels": {"volumes/labels/er": 1},
    }
    item.update(extra)
    return item


def _expected(truth, pred, region):
    t, p = truth[region], pred[region]
    tp = int(np.sum(t & p))
    return {"tp": tp, "fp": int(np.sum(~t & p)), "fn": int(np.sum(t & ~p)), "tn": int(np.sum(~t & ~p))}


@pytest.fixture
def one_cell(tmp_path):
    truth = _cell(tmp_path / "cell.zarr", seed=0)
    (tmp_path / "data.json").write_text(json.dumps({"roi": _entry("cell.zarr")}))
    return tmp_path, truth


def _rows(out):
    with open(out / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_counts_match_numpy_inside_mask_and_metric_mask(one_cell):
    """TP/FP/FN/TN at each threshold equal a direct count over the predicted, masked voxels."""
    root, v = one_cell
    out = root / "eval"
    summary = evaluate(
        EvaluateConfig(data=root / "data.json", prediction=root / "cell.zarr" / GROUP, out=out)
    )
    rows = _rows(out)
    inner = v["inner"]
    truth = v["labels"][inner] > 0
    for region_name, region in (
        ("mask", v["mask"][inner]),
        ("mask_and_metric_mask", (v["mask"] & v["metric"])[inner]),
    ):
        for t in (0.3, 0.5, 0.9):
            row = next(
                r for r in rows if (r["roi"], r["region"], r["threshold"]) == ("roi", region_name, f"{t:g}")
            )
            expected = _expected(truth, v["prob"][inner] >= t, region)
            assert {k: int(row[k]) for k in expected} == expected
            tp, fp, fn = expected["tp"], expected["fp"], expected["fn"]
            assert float(row["f1"]) == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-6)
            assert float(row["iou"]) == pytest.approx(tp / (tp + fp + fn), abs=1e-6)
        argmax = next(
            r for r in rows if (r["roi"], r["region"], r["threshold"]) == ("roi", region_name, "argmax")
        )
        seg = (v["prob"][inner] > 0.5) & v["mask"][inner]
        assert int(argmax["tp"]) == _expected(truth, seg, region)["tp"]
    # the prediction lacks a 2-voxel rim: only its 8 x 10 x 12 voxels are scored
    row = next(r for r in rows if (r["roi"], r["region"], r["threshold"]) == ("roi", "mask", "0.5"))
    assert int(row["voxels"]) == int(v["mask"][inner].sum())
    assert summary["f1"] == pytest.approx(
        float(
            next(
                r
                for r in rows
                if (r["roi"], r["region"], r["threshold"]) == ("pooled", "mask_and_metric_mask", "0.5")
            )["f1"]
        )
    )
    assert 0.5 < summary["f1"] < 1.0
    assert summary["best_threshold_class_1"] in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def test_recall_falls_and_precision_rises_over_the_sweep(one_cell):
    """Higher thresholds predict fewer voxels: recall never rises."""
    root, _ = one_cell
    evaluate(EvaluateConfig(data=root / "data.json", prediction=root / "cell.zarr" / GROUP, out=root / "e"))
    sweep = [
        r
        for r in _rows(root / "e")
        if r["roi"] == "pooled" and r["region"] == "mask" and r["threshold"] != "argmax"
    ]
    recalls = [float(r["recall"]) for r in sorted(sweep, key=lambda r: float(r["threshold"]))]
    assert recalls == sorted(recalls, reverse=True)
    assert recalls[0] > recalls[-1]


def test_two_rois_are_pooled_by_summing_counts(tmp_path):
    """Pooled TP/FP/FN are the sums over the ROIs; the Markdown lists both ROIs and the pool."""
    _cell(tmp_path / "a.zarr", seed=1)
    _cell(tmp_path / "b.zarr", seed=2)
    (tmp_path / "data.json").write_text(json.dumps({"a": _entry("a.zarr"), "b": _entry("b.zarr")}))
    prediction = tmp_path / "a.zarr" / GROUP
    run = prediction / "run"
    run.mkdir()
    (run / "plan.json").write_text(
        json.dumps(
            {
                "entries": {
                    "a": {"store": str(tmp_path / "a.zarr"), "group": GROUP},
                    "b": {"store": str(tmp_path / "b.zarr"), "group": GROUP},
                }
            }
        )
    )
    summary = evaluate(EvaluateConfig(data=tmp_path / "data.json", prediction=prediction))
    out = run / "evaluation_1"
    rows = _rows(out)
    pick = {r["roi"]: r for r in rows if r["region"] == "mask_and_metric_mask" and r["threshold"] == "0.5"}
    for key in ("tp", "fp", "fn", "tn"):
        assert int(pick["pooled"][key]) == int(pick["a"][key]) + int(pick["b"][key])
    markdown = (out / "metrics.md").read_text()
    assert "| a |" in markdown and "| b |" in markdown and "| pooled |" in markdown
    assert "class 1 (er)" in markdown
    assert json.loads((out / "metrics.json").read_text())["summary"]["f1"] == pytest.approx(summary["f1"])
    assert (out / "config.json").is_file()
    # a second evaluation goes to a new folder; an explicit existing folder is refused
    evaluate(EvaluateConfig(data=tmp_path / "data.json", prediction=prediction))
    assert (run / "evaluation_2").is_dir()
    with pytest.raises(Exception, match="exists; choose another --out"):
        evaluate(EvaluateConfig(data=tmp_path / "data.json", prediction=prediction, out=out))


def test_merge_labels_overlaps_become_background():
    """Two label datasets claiming one voxel leave it background (the original MergeLabels)."""
    a = np.array([1, 1, 0, 0], bool)
    b = np.array([0, 1, 1, 0], bool)
    np.testing.assert_array_equal(merge_labels([(a, 1), (b, 2)]), [1, 0, 2, 0])


def test_incomplete_prediction_is_refused_unless_allowed(tmp_path):
    """A run that has not finished is not scored silently."""
    _cell(tmp_path / "cell.zarr", seed=3, status="running")
    (tmp_path / "data.json").write_text(json.dumps({"roi": _entry("cell.zarr")}))
    config = EvaluateConfig(
        data=tmp_path / "data.json", prediction=tmp_path / "cell.zarr" / GROUP, out=tmp_path / "e"
    )
    with pytest.raises(ConfigError, match="running, not complete"):
        evaluate(config)
    assert evaluate(config.model_copy(update={"allow_incomplete": True}))["f1"] > 0


def test_unknown_class_and_missing_prediction_dataset(one_cell):
    """A class without labels, or without a probability map, is named with the fix."""
    root, _ = one_cell
    base = EvaluateConfig(data=root / "data.json", prediction=root / "cell.zarr" / GROUP, out=root / "e")
    with pytest.raises(ConfigError, match=r"classes \[2\] have no labels"):
        evaluate(base.model_copy(update={"classes": (2,)}))
    (root / "data.json").write_text(
        json.dumps({"roi": _entry("cell.zarr", labels={"volumes/labels/er": 1, "volumes/mask": 2})})
    )
    with pytest.raises(DataError, match="no dataset 'prob_maps/class_2'"):
        evaluate(base)
    with pytest.raises(ConfigError, match="not a zarr group"):
        evaluate(base.model_copy(update={"prediction": root}))


def test_evaluate_does_not_import_torch(one_cell, monkeypatch):
    """Scoring runs without the deep-learning framework (fast CLI, light CI)."""
    root, _ = one_cell
    monkeypatch.setitem(sys.modules, "torch", None)  # any import of torch would now fail
    summary = evaluate(
        EvaluateConfig(data=root / "data.json", prediction=root / "cell.zarr" / GROUP, out=root / "e")
    )
    assert summary["f1"] > 0.5


def test_roi_padding_shrinks_the_scored_region(one_cell):
    """roi_padding leaves out more voxels at every side (for the original's full-ROI outputs)."""
    root, v = one_cell
    prediction = root / "cell.zarr" / GROUP
    evaluate(EvaluateConfig(data=root / "data.json", prediction=prediction, out=root / "p", roi_padding=1))
    row = next(
        r for r in _rows(root / "p") if (r["roi"], r["region"], r["threshold"]) == ("roi", "mask", "0.5")
    )
    shrunk = tuple(slice(s.start + 1, s.stop - 1) for s in v["inner"])
    assert int(row["voxels"]) == int(v["mask"][shrunk].sum())
