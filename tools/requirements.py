"""The install requirements of a method package as CI installs them (stdlib only).

Users get `tensorflow`; CI and developers get `tensorflow-cpu` with the same version range, since
both distributions provide the same `tensorflow` module and the CPU one is smaller and quiet.
The shared library is installed from ./shared by the caller, so it is left out here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

SHARED_DIST = "cellsight-shared"


def dist_name(requirement: str) -> str:
    """The distribution name of a PEP 508 requirement string, lower-cased."""
    return re.split(r"[\s<>=!~;\[@]", requirement, maxsplit=1)[0].lower()


def package_requirements(
    package_dir: Path, *, extras: tuple[str, ...] = (), tf_package: str = "tensorflow-cpu"
) -> list[str]:
    """Dependencies (plus ``extras``) of the package in ``package_dir``, tensorflow swapped."""
    project = tomllib.loads((package_dir / "pyproject.toml").read_text())["project"]
    deps = list(project.get("dependencies", []))
    for extra in extras:
        deps += project.get("optional-dependencies", {}).get(extra, [])
    out = []
    for dep in deps:
        name = dist_name(dep)
        if name == SHARED_DIST:
            continue
        out.append(tf_package + dep[len("tensorflow") :] if name == "tensorflow" else dep)
    return out


def needs_tensorflow(package_dir: Path) -> bool:
    """Whether the package depends on tensorflow (and so needs the CPU swap in CI)."""
    project = tomllib.loads((package_dir / "pyproject.toml").read_text())["project"]
    return any(dist_name(d) == "tensorflow" for d in project.get("dependencies", []))
