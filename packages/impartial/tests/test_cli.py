"""The console script answers --version and reports errors with exit codes 1 and 2."""

from impartial import __version__
from impartial.cli import main


def test_version_is_printed(capsys):
    """--version prints the package version and returns 0."""
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_command_is_a_usage_error():
    """An unknown subcommand returns code 2."""
    assert main(["no-such-command"]) == 2


def test_expected_error_returns_1(tmp_path, capsys):
    """A package error is printed as one line and returns code 1."""
    assert main(["demo", "--out", str(tmp_path / "run")]) == 1
    assert "error:" in capsys.readouterr().err
