"""Learning: after short training, conv3/conv4 features classify localisation far above chance."""

import json

import numpy as np
import pytest

from pairedinpaint.config import BenchmarkConfig, DataConfig, DemoConfig, ModelConfig, TrainConfig


def _check_demo_learns(results: dict[str, float], margin: float) -> None:
    """Trained conv3_1 and conv4_1 far above chance and above the same network at random init."""
    for layer in ("conv3_1", "conv4_1"):
        trained = results[f"trained_{layer}"]
        assert trained > 4 * results["chance"], (layer, results)
        assert trained > results[f"random_init_{layer}"] + margin, (layer, results)


def test_demo_features_learn_on_synthetic_cells(tmp_path):
    """Synthetic 'proteins' (one localisation each): both layers beat chance (0.2) and random init.

    Measured (seed 0, 2 shared cores, 24.5 s): trained conv3_1 / conv4_1 0.99 / 0.965 vs random init
    0.88 / 0.79; the slow test below checks seeds 1-3.
    """
    from pairedinpaint.demo import run_demo

    results = run_demo(DemoConfig(out=tmp_path / "demo", cells_per_class=40, width=0.25), progress=False)
    _check_demo_learns(results, margin=0.05)
    for name in ("inpainting.png", "embedding_conv4_1.png", "results.json", "train/loss_curve.png"):
        assert (tmp_path / "demo" / name).stat().st_size > 0
    loss = json.loads((tmp_path / "demo" / "train" / "history.json").read_text())["loss"]
    assert loss[-1] < 0.7 * loss[0]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_demo_learns_across_seeds(tmp_path, seed):
    """Other seeds, twice the epochs: both layers beat random init, also with its BN statistics calibrated.

    The calibrated baseline (population BN statistics, same weights) is the stronger one; after the
    default 30 epochs seed 3's trained conv3_1 was level with it (0.91 vs 0.915), hence 60 here.
    """
    from pairedinpaint.demo import run_demo

    results = run_demo(
        DemoConfig(out=tmp_path / "demo", seed=seed, epochs=60, cells_per_class=40, width=0.25),
        progress=False,
    )
    print(json.dumps(results))
    _check_demo_learns(results, margin=0.05)
    for layer in ("conv3_1", "conv4_1"):
        assert results[f"trained_{layer}"] > results[f"random_init_bn_calibrated_{layer}"], (layer, results)


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
            epochs=40,
            batch_size=16,
            learning_rate=5e-4,
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
    assert np.isfinite(list(acc.values())).all()
    # measured 0.635 / 0.645 and 0.645 / 0.69 vs random init 0.48 / 0.485 (mahotas 0.61, not asserted)
    for layer in ("conv3_1", "conv4_1"):
        assert acc[("trained", layer)] > 2 * 0.2, acc
        assert acc[("trained", layer)] > acc[("random_init", layer)] + 0.05, acc
