"""The frozen pydantic base model and TOML loading shared by every incasem config."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from incasem.errors import ConfigError

__all__ = ["FrozenModel", "load_config", "write_config"]


class FrozenModel(BaseModel):
    """Base of every config: unknown keys are errors (a misspelt key fails) and values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ModelT = TypeVar("ModelT", bound=BaseModel)


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Apply overrides; a dotted key (``data.voxel_size``) sets a nested value."""
    merged = dict(base)
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if rest:
            inner = merged.get(head)
            merged[head] = _merge(dict(inner) if isinstance(inner, Mapping) else {}, {rest: value})
        else:
            merged[key] = value
    return merged


def load_config(
    model: type[ModelT],
    path: Path | str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ModelT:
    """Read a TOML (or JSON) file into ``model``, with CLI overrides taking precedence.

    Relative paths stay relative to the working directory, like the original scripts. Raises
    :class:`ConfigError` for an unreadable or malformed file; pydantic's ``ValidationError`` for
    wrong values (the CLI reports both as one paragraph and exits 1).
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; pass an existing TOML file")
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"config file {path} is not valid TOML/JSON: {err}") from err
    return model.model_validate(_merge(data, overrides or {}))


def write_config(directory: Path | str, config: BaseModel, *, name: str = "config.json") -> Path:
    """Write ``config`` as JSON next to the outputs in ``directory`` (atomic; replaces old copies)."""
    from cellsight_shared.io import write_json

    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, config.model_dump(mode="json"), overwrite=True)
    return path
