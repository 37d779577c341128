"""The v2 CSV's gt_index_task{t} columns map each (task, class) to its GT label map.

The files follow the shipped Vectra_2CH layout: a scribble CSV without input_dir (header
``input_file,prefix,scribble_file,...,gt_index_task0,gt_index_task1``), a files.csv with the
groups, image npz with ``label`` (H, W, 3): cytoplasm, nuclei-in, nuclei-out.
"""

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import tifffile

from impartial.config import PRESETS, DataConfig
from impartial.data import load_dataset
from impartial.data.readers import gt_label_indices, parse_gt_index
from impartial.errors import DataError
from impartial.evaluate import evaluate_tasks

_TASKS = PRESETS["vectra2ch"][1]  # cytoplasm (1 class), nuclei (2 classes)


def _squares(offset: int, size: int = 64) -> np.ndarray:
    """Non-touching 6x6 instances on a grid; ``offset`` moves the grid so the maps differ."""
    lab = np.zeros((size, size), np.int64)
    n = 0
    for y in range(2 + offset, size - 8, 16):
        for x in range(2 + offset, size - 8, 16):
            n += 1
            lab[y : y + 6, x : x + 6] = n
    return lab


def _write_v2(tmp_path, gt1: str = '"[2, 1]"') -> tuple:
    labels = np.stack([_squares(0), _squares(4), _squares(8)], axis=-1)  # (H, W, 3)
    rng = np.random.default_rng(0)
    for i in range(3):
        np.savez(tmp_path / f"image{i}.npz", image=rng.random((64, 64, 2)).astype(np.float32), label=labels)
    scr = np.zeros((64, 64, 5))
    scr[3, 3, :] = 1
    scr[40, 40, 1] = scr[41, 41, 4] = 1
    val = np.zeros((64, 64))
    val[:16, :16] = 1
    for i in (0, 1):
        np.savez(tmp_path / f"image{i}_scribble_n2.npz", scribble=scr, val_mask=val)
    header = (
        "input_file,prefix,scribble_file,total_labels_class0,scribble_labels_class0,"
        "label_with_scribble_class0,gt_index_task0,gt_index_task1\n"
    )
    rows = "".join(f'image{i}.npz,image{i},image{i}_scribble_n2.npz,9,1,[ 1],"[0]",{gt1}\n' for i in (0, 1))
    scribble_csv = tmp_path / "files_2tasks1x2classes_3images_scribble_train_2.csv"
    scribble_csv.write_text(header + rows)
    files_csv = tmp_path / "files.csv"
    files_csv.write_text(
        ",prefix,input_file,group\n0,image0,image0.npz,train\n1,image1,image1.npz,train\n2,image2,image2.npz,test\n"
    )
    return scribble_csv, files_csv, labels


def _perfect_maps(labels: np.ndarray, names: list[str]) -> dict:
    """Class probabilities equal to the foreground of the label map the original pairs them with."""
    cyto = (labels[..., 0] > 0).astype(np.float32)
    nin, nout = (labels[..., 2] > 0).astype(np.float32), (labels[..., 1] > 0).astype(np.float32)
    maps = {
        "cytoplasm": np.stack([cyto, 1 - cyto]),
        "nuclei": np.stack([nin, nout, np.clip(1 - nin - nout, 0, 1)]),
    }
    return {n: maps for n in names}


def test_gt_index_strings_parse_as_the_original_writes_them():
    """Strings such as [0], [1, 2] and the config.json form ['1', ' 2']; else a clear error."""
    assert parse_gt_index("[0]", where="x") == (0,)
    assert parse_gt_index("[1, 2]", where="x") == (1, 2)
    assert parse_gt_index("['1', ' 2']", where="x") == (1, 2)
    for bad in ("1, 2", "[]", "[a]", "[-1]", ""):
        with pytest.raises(DataError, match="gt_index_task0"):
            parse_gt_index(bad, where="f.csv, column gt_index_task0")


