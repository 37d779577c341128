"""Command line interface: ``isl {train,predict,evaluate,figures,download,demo,bench}``.

Each handler loads a config, configures logging and calls one function. Heavy modules (and
TensorFlow) are imported inside the handlers so that ``isl --help`` starts fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from cellsight_shared.cli import add_verbosity_arguments, run_cli
from isl import __version__
from isl.errors import IslError


def _add_config_argument(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument(
        "--config", type=Path, required=required, metavar="TOML", help="configuration file (TOML)"
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``isl`` command."""
    parser = argparse.ArgumentParser(
        prog="isl",
        description="In silico labeling: predict fluorescent labels from transmitted-light z-stacks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_verbosity_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train or fine-tune a network; resumes automatically")
    _add_config_argument(p)
    p.add_argument("--out", type=Path, help="run directory (overrides the config)")
    p.add_argument("--seed", type=int, help="random seed (overrides the config)")
    p.set_defaults(handler=_train)

    p = sub.add_parser("predict", help="predict labels for wells; writes statistics and panels")
    _add_config_argument(p)
    p.add_argument("--out", type=Path, help="output directory (overrides the config)")
    p.set_defaults(handler=_predict)

    p = sub.add_parser("evaluate", help="Pearson r, SSIM and MAE of predictions against truth")
    _add_config_argument(p)
    p.add_argument("--out", type=Path, help="output directory (overrides the config)")
    p.set_defaults(handler=_evaluate)

    p = sub.add_parser("figures", help="error panels and plots from a prediction directory")
    _add_config_argument(p)
    p.add_argument("--out", type=Path, help="output directory (overrides the config)")
    p.set_defaults(handler=_figures)

    p = sub.add_parser("download", help="download the paper's data sample and checkpoint")
    _add_config_argument(p, required=False)
    p.add_argument("--out", type=Path, help="destination directory (overrides the config)")
    p.add_argument(
        "--what",
        choices=("data", "checkpoint", "all"),
        help="what to download (overrides the config; default: all)",
    )
    p.set_defaults(handler=_download)

    p = sub.add_parser("demo", help="train and predict on synthetic z-stacks (a few minutes on CPU)")
    _add_config_argument(p, required=False)
    p.add_argument("--out", type=Path, required=True, help="run directory to create")
    p.add_argument("--seed", type=int, help="random seed (overrides the config)")
    p.set_defaults(handler=_demo)

    p = sub.add_parser("bench", help="benchmark inference speed and memory; writes a JSON")
    _add_config_argument(p, required=False)
    p.add_argument("--out", type=Path, required=True, help="directory for bench.json")
    p.add_argument(
        "--full",
        action="store_true",
        help="full run: speed at 370 and 1500 px, memory at 1500 px (and 1024/4096 px with a narrow "
        "network), paper-network training (tens of minutes on 2 cores)",
    )
    p.set_defaults(handler=_bench)
    return parser


def _overrides(args: argparse.Namespace, *names: str) -> dict[str, object]:
    """CLI values that override the config file (only those given)."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _train(args: argparse.Namespace) -> int:
    from isl.config import TrainConfig, load_config

    # Validate before importing TensorFlow (seconds), so a bad config is reported at once.
    config = load_config(TrainConfig, args.config, _overrides(args, "out", "seed"))
    from isl.train import train

    path = train(config)
    print(f"checkpoints: {path}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from isl.config import PredictConfig, load_config

    config = load_config(PredictConfig, args.config, _overrides(args, "out"))
    from isl.predict import predict  # validates the wells before it imports TensorFlow

    path = predict(config)
    print(f"predictions: {path}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from isl.config import EvaluateConfig, load_config
    from isl.evaluate import evaluate

    config = load_config(EvaluateConfig, args.config, _overrides(args, "out"))
    metrics = evaluate(config)
    print(f"evaluated {len(metrics)} label(s); table: {config.out / 'metrics.md'}")
    return 0


def _figures(args: argparse.Namespace) -> int:
    from isl.config import FiguresConfig, load_config
    from isl.figures import make_figures

    config = load_config(FiguresConfig, args.config, _overrides(args, "out"))
    paths = make_figures(config)
    print(f"wrote {len(paths)} figure(s) to {config.out}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from isl.config import DownloadConfig, load_config
    from isl.download import download

    config = load_config(DownloadConfig, args.config, _overrides(args, "out", "what"))
    paths = download(config)
    print("\n".join(str(p) for p in paths))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from isl.config import DemoConfig, load_config
    from isl.demo import run_demo

    config = load_config(DemoConfig, args.config, _overrides(args, "out", "seed"))
    path = run_demo(config)
    print(f"demo run: {path}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from isl.bench import run_bench

    path = run_bench(args.config, out=args.out, full=args.full)
    print(f"benchmark: {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``isl``; return 0 on success, 1 on an expected error, 2 on a usage error."""
    return run_cli(build_parser(), argv, expected_errors=(IslError, OSError))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
