"""Learning test on the real Vectra fixture (slow).

Scribbles generated from the full outlines of images 0 and 1 by the port's generator; AP@0.5 on
images 2 and 4 against their full outlines must beat Otsu + connected components. Then one
finetune round with extra scribbles, timed.
"""

import json
import time

import numpy as np
import pytest

from impartial.config import DataConfig, FinetuneConfig, ModelConfig, SamplerConfig, TaskConfig, TrainConfig


@pytest.mark.slow
def test_vectra_scribbles_beat_otsu_and_finetune_round(vectra_dir, tmp_path, capsys):
    """Train from generated scribbles, evaluate held-out images, finetune once."""
    from impartial.data import load_dataset
    from impartial.evaluate import evaluate_probabilities, score_instances
    from impartial.postprocess import otsu_instances
    from impartial.predict import load_ensemble, predict_image
    from impartial.train.finetune import finetune
    from impartial.train.loop import train

    data = DataConfig(
        root=vectra_dir, train=["image0", "image1"], test=["image2", "image4"], scribble_budget=80
    )
    samples = load_dataset(data, n_scribble_channels=2, in_channels=2)
    cover = float(np.mean([s.scribble.any(axis=0).mean() for s in samples if s.group == "train"]))
    config = TrainConfig(
        out=tmp_path / "run",
        data=data,
        model=ModelConfig(in_channels=2, tasks=[TaskConfig(rec_channels=[0, 1])], base=16, depth=4),
        sampler=SamplerConfig(npatches_epoch=192, val_patches=32),
        batch_size=16,
        lr=1e-3,
        epochs=12,
        nsaves=2,
        patience=2,
        min_epochs_cycle=4,
        tensorboard=False,
    )
    t0 = time.perf_counter()
    run = train(config, samples=samples)
    train_s = time.perf_counter() - t0
    ens = load_ensemble(run)
    probs = {s.name: predict_image(ens, s.image, mc_passes=3)["cell"].prob[0] for s in samples}
    labels = {s.name: s.label[0] for s in samples}
    rows = evaluate_probabilities(probs, labels, ["image0", "image1"], ["image2", "image4"])
    ap = {r["method"]: r["AP50"] for r in rows if r["image"] == "mean"}
    otsu = float(
        np.mean(
            [
                score_instances(labels[n], otsu_instances(s.image)).get("AP50")
                for n, s in ((s.name, s) for s in samples if s.group == "test")
            ]
        )
    )
    extra = DataConfig(root=vectra_dir, train=["image0", "image1"], scribble_budget=160)
    t0 = time.perf_counter()
    finetune(FinetuneConfig(out=tmp_path / "ft", run=run, data=extra, epochs=2, npatches_epoch=192))
    ft_s = time.perf_counter() - t0
    figures = {
        "scribble_coverage": cover,
        "AP50": ap,
        "otsu_AP50": otsu,
        "train_s": train_s,
        "finetune_2_epochs_s": ft_s,
        "rows": rows,
    }
    with capsys.disabled():
        print("\nimpartial vectra:", json.dumps(figures, default=float))
    assert cover < 0.05
    assert max(ap.values()) > otsu, (ap, otsu)
    assert (tmp_path / "ft" / "checkpoints" / "cycle0.pt").is_file()
