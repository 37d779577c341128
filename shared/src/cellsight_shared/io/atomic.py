"""Atomic writes: write to a temporary name beside the target, then rename.

A crash or an exception never leaves a half-written output under the final name, and an existing
output is never replaced unless the caller asked for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cellsight_shared.errors import DataFileError, NonFiniteError

__all__ = ["atomic_write", "check_finite", "ensure_absent", "read_json", "write_json"]


def ensure_absent(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Return ``path`` as a Path, raising DataFileError if it exists and ``overwrite`` is false."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise DataFileError(
            f"{path} already exists and would be overwritten. Choose another output path, "
            "remove the old output, or pass overwrite=True (--overwrite on the command line)."
        )
    return path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    The temporary name keeps the target's suffixes (``.ome.tif``, ``.zarr``) so writers that
    dispatch on the suffix behave the same. Works for files and for directories (zarr stores):
    whatever the block created at the temporary path is moved into place. On an exception the
    temporary file or directory is removed and the target is left untouched.
    """
    target = ensure_absent(path, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(target.suffixes)
    stem = target.name[: len(target.name) - len(suffix)] if suffix else target.name
    tmp = target.with_name(f".{stem}.tmp-{secrets.token_hex(4)}{suffix}")
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if not tmp.exists():
        raise DataFileError(f"nothing was written to the temporary path for {target}")
    if tmp.is_dir() and target.exists():
        # os.replace cannot replace a non-empty directory: move the old one aside first.
        trash = target.with_name(f".{stem}.old-{secrets.token_hex(4)}{suffix}")
        os.replace(target, trash)
        os.replace(tmp, target)
        _remove(trash)
    else:
        os.replace(tmp, target)


def write_json(path: str | os.PathLike[str], obj: Any, *, overwrite: bool = True) -> Path:
    """Write ``obj`` as indented JSON atomically and return the path."""
    target = Path(path)
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"
    with atomic_write(target, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, raising DataFileError that names the file and the position of a fault."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path} does not exist; check the path.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataFileError(
            f"{path} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); fix the file."
        ) from err
    except UnicodeDecodeError as err:
        raise DataFileError(f"{path} is not UTF-8 text; is it really a JSON file?") from err


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def check_finite(array: np.ndarray, *, name: str) -> None:
    """Raise NonFiniteError if a floating-point ``array`` holds NaN or infinite values."""
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.inexact):
        return
    finite = np.isfinite(array)
    if not finite.all():
        n_nan = int(np.isnan(array).sum())
        n_inf = int(array.size - finite.sum() - n_nan)
        raise NonFiniteError(
            f"{name} holds {n_nan} NaN and {n_inf} infinite values out of {array.size}; "
            "clean or mask the input before using it."
        )
