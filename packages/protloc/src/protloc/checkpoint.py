"""Checkpoints: network weights, optimiser state, the model config, the protein list and theta.

Saved with ``torch.save`` to a temporary name and renamed; loaded with ``weights_only=True``, so
a checkpoint can hold tensors, numbers, strings, lists and dicts but never code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from protloc.config import GanConfig, RegressionConfig
from protloc.data.proteins import ProteinList
from protloc.errors import CheckpointError

__all__ = ["FORMAT", "load_checkpoint", "model_config_of", "save_checkpoint"]

FORMAT = "protloc-checkpoint/1"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus the format tag) atomically to ``path``, replacing an older one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save({"format": FORMAT, **payload}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely; :class:`CheckpointError` if it is missing, corrupt or foreign."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass a .pt file written by protloc train")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for bad files
        raise CheckpointError(f"cannot read checkpoint {path} ({type(err).__name__}: {err})") from err
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a protloc checkpoint (no {FORMAT!r} tag)")
    for key in ("model", "proteins", "generator"):
        if key not in data:
            raise CheckpointError(f"checkpoint {path} lacks {key!r}; it is incomplete")
    return data


def model_config_of(data: dict[str, Any]) -> RegressionConfig | GanConfig:
    """The model config stored in a checkpoint."""
    model = dict(data["model"])
    return (
        GanConfig.model_validate(model)
        if model.get("kind") == "gan"
        else RegressionConfig.model_validate(model)
    )


def proteins_of(data: dict[str, Any]) -> ProteinList:
    """The protein list stored in a checkpoint."""
    return ProteinList(data["proteins"])


def load_generator(path: str | Path, *, device: str | torch.device = "cpu"):  # noqa: ANN201
    """(generator network in eval mode, model config, protein list, theta or None) of a checkpoint."""
    from protloc.model import build_generator

    data = load_checkpoint(path)
    config = model_config_of(data)
    proteins = proteins_of(data)
    net = build_generator(config, len(proteins))
    try:
        net.load_state_dict(data["generator"])
    except RuntimeError as err:
        raise CheckpointError(
            f"checkpoint {path}: its weights do not fit its model config / protein list ({len(proteins)} "
            f"proteins): {str(err).splitlines()[0]}"
        ) from err
    theta = None
    if isinstance(config, GanConfig):
        theta = data.get("theta")
        if theta is None or tuple(theta.shape) != (len(proteins), config.theta_dim):
            raise CheckpointError(
                f"checkpoint {path}: theta {None if theta is None else tuple(theta.shape)} does not match "
                f"its {len(proteins)} proteins x theta_dim {config.theta_dim}"
            )
        theta = theta.to(device)
    return net.to(device).eval(), config, proteins, theta