def test_csv_gt_index_drives_the_multiclass_gt_mapping(tmp_path):
    """Task 1's classes are scored on label maps 2 and 1 as the CSV says, not in task order."""
    scribble_csv, files_csv, labels = _write_v2(tmp_path)
    samples = load_dataset(
        DataConfig(format="npz_csv", csv=scribble_csv, files_csv=files_csv), n_scribble_channels=5
    )
    assert [(s.name, s.group) for s in samples] == [
        ("image0", "train"),
        ("image1", "train"),
        ("image2", "test"),
    ]
    assert all(s.gt_index == ((0,), (2, 1)) for s in samples)  # files.csv images take the first row's
    assert samples[0].scribble.shape == (5, 64, 64) and samples[0].val_mask.sum() == 256
    assert gt_label_indices(_TASKS, samples[0]) == [[0], [2, 1]]

    rows = evaluate_tasks(_perfect_maps(labels, ["image0", "image1", "image2"]), samples, _TASKS)
    assert sorted(rows) == ["cytoplasm_class0", "nuclei_class0", "nuclei_class1"]
    for key, table in rows.items():
        mean = {r["method"]: r["AP50"] for r in table if r["image"] == "mean"}
        assert mean == {"faithful": 1.0, "improved": 1.0}, (key, mean)
        assert [r["image"] for r in table if r["method"] == "faithful"] == ["image2", "mean"]

    # without the columns the nuclei classes fall back to task order (maps 1, 2): the swap shows
    plain = [replace(s, gt_index=None) for s in samples]
    assert gt_label_indices(_TASKS, plain[0]) == [[0], [1, 2]]
    swapped = evaluate_tasks(_perfect_maps(labels, ["image0", "image1", "image2"]), plain, _TASKS)
    assert all(
        r["AP50"] == 0.0
        for key in ("nuclei_class0", "nuclei_class1")
        for r in swapped[key]
        if r["image"] == "mean"
    )


def test_evaluate_command_reads_labels_through_the_csv_gt_index(tmp_path):
    """`impartial evaluate --labels <scribble csv>` picks each class's label map by gt_index_task{t}."""
    from impartial.cli import main

    scribble_csv, files_csv, labels = _write_v2(tmp_path)
    pred = tmp_path / "pred"
    maps = _perfect_maps(labels, ["image0", "image1", "image2"])
    for name, per in maps.items():
        (pred / name).mkdir(parents=True)
        for task, prob in per.items():
            tifffile.imwrite(pred / name / f"{task}_prob.ome.tif", prob)
    (pred / "tasks.json").write_text(json.dumps([t.model_dump() for t in _TASKS]))
    base = ["evaluate", str(pred), "--labels", str(scribble_csv), "--files-csv", str(files_csv)]
    base += ["--train", "image0", "image1", "--test", "image2", "--task", "nuclei"]

    def mean_ap(folder):
        with (folder / "metrics.csv").open() as fh:
            return {r["method"]: float(r["AP50"]) for r in csv.DictReader(fh) if r["image"] == "mean"}

    for c in (0, 1):
        assert main([*base, "--class-index", str(c), "--out", str(tmp_path / f"e{c}")]) == 0
        assert mean_ap(tmp_path / f"e{c}") == {"faithful": 1.0, "improved": 1.0}
    # an explicit label map overrides the mapping: nuclei class 0 against map 1 scores 0
    assert main([*base, "--class-index", "0", "--label-index", "1", "--out", str(tmp_path / "e3")]) == 0
    assert mean_ap(tmp_path / "e3") == {"faithful": 0.0, "improved": 0.0}
    (pred / "tasks.json").unlink()
    assert main([*base, "--out", str(tmp_path / "e4")]) == 1  # task position unknown: says --label-index
    assert not (tmp_path / "e4").exists()


def test_bad_gt_index_is_refused_before_work(tmp_path):
    """A label map that does not exist, or too few maps for a task's classes: clear errors."""
    scribble_csv, files_csv, _ = _write_v2(tmp_path, gt1='"[1, 3]"')
    with pytest.raises(DataError, match=r"label maps \[3\].*0\.\.2"):
        load_dataset(DataConfig(format="npz_csv", csv=scribble_csv), n_scribble_channels=5)
    scribble_csv, files_csv, _ = _write_v2(tmp_path, gt1='"[1]"')
    samples = load_dataset(DataConfig(format="npz_csv", csv=scribble_csv), n_scribble_channels=5)
    with pytest.raises(DataError, match="gt_index_task1 lists 1 label maps"):
        gt_label_indices(_TASKS, samples[0])
