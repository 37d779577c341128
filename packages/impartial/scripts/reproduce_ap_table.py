"""Reproduce an AP@0.5 table of the paper (MIBI, Vectra, TissueNet, Cellpose) from downloaded data.

    python scripts/reproduce_ap_table.py train.toml --out runs/vectra

``train.toml`` is a TrainConfig whose ``[data]`` names the train and test images and whose
``[model]`` uses the dataset's preset tasks (e.g. ``impartial.config.PRESETS["vectra2ch"]``).
It trains with the paper's schedule, predicts every image with 5 checkpoints x 10 MC passes,
chooses the threshold on the train images and writes metrics.csv / metrics.md per task.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Train, predict and evaluate one dataset; returns 0."""
    from impartial.config import TrainConfig, load_toml
    from impartial.data import load_dataset
    from impartial.evaluate import evaluate_probabilities, write_tables
    from impartial.predict import load_ensemble, predict_image
    from impartial.train.loop import train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    config = load_toml(args.config, TrainConfig, out=args.out / "run")
    mc = config.model
    samples = load_dataset(
        config.data, n_scribble_channels=mc.n_scribble_channels, in_channels=mc.in_channels
    )
    run = train(config, samples=samples)
    ens = load_ensemble(run)
    maps = {s.name: predict_image(ens, s.image, mc_passes=10) for s in samples}
    train_names = [s.name for s in samples if s.group == "train" and s.label is not None]
    test_names = [s.name for s in samples if s.group == "test" and s.label is not None]
    for task_index, task in enumerate(mc.tasks):
        for c in range(task.classes):
            probs = {n: m[task.name].prob[c] for n, m in maps.items()}
            # the GT class of (task, class): one label map per GT class, in task order
            gt_index = sum(t.classes for t in mc.tasks[:task_index]) + c
            labels = {
                s.name: s.label[min(gt_index, s.label.shape[0] - 1)] for s in samples if s.label is not None
            }
            rows = evaluate_probabilities(probs, labels, train_names, test_names)
            write_tables(rows, args.out / f"metrics_{task.name}_class{c}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
