"""nox sessions for the cellsight monorepo: one virtual environment per package.

`make test` runs the default sessions: lint, the shared library (under zarr 2 and zarr 3), every
package's suite, and the cross-package contract tests. Method packages are discovered from
packages/*/pyproject.toml, so a new package is tested without editing this file.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path

import nox

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT / "tools"))
from requirements import package_requirements  # noqa: E402  (tools/ is not a package)

PACKAGES = sorted(p.parent.name for p in ROOT.glob("packages/*/pyproject.toml"))
CONSTRAINTS = str(ROOT / "constraints.txt")
PYTHON = "3.11"
# CI and developers get the CPU build of TensorFlow; users installing with pip get `tensorflow`.
TF_PACKAGE = os.environ.get("CELLSIGHT_TF_PACKAGE", "tensorflow-cpu")

nox.options.sessions = ["lint", "shared", "tests", "repo"]
nox.options.error_on_missing_interpreters = True
nox.options.default_venv_backend = "virtualenv"


def install_package(session: nox.Session, name: str, *, extras: tuple[str, ...] = ("test",)) -> None:
    """Install ./shared and packages/<name> (editable) with the CI pins."""
    requirements = package_requirements(ROOT / "packages" / name, extras=extras, tf_package=TF_PACKAGE)
    session.install("-c", CONSTRAINTS, "-e", "shared", *requirements)
    session.install("--no-deps", "-e", f"packages/{name}")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff lint and format check over the whole repository."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
@nox.parametrize("zarr", ["2", "3"])
def shared(session: nox.Session, zarr: str) -> None:
    """The shared library's tests, under zarr 2 (incasem's) and zarr 3, and zarr 2 <-> 3 exchange."""
    pin = "zarr>=2.18,<3" if zarr == "2" else "zarr>=3,<4"
    other = "zarr>=3,<4" if zarr == "2" else "zarr>=2.18,<3"
    session.install("-c", CONSTRAINTS, "-e", "shared[test]", pin)
    reader = Path(session.create_tmp()) / "other-zarr"
    if not (reader / "bin" / "python").exists():
        session.run("python", "-m", "venv", str(reader), silent=True)
        session.run(str(reader / "bin" / "pip"), "install", "-q", "numpy", other, external=True, silent=True)
    session.env["CELLSIGHT_OTHER_ZARR_PYTHON"] = str(reader / "bin" / "python")
    session.run("pytest", "shared/tests", f"--junitxml=reports/shared-zarr{zarr}.xml", *session.posargs)


@nox.session(python=PYTHON)
@nox.parametrize("package", PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """One method package's default test suite, in its own environment."""
    install_package(session, package)
    session.run(
        "pytest",
        f"packages/{package}/tests",
        "--durations=10",
        f"--junitxml=reports/{package}.xml",
        *session.posargs,
    )


@nox.session(python=PYTHON)
@nox.parametrize("package", PACKAGES)
def slow(session: nox.Session, package: str) -> None:
    """One method package's slow tests (paper-size models, long learning runs)."""
    install_package(session, package)
    session.run(
        "pytest",
        f"packages/{package}/tests",
        "-m",
        "slow",
        "--durations=10",
        *session.posargs,
        success_codes=[0, 5],
    )  # 5: the package has no slow tests


@nox.session(python=PYTHON)
def repo(session: nox.Session) -> None:
    """Cross-package contracts: clean wheel installs, console scripts, import rules, layout."""
    session.install("pytest>=8", "pydantic>=2", "-e", "shared")
    session.env["CELLSIGHT_TF_PACKAGE"] = TF_PACKAGE
    session.run("pytest", "tests", "--durations=10", "--junitxml=reports/repo.xml", *session.posargs)


@nox.session(python=PYTHON)
@nox.parametrize("package", PACKAGES)
def demo(session: nox.Session, package: str) -> None:
    """Run one package's demo: its main job on small embedded data, outputs in demo_outputs/<package>."""
    install_package(session, package, extras=())
    # A new run folder each time: demos never overwrite earlier outputs.
    out = ROOT / "demo_outputs" / package / datetime.now().strftime("%Y%m%d-%H%M%S")
    session.run(package, "demo", "--out", str(out), *session.posargs)
    session.log(f"{package} demo outputs: {out}")


@nox.session(python=PYTHON)
@nox.parametrize("package", PACKAGES)
def bench(session: nox.Session, package: str) -> None:
    """Run one package's benchmark; results go to bench_results/<package>/bench.json."""
    install_package(session, package, extras=())
    session.run(package, "bench", "--out", str(ROOT / "bench_results" / package), *session.posargs)


@nox.session(python=PYTHON)
def bench_table(session: nox.Session) -> None:
    """Collect bench_results/*/bench.json into BENCHMARKS.md."""
    session.run("python", "tools/bench.py", "--results", "bench_results", "--out", "BENCHMARKS.md")
