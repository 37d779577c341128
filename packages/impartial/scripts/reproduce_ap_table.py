"""Reproduce an AP@0.5 table of the paper (MIBI, Vectra, TissueNet, Cellpose) from downloaded data.

    python scripts/reproduce_ap_table.py train.toml --out runs/vectra

``train.toml`` is a TrainConfig whose ``[data]`` names the train and test images and whose
``[model]`` uses the dataset's preset tasks (e.g. ``impartial.config.PRESETS["vectra2ch"]``).
It trains with the paper's schedule, predicts every image with 5 checkpoints x 10 MC passes,
chooses the threshold on the train images and writes metrics.csv / metrics.md per task and
class, each class scored against the GT label map its ``gt_index_task{t}`` CSV column names
(v2 npz + CSV layout; ``data.files_csv`` adds the files.csv test images).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Train, predict and evaluate one dataset; returns 0."""
    from impartial.config import TrainConfig, load_toml
    from impartial.data import load_dataset
    from impartial.evaluate import evaluate_tasks, write_tables
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
    # each class is scored against the label map its gt_index_task{t} column names (v2 CSV),
    # else against one label map per class in task order
    for key, rows in evaluate_tasks(
        {n: {t: m.prob for t, m in per.items()} for n, per in maps.items()}, samples, mc.tasks
    ).items():
        write_tables(rows, args.out / f"metrics_{key}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
