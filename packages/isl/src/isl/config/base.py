"""The base of every isl configuration model and the TOML loader."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from isl.errors import ConfigError

__all__ = ["IslConfigModel", "load_config", "save_config"]


class IslConfigModel(BaseModel):
    """Frozen pydantic model that rejects unknown keys (a misspelt key is an error)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ConfigT = TypeVar("ConfigT", bound=BaseModel)


def load_config(cls: type[ConfigT], path: Path | None, overrides: Mapping[str, Any] | None = None) -> ConfigT:
    """Read a TOML file into ``cls``; ``overrides`` (from the command line) win over the file.

    ``path`` may be None when every required field comes from ``overrides``. Errors name the file.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(
                f"configuration file {path} does not exist; pass the path of a TOML file to --config"
            )
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path} is not valid TOML: {err}; fix the syntax") from err
    data.update(dict(overrides or {}))
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        source = f"{path}" if path is not None else "the command line"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or '(top level)'}: {item['msg']}"
            + (f" (got {item['input']!r})" if item["type"] != "missing" else "")
            for item in err.errors()
        )
        raise ConfigError(f"invalid {cls.__name__} in {source}: {problems}") from err


def save_config(config: BaseModel, directory: Path, *, name: str = "config.json") -> Path:
    """Write ``config`` as JSON next to the outputs in ``directory`` (atomic replace)."""
    from cellsight_shared.io import write_json

    path = Path(directory) / name
    write_json(path, config.model_dump(mode="json"), overwrite=True)
    return path
