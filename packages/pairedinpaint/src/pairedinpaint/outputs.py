"""Run folders that never overwrite, and provenance written next to every output."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from pydantic import BaseModel

from pairedinpaint import __version__
from pairedinpaint.errors import ConfigError


def new_run_dir(out: Path) -> Path:
    """Create ``out`` (its parents too); an existing folder is refused, never reused."""
    out = Path(out)
    if out.exists():
        raise ConfigError(
            f"output folder {out} already exists; choose a new one (runs are never overwritten)"
        )
    out.mkdir(parents=True)
    return out


def partial_dir(out: Path) -> Path:
    """A fresh ``<out>.partial`` folder to fill and then rename to ``out`` (see finish_dir)."""
    out = Path(out)
    if out.exists():
        raise ConfigError(
            f"output folder {out} already exists; choose a new one (outputs are never overwritten)"
        )
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)  # left over from an interrupted run of ours
    tmp.mkdir(parents=True)
    return tmp


def finish_dir(tmp: Path, out: Path) -> Path:
    """Rename a completed partial folder to its final name."""
    os.replace(tmp, out)
    return Path(out)


def write_config(folder: Path, config: BaseModel, **extra: object) -> Path:
    """Write the resolved config with the package version (and ``extra``) as config.json."""
    info = {
        "package": "pairedinpaint",
        "version": __version__,
        "config": config.model_dump(mode="json"),
        **extra,
    }
    path = Path(folder) / "config.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info, indent=2, default=str))
    os.replace(tmp, path)
    return path
