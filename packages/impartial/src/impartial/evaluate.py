"""Evaluation as the paper: a threshold chosen on the training images, scores on the test images.

The threshold is swept 0.05..0.95 and chosen by mean AP@0.5 (TP / (TP + FP + FN)) on the train
images; test images get AP@0.5, mAP 0.5:0.95, F1, PQ and AJI, for the faithful (threshold + CC)
and the improved (seeded watershed) post-processing.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from impartial.config import EvaluateConfig
from impartial.errors import DataError

__all__ = [
    "THRESHOLDS",
    "evaluate",
    "evaluate_probabilities",
    "evaluate_tasks",
    "score_instances",
    "write_tables",
]

log = logging.getLogger(__name__)
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))
_METHODS = ("faithful", "improved")


def score_instances(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """AP@0.5, mAP 0.5:0.95, F1@0.5, PQ@0.5 and AJI through cellsight_shared.metrics."""
    from cellsight_shared.metrics import instance

    m = instance.match_instances(gt, pred, threshold=0.5)
    return {
        "AP50": m.ap,
        "mAP": instance.mean_average_precision(gt, pred),
        "F1": m.f1,
        "PQ": m.panoptic_quality,
        "AJI": instance.aggregated_jaccard_index(gt, pred),
        "n_gt": int(len(np.unique(gt)) - (gt == 0).any()),
        "n_pred": int(len(np.unique(pred)) - (pred == 0).any()),
    }


def _instances(method: str, prob: np.ndarray, th: float) -> np.ndarray:
    from impartial.postprocess import threshold_instances, watershed_instances

    return threshold_instances(prob, th) if method == "faithful" else watershed_instances(prob, th)


def evaluate_probabilities(
    probs: dict[str, np.ndarray], labels: dict[str, np.ndarray], train: list[str], test: list[str]
) -> list[dict]:
    """Rows per (method, test image) plus a 'mean' row per method, at the train-chosen threshold."""
    from cellsight_shared.metrics import instance

    missing = [n for n in (*train, *test) if n not in probs or n not in labels]
    if missing:
        raise DataError(f"no probability map or label for {missing}")
    if not train or not test:
        raise DataError(
            "evaluation needs at least one train image (to choose the threshold) and one test image"
        )
    rows = []
    for method in _METHODS:
        sweep = [
            np.mean([instance.match_instances(labels[n], _instances(method, probs[n], th)).ap for n in train])
            for th in THRESHOLDS
        ]
        th = THRESHOLDS[int(np.argmax(sweep))]
        log.info("%s: threshold %.2f (train AP50 %.3f)", method, th, max(sweep))
        scores = []
        for n in test:
            s = score_instances(labels[n], _instances(method, probs[n], th))
            scores.append(s)
            rows.append({"method": method, "image": n, "threshold": th, "train_AP50": max(sweep), **s})
        mean = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
        rows.append({"method": method, "image": "mean", "threshold": th, "train_AP50": max(sweep), **mean})
    return rows


def evaluate_tasks(
    maps: dict[str, dict[str, np.ndarray]], samples: list, tasks: list
) -> dict[str, list[dict]]:
    """Rows per ``<task>_class<c>``: each class's probability against its GT label map.

    ``maps[image][task]`` is that task's (C + 1, H, W) class probability; which label map a class
    is scored against comes from the v2 CSV's ``gt_index_task{t}`` (else task order), through
    :func:`impartial.data.readers.gt_label_indices`. Train images choose the threshold.
    """
    from impartial.data.readers import gt_label_indices

    scored = [s for s in samples if s.label is not None]
    index = {s.name: gt_label_indices(tasks, s) for s in scored}
    train = [s.name for s in scored if s.group == "train"]
    test = [s.name for s in scored if s.group == "test"]
    out = {}
    for t, task in enumerate(tasks):
        for c in range(task.classes):
            probs = {s.name: maps[s.name][task.name][c] for s in scored}
            labels = {s.name: s.label[index[s.name][t][c]] for s in scored}
            out[f"{task.name}_class{c}"] = evaluate_probabilities(probs, labels, train, test)
    return out


def write_tables(rows: list[dict], folder: Path) -> tuple[Path, Path]:
    """metrics.csv and metrics.md (written to temporary names, then renamed)."""
    from cellsight_shared.io import atomic_write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    keys = list(rows[0])
    with atomic_write(folder / "metrics.csv", overwrite=True) as tmp, tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append(
            "| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()) + " |"
        )
    with atomic_write(folder / "metrics.md", overwrite=True) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return folder / "metrics.csv", folder / "metrics.md"


def _pick(label: np.ndarray | None, index: int, where: str) -> np.ndarray:
    if label is None:
        raise DataError(f"{where}: no 'label' array to score against")
    if index >= label.shape[0]:
        raise DataError(f"{where}: label_index {index} but the label holds {label.shape[0]} maps")
    return label[index]


def _csv_labels(config: EvaluateConfig) -> dict[str, np.ndarray]:
    """GT label maps from a v2 CSV's npz files, chosen by its gt_index_task columns."""
    import json

    from impartial.config import DataConfig, TaskConfig
    from impartial.data.readers import _load_npz_csv, gt_label_indices

    samples = {
        s.name: s
        for s in _load_npz_csv(DataConfig(format="npz_csv", csv=config.labels, files_csv=config.files_csv))
    }
    missing = [n for n in (*config.train, *config.test) if n not in samples]
    if missing:
        raise DataError(f"{config.labels} (and files_csv) list no images {missing}")
    if config.label_index is not None:
        return {
            n: _pick(samples[n].label, config.label_index, str(config.labels))
            for n in (*config.train, *config.test)
        }
    tasks_file = Path(config.predictions) / "tasks.json"
    if not tasks_file.is_file():
        raise DataError(
            f"{tasks_file} is missing, so the task's position for gt_index_task{{t}} is unknown; "
            "give --label-index"
        )
    tasks = [TaskConfig.model_validate(t) for t in json.loads(tasks_file.read_text())]
    names = [t.name for t in tasks]
    name = config.task or names[0]
    if name not in names:
        raise DataError(f"task {name!r} is not among the predicted tasks {names}")
    t = names.index(name)
    if config.class_index >= tasks[t].classes:
        raise DataError(f"class_index {config.class_index} but task {name!r} has {tasks[t].classes} classes")
    out = {}
    for n in (*config.train, *config.test):
        s = samples[n]
        if s.label is None:
            raise DataError(f"{n}: its npz holds no 'label' array to score against")
        out[n] = s.label[gt_label_indices(tasks, s)[t][config.class_index]]
    return out


