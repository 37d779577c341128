"""Each distribution's wheel builds and installs alone into a fresh virtual environment.

This tests the built artifact, not the source tree: the console script answers --version and
--help, and the light modules (cli, config) import without loading a deep-learning framework.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FRAMEWORKS, PACKAGES, ROOT, needs_tensorflow, package_requirements

CONSTRAINTS = ROOT / "constraints.txt"
TF_PACKAGE = os.environ.get("CELLSIGHT_TF_PACKAGE", "tensorflow-cpu")


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run a command, failing the test with its output when it fails."""
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {result.returncode}\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def fresh_venv(path: Path) -> Path:
    """A new virtual environment; returns its bin/ folder."""
    run(sys.executable, "-m", "venv", path)
    return path / "bin"


def build_wheel(source: Path, dist: Path) -> Path:
    """Build the wheel of ``source`` into ``dist`` and return it."""
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, source)
    name = source.name if source.name != "shared" else "cellsight_shared"
    wheels = sorted(dist.glob(f"{name.replace('-', '_')}-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def assert_no_framework_loaded(python: Path, modules: list[str]) -> None:
    """Importing ``modules`` in a new interpreter loads no deep-learning framework."""
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"loaded = sorted(f for f in {FRAMEWORKS!r} if f in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    assert run(python, "-c", code, cwd=python.parent).stdout.strip() == ""


def test_shared_wheel_installs_alone_and_imports_no_framework(tmp_path):
    """cellsight-shared installs from its wheel and every public module imports framework-free."""
    wheel = build_wheel(ROOT / "shared", tmp_path / "dist")
    bin_dir = fresh_venv(tmp_path / "venv")
    run(bin_dir / "pip", "install", "-q", wheel)
    modules = [
        "cellsight_shared." + m
        for m in (
            "io",
            "normalize",
            "tiling",
            "metrics",
            "synthetic",
            "cli",
            "download",
            "provenance",
            "testing",
            "errors",
        )
    ]
    assert_no_framework_loaded(bin_dir / "python", modules)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_wheel_installs_alone_and_its_script_answers(tmp_path, package):
    """The package wheel installs into a fresh venv, pulling the shared library from the repo."""
    source = ROOT / "packages" / package
    wheel = build_wheel(source, tmp_path / "dist")
    bin_dir = fresh_venv(tmp_path / "venv")
    if needs_tensorflow(source):
        # tensorflow-cpu provides the same module as the `tensorflow` users get; pip cannot know
        # that, so CI installs the dependencies itself and the wheel without them.
        requirements = package_requirements(source, tf_package=TF_PACKAGE)
        run(bin_dir / "pip", "install", "-q", "-c", CONSTRAINTS, ROOT / "shared", *requirements)
        run(bin_dir / "pip", "install", "-q", "--no-deps", wheel)
    else:
        # Exactly what a user does: the wheel's metadata points at ./shared in this repository.
        run(bin_dir / "pip", "install", "-q", "-c", CONSTRAINTS, wheel)
    version = run(bin_dir / package, "--version", cwd=tmp_path).stdout
    assert "0." in version and package in version
    help_text = run(bin_dir / package, "--help", cwd=tmp_path).stdout
    for command in ("demo", "train", "predict"):
        assert command in help_text, f"{package} --help does not list {command}"
    assert_no_framework_loaded(bin_dir / "python", [package, f"{package}.cli", f"{package}.config"])
    usage = subprocess.run(
        [bin_dir / package, "no-such-command"], cwd=tmp_path, capture_output=True, text=True
    )
    assert usage.returncode == 2, "an unknown subcommand is a usage error (exit 2)"
