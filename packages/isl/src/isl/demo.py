"""``isl demo``: synthetic z-stacks -> short training -> prediction -> panels and metrics.

Everything lands in one run folder::

    DIR/wells/{train,test}/well_*/     synthetic wells in the original PNG naming
    DIR/run/                           checkpoints, TensorBoard logs, loss.csv, loss_curve.png
    DIR/predictions/well_*/            16-bit statistic images, target/input error panels
    DIR/metrics/                       metrics.csv, metrics.md, pearson_r.png
"""

from __future__ import annotations

import logging
from pathlib import Path

from isl.config import (
    DataConfig,
    DemoConfig,
    EvaluateConfig,
    FiguresConfig,
    ModelConfig,
    PredictConfig,
    TrainConfig,
    save_config,
)
from isl.errors import ConfigError
from isl.synthetic import write_synthetic_wells

__all__ = ["run_demo"]

logger = logging.getLogger(__name__)


def run_demo(config: DemoConfig) -> Path:
    """Run the whole pipeline on synthetic data in ``config.out``; return that folder."""
    out = config.out
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not empty; choose a new --out for the demo")
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out)
    shape = (config.image_size, config.image_size)
    common = {"shape": shape, "n_planes": config.z_planes, "n_cells": config.cells_per_well}
    train_wells = write_synthetic_wells(
        out / "wells" / "train", config.train_wells, seed=config.seed, **common
    )
    test_wells = write_synthetic_wells(
        out / "wells" / "test", config.test_wells, seed=config.seed + 1000, prefix="test", **common
    )
    logger.info("wrote %d training and %d test wells", len(train_wells), len(test_wells))

    model = ModelConfig(
        num_z_values=config.z_planes,
        target_channels=config.channels,
        base_depth=config.base_depth,
        projection_depth=config.projection_depth,
    )
    train_config = TrainConfig(
        wells=(out / "wells" / "train",),
        out=out / "run",
        model=model,
        data=DataConfig(
            input_channels=("PHASE_CONTRAST",),
            derived_channels={},
            patch_size=config.patch_size,
            crop_size=config.patch_size,
            patch_stride=config.patch_size,
            crops_per_visit=config.batch_size,
        ),
        steps=config.steps,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        checkpoint_every=max(1, config.steps // 2),
        recalibrate_batch_norm=config.recalibrate_batch_norm,
        log_every=max(1, config.steps // 30),
        seed=config.seed,
    )
    from isl.train import train

    train(train_config)
    from isl.predict import predict

    predictions = predict(
        PredictConfig(
            checkpoint=out / "run",
            wells=(out / "wells" / "test",),
            out=out / "predictions",
            input_panel=True,  # the demo shows the reconstruction of its z-planes too
        )
    )
    from isl.evaluate import evaluate
    from isl.figures import make_figures

    metrics = evaluate(EvaluateConfig(predictions=predictions, out=out / "metrics"))
    make_figures(FiguresConfig(metrics=out / "metrics" / "metrics.csv", out=out / "metrics"))
    for channel, values in metrics.items():
        logger.info("demo %s: Pearson r %.3f", channel, values["pearson_r"])
    return out