def evaluate(config: EvaluateConfig) -> list[dict]:
    """Read ``predictions/<name>/<task>_prob.ome.tif`` and labels, score, write the tables.

    ``labels`` is a folder of label TIFFs / ROI zips, or a v2 CSV whose npz files hold the
    labels and whose ``gt_index_task{t}`` columns say which label map each class is scored on.
    """
    from cellsight_shared.io import ensure_absent, read_tiff
    from impartial.data.readers import read_label_image

    ensure_absent(config.out)
    csv_labels = _csv_labels(config) if Path(config.labels).suffix.lower() == ".csv" else None
    probs, labels = {}, {}
    for name in (*config.train, *config.test):
        folder = Path(config.predictions) / name
        files = sorted(folder.glob("*_prob.ome.tif"))
        if config.task:
            files = [f for f in files if f.name == f"{config.task}_prob.ome.tif"]
        if not files:
            raise DataError(
                f"{folder} holds no *_prob.ome.tif (task {config.task}); run impartial predict first"
            )
        prob = np.asarray(read_tiff(files[0]))
        if config.class_index >= prob.shape[0] - 1:
            raise DataError(
                f"{files[0]}: class_index {config.class_index} but only {prob.shape[0] - 1} classes"
            )
        probs[name] = prob[config.class_index]
        if csv_labels is not None:
            labels[name] = csv_labels[name]
            if labels[name].shape != probs[name].shape:
                raise DataError(f"{name}: label {labels[name].shape} but prediction {probs[name].shape}")
            continue
        lab = next(
            (
                Path(config.labels) / f"{name}{s}"
                for s in (".zip", ".tif", ".tiff")
                if (Path(config.labels) / f"{name}{s}").is_file()
            ),
            None,
        )
        if lab is None:
            raise DataError(f"no label {name}.zip/.tif in {config.labels}")
        label = read_label_image(lab, probs[name].shape, relabel=True)
        labels[name] = _pick(label, config.label_index or 0, str(lab))
    rows = evaluate_probabilities(probs, labels, list(config.train), list(config.test))
    write_tables(rows, config.out)
    return rows
