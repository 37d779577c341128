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
        prog="impartial",
        description="ImPartial: cell segmentation from a few scribbles",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_verbosity_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the main job on small synthetic data")
    demo.add_argument("--out", type=Path, required=True, help="output folder (must not exist)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(handler=_demo)
    return parser


def _demo(args: argparse.Namespace) -> None:
    from impartial.config import DemoConfig

    config = DemoConfig(out=args.out, seed=args.seed)
    raise ImpartialError(f"the demo is not implemented yet (would write to {config.out})")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `impartial` console script; returns the exit code."""
    return run_cli(build_parser(), argv, expected_errors=(ImpartialError,))
