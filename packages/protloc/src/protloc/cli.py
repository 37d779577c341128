"""Command line of protloc: argparse only; each handler loads a config and calls one function."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from cellsight_shared.cli import add_verbosity_arguments, run_cli
from protloc import __version__
from protloc.errors import ProtlocError

DESCRIPTION = (
    "Protein images from a nucleus image and the protein's identity: a conditional U-Net regression "
    "and pix2pix, trained on OpenCell-layout data."
)


def _train_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("train", help="train the regression U-Net or pix2pix")
    p.add_argument("--config", type=Path, help="TOML file of a TrainConfig ([data], [model], ...)")
    p.add_argument("--out", type=Path, help="run folder (must not exist unless --resume)")
    p.add_argument("--data", type=Path, dest="data_root", help="data root (data.root)")
    p.add_argument("--layout", choices=["opencell", "pairs"], help="data.layout")
    p.add_argument("--model", choices=["regression", "gan"], help="model.kind")
    p.add_argument("--theta", type=Path, help="GAN: theta file from export-theta (default: random)")
    p.add_argument("--epochs", type=int, help="n_epochs (constant learning rate)")
    p.add_argument("--epochs-decay", type=int, help="n_epochs_decay (linear decay)")
    p.add_argument("--crop-size", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto, cpu or cuda[:N]")
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from checkpoints/latest.pt"
    )
    p.set_defaults(handler=_train)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="protloc", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_verbosity_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    _train_parser(commands)

    p = commands.add_parser("predict", help="predict protein images for nucleus images (TIFF out)")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--image", type=Path, action="append", required=True, dest="images", help="repeatable")
    p.add_argument(
        "--protein", action="append", required=True, dest="proteins", help="repeatable; one channel each"
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (must not exist)")
    p.add_argument("--nucleus-channel", type=int, help="channel of the nucleus in multi-channel images")
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--margin", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.set_defaults(handler=_predict)

    p = commands.add_parser("evaluate", help="score a run's held-out images against two baselines")
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--split", choices=["test", "val"], default="test")
    p.add_argument("--out", type=Path)
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--device", default="auto")
    p.set_defaults(handler=_evaluate)

    p = commands.add_parser("export-theta", help="write a regression model's protein embedding as GAN theta")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument(
        "--out", type=Path, required=True, help=".npz or .safetensors (+ .proteins.json beside it)"
    )
    p.set_defaults(handler=_export_theta)

    p = commands.add_parser("random-theta", help="write a random Gaussian theta for a protein list")
    p.add_argument("--proteins", type=Path, required=True, help="protein list JSON")
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--std", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(handler=_random_theta)

    p = commands.add_parser("download", help="download proteins' FOVs from the public OpenCell bucket")
    p.add_argument("proteins", nargs="+", help="gene names (or GENE_ENSG... folder names)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--max-images", type=int)
    p.add_argument("--include-stacks", action="store_true")
    p.add_argument("--bucket-url")
    p.add_argument("--retries", type=int)
    p.set_defaults(handler=_download)

    p = commands.add_parser("demo", help="synthetic cells -> both models -> grids and metrics")
    p.add_argument("--out", type=Path, required=True, help="output folder (must not exist)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int)
    p.set_defaults(handler=_demo)

    p = commands.add_parser("bench", help="training and inference throughput -> bench.json")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--full", action="store_true", help="original-size networks at 256 px")
    p.add_argument("--device", default="auto")
    p.set_defaults(handler=_bench)
    return parser


def _train(args: argparse.Namespace) -> None:
    from protloc.config import TrainConfig, load_config
    from protloc.train import train

    overrides = {
        "out": args.out,
        "data.root": args.data_root,
        "data.layout": args.layout,
        "model.kind": args.model,
        "theta": args.theta,
        "n_epochs": args.epochs,
        "n_epochs_decay": args.epochs_decay,
        "crop_size": args.crop_size,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "device": args.device,
    }
    train(load_config(TrainConfig, args.config, overrides), resume=args.resume)


def _predict(args: argparse.Namespace) -> None:
    from protloc.config import PredictConfig
    from protloc.predict import predict

    predict(
        PredictConfig(
            checkpoint=args.checkpoint,
            images=args.images,
            proteins=args.proteins,
            out=args.out,
            nucleus_channel=args.nucleus_channel,
            tile=args.tile,
            margin=args.margin,
            device=args.device,
        )
    )


def _evaluate(args: argparse.Namespace) -> None:
    import logging

    from protloc.config import EvaluateConfig
    from protloc.evaluate import evaluate

    summary = evaluate(
        EvaluateConfig(
            run=args.run,
            checkpoint=args.checkpoint,
            split=args.split,
            out=args.out,
            figures=not args.no_figures,
            device=args.device,
        )
    )
    for protein, methods in summary.items():
        logging.getLogger("protloc").info(
            "%s: r model %.3f, mean image %.3f, nucleus %.3f",
            protein,
            methods["model"]["pearson_r"],
            methods["mean_image"]["pearson_r"],
            methods["nucleus"]["pearson_r"],
        )


def _export_theta(args: argparse.Namespace) -> None:
    from protloc.theta import export_theta

    export_theta(args.checkpoint, args.out)


def _random_theta(args: argparse.Namespace) -> None:
    from protloc.data.proteins import read_protein_list
    from protloc.theta import random_theta, write_theta

    proteins = read_protein_list(args.proteins)
    write_theta(args.out, random_theta(len(proteins), args.dim, seed=args.seed, std=args.std), proteins)


def _download(args: argparse.Namespace) -> None:
    from protloc.config import DownloadConfig
    from protloc.download import download

    values = {
        "proteins": args.proteins,
        "out": args.out,
        "max_images": args.max_images,
        "include_stacks": args.include_stacks,
        "bucket_url": args.bucket_url,
        "retries": args.retries,
    }
    download(DownloadConfig.model_validate({k: v for k, v in values.items() if v is not None}))


def _demo(args: argparse.Namespace) -> None:
    from protloc.config import DemoConfig
    from protloc.demo import run_demo

    values = {"out": args.out, "seed": args.seed, "epochs": args.epochs}
    run_demo(DemoConfig.model_validate({k: v for k, v in values.items() if v is not None}))


def _bench(args: argparse.Namespace) -> None:
    from protloc.bench import run_bench
    from protloc.config import BenchConfig

    run_bench(BenchConfig(out=args.out, full=args.full, device=args.device))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `protloc` console script; returns the exit code."""
    return run_cli(build_parser(), argv, expected_errors=(ProtlocError,))
