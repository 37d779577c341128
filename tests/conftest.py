"""Fixtures for the cross-package contract tests."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from requirements import dist_name, needs_tensorflow, package_requirements  # noqa: E402, F401

PACKAGES = sorted(p.parent.name for p in ROOT.glob("packages/*/pyproject.toml"))
FRAMEWORKS = ("torch", "tensorflow", "keras", "jax")


def project_table(package_dir: Path) -> dict:
    """The [project] table of a package's pyproject.toml."""
    return tomllib.loads((package_dir / "pyproject.toml").read_text())["project"]


@pytest.fixture(params=PACKAGES or [pytest.param(None, marks=pytest.mark.skip(reason="no packages yet"))])
def package(request) -> str:
    """Each method package under packages/."""
    return request.param
