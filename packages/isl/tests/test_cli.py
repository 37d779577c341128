"""The ``isl`` command in-process: exit codes 0 (success), 1 (expected error), 2 (usage)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from isl import __version__
from isl.cli import build_parser, main


def _flat(text: str) -> str:
    """The error paragraph with its line wrapping undone."""
    return " ".join(text.split())


def test_version_and_help_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the package version; --help lists every subcommand."""
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("train", "predict", "evaluate", "figures", "download", "demo", "bench"):
        assert command in text


@pytest.mark.parametrize(
    "argv",
    [[], ["fly"], ["train"], ["demo"], ["predict", "--config"], ["download", "--what", "weights"]],
)
def test_usage_errors_exit_two(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Missing subcommand, unknown subcommand or option values are argparse errors (exit 2)."""
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_expected_errors_exit_one_with_one_paragraph(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing config, an invalid one and bad data print 'error: ...' without a traceback."""
    assert main(["train", "--config", str(tmp_path / "nope.toml")]) == 1
    err = _flat(capsys.readouterr().err)
    assert err.startswith("error: ") and "does not exist" in err and "Traceback" not in err

    config = tmp_path / "train.toml"
    config.write_text('wells = ["w"]\nout = "o"\nlearning_rate = -1\n')
    assert main(["train", "--config", str(config)]) == 1
    assert "learning_rate" in _flat(capsys.readouterr().err)

    config.write_text(f'predictions = "{tmp_path}"\nout = "{tmp_path / "m"}"\n')
    assert main(["-q", "evaluate", "--config", str(config)]) == 1
    assert "no predicted wells" in _flat(capsys.readouterr().err)


def test_train_handler_rejects_missing_wells_before_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A well path that does not exist is a DataError (exit 1) and no run folder appears."""
    config = tmp_path / "train.toml"
    config.write_text(f'wells = ["{tmp_path / "missing"}"]\nout = "{tmp_path / "run"}"\n')
    assert main(["-q", "train", "--config", str(config)]) == 1
    assert "does not exist" in _flat(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


def test_cli_overrides_only_paths_and_seed() -> None:
    """--out and --seed are the overrides; model settings come from the file."""
    args = build_parser().parse_args(["train", "--config", "c.toml", "--out", "r", "--seed", "3"])
    assert str(args.out) == "r" and args.seed == 3


def test_help_does_not_import_tensorflow() -> None:
    """`isl --help` stays fast: neither the CLI nor the configs import TensorFlow."""
    code = (
        "import sys; from isl.cli import main; main(['--help']); "
        "import isl.config, isl.evaluate, isl.figures; "
        "sys.exit(1 if 'tensorflow' in sys.modules else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-2000:]


def test_demo_command_fills_its_run_folder(demo_run: Path) -> None:
    """`isl demo --out DIR` (run by the fixture, exit 0) leaves every documented artefact."""
    expected = [
        "config.json",
        "run/config.json",
        "run/run_info.json",
        "run/loss.csv",
        "run/loss_curve.png",
        "run/checkpoints/checkpoint",
        "predictions/test_0/prediction.json",
        "predictions/test_0/target_error_panel.png",
        "predictions/test_0/input_error_panel.png",
        "metrics/metrics.csv",
        "metrics/metrics.md",
        "metrics/pearson_r.png",
    ]
    missing = [name for name in expected if not (demo_run / name).is_file()]
    assert not missing
    assert list((demo_run / "run" / "logs").glob("events.out.tfevents.*"))


@pytest.mark.parametrize("command", ["train", "predict"])
def test_a_missing_config_is_reported_before_tensorflow_is_imported(command: str, tmp_path: Path) -> None:
    """train/predict validate their configuration first: no TensorFlow import for a typo."""
    code = (
        "import sys\n"
        "from isl.cli import main\n"
        f"rc = main(['-q', '{command}', '--config', {str(tmp_path / 'missing.toml')!r}])\n"
        "print(rc, 'tensorflow' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.stdout.split() == ["1", "False"], proc.stderr[-2000:]
    assert "missing.toml does not exist" in _flat(proc.stderr)
