"""``incasem demo``: the whole method on synthetic FIB-SEM cells, in minutes on a CPU.

Steps (each writes into the demo folder): two synthetic cells (``cellsight_shared.synthetic``;
one to train on, one held out) -> ``volumes/raw_equalized_0.02`` by the training CLAHE ->
metric masks -> a reduced U-Net trained with the gunpowder pipeline -> blockwise prediction of
the held-out cell with daisy workers -> precision/recall/F1/IoU tables -> a PNG of orthogonal
slices with the prediction overlaid, and the loss curve.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from incasem.config.demo import DemoConfig
from incasem.errors import ConfigError

__all__ = ["run_demo"]

logger = logging.getLogger(__name__)

RESOLUTION = (5, 5, 5)


def _make_cell(
    path: Path, *, shape: tuple[int, ...], seed: int, organelle: str, mask_voxels: tuple[int, int]
) -> None:
    from cellsight_shared.synthetic.em import em_volume, write_em_volume_zarr
    from incasem.config.tools import EqualizeConfig, MetricMaskConfig
    from incasem.equalize import equalize
    from incasem.metric_mask import metric_mask

    write_em_volume_zarr(path, em_volume(shape=shape, seed=seed), resolution=RESOLUTION)
    equalize(EqualizeConfig(zarr=path))
    metric_mask(
        MetricMaskConfig(
            zarr=path, labels=f"volumes/labels/{organelle}", inwards=mask_voxels[0], outwards=mask_voxels[1]
        )
    )


def _entry(store: Path, organelle: str, offset: list[int], shape: list[int]) -> dict[str, Any]:
    return {
        "file": str(store.resolve()),
        "offset": offset,
        "shape": shape,
        "voxel_size": list(RESOLUTION),
        "raw": "volumes/raw_equalized_0.02",
        "mask": "volumes/mask",
        "metric_masks": [f"volumes/metric_masks/{organelle}"],
        "labels": {f"volumes/labels/{organelle}": 1},
    }


def run_demo(config: DemoConfig) -> Path:
    """Run the demo into ``config.out`` and return the path of its ``summary.json``."""
    from cellsight_shared.io import read_zarr
    from incasem.config.base import write_config
    from incasem.config.evaluate import EvaluateConfig
    from incasem.config.predict import PredictConfig
    from incasem.config.train import TrainConfig
    from incasem.data import read_dataset_box
    from incasem.evaluate import evaluate
    from incasem.figures import plot_orthogonal_slices
    from incasem.predict import predict
    from incasem.train import train

    out = Path(config.out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"demo folder {out} exists and is not empty; choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    write_config(out, config)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    train_cell, held_cell = out / "data" / "train_cell.zarr", out / "data" / "heldout_cell.zarr"
    for path, seed in ((train_cell, config.seed), (held_cell, config.seed + 1)):
        _make_cell(
            path,
            shape=config.shape,
            seed=seed,
            organelle=config.organelle,
            mask_voxels=config.metric_mask_voxels,
        )
    timings["data_s"] = time.perf_counter() - start
    logger.info("synthetic cells, CLAHE and metric masks ready in %.1f s", timings["data_s"])

    output = config.model.output_shape(config.input_shape)
    context = [(i - o) // 2 for i, o in zip(config.input_shape, output, strict=True)]
    roi_shape = [s - 2 * c for s, c in zip(config.shape, context, strict=True)]
    train_json, held_json = out / "data" / "train.json", out / "data" / "heldout.json"
    train_json.write_text(
        json.dumps({"train_cell": _entry(train_cell, config.organelle, context, roi_shape)}, indent=2)
    )
    held_json.write_text(
        json.dumps({"heldout_cell": _entry(held_cell, config.organelle, context, roi_shape)}, indent=2)
    )

    start = time.perf_counter()
    train_config = TrainConfig(
        data=train_json,
        validation_data=held_json,
        out=out / "train",
        model=config.model,
        input_shape=config.input_shape,
        iterations=config.iterations,
        save_every=max(1, config.iterations // 4),
        validate_every=max(1, config.iterations // 4),
        log_every=max(1, config.iterations // 200),
        metrics_every=max(1, config.iterations // 20),
        lr=config.lr,
        seed=config.seed,
        device=config.device,
        augmentation={
            "elastic": {"enabled": config.elastic},
            "intensity": {"enabled": config.intensity},
        },
        reject={"foreground_reject_probability": config.foreground_reject_probability},
    )
    checkpoints = train(train_config)
    timings["train_s"] = time.perf_counter() - start

    start = time.perf_counter()
    group = predict(
        PredictConfig(
            data=held_json,
            checkpoint=checkpoints / f"model_checkpoint_{config.iterations}",
            out=out / "predictions.zarr",
            input_shape=config.input_shape,
            pad_context=True,
            workers=config.workers,
            device=config.device,
        )
    )
    timings["predict_s"] = time.perf_counter() - start

    start = time.perf_counter()
    metrics = evaluate(EvaluateConfig(data=held_json, prediction=group, out=out / "evaluation"))
    timings["evaluate_s"] = time.perf_counter() - start

    box = tuple(slice(c, c + r) for c, r in zip(context, roi_shape, strict=True))
    raw = read_zarr(held_cell, "volumes/raw_equalized_0.02")[box]
    labels = read_zarr(held_cell, f"volumes/labels/{config.organelle}")[box]
    store, dataset = _split(group)
    probability = read_dataset_box(store, f"{dataset}/prob_maps/class_1", context, roi_shape)
    figure = plot_orthogonal_slices(
        raw,
        out / "prediction_slices.png",
        prediction=probability,
        labels=labels,
        title=f"held-out synthetic cell: {config.organelle} probability (red), truth (green); "
        f"F1 {metrics.get('f1_class_1', float('nan')):.3f} at p >= 0.5, "
        f"{metrics.get('best_f1_class_1', float('nan')):.3f} at "
        f"p >= {metrics.get('best_threshold_class_1', float('nan'))}",
    )
    summary = {
        "f1": metrics.get("f1_class_1"),
        "best_f1": metrics.get("best_f1_class_1"),
        "best_threshold": metrics.get("best_threshold_class_1"),
        "metrics": metrics,
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "checkpoints": str(checkpoints),
        "prediction": str(group),
        "evaluation": str(out / "evaluation"),
        "figure": str(figure),
        "loss_curve": str(out / "train" / "loss_curve.png"),
    }
    path = out / "summary.json"
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    logger.info("demo done: F1 %.3f on the held-out cell; summary %s", summary["f1"] or 0, path)
    return path


def _split(group: Path) -> tuple[Path, str]:
    """(zarr container, group path inside it) of a prediction group folder."""
    parts = group.parts
    at = parts.index("volumes")
    return Path(*parts[:at]), "/".join(parts[at:])
