"""The models learn: regression beats the mean-image baseline and localises by protein id; GAN L1 falls."""

from __future__ import annotations

import math

import numpy as np
import torch
from conftest import TINY_GAN, tiny_train_config

from cellsight_shared.metrics import pearson_r
from protloc.checkpoint import load_generator
from protloc.config import EvaluateConfig
from protloc.data.dataset import normalize_channel
from protloc.evaluate import evaluate
from protloc.predict import predict_image
from protloc.synthetic import synthetic_field
from protloc.train import train


def test_regression_beats_mean_image_baseline_on_held_out_images(regression_run, tmp_path):
    """Held-out Pearson r of the model exceeds that of the protein's mean training image, per protein."""
    summary = evaluate(EvaluateConfig(run=regression_run, out=tmp_path / "eval", figures=True))
    assert set(summary) == {"NUCA", "CYTA", "MEMA", "PUNA"}
    model_r = {p: s["model"]["pearson_r"] for p, s in summary.items()}
    mean_r = {p: s["mean_image"]["pearson_r"] for p, s in summary.items()}
    for protein in summary:
        assert model_r[protein] > mean_r[protein] + 0.1, (protein, model_r, mean_r)
    assert np.mean(list(model_r.values())) > 0.6
    assert (tmp_path / "eval" / "summary.md").read_text().count("|") > 20
    assert (tmp_path / "eval" / "grids" / "NUCA.png").stat().st_size > 1000


def test_protein_id_decides_where_the_prediction_is(regression_run):
    """On one unseen nucleus, the nuclear id predicts signal inside nuclei, the cytoplasmic id around them."""
    net, config, proteins, theta = load_generator(regression_run / "checkpoints" / "latest.pt")
    nuclear = synthetic_field("nuclear", size=64, seed=4242)
    cytoplasmic = synthetic_field("cytoplasmic", size=64, seed=4242)  # same cells, other protein
    assert np.array_equal(nuclear.nucleus_labels, cytoplasmic.nucleus_labels)
    nucleus = normalize_channel(nuclear.channel("nucleus"), 1.0, 99.8)
    pred = predict_image(net, config, nucleus, proteins.indices(["NUCA", "CYTA"]))
    inside = nuclear.nucleus_labels > 0
    cyto = (nuclear.cell_labels > 0) & ~inside

    def inside_share(image: np.ndarray) -> float:
        positive = np.clip(image, 0, None)
        return float(positive[inside].mean() / (positive[cyto].mean() + 1e-6))

    assert not np.allclose(pred[0], pred[1], atol=0.05)
    assert inside_share(pred[0]) > 1.5 * inside_share(pred[1])
    assert (
        pearson_r(nuclear.channel("protein"), pred[0]) > pearson_r(nuclear.channel("protein"), pred[1]) + 0.3
    )
    assert (
        pearson_r(cytoplasmic.channel("protein"), pred[1])
        > pearson_r(cytoplasmic.channel("protein"), pred[0]) + 0.3
    )


def test_gan_generator_l1_falls_and_losses_stay_finite(synthetic_root, tmp_path):
    """A short pix2pix run: the generator's L1 term falls and all four losses stay finite."""
    torch.manual_seed(0)
    run = train(
        tiny_train_config(
            synthetic_root,
            tmp_path / "gan",
            model=TINY_GAN,
            lr=None,
            n_epochs=4,
            n_epochs_decay=2,
            crops_per_image=2,
        )
    )
    from cellsight_shared.io import read_json

    history = read_json(run / "history.json")
    assert len(history) == 6
    assert history[-1]["g_l1"] < 0.9 * history[0]["g_l1"]
    for record in history:
        for key in ("g_gan", "g_l1", "d_real", "d_fake", "val_l1"):
            assert math.isfinite(record[key]), (key, record)
    # constant, then linear decay: 4 epochs at 2e-4, then 2e-4 * (1 - k/3)
    assert [round(h["lr"] / 2e-4, 3) for h in history] == [1.0, 1.0, 1.0, 1.0, 0.667, 0.333]
    assert (run / "losses.png").stat().st_size > 1000
