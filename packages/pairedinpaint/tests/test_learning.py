"""Learning: after short training, conv3/conv4 features classify localisation far above chance."""

import json

import numpy as np
import pytest

from pairedinpaint.config import BenchmarkConfig, DataConfig, DemoConfig, ModelConfig, TrainConfig


def test_demo_features_learn_on_synthetic_cells(tmp_path):
    """Synthetic 'proteins' (one localisation each): trained kNN accuracy far above chance (0.2)."""
    from pairedinpaint.demo import run_demo

    results = run_demo(
        DemoConfig(out=tmp_path / "demo", epochs=6, cells_per_class=40, width=0.25), progress=False
    )
    assert results["trained_conv3_1"] > 3 * results["chance"]
    assert max(results["trained_conv3_1"], results["trained_conv4_1"]) > 0.6
    for name in ("inpainting.png", "embedding_conv4_1.png", "results.json", "train/loss_curve.png"):
        assert (tmp_path / "demo" / name).stat().st_size > 0
    loss = json.loads((tmp_path / "demo" / "train" / "history.json").read_text())["loss"]
    assert loss[-1] < 0.7 * loss[0]


@pytest.mark.slow
def test_real_yeast_subset_trained_vs_random_vs_mahotas(yeast_subset, tmp_path):
    """Train on the 5-strain real subset; leave-one-out kNN over the strains for all three feature sets."""
    from pairedinpaint.evaluate import benchmark
    from pairedinpaint.train import train

    model = ModelConfig(width=0.5)
    run = train(
        TrainConfig(
            data=DataConfig(root=yeast_subset),
            model=model,
            out=tmp_path / "run",
            epochs=15,
            batch_size=32,
            learning_rate=3e-4,
            tensorboard=False,
        ),
        progress=False,
    )
    folder = benchmark(
        BenchmarkConfig(
            out=tmp_path / "bench",
            folder=yeast_subset,
            model=model,
            weights=run / "model.weights.h5",
            layers=("conv3_1", "conv4_1"),
        )
    )
    print((folder / "results.md").read_text())
    rows = (folder / "results.csv").read_text().splitlines()[1:]
    acc = {tuple(r.split(",")[:2]): float(r.split(",")[2]) for r in rows}
    assert max(acc[("trained", "conv3_1")], acc[("trained", "conv4_1")]) > 2 * 0.2
    assert np.isfinite(list(acc.values())).all()
