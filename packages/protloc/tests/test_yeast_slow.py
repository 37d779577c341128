"""Real cells (slow): the yeast toy subset, marker (RFP) -> protein (GFP) for 5 strains, split by cell."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cellsight_shared.testing import require_test_data
from protloc.config import DataConfig, EvaluateConfig, RegressionConfig, TrainConfig
from protloc.evaluate import evaluate
from protloc.train import train


@pytest.mark.slow
def test_regression_on_yeast_cells_beats_the_mean_image_on_held_out_cells(tmp_path):
    """Held-out Pearson r per protein, model vs mean training image vs marker; printed for the record."""
    root = require_test_data("pairedinpaint", "yeast_toy_subset")
    config = TrainConfig(
        data=DataConfig(root=root, layout="pairs", val_fraction=0.1, test_fraction=0.2),
        model=RegressionConfig(depth=3, wf=3, down_factor=2),
        out=tmp_path / "yeast",
        crop_size=64,
        batch_size=16,
        crops_per_image=2,
        n_epochs=12,
        n_epochs_decay=4,
        lr=3e-3,
        num_threads=2,
        tensorboard=False,
    )
    run = train(config)
    summary = evaluate(EvaluateConfig(run=run, out=tmp_path / "eval"))
    table = {p: {m: round(v["pearson_r"], 3) for m, v in s.items()} for p, s in summary.items()}
    print("yeast held-out Pearson r:", json.dumps(table))  # noqa: T201 - the closing note quotes it
    assert len(summary) == 5
    model = np.array([s["model"]["pearson_r"] for s in summary.values()])
    mean_image = np.array([s["mean_image"]["pearson_r"] for s in summary.values()])
    assert np.mean(model) > np.mean(mean_image)
    assert (model > mean_image).sum() >= 4
