"""Reproduce the paper's yeast and human benchmark tables from downloaded data (a short driver).

    python scripts/reproduce_tables.py yeast --deeploc Chong_train_set.hdf5 Chong_valid_set.hdf5 \
        Chong_test_set.hdf5 --weights yeast_model_weights.h5 --out tables/yeast
    python scripts/reproduce_tables.py human --folder hpa_single_cells --weights human_model_weights.h5 \
        --out tables/human

Yeast: the DeepLoc/Chong cells of all three splits pooled (SPINDLEPOLE merged into SPINDLE, DEAD
and GHOST left out), kNN k = 11 per layer for the published weights, random init and the mahotas
baseline. Human: a folder-labelled set of single-cell crops (label = directory), conv3_1 default.
The paper's own numbers could not be retrieved here; compare against its Tables by hand.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pairedinpaint.config import BenchmarkConfig, ModelConfig
from pairedinpaint.evaluate import benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("organism", choices=["yeast", "human"])
    parser.add_argument("--deeploc", type=Path, nargs="*", default=[])
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    layers = (
        ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1") if args.organism == "yeast" else ("conv3_1",)
    )
    config = BenchmarkConfig(
        out=args.out,
        deeploc=tuple(args.deeploc),
        folder=args.folder,
        layout=args.organism,
        model=ModelConfig.for_organism(args.organism),
        weights=args.weights,
        layers=layers,
    )
    print((benchmark(config) / "results.md").read_text())


if __name__ == "__main__":
    main()
