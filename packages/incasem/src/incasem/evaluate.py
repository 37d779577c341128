"""Score a prediction: precision, recall, F1 (= Dice) and IoU per ROI and pooled, over thresholds.

For every entry of the data JSON and every class ``c``: truth is the merged label volume equal to
``c`` (each label dataset binarised and multiplied by its class id; voxels claimed by two label
datasets are background, as in the original ``MergeLabels``), prediction is
``prob_maps/class_c >= t`` for each threshold ``t`` and, as one more row, the stored argmax
``segmentation == c``. Voxels are counted inside the mask, and inside the mask and all metric
masks (the exclusion zones the paper's F1 uses). Counts are summed over ROIs for the pooled rows,
so pooled scores weigh every voxel equally. Only the region the prediction covers is scored, so
the unpredicted rim is excluded without a fixed padding. No framework is imported.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cellsight_shared.errors import CellsightSharedError
from cellsight_shared.metrics import BinaryCounts, BinaryScores, binary_counts, binary_scores_at_thresholds
from incasem.config.data import DataConfig, DataEntry, load_data_config, resolve_file
from incasem.config.evaluate import EvaluateConfig
from incasem.errors import ConfigError, DataError

__all__ = ["REGIONS", "evaluate", "merge_labels"]

logger = logging.getLogger(__name__)

REGIONS = ("mask", "mask_and_metric_mask")
"""Where voxels are counted: inside the sample mask, and also inside every metric mask."""
ARGMAX = "argmax"
"""Threshold column value of the rows scored on the stored segmentation."""
POOLED = "pooled"
"""ROI column value of the rows summed over all ROIs."""

Key = tuple[str, str, int, str]  # roi, region, class id, threshold


@dataclass(frozen=True)
class _Target:
    name: str
    entry: DataEntry
    store: Path
    group: Path
    begin: tuple[int, int, int]
    shape: tuple[int, int, int]


def merge_labels(binary: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """Merge binarised label volumes with their class ids; voxels claimed twice become 0."""
    merged = np.zeros(binary[0][0].shape, dtype=np.uint32) if binary else np.zeros(0, np.uint32)
    claims = np.zeros(merged.shape, dtype=np.uint8)
    for mask, class_id in binary:
        merged[mask] = class_id
        claims += mask
    merged[claims > 1] = 0
    return merged


def _geometry(store: Path, dataset: str) -> tuple[tuple[int, ...], tuple[int, ...], tuple]:
    from cellsight_shared.io import open_zarr, zarr_geometry

    try:
        array = open_zarr(store, dataset)
        offset, resolution = zarr_geometry(store, dataset)
    except CellsightSharedError as err:
        raise DataError(str(err)) from err
    voxels = tuple(round(o / r) for o, r in zip(offset, resolution, strict=True))
    return voxels, tuple(array.shape), tuple(resolution)


def _read(store: Path, dataset: str, begin, shape) -> np.ndarray:
    from cellsight_shared.io import read_zarr

    offset, _, _ = _geometry(store, dataset)
    region = tuple(slice(b - o, b - o + s) for b, o, s in zip(begin, offset, shape, strict=True))
    try:
        return read_zarr(store, dataset, region=region)
    except CellsightSharedError as err:
        raise DataError(str(err)) from err


def _prediction_groups(config: EvaluateConfig, data: DataConfig) -> dict[str, Path]:
    prediction = Path(config.prediction)
    if not (prediction / ".zgroup").is_file():
        raise ConfigError(
            f"prediction {prediction} is not a zarr group; pass the folder of a prediction, e.g. "
            "cell.zarr/volumes/predictions/train_1841/predict_0001"
        )
    plan = prediction / "run" / "plan.json"
    if plan.is_file():
        listed = json.loads(plan.read_text(encoding="utf-8")).get("entries", {})
        groups = {n: Path(v["store"]) / v["group"] for n, v in listed.items()}
    elif len(data.entries) == 1:
        groups = {next(iter(data.entries)): prediction}
    else:
        raise ConfigError(
            f"{prediction} has no run/plan.json telling which ROI it belongs to, and the data JSON "
            f"has {len(data.entries)} entries; evaluate with a data JSON holding that ROI only"
        )
    missing = [n for n in data.entries if n not in groups]
    if missing:
        raise ConfigError(
            f"the prediction {prediction} has no output for the data-JSON entries {missing} "
            f"(it covers {sorted(groups)}); evaluate with the data JSON it was predicted from"
        )
    return {n: groups[n] for n in data.entries}


def _check_status(group: Path, allow_incomplete: bool) -> None:
    attrs = group / ".zattrs"
    info = json.loads(attrs.read_text(encoding="utf-8")).get("incasem", {}) if attrs.is_file() else {}
    status = info.get("status")
    if status not in (None, "complete") and not allow_incomplete:
        raise ConfigError(
            f"the prediction {group} is {status}, not complete; finish it with `incasem predict` "
            "and resume = <its number>, or set allow_incomplete = true"
        )


def _targets(config: EvaluateConfig, data: DataConfig, classes: list[int]) -> list[_Target]:
    targets = []
    data_dir = Path(config.data_dir) if config.data_dir is not None else None
    for name, group in _prediction_groups(config, data).items():
        entry = data.entries[name]
        _check_status(group, config.allow_incomplete)
        datasets = ["segmentation", *(f"prob_maps/class_{c}" for c in classes)]
        for dataset in datasets:
            if not (group / dataset / ".zarray").is_file():
                raise DataError(
                    f"the prediction {group} has no dataset {dataset!r}; is class "
                    f"{dataset.rsplit('_', 1)[-1]} one the model predicts?"
                )
        offset, shape, resolution = _geometry(group, "segmentation")
        if not all(math.isclose(a, b) for a, b in zip(resolution, entry.voxel_size, strict=True)):
            raise DataError(
                f"the prediction {group} has voxel size {list(resolution)} nm but the data JSON "
                f"says {entry.voxel_size} nm; evaluate it against labels at its voxel size"
            )
        pad = config.roi_padding
        begin = [max(a, b) + pad for a, b in zip(entry.offset, offset, strict=True)]
        end = [
            min(a + s, b + t) - pad
            for a, s, b, t in zip(entry.offset, entry.shape, offset, shape, strict=True)
        ]
        if any(e <= b for b, e in zip(begin, end, strict=True)):
            raise DataError(
                f"the prediction {group} (voxels {list(offset)} + {list(shape)}) does not overlap "
                f"the ROI of entry {name!r} ({entry.offset} + {entry.shape}); check both"
            )
        store = resolve_file(entry, data_dir=data_dir, json_path=Path(config.data))
        size = [e - b for b, e in zip(begin, end, strict=True)]
        targets.append(
            _Target(name, entry, store, group, (begin[0], begin[1], begin[2]), (size[0], size[1], size[2]))
        )
    return targets


def _count_target(
    target: _Target, classes: list[int], thresholds: tuple[float, ...], slab: int
) -> dict[Key, BinaryCounts]:
    counts: dict[Key, BinaryCounts] = {}
    entry = target.entry
    z0, y0, x0 = target.begin
    for z in range(z0, z0 + target.shape[0], slab):
        begin = (z, y0, x0)
        shape = (min(slab, z0 + target.shape[0] - z), target.shape[1], target.shape[2])
        labels = merge_labels(
            [(_read(target.store, d, begin, shape) != 0, c) for d, c in entry.labels.items()]
        )
        mask = (
            _read(target.store, entry.mask, begin, shape) != 0 if entry.mask else np.ones(shape, dtype=bool)
        )
        metric = mask.copy()
        for dataset in entry.metric_masks:
            metric &= _read(target.store, dataset, begin, shape) != 0
        segmentation = _read(target.group, "segmentation", begin, shape)
        for c in classes:
            truth = labels == c
            prob = _read(target.group, f"prob_maps/class_{c}", begin, shape)
            for region_name, region in zip(REGIONS, (mask, metric), strict=True):
                swept = binary_scores_at_thresholds(truth, prob, thresholds, mask=region)
                for t, scores in zip(thresholds, swept, strict=True):
                    _add(counts, (target.name, region_name, c, f"{t:g}"), scores.counts)
                argmax = binary_counts(truth, segmentation == c, mask=region)
                _add(counts, (target.name, region_name, c, ARGMAX), argmax)
    return counts


def _add(counts: dict[Key, BinaryCounts], key: Key, value: BinaryCounts) -> None:
    counts[key] = counts[key] + value if key in counts else value


def _rows(counts: dict[Key, BinaryCounts], names: dict[int, str]) -> list[dict[str, Any]]:
    rows = []
    for (roi, region, c, threshold), value in counts.items():
        scores = BinaryScores.from_counts(value)
        rows.append(
            {
                "roi": roi,
                "region": region,
                "class_id": c,
                "class_name": names.get(c, f"class_{c}"),
                "threshold": threshold,
                "tp": value.tp,
                "fp": value.fp,
                "fn": value.fn,
                "tn": value.tn,
                "voxels": value.tp + value.fp + value.fn + value.tn,
                "precision": scores.precision,
                "recall": scores.recall,
                "f1": scores.f1,
                "iou": scores.iou,
            }
        )
    return rows


def _class_names(data: DataConfig) -> dict[int, str]:
    names: dict[int, list[str]] = {}
    for entry in data.entries.values():
        for dataset, c in entry.labels.items():
            leaf = dataset.rstrip("/").rsplit("/", 1)[-1]
            if leaf not in names.setdefault(c, []):
                names[c].append(leaf)
    return {c: "+".join(v) for c, v in names.items()}


def _headline_threshold(thresholds: tuple[float, ...]) -> str:
    return f"{min(thresholds, key=lambda t: abs(t - 0.5)):g}"


def _markdown(
    rows: list[dict[str, Any]], config: EvaluateConfig, targets: list[_Target], classes: list[int]
) -> str:
    headline = _headline_threshold(config.thresholds)
    lines = [
        "# incasem evaluation",
        "",
        f"- prediction: `{config.prediction}`",
        f"- data: `{config.data}`",
    ]
    for t in targets:
        lines.append(
            f"- ROI `{t.name}`: scored voxels {list(t.begin)} + {list(t.shape)} (the region the "
            "prediction covers)"
        )
    index = {(r["roi"], r["region"], r["class_id"], r["threshold"]): r for r in rows}
    rois = [t.name for t in targets] + [POOLED]

    def fmt(value: float) -> str:
        return f"{value:.4f}"

    for c in classes:
        name = index[(POOLED, REGIONS[0], c, ARGMAX)]["class_name"]
        for region in REGIONS:
            label = "inside the mask" if region == "mask" else "inside the mask and metric masks"
            lines += [
                "",
                f"## class {c} ({name}), {label}, threshold {headline}",
                "",
                "| ROI | voxels | precision | recall | F1 | IoU | F1 (argmax) | best F1 (threshold) |",
                "|---|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for roi in rois:
                r = index[(roi, region, c, headline)]
                sweep = [index[(roi, region, c, f"{t:g}")] for t in config.thresholds]
                best = max(sweep, key=lambda x: x["f1"])
                lines.append(
                    f"| {roi} | {r['voxels']} | {fmt(r['precision'])} | {fmt(r['recall'])} | "
                    f"{fmt(r['f1'])} | {fmt(r['iou'])} | "
                    f"{fmt(index[(roi, region, c, ARGMAX)]['f1'])} | "
                    f"{fmt(best['f1'])} ({best['threshold']}) |"
                )
        lines += [
            "",
            f"### class {c}: pooled threshold sweep, inside the mask and metric masks",
            "",
            "| threshold | precision | recall | F1 | IoU |",
            "|---:|---:|---:|---:|---:|",
        ]
        for t in config.thresholds:
            r = index[(POOLED, REGIONS[1], c, f"{t:g}")]
            lines.append(
                f"| {t:g} | {fmt(r['precision'])} | {fmt(r['recall'])} | {fmt(r['f1'])} | {fmt(r['iou'])} |"
            )
    return "\n".join(lines) + "\n"


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def _out_dir(config: EvaluateConfig) -> Path:
    if config.out is not None:
        return Path(config.out)
    run = Path(config.prediction) / "run"
    k = 1
    while (run / f"evaluation_{k}").exists():
        k += 1
    return run / f"evaluation_{k}"


def evaluate(config: EvaluateConfig) -> dict[str, float]:
    """Write ``metrics.csv``, ``metrics.md`` and ``metrics.json`` to ``config.out``.

    Returns the headline numbers: pooled precision, recall, F1 and IoU inside the mask and metric
    masks at threshold 0.5 (averaged over the scored classes, and per class), with the best F1 of
    the sweep and its threshold.
    """
    from cellsight_shared.io import atomic_write, write_json
    from incasem.config.base import write_config

    out = _out_dir(config)
    if out.exists() and not config.overwrite:
        raise DataError(
            f"the evaluation folder {out} exists; choose another --out, or replace it with "
            "--overwrite (overwrite = true in the evaluate TOML)"
        )
    data = load_data_config(config.data, data_dir=config.data_dir, context=0, require_labels=True)
    classes = list(config.classes or range(1, data.num_classes))
    unknown = [c for c in classes if c >= data.num_classes]
    if unknown:
        raise ConfigError(
            f"classes {unknown} have no labels in {config.data} (its class ids are 1.."
            f"{data.num_classes - 1}); drop them from classes"
        )
    targets = _targets(config, data, classes)
    counts: dict[Key, BinaryCounts] = {}
    for target in targets:
        logger.info("scoring %s: voxels %s + %s", target.name, target.begin, target.shape)
        for key, value in _count_target(target, classes, config.thresholds, config.slab).items():
            _add(counts, key, value)
            _add(counts, (POOLED, *key[1:]), value)
    names = _class_names(data)
    rows = _rows(counts, names)
    rows.sort(key=lambda r: (r["class_id"], r["region"], r["roi"] == POOLED, r["roi"]))
    headline = _headline_threshold(config.thresholds)
    summary: dict[str, float] = {}
    for c in classes:
        r = next(
            x
            for x in rows
            if (x["roi"], x["region"], x["class_id"], x["threshold"]) == (POOLED, REGIONS[1], c, headline)
        )
        sweep = [
            x
            for x in rows
            if (x["roi"], x["region"], x["class_id"]) == (POOLED, REGIONS[1], c) and x["threshold"] != ARGMAX
        ]
        best = max(sweep, key=lambda x: x["f1"])
        for metric in ("precision", "recall", "f1", "iou"):
            summary[f"{metric}_class_{c}"] = r[metric]
        summary[f"best_f1_class_{c}"] = best["f1"]
        summary[f"best_threshold_class_{c}"] = float(best["threshold"])
    for metric in ("precision", "recall", "f1", "iou"):
        summary[metric] = float(np.mean([summary[f"{metric}_class_{c}"] for c in classes]))
    with atomic_write(out, overwrite=config.overwrite) as tmp:
        tmp.mkdir(parents=True)
        (tmp / "metrics.csv").write_text(_csv(rows), encoding="utf-8")
        (tmp / "metrics.md").write_text(_markdown(rows, config, targets, classes), encoding="utf-8")
        write_json(tmp / "metrics.json", {"summary": summary, "rows": rows})
        write_config(tmp, config)
    logger.info("metrics written to %s", out)
    return summary
