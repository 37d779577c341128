"""``protloc evaluate``: per-protein Pearson r, SSIM, PSNR and MAE on a run's held-out images.

Two baselines are scored the same way: the protein's mean training image (what a model that
ignores the nucleus would best do), and the nucleus image itself (in the same percentile
normalisation, the scale of the targets). All images are compared in the normalised space, the
protein's P1..P99.8 range of each image mapped to 0..1; PSNR and SSIM use a data range of 1.
Writes per_image.csv, per_protein.csv, summary.md and, optionally, result grids per protein.
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from protloc.config import EvaluateConfig, TrainConfig
from protloc.errors import DataError

__all__ = ["METHODS", "evaluate", "score"]

logger = logging.getLogger(__name__)

METHODS = ("model", "mean_image", "nucleus")
METRICS = ("pearson_r", "ssim", "psnr", "mae")


def score(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The four metrics of one image pair (normalised intensities, data range 1)."""
    from cellsight_shared.metrics import mae, pearson_r, psnr, ssim

    truth = np.asarray(truth, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    return {
        "pearson_r": pearson_r(truth, pred),
        "ssim": ssim(truth, pred, data_range=1.0),
        "psnr": psnr(truth, pred, data_range=1.0),
        "mae": mae(truth, pred),
    }


def _resized(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if image.shape == shape:
        return image
    from scipy.ndimage import zoom

    return zoom(image, [a / b for a, b in zip(shape, image.shape, strict=True)], order=1)


def _out_dir(config: EvaluateConfig) -> Path:
    if config.out is not None:
        from cellsight_shared.io import ensure_absent

        return ensure_absent(config.out)
    base = config.run / f"evaluate-{config.split}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def _fmt(v: float) -> str:
    return "nan" if not math.isfinite(v) else f"{v:.3f}"


def evaluate(config: EvaluateConfig) -> dict[str, dict[str, dict[str, float]]]:
    """Score the run's held-out images; returns {protein: {method: {metric: mean}}}."""
    from cellsight_shared.cli import progress
    from cellsight_shared.io import read_json
    from cellsight_shared.provenance import write_run_info
    from protloc.checkpoint import load_generator
    from protloc.config import write_config
    from protloc.data.dataset import load_dataset, load_set, select_split
    from protloc.figures import result_grid
    from protloc.predict import predict_image
    from protloc.train import resolve_device

    if not (config.run / "config.json").is_file() or not (config.run / "split.json").is_file():
        raise DataError(f"{config.run} is not a protloc training run (no config.json / split.json)")
    train_config = TrainConfig.model_validate(read_json(config.run / "config.json"))
    saved_split = read_json(config.run / "split.json")
    checkpoint = config.checkpoint or config.run / "checkpoints" / "latest.pt"
    device = resolve_device(config.device)
    net, model_config, proteins, theta = load_generator(checkpoint, device=device)
    if list(proteins.names) != saved_split["proteins"]:
        raise DataError(f"{checkpoint} was trained on other proteins than the run {config.run}'s split.json")
    out = _out_dir(config)

    split = load_dataset(train_config.data)
    held_out = select_split(split, config.split, [e["image_id"] for e in saved_split[config.split]])
    if not held_out:
        raise DataError(
            f"the run {config.run} has no {config.split} images; use --split val or a run with a test split"
        )
    train_ids = [e["image_id"] for e in saved_split["train"]]
    train_set = load_set(select_split(split, "train", train_ids), train_config.data, proteins)
    means = train_set.mean_images()
    images = load_set(held_out, train_config.data, proteins)

    per_image: list[dict[str, Any]] = []
    grids: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for record, nucleus, truth, pid in progress(list(images.iter_images()), desc="evaluating", unit="image"):
        pred = predict_image(
            net,
            model_config,
            nucleus,
            [pid],
            theta=theta,
            device=device,
            tile=config.tile,
            margin=config.margin,
        )[0]
        candidates = {"model": pred, "mean_image": _resized(means[pid], truth.shape), "nucleus": nucleus}
        for method, image in candidates.items():
            per_image.append(
                {
                    "image_id": record.image_id,
                    "protein": record.protein,
                    "method": method,
                    **score(truth, image),
                }
            )
        grids.setdefault(record.protein, []).append((truth, pred, nucleus))

    summary: dict[str, dict[str, dict[str, float]]] = {}
    per_protein: list[dict[str, Any]] = []
    for protein in sorted({r["protein"] for r in per_image}):
        summary[protein] = {}
        for method in METHODS:
            rows = [r for r in per_image if r["protein"] == protein and r["method"] == method]
            means_m = {
                m: float(np.nanmean([r[m] for r in rows]))
                if any(math.isfinite(r[m]) for r in rows)
                else math.nan
                for m in METRICS
            }
            summary[protein][method] = means_m
            per_protein.append({"protein": protein, "method": method, "n_images": len(rows), **means_m})

    tmp = out.with_name(f".{out.name}.tmp")
    tmp.mkdir(parents=True)
    _write_csv(tmp / "per_image.csv", per_image)
    _write_csv(tmp / "per_protein.csv", per_protein)
    lines = [
        f"# protloc evaluation: {config.split} images of {config.run.name}",
        "",
        f"Checkpoint `{checkpoint}`; {len(images)} held-out images; means over images per protein.",
        "Baselines: `mean_image` = the protein's mean training image, `nucleus` = the normalised nucleus.",
        "",
        "| protein | n | r model | r mean image | r nucleus | SSIM model | PSNR model | MAE model |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in [r for r in per_protein if r["method"] == "model"]:
        s = summary[row["protein"]]
        lines.append(
            f"| {row['protein']} | {row['n_images']} | {_fmt(s['model']['pearson_r'])} | "
            f"{_fmt(s['mean_image']['pearson_r'])} | {_fmt(s['nucleus']['pearson_r'])} | "
            f"{_fmt(s['model']['ssim'])} | {_fmt(s['model']['psnr'])} | {_fmt(s['model']['mae'])} |"
        )
    (tmp / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if config.figures:
        for protein, rows in grids.items():
            result_grid(rows[:4], tmp / "grids" / f"{protein}.png", title=protein)
    write_config(tmp, config)
    write_run_info(
        tmp,
        package="protloc",
        config=config.model_dump(mode="json"),
        seed=None,
        extra={"checkpoint": str(checkpoint)},
    )
    tmp.rename(out)
    logger.info("evaluation of %d images -> %s", len(images), out)
    return summary
