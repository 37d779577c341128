"""Provenance: every artefact records the package version, the resolved config and the seed."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from cellsight_shared.io.atomic import write_json

__all__ = ["package_version", "run_info", "write_run_info"]


def package_version(distribution: str) -> str:
    """Installed version of ``distribution``, or ``"unknown"`` when it is not installed."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


def run_info(
    *, package: str, config: dict[str, Any], seed: int | None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The provenance record written beside outputs, as a JSON-ready dict."""
    return {
        "package": package,
        "version": package_version(package),
        "cellsight_shared_version": package_version("cellsight-shared"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv)),
        "seed": seed,
        "config": config,
        **(extra or {}),
    }


def write_run_info(
    directory: str | os.PathLike[str],
    *,
    package: str,
    config: dict[str, Any],
    seed: int | None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``run_info.json`` into ``directory`` (atomically, replacing an older one)."""
    path = Path(directory) / "run_info.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json(path, run_info(package=package, config=config, seed=seed, extra=extra))
