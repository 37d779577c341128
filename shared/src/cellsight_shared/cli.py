"""Helpers every cellsight console script shares: verbosity, logging, seeding, progress, exit codes.

Exit codes: 0 success; 1 an expected failure (bad input, bad config, missing file), printed as
one paragraph without a traceback; 2 usage errors (argparse's own). Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np

from cellsight_shared.errors import CellsightSharedError, InvalidArgumentError

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "add_verbosity_arguments",
    "configure_logging",
    "format_error",
    "progress",
    "run_cli",
    "run_command",
    "seed_everything",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

T = TypeVar("T")


def add_verbosity_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``-v/--verbose`` and ``-q/--quiet`` (both countable) to ``parser``."""
    group = parser.add_argument_group("output")
    group.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    group.add_argument("-q", "--quiet", action="count", default=0, help="less log output")


def configure_logging(verbose: int = 0, quiet: int = 0) -> int:
    """Configure the root logger from -v/-q counts and return the level chosen.

    Default INFO; -v DEBUG; -q WARNING; -qq ERROR. Only console scripts call this.
    """
    levels = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR]
    index = min(max(1 + quiet - verbose, 0), len(levels) - 1)
    level = levels[index]
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    return level


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's and numpy's global generators and return a fresh ``np.random.Generator``.

    Frameworks (torch, tensorflow) are seeded by the method packages, which know them.
    """
    if not 0 <= seed < 2**32:
        raise InvalidArgumentError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)  # legacy global state some libraries still read
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    return np.random.default_rng(seed)


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    **kwargs: Any,
) -> Any:
    """A tqdm progress bar that switches itself off when stderr is not a terminal.

    ``disable=True`` turns it off always.
    """
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", None)
    return tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True, **kwargs)


def _expected_errors(extra: tuple[type[BaseException], ...]) -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [CellsightSharedError, FileNotFoundError, *extra]
    try:
        from pydantic import ValidationError

        errors.append(ValidationError)
    except ImportError:  # pydantic is optional for the shared library
        pass
    return tuple(errors)


def format_error(err: BaseException) -> str:
    """One readable paragraph for an expected error (pydantic errors list each field)."""
    try:
        from pydantic import ValidationError
    except ImportError:
        ValidationError = ()  # type: ignore[assignment,misc]  # noqa: N806
    if ValidationError and isinstance(err, ValidationError):
        lines = [f"invalid {err.title} configuration:"]
        for item in err.errors():
            where = ".".join(str(p) for p in item["loc"]) or "(top level)"
            lines.append(f"  {where}: {item['msg']} (got {item.get('input')!r})")
        return "\n".join(lines)
    message = str(err) or type(err).__name__
    return textwrap.fill(message, width=100, break_long_words=False, break_on_hyphens=False)


def run_command(
    func: Callable[..., Any],
    *args: Any,
    expected_errors: tuple[type[BaseException], ...] = (),
    **kwargs: Any,
) -> int:
    """Call ``func``; return 0, or 1 after printing an expected error as one paragraph.

    Expected errors are cellsight_shared's, ``FileNotFoundError``, pydantic's ``ValidationError``
    and ``expected_errors`` (the package's own base error). Other exceptions propagate.
    """
    try:
        func(*args, **kwargs)
    except _expected_errors(expected_errors) as err:
        sys.stderr.write(f"error: {format_error(err)}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    return EXIT_OK


def run_cli(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
    *,
    expected_errors: tuple[type[BaseException], ...] = (),
) -> int:
    """A console script's whole ``main``: parse, set up logging, run the chosen subcommand.

    Each subcommand's parser sets ``handler`` (``set_defaults(handler=func)``), a function of the
    parsed arguments. Returns argparse's own code for ``--help``/``--version`` (0) and usage errors
    (2) instead of exiting, so that tests can call it; otherwise :func:`run_command`'s code.
    """
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 0 for --help/--version, 2 for usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    configure_logging(getattr(args, "verbose", 0), getattr(args, "quiet", 0))
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"{parser.prog}: error: choose a command\n")
        return EXIT_USAGE
    return run_command(handler, args, expected_errors=expected_errors)
