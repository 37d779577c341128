"""Command line interface: ``incasem {convert,equalize,metric-mask,export-tiff,train,...}``.

Each handler builds a config (from a TOML file and/or flags), and calls one function. Heavy
modules (torch, gunpowder, daisy, sacred) are imported inside the handlers so that
``incasem --help`` and config validation start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cellsight_shared.cli import add_verbosity_arguments, run_cli
from incasem import __version__
from incasem.errors import ConfigError, IncasemError

MONGO_URL_ENV = "INCASEM_MONGO_URL"


def _config_arg(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument(
        "--config", type=Path, required=required, metavar="TOML", help="configuration file (TOML)"
    )


def _triple(parser: argparse.ArgumentParser, name: str, help_: str, type_: type = float) -> None:
    parser.add_argument(name, nargs=3, type=type_, metavar=("Z", "Y", "X"), help=help_)


def _workers_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, help="daisy worker processes (default 1)")


def _mongo_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mongo-url",
        help=f"record the run in MongoDB (default: ${MONGO_URL_ENV}; else a local file observer). "
        "Put the password in $INCASEM_MONGO_PASSWORD rather than on the command line",
    )


def _add_data_tools(sub: Any) -> None:
    p = sub.add_parser("convert", help="TIFF sequence -> zarr dataset, or zarr dataset -> TIFFs")
    p.add_argument("input", type=Path, help="folder of TIFF sections, a TIFF stack, or a .zarr")
    p.add_argument("output", type=Path, help="output .zarr container (or folder for TIFFs)")
    p.add_argument("--dataset", help="dataset inside the zarr (default volumes/raw)")
    p.add_argument("--pattern", help=r"regex whose group 1 is the section number (default \d+)")
    _triple(p, "--resolution", "voxel size in nm (default 5 5 5)")
    _triple(p, "--offset", "world offset of the first voxel in nm (default 0 0 0)")
    _triple(p, "--chunks", "zarr chunk shape in voxels (default 128 128 128)", int)
    p.add_argument("--dtype", help="output dtype (default: that of the TIFFs)")
    p.add_argument("--invert", action="store_true", default=None, help="store 255 - x (uint8)")
    p.add_argument("--overwrite", action="store_true", default=None, help="replace the dataset")
    _workers_arg(p)
    p.set_defaults(handler=_convert)

    p = sub.add_parser("equalize", help="3-D CLAHE (256 bins, kernel 128, clip 0.02), blockwise")
    p.add_argument("zarr", type=Path, help="zarr container holding the raw dataset")
    p.add_argument("--dataset", help="input dataset (default volumes/raw)")
    p.add_argument("--out-dataset", help="output dataset (default volumes/raw_equalized_0.02)")
    p.add_argument("--kernel-size", type=int, help="CLAHE tile edge in voxels (default 128)")
    p.add_argument("--clip-limit", type=float, help="histogram clip limit (default 0.02)")
    p.add_argument("--nbins", type=int, help="histogram bins (default 256)")
    p.add_argument("--block-size", type=int, help="write block edge in voxels (default 128)")
    p.add_argument("--method", choices=("fast", "reference"), help="implementation (default fast)")
    p.add_argument("--overwrite", action="store_true", default=None, help="replace the dataset")
    _workers_arg(p)
    p.set_defaults(handler=_equalize)

    p = sub.add_parser("metric-mask", help="exclusion zone around label surfaces for F1, blockwise")
    p.add_argument("zarr", type=Path, help="zarr container holding the labels")
    p.add_argument("--labels", required=True, help="label dataset, e.g. volumes/labels/mito")
    p.add_argument("--out-dataset", help="output (default volumes/metric_masks/<label name>)")
    p.add_argument("--inwards", type=int, help="voxels excluded inside objects (default 4)")
    p.add_argument("--outwards", type=int, help="voxels excluded outside objects (default 4)")
    p.add_argument("--block-size", type=int, help="write block edge in voxels (default 128)")
    p.add_argument("--overwrite", action="store_true", default=None, help="replace the dataset")
    _workers_arg(p)
    p.set_defaults(handler=_metric_mask)

    p = sub.add_parser("export-tiff", help="write zarr datasets as viewable 8-bit TIFF sections")
    p.add_argument("zarr", type=Path, help="zarr container")
    p.add_argument("--dataset", action="append", required=True, help="dataset (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="output folder (one subfolder each)")
    p.add_argument("--overwrite", action="store_true", default=None, help="replace TIFF folders")
    p.set_defaults(handler=_export_tiff)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``incasem`` command."""
    parser = argparse.ArgumentParser(
        prog="incasem",
        description="ASEM organelle segmentation in FIB-SEM volumes (3-D U-Net, gunpowder, daisy).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_verbosity_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_data_tools(sub)

    p = sub.add_parser("train", help="train a U-Net from data JSONs; resumes from the latest step")
    _config_arg(p)
    p.add_argument("--out", type=Path, help="run directory (overrides the config)")
    p.add_argument("--seed", type=int, help="random seed (overrides the config)")
    p.add_argument("--device", help="torch device, e.g. cpu or cuda:0 (overrides the config)")
    _mongo_arg(p)
    p.set_defaults(handler=_train)

    p = sub.add_parser("finetune", help="train on from a published checkpoint (Adam state kept)")
    _config_arg(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="checkpoint file to start from")
    src.add_argument("--model-id", help="published model id (e.g. 1847), downloaded if needed")
    p.add_argument("--out", type=Path, help="run directory (overrides the config)")
    p.add_argument("--seed", type=int, help="random seed (overrides the config)")
    p.add_argument("--device", help="torch device (overrides the config)")
    _mongo_arg(p)
    p.set_defaults(handler=_finetune)

    p = sub.add_parser("predict", help="blockwise prediction with daisy workers; resumable")
    _config_arg(p)
    p.add_argument("--out", type=Path, help="output zarr container (overrides the config)")
    p.add_argument("--workers", type=int, help="daisy worker processes (overrides the config)")
    p.add_argument("--device", help="torch device (overrides the config)")
    p.add_argument("--resume", type=int, metavar="N", help="continue the interrupted predict_<N>")
    _mongo_arg(p)
    p.set_defaults(handler=_predict)

    p = sub.add_parser("evaluate", help="precision, recall, F1 and IoU over a threshold sweep")
    _config_arg(p)
    p.add_argument("--out", type=Path, help="output directory (overrides the config)")
    p.add_argument("--overwrite", action="store_true", default=None, help="replace an existing --out")
    p.set_defaults(handler=_evaluate)

    p = sub.add_parser(
        "download", help="download published checkpoints (resume; SHA-256 recorded, not verified)"
    )
    p.add_argument("model_ids", nargs="*", help="model ids (default: all)")
    p.add_argument("--out", type=Path, required=True, help="destination folder")
    p.add_argument("--base-url", help="mirror to download from (default: the public bucket)")
    p.set_defaults(handler=_download)

    p = sub.add_parser("download-data", help="download a cell from the public FIB-SEM bucket")
    p.add_argument("cell", help="cell name, e.g. cell_6_example")
    p.add_argument("--out", type=Path, required=True, help="destination folder")
    p.add_argument("--base-url", help="mirror to download from (default: the public bucket)")
    p.add_argument(
        "--dataset",
        action="append",
        help="only this dataset, e.g. volumes/raw_equalized_0.02 (repeatable; default: all)",
    )
    p.set_defaults(handler=_download_data)

    p = sub.add_parser("demo", help="synthetic volume -> train -> predict -> F1 (minutes on CPU)")
    _config_arg(p, required=False)
    p.add_argument("--out", type=Path, required=True, help="demo directory to create")
    p.add_argument("--seed", type=int, help="random seed (overrides the config)")
    p.set_defaults(handler=_demo)

    p = sub.add_parser("bench", help="blockwise prediction throughput vs the bare model; JSON")
    p.add_argument("--out", type=Path, required=True, help="directory for bench.json")
    p.add_argument(
        "--published-blocks",
        type=int,
        default=2,
        metavar="N",
        help="blocks of the published 204^3 network to time (default 2, minutes on a CPU; 0 skips it)",
    )
    p.set_defaults(handler=_bench)
    return parser


def _given(args: argparse.Namespace, *names: str, rename: dict[str, str] | None = None) -> dict:
    """The CLI values among ``names`` that were given (they override config files)."""
    rename = rename or {}
    return {rename.get(n, n): getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _mongo_url(args: argparse.Namespace) -> str | None:
    from urllib.parse import urlsplit

    given = getattr(args, "mongo_url", None)
    if given and urlsplit(given).password is not None:
        # argv is visible to every user (ps) and lands in shell history: secrets come from the env.
        raise ConfigError(
            "--mongo-url carries a password, which would be visible in the process list and shell "
            f"history. Pass the URL without it and set $INCASEM_MONGO_PASSWORD, or set ${MONGO_URL_ENV}."
        )
    return given or os.environ.get(MONGO_URL_ENV) or None


def _convert(args: argparse.Namespace) -> int:
    from incasem.config.tools import ConvertConfig
    from incasem.convert import convert

    names = ("input", "output", "dataset", "pattern", "resolution", "offset", "chunks", "dtype")
    config = ConvertConfig.model_validate(_given(args, *names, "invert", "overwrite", "workers"))
    print(f"wrote {convert(config)}")
    return 0


def _equalize(args: argparse.Namespace) -> int:
    from incasem.config.tools import EqualizeConfig
    from incasem.equalize import equalize

    names = ("zarr", "dataset", "out_dataset", "kernel_size", "clip_limit", "nbins", "block_size")
    config = EqualizeConfig.model_validate(_given(args, *names, "method", "overwrite", "workers"))
    print(f"wrote {equalize(config)}")
    return 0


def _metric_mask(args: argparse.Namespace) -> int:
    from incasem.config.tools import MetricMaskConfig
    from incasem.metric_mask import metric_mask

    names = ("zarr", "labels", "out_dataset", "inwards", "outwards", "block_size", "overwrite")
    config = MetricMaskConfig.model_validate(_given(args, *names, "workers"))
    counts = metric_mask(config)
    print(", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 0


def _export_tiff(args: argparse.Namespace) -> int:
    from incasem.config.tools import ExportTiffConfig
    from incasem.convert import export_tiff

    config = ExportTiffConfig.model_validate(
        _given(args, "zarr", "dataset", "out", "overwrite", rename={"dataset": "datasets"})
    )
    print("\n".join(str(p) for p in export_tiff(config)))
    return 0


def _train(args: argparse.Namespace) -> int:
    from incasem.config import load_config
    from incasem.config.train import TrainConfig
    from incasem.train import train

    config = load_config(TrainConfig, args.config, _given(args, "out", "seed", "device"))
    print(f"checkpoints: {train(config, mongo_url=_mongo_url(args))}")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from incasem.config import load_config
    from incasem.config.train import TrainConfig
    from incasem.train import finetune

    config = load_config(TrainConfig, args.config, _given(args, "out", "seed", "device"))
    path = finetune(config, checkpoint=args.checkpoint, model_id=args.model_id, mongo_url=_mongo_url(args))
    print(f"checkpoints: {path}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from incasem.config import load_config
    from incasem.config.predict import PredictConfig
    from incasem.predict import predict

    overrides = _given(args, "out", "workers", "device", "resume")
    config = load_config(PredictConfig, args.config, overrides)
    print(f"predictions: {predict(config, mongo_url=_mongo_url(args))}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from incasem.config import load_config
    from incasem.config.evaluate import EvaluateConfig
    from incasem.evaluate import evaluate

    config = load_config(EvaluateConfig, args.config, _given(args, "out", "overwrite"))
    print(f"metrics: {evaluate(config)}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from incasem.download import download_checkpoints

    paths = download_checkpoints(args.model_ids or None, out=args.out, base_url=args.base_url)
    print("\n".join(str(p) for p in paths))
    return 0


def _download_data(args: argparse.Namespace) -> int:
    from incasem.download import download_cell

    print(download_cell(args.cell, out=args.out, base_url=args.base_url, datasets=args.dataset))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from incasem.config import load_config
    from incasem.config.demo import DemoConfig
    from incasem.demo import run_demo

    config = load_config(DemoConfig, args.config, _given(args, "out", "seed"))
    print(run_demo(config))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from incasem.bench import run_bench

    blocks = args.published_blocks
    print(f"benchmark: {run_bench(out=args.out, published=blocks > 0, published_blocks=max(1, blocks))}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``incasem``; return 0 on success, 1 on an expected error, 2 on a usage error."""
    return run_cli(build_parser(), argv, expected_errors=(IncasemError, OSError))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
