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

__all__ = ["THRESHOLDS", "evaluate", "evaluate_probabilities", "score_instances", "write_tables"]

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


def evaluate(config: EvaluateConfig) -> list[dict]:
    """Read ``predictions/<name>/<task>_prob.ome.tif`` and labels, score, write the tables."""
    from cellsight_shared.io import ensure_absent, read_tiff
    from impartial.data.readers import read_label_image

    ensure_absent(config.out)
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
        labels[name] = read_label_image(lab, probs[name].shape, relabel=True)[0]
    rows = evaluate_probabilities(probs, labels, list(config.train), list(config.test))
    write_tables(rows, config.out)
    return rows
