"""Checkpoints: weights plus the model config as JSON text, loaded with weights_only=True."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from impartial.config import ModelConfig
from impartial.errors import CheckpointError

__all__ = ["checkpoint_paths", "load_checkpoint", "save_checkpoint"]


def save_checkpoint(
    path: Path, model: torch.nn.Module, config: ModelConfig, **meta: float | int | str
) -> Path:
    """Write ``{"model", "model_config", meta...}`` to a temporary name, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"model": state, "model_config": config.model_dump_json(), **meta}, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: Path, *, expect: ModelConfig | None = None) -> tuple[ModelConfig, dict]:
    """(model config, state dict); refuses a checkpoint whose layout differs from ``expect``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} does not exist; give a run folder or a .pt written by impartial"
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        config = ModelConfig.model_validate(json.loads(blob["model_config"]))
        state = blob["model"]
    except Exception as err:
        raise CheckpointError(f"{path} is not an impartial checkpoint ({type(err).__name__}: {err})") from err
    if expect is not None:
        fields = ("in_channels", "tasks", "depth", "base", "std")
        diff = [f for f in fields if getattr(expect, f) != getattr(config, f)]
        if diff:
            raise CheckpointError(
                f"{path} was trained with a different {', '.join(diff)} "
                f"(checkpoint: {[getattr(config, f) for f in diff]}, "
                f"config: {[getattr(expect, f) for f in diff]}); "
                "use the checkpoint's model settings or train a new model."
            )
    return config, state


def checkpoint_paths(run: Path, n: int | None = None) -> list[Path]:
    """The cycle checkpoints of a run folder (checkpoints/cycle*.pt), or a single .pt file."""
    run = Path(run)
    if run.is_file():
        return [run]
    paths = sorted((run / "checkpoints").glob("cycle*.pt"))
    if not paths:
        raise CheckpointError(
            f"{run} holds no checkpoints/cycle*.pt; is it a finished impartial training run?"
        )
    return paths[:n] if n else paths
