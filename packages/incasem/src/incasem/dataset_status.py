"""The completeness contract of every dataset incasem writes into a user's container.

A dataset filled block by block (``equalize``, ``convert`` into an existing container,
``metric-mask``, the groups of ``predict``) carries ``attrs["incasem"]`` with ``status``
``running`` from the moment it is created until its last block is on disk, then ``complete``.
While it runs, one empty marker file per finished block lies in ``<dataset>/.blocks/``; a rerun
with the same settings skips those blocks (each block depends on the input only, so the result
equals an uninterrupted run) and the markers are removed once the dataset is complete. Readers
(``train``, ``predict``, ``evaluate``) refuse a dataset, or a dataset inside a group, whose status
is not ``complete``; datasets without the attribute (written by other tools) are accepted.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from incasem.errors import ConfigError, DataError

__all__ = [
    "MARKERS_DIR",
    "STATUS_ATTR",
    "dataset_status",
    "finish_output",
    "prepare_output",
    "require_complete",
]

logger = logging.getLogger(__name__)

STATUS_ATTR = "incasem"
"""Attribute (a dict) holding ``status``, ``command`` and ``settings``."""
MARKERS_DIR = ".blocks"
"""Folder inside a running dataset with one empty file per finished block."""


def _attrs(folder: Path) -> dict[str, Any]:
    path = folder / ".zattrs"
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def dataset_status(store: Path | str, dataset: str) -> dict[str, Any] | None:
    """The ``incasem`` record of ``dataset`` or of the nearest group above it that has one."""
    store = Path(store)
    parts = [p for p in dataset.strip("/").split("/") if p]
    for depth in range(len(parts), 0, -1):
        info = _attrs(store.joinpath(*parts[:depth])).get(STATUS_ATTR)
        if isinstance(info, dict) and "status" in info:
            return {**info, "path": str(store.joinpath(*parts[:depth]))}
    return None


def _resume_advice(info: dict[str, Any]) -> str:
    command = info.get("command", "the command that wrote it")
    path = info.get("path", "it")
    if command == "predict" and info.get("number") is not None:
        how = f"continue it with `incasem predict --config <its TOML> --resume {info['number']}`"
    else:
        how = f"rerun `incasem {command}` with the same settings, which resumes it"
    return f"{how}, or delete it (`rm -r {path}`)"


def require_complete(store: Path | str, dataset: str, *, where: str) -> None:
    """Raise ConfigError if ``dataset`` (or its group) was left incomplete by an incasem command."""
    info = dataset_status(store, dataset)
    if info is None or info.get("status") == "complete":
        return
    raise ConfigError(
        f"{where}: {Path(store) / dataset} is incomplete (status {info.get('status')!r}: "
        f"`incasem {info.get('command', '?')}` stopped before its last block, so unwritten blocks "
        f"read 0); {_resume_advice(info)}"
    )


def prepare_output(
    store: Path | str,
    dataset: str,
    *,
    command: str,
    settings: dict[str, Any],
    overwrite: bool,
    create: Callable[[dict[str, Any]], None],
    name_option: str = "--out-dataset",
) -> bool:
    """Create ``store/dataset`` (via ``create(attrs)``) or reopen it to resume; return resuming.

    A dataset that exists is resumed when an earlier run of ``command`` with equal ``settings``
    left it ``running``; it is refused when it is complete, foreign, or was started with other
    settings, unless ``overwrite``, which deletes it first. ``settings`` must be JSON values;
    ``name_option`` is the command's option that names the output (for the advice).
    """
    store = Path(store)
    path = store / dataset
    record = {"status": "running", "command": command, "settings": settings}
    if path.exists() and not overwrite:
        info = _attrs(path).get(STATUS_ATTR)
        if isinstance(info, dict) and info.get("status") == "running" and info.get("command") == command:
            stored = info.get("settings", {})
            changed = sorted(k for k in set(settings) | set(stored) if stored.get(k) != settings.get(k))
            if not changed:
                done = len(list((path / MARKERS_DIR).glob("*"))) if (path / MARKERS_DIR).is_dir() else 0
                logger.info("%s: resuming an interrupted `incasem %s` (%d blocks done)", path, command, done)
                return True
            raise DataError(
                f"{path} was left incomplete by `incasem {command}` with other settings (changed: "
                f"{', '.join(changed)}); rerun with the original settings to resume it, pass "
                f"--overwrite to start it again, or delete it (`rm -r {path}`)"
            )
        state = "a complete dataset" if isinstance(info, dict) else "a dataset"
        raise DataError(
            f"{store} already holds {state} {dataset!r}; pass --overwrite to replace it or choose "
            f"another {name_option}"
        )
    if path.exists():
        shutil.rmtree(path)
    create({STATUS_ATTR: record})
    (path / MARKERS_DIR).mkdir(parents=True, exist_ok=True)
    return False


def finish_output(
    store: Path | str, dataset: str, *, total_blocks: int, extra: dict[str, Any] | None = None
) -> None:
    """Mark ``dataset`` complete if all ``total_blocks`` markers exist, and drop the markers."""
    import zarr

    path = Path(store) / dataset
    markers = path / MARKERS_DIR
    done = len(list(markers.iterdir())) if markers.is_dir() else 0
    if done < total_blocks:
        raise DataError(
            f"{path}: only {done} of {total_blocks} blocks were written; rerun the same command to "
            "resume (finished blocks are kept)"
        )
    array = zarr.open(str(path), mode="r+")
    info = dict(array.attrs.get(STATUS_ATTR, {}))
    info["status"] = "complete"
    updates: dict[str, Any] = dict(extra or {})
    updates[STATUS_ATTR] = info
    array.attrs.update(updates)
    shutil.rmtree(markers, ignore_errors=True)
