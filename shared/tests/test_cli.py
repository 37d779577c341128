"""CLI helpers: verbosity to log level, seeding, exit codes."""

from __future__ import annotations

import argparse
import logging
import random

import numpy as np
import pytest

from cellsight_shared import cli
from cellsight_shared.errors import CellsightSharedError, DataFileError


@pytest.mark.parametrize(
    ("argv", "level"),
    [([], logging.INFO), (["-v"], logging.DEBUG), (["-q"], logging.WARNING), (["-qq"], logging.ERROR)],
)
def test_verbosity_flags_set_the_log_level(argv, level):
    """-v lowers and -q raises the root log level from INFO."""
    parser = argparse.ArgumentParser()
    cli.add_verbosity_arguments(parser)
    args = parser.parse_args(argv)
    assert cli.configure_logging(args.verbose, args.quiet) == level
    assert logging.getLogger().level == level


def test_seed_everything_makes_runs_repeatable():
    """The same seed gives the same numbers from random, numpy's global state and the generator."""
    draws = []
    for _ in range(2):
        gen = cli.seed_everything(7)
        draws.append((random.random(), np.random.rand(), gen.random()))
    assert draws[0] == draws[1]
    assert cli.seed_everything(8).random() != draws[0][2]


def test_run_command_maps_expected_errors_to_exit_1(capsys):
    """An expected error prints one line starting with 'error:' and returns 1; success returns 0."""

    def fail() -> None:
        raise DataFileError("x.tif does not exist; check the path.")

    assert cli.run_command(fail) == 1
    assert capsys.readouterr().err == "error: x.tif does not exist; check the path.\n"
    assert cli.run_command(lambda: None) == 0


def test_run_command_lets_bugs_raise():
    """Unexpected exceptions keep their traceback (they are bugs)."""
    with pytest.raises(ZeroDivisionError):
        cli.run_command(lambda: 1 / 0)


def test_pydantic_validation_errors_list_fields(capsys):
    """A pydantic ValidationError is printed field by field with the offending value."""
    pydantic = pytest.importorskip("pydantic")

    class Config(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        steps: int = pydantic.Field(ge=1)

    assert cli.run_command(lambda: Config(steps=0, stpes=3)) == 1
    err = capsys.readouterr().err
    assert "steps: Input should be greater than or equal to 1 (got 0)" in err
    assert "stpes: Extra inputs are not permitted" in err


def test_progress_is_silent_off_a_terminal(capsys):
    """progress() is disabled when stderr is not a TTY (as under pytest), and still iterates."""
    assert list(cli.progress(range(3), desc="x")) == [0, 1, 2]
    assert capsys.readouterr().err == ""


def _parser(handler):
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("--version", action="version", version="tool 1.0")
    cli.add_verbosity_arguments(parser)
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run")
    run.add_argument("--steps", type=int, default=1)
    run.set_defaults(handler=handler)
    return parser


def test_run_cli_parses_logs_and_dispatches(capsys):
    """--version and usage errors return argparse's codes; a command runs its handler."""
    seen = []

    def handler(args):
        seen.append(args.steps)
        if args.steps < 0:
            raise CellsightSharedError("steps must be >= 0")

    parser = _parser(handler)
    assert cli.run_cli(parser, ["--version"]) == 0
    assert "tool 1.0" in capsys.readouterr().out
    assert cli.run_cli(parser, ["run", "--steps", "x"]) == 2
    assert cli.run_cli(parser, []) == 2
    assert "choose a command" in capsys.readouterr().err
    assert cli.run_cli(parser, ["-v", "run", "--steps", "3"]) == 0
    assert cli.run_cli(parser, ["-q", "run", "--steps", "-1"]) == 1
    assert "steps must be >= 0" in capsys.readouterr().err
    assert seen == [3, -1]


def test_bad_arguments_to_shared_functions_are_expected_errors(capsys):
    """A shared function's invalid argument is a ValueError and a CellsightSharedError: exit 1."""
    from cellsight_shared.errors import InvalidArgumentError
    from cellsight_shared.metrics import pearson_r

    with pytest.raises(ValueError, match="mask selects no pixels"):
        pearson_r(np.ones((4, 4)), np.ones((4, 4)), mask=np.zeros((4, 4), bool))
    with pytest.raises(InvalidArgumentError):
        cli.seed_everything(-1)
    assert cli.run_command(cli.seed_everything, -1) == 1
    assert "seed must be in" in capsys.readouterr().err
