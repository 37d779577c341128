"""Command line of impartial: argparse only; each handler loads a config and calls one function."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from cellsight_shared.cli import add_verbosity_arguments, run_cli
from impartial import __version__
from impartial.errors import ImpartialError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="impartial", description="ImPartial: cell segmentation from a few scribbles"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_verbosity_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("train", help="train a model from a TOML config (TrainConfig)")
    p.add_argument("config", type=Path, help="TOML file with the TrainConfig fields")
    p.add_argument("--out", type=Path, help="run folder (overrides the config; must not exist)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    p.add_argument("--epochs", type=int, help="override the epoch cap (allowed on resume)")
    p.set_defaults(handler=_train)

    p = commands.add_parser("finetune", help="warm start from a run with new or extra scribbles for N epochs")
    p.add_argument("config", type=Path, help="TOML file with the FinetuneConfig fields")
    p.add_argument("--out", type=Path)
    p.add_argument("--epochs", type=int)
    p.set_defaults(handler=_finetune)

    p = commands.add_parser("predict", help="probability, variance, entropy, MI maps and instances")
    p.add_argument("run", type=Path, help="run folder (or one checkpoint .pt)")
    p.add_argument("images", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--mc-passes", type=int, default=10)
    p.add_argument("--checkpoints", type=int, default=None)
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--device", default="cpu")
    p.set_defaults(handler=_predict)

    p = commands.add_parser("evaluate", help="threshold chosen on train images, AP/mAP/F1/PQ/AJI on test")
    p.add_argument("predictions", type=Path)
    p.add_argument(
        "--labels", type=Path, required=True, help="folder of label TIFFs / ROI zips, or a v2 scribble CSV"
    )
    p.add_argument("--train", nargs="+", required=True)
    p.add_argument("--test", nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--task", default=None)
    p.add_argument("--class-index", type=int, default=0, help="foreground class of the task")
    p.add_argument("--files-csv", type=Path, default=None, help="v2 files.csv listing the test images")
    p.add_argument("--label-index", type=int, default=None, help="label map to score (overrides gt_index)")
    p.set_defaults(handler=_evaluate)

    p = commands.add_parser("demo", help="run the main job on small synthetic data")
    p.add_argument("--out", type=Path, required=True, help="output folder (must not exist)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=12)
    p.set_defaults(handler=_demo)

    p = commands.add_parser("bench", help="speed and memory benchmarks (bench.json)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--quick", action="store_true", help="smaller inputs; base-16 U-Net for the memory run")
    p.add_argument(
        "--only", nargs="+", choices=["speed", "masking", "memory"], help="measure only these figures"
    )
    p.add_argument("--repeats", type=int, default=None, help="timed training steps (best counts)")
    p.set_defaults(handler=_bench)
    return parser


def _train(args: argparse.Namespace) -> None:
    from impartial.config import TrainConfig, load_toml
    from impartial.train.loop import train

    config = load_toml(args.config, TrainConfig, out=args.out, epochs=args.epochs)
    train(config, resume=args.resume)


def _finetune(args: argparse.Namespace) -> None:
    from impartial.config import FinetuneConfig, load_toml
    from impartial.train.finetune import finetune

    finetune(load_toml(args.config, FinetuneConfig, out=args.out, epochs=args.epochs))


def _predict(args: argparse.Namespace) -> None:
    from impartial.config import PredictConfig
    from impartial.predict import predict

    predict(
        PredictConfig(
            run=args.run,
            images=args.images,
            out=args.out,
            mc_passes=args.mc_passes,
            checkpoints=args.checkpoints,
            tile=args.tile,
            threshold=args.threshold,
            device=args.device,
        )
    )


def _evaluate(args: argparse.Namespace) -> None:
    from impartial.config import EvaluateConfig
    from impartial.evaluate import evaluate

    evaluate(
        EvaluateConfig(
            predictions=args.predictions,
            labels=args.labels,
            train=args.train,
            test=args.test,
            out=args.out,
            task=args.task,
            class_index=args.class_index,
            files_csv=args.files_csv,
            label_index=args.label_index,
        )
    )


def _demo(args: argparse.Namespace) -> None:
    from impartial.config import DemoConfig
    from impartial.demo import run_demo

    run_demo(DemoConfig(out=args.out, seed=args.seed, epochs=args.epochs))


def _bench(args: argparse.Namespace) -> None:
    from impartial.bench import run_bench
    from impartial.config import BenchConfig

    parts = {"parts": args.only} if args.only else {}
    run_bench(BenchConfig(out=args.out, quick=args.quick, repeats=args.repeats, **parts))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `impartial` console script; returns the exit code."""
    return run_cli(build_parser(), argv, expected_errors=(ImpartialError,))
