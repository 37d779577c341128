"""``protloc demo``: synthetic cells -> the regression U-Net -> its theta -> pix2pix -> metrics.

Four made-up proteins, one per pattern (nuclear, cytoplasmic, membrane, punctate), on fields
written in the OpenCell layout. Both models are small versions of the originals (sizes in
``DEMO_REGRESSION`` / ``DEMO_GAN``). With the defaults (4 x 10 fields of 96 px, 30 epochs each)
the whole demo took 49 s wall time and 0.5 GB RSS on a shared 2-core machine (measured once).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from protloc.config import DataConfig, DemoConfig, EvaluateConfig, GanConfig, RegressionConfig, TrainConfig

__all__ = ["DEMO_GAN", "DEMO_REGRESSION", "run_demo"]

logger = logging.getLogger(__name__)

DEMO_REGRESSION = RegressionConfig(depth=3, wf=3, down_factor=2)
"""The original's block design at 8-16-32 channels and pooling by 2 (the original: 16..256, by 4)."""
DEMO_GAN = GanConfig(num_downs=5, ngf=8, ndf=16)
"""pix2pix at ngf 8 and 5 downsamplings (the original: ngf 64, 8); the original's ndf 16."""


def run_demo(config: DemoConfig) -> Path:
    """Run the demo into ``config.out`` (created; must not exist); returns it."""
    from cellsight_shared.io import ensure_absent, read_json, write_json
    from protloc.evaluate import evaluate
    from protloc.synthetic import DEMO_PROTEINS, write_synthetic_opencell
    from protloc.theta import export_theta
    from protloc.train import train

    out = ensure_absent(config.out)
    out.mkdir(parents=True)
    data = write_synthetic_opencell(
        out / "data", images_per_protein=config.images_per_protein, size=config.size, seed=config.seed
    )
    data_config = DataConfig(root=data, val_fraction=0.1, test_fraction=0.2, split_seed=config.seed)
    crop = min(64, config.size // 32 * 32)
    common = {
        "data": data_config,
        "crop_size": crop,
        "batch_size": 8,
        "crops_per_image": 4,
        "seed": config.seed,
        "save_every": max(1, config.epochs),
    }
    logger.info("demo 1/2: training and evaluating the regression U-Net")
    regression = train(
        TrainConfig(
            model=DEMO_REGRESSION,
            out=out / "regression",
            n_epochs=config.epochs,
            n_epochs_decay=0,
            lr=3e-3,
            **common,
        )
    )
    reg_summary = evaluate(EvaluateConfig(run=regression, out=out / "regression-evaluation"))
    logger.info("demo 2/2: exporting its theta, training and evaluating pix2pix on it")
    theta = export_theta(regression / "checkpoints" / "latest.pt", out / "theta.npz")
    gan = train(
        TrainConfig(
            model=DEMO_GAN,
            out=out / "gan",
            theta=theta,
            n_epochs=config.epochs // 2,
            n_epochs_decay=config.epochs - config.epochs // 2,
            **common,
        )
    )
    gan_summary = evaluate(EvaluateConfig(run=gan, out=out / "gan-evaluation"))
    lines = [
        "# protloc demo",
        "",
        f"Synthetic proteins: {', '.join(f'{g} ({p})' for g, p in DEMO_PROTEINS.items())}.",
        f"Held-out images; Pearson r per protein (seed {config.seed}, {config.epochs} epochs).",
        "",
        "| protein | pattern | regression | pix2pix | mean training image | nucleus |",
        "|---|---|---|---|---|---|",
    ]
    for gene, pattern in DEMO_PROTEINS.items():
        r, g = reg_summary.get(gene), gan_summary.get(gene)
        if r is None or g is None:
            continue
        cells = [
            r["model"]["pearson_r"],
            g["model"]["pearson_r"],
            r["mean_image"]["pearson_r"],
            r["nucleus"]["pearson_r"],
        ]
        lines.append(
            f"| {gene} | {pattern} | "
            + " | ".join("nan" if not math.isfinite(v) else f"{v:.3f}" for v in cells)
            + " |"
        )
    (out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_json(
        out / "metrics.json",
        {
            "regression": reg_summary,
            "gan": gan_summary,
            "history_regression": read_json(regression / "history.json")[-1],
            "history_gan": read_json(gan / "history.json")[-1],
        },
    )
    logger.info("demo done: %s (grids in */grids, curves in */losses.png)", out / "summary.md")
    return out
