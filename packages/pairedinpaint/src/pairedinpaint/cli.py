"""Command line of pairedinpaint: argparse only; each handler loads a config and calls one function."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from cellsight_shared.cli import add_verbosity_arguments, run_cli
from pairedinpaint import __version__
from pairedinpaint.config import (
    BenchConfig,
    BenchmarkConfig,
    CropConfig,
    DemoConfig,
    DownloadHpaConfig,
    ExtractConfig,
    FilterConfig,
    ModelConfig,
    TrainConfig,
    load_config,
)
from pairedinpaint.errors import PairedinpaintError

logger = logging.getLogger("pairedinpaint")


def _organism(args: argparse.Namespace) -> dict:
    if getattr(args, "organism", None) is None:
        return {}
    model = ModelConfig.for_organism(args.organism)
    return {
        "model.source_channels": model.source_channels,
        "model.target_channels": model.target_channels,
        "data.layout": args.organism,
    }


def _common(p: argparse.ArgumentParser, *, data: bool = True) -> None:
    p.add_argument("--config", type=Path, help="TOML file with the settings; flags override it")
    p.add_argument("--out", type=Path, help="output folder (must not exist)")
    if data:
        p.add_argument("--data", type=Path, help="folder of crop sub-directories")
        p.add_argument(
            "--organism", choices=["yeast", "human"], help="layout and channel counts of the paper"
        )
        p.add_argument("--width", type=float, help="filter multiplier (1 = the paper's network)")
        p.add_argument("--size", type=int, help="crop side fed to the network (default 64)")


def _data_overrides(args: argparse.Namespace) -> dict:
    values = {"out": args.out, "data.root": args.data, "model.width": args.width, **_organism(args)}
    if args.size is not None:
        values.update({"data.size": args.size, "model.size": args.size})
    return values


def _train(args: argparse.Namespace) -> None:
    from pairedinpaint.train import train

    config = load_config(
        TrainConfig,
        args.config,
        {
            **_data_overrides(args),
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "init_weights": args.init_weights,
        },
    )
    logger.info("run folder: %s", train(config, resume=args.resume))


def _extract(args: argparse.Namespace) -> None:
    from pairedinpaint.predict import extract

    overrides = {**_data_overrides(args), "weights": args.weights, "batch_size": args.batch_size}
    if args.layers:
        overrides["layers"] = args.layers
    logger.info("features: %s", extract(load_config(ExtractConfig, args.config, overrides)))


def _benchmark(args: argparse.Namespace) -> None:
    from pairedinpaint.evaluate import benchmark

    overrides = {
        "out": args.out,
        "weights": args.weights,
        "folder": args.folder,
        "model.width": args.width,
        "layout": args.layout,
        "k": args.k,
    }
    if args.deeploc:
        overrides["deeploc"] = args.deeploc
    if args.no_handcrafted:
        overrides["handcrafted"] = False
    if args.layout == "human":
        overrides.update({"model.source_channels": 3, "model.target_channels": 2})
    logger.info("results: %s", benchmark(load_config(BenchmarkConfig, args.config, overrides)))


def _convert(args: argparse.Namespace) -> None:
    from pairedinpaint.legacy import convert_legacy
    from pairedinpaint.model import build_pair_model

    model = build_pair_model(ModelConfig.for_organism(args.organism))
    logger.info("wrote %s", convert_legacy(args.source, args.dest, model))


def _download(args: argparse.Namespace) -> None:
    from pairedinpaint.hpa.download import download_hpa

    config = load_config(
        DownloadHpaConfig,
        args.config,
        {
            "protein_list": args.protein_list,
            "out": args.out,
            "base_url": args.base_url,
            "workers": args.workers,
        },
    )
    download_hpa(config)


def _crop(args: argparse.Namespace) -> None:
    from pairedinpaint.hpa.crop import segment_and_crop

    config = load_config(
        CropConfig, args.config, {"images": args.images, "out": args.out, "workers": args.workers}
    )
    segment_and_crop(config)


def _filter(args: argparse.Namespace) -> None:
    from pairedinpaint.hpa.filter import filter_directories

    config = load_config(
        FilterConfig,
        args.config,
        {
            "data": args.data,
            "out": args.out,
            "layout": args.organism,
            "min_cells": args.min_cells,
            "copy_files": args.copy or None,
        },
    )
    filter_directories(config)


def _demo(args: argparse.Namespace) -> None:
    from pairedinpaint.demo import run_demo

    config = load_config(DemoConfig, args.config, {"out": args.out, "seed": args.seed, "epochs": args.epochs})
    run_demo(config)


def _bench(args: argparse.Namespace) -> None:
    from pairedinpaint.bench import run_bench

    overrides = {"out": args.out, "memory_cells": args.memory_cells}
    run_bench(load_config(BenchConfig, args.config, overrides))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="pairedinpaint", description="Paired cell inpainting (Lu et al. 2019) in Keras 3"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_verbosity_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("train", help="train the pair model on crops (self-supervised)")
    _common(p)
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--init-weights", type=Path, help="start from these weights (read only)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    p.set_defaults(handler=_train)

    p = commands.add_parser(
        "predict", aliases=["extract"], help="features of every cell (five layers, one batched pass)"
    )
    _common(p)
    p.add_argument("--weights", type=Path, help=".weights.h5 or the published Keras 2 .h5")
    p.add_argument("--layers", nargs="+")
    p.add_argument("--batch-size", type=int)
    p.set_defaults(handler=_extract)

    p = commands.add_parser("benchmark", help="kNN (k=11) accuracy of features on a labelled set")
    _common(p, data=False)
    p.add_argument("--weights", type=Path)
    p.add_argument("--deeploc", type=Path, nargs="+", help="DeepLoc Chong_*_set.hdf5 files")
    p.add_argument("--folder", type=Path, help="folder-labelled set (label = sub-directory)")
    p.add_argument("--layout", choices=["yeast", "human"])
    p.add_argument("--width", type=float)
    p.add_argument("--k", type=int)
    p.add_argument("--no-handcrafted", action="store_true", help="skip the mahotas baseline")
    p.set_defaults(handler=_benchmark)

    p = commands.add_parser("convert-weights", help="convert a published Keras 2 .h5 to .weights.h5 once")
    p.add_argument("source", type=Path)
    p.add_argument("dest", type=Path)
    p.add_argument("--organism", choices=["yeast", "human"], default="yeast")
    p.set_defaults(handler=_convert)

    p = commands.add_parser("download-hpa", help="download HPA composites for a protein list (resumable)")
    p.add_argument("--config", type=Path)
    p.add_argument("--protein-list", type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument("--base-url")
    p.add_argument("--workers", type=int)
    p.set_defaults(handler=_download)

    p = commands.add_parser(
        "segment-and-crop", help="segment nuclei and crop single cells from HPA composites"
    )
    p.add_argument("--config", type=Path)
    p.add_argument("--images", type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument("--workers", type=int)
    p.set_defaults(handler=_crop)

    p = commands.add_parser("filter", help="keep directories with enough cells (links or copies)")
    p.add_argument("--config", type=Path)
    p.add_argument("--data", type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument("--organism", choices=["yeast", "human"])
    p.add_argument("--min-cells", type=int)
    p.add_argument("--copy", action="store_true")
    p.set_defaults(handler=_filter)

    p = commands.add_parser("demo", help="synthetic cells -> training -> features -> kNN and figures")
    p.add_argument("--config", type=Path)
    p.add_argument("--out", type=Path, required=True, help="output folder (must not exist)")
    p.add_argument("--seed", type=int)
    p.add_argument("--epochs", type=int)
    p.set_defaults(handler=_demo)

    p = commands.add_parser("bench", help="speed and memory benchmark; writes bench.json")
    p.add_argument("--config", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--memory-cells", type=int)
    p.set_defaults(handler=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pairedinpaint` console script; returns the exit code."""
    return run_cli(build_parser(), argv, expected_errors=(PairedinpaintError,))
