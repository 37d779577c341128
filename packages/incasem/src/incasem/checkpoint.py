"""Checkpoints in the original incasem format, loaded safely and checked strictly.

A checkpoint is a ``torch.save``'d dict with ``model_state_dict`` and ``optimizer_state_dict``
(the gunpowder ``Train`` format the published ``.pt`` files use). This port adds ``iteration``
and an ``incasem`` metadata dict (architecture, voxel size, class names, training run id);
loaders never require them, so the published files load as they are. Files are always read with
``torch.load(weights_only=True)``: a checkpoint can never run code.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from cellsight_shared.io import atomic_write
from incasem.config.model import ModelConfig
from incasem.errors import CheckpointError
from incasem.model import UNet

__all__ = [
    "CHECKPOINT_PREFIX",
    "build_model_from_checkpoint",
    "checkpoint_iteration",
    "infer_model_config",
    "latest_checkpoint",
    "load_checkpoint",
    "load_model_weights",
    "save_checkpoint",
]

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "model_checkpoint_"
"""Training checkpoints are named ``model_checkpoint_<iteration>`` (no suffix), as in incasem."""

_MAX_LISTED = 8


def save_checkpoint(
    path: str | os.PathLike[str],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    iteration: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` (and ``optimizer``) state in the original dict format; return the path.

    ``metadata`` (JSON-like values only) is stored under the ``incasem`` key, together with the
    architecture when ``model`` is a :class:`UNet`. The file is written under a temporary name
    and renamed, and an existing file is kept unless ``overwrite`` is true.
    """
    checkpoint: dict[str, Any] = {"model_state_dict": model.state_dict()}
    if optimizer is not None:
        checkpoint["optimizer_state_dict"] = optimizer.state_dict()
    if iteration is not None:
        checkpoint["iteration"] = int(iteration)
    meta: dict[str, Any] = {}
    if isinstance(model, UNet):
        meta["model"] = model.config.model_dump(mode="json")
    meta.update(metadata or {})
    if meta:
        checkpoint["incasem"] = meta
    target = Path(path)
    try:
        with atomic_write(target, overwrite=overwrite) as tmp:
            torch.save(checkpoint, tmp)
    except OSError as err:
        raise CheckpointError(f"could not write checkpoint {target}: {err}") from err
    return target


def load_checkpoint(
    path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint dict with ``weights_only=True``; check it holds ``model_state_dict``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} does not exist; check the path, or fetch a published model with "
            "`incasem download <model-id> --out DIR`"
        )
    from incasem.device import resolve_device

    # a missing device is the machine's problem, not the file's: say so before reading it
    resolve_device(map_location)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle, zip and torch errors all mean "not a usable checkpoint"
        raise CheckpointError(
            f"checkpoint {path} could not be read safely ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}). It is damaged (re-download or "
            "re-save it) or holds Python objects beyond tensors and plain values, which incasem "
            "refuses to unpickle."
        ) from err
    if isinstance(checkpoint, Mapping) and "model_state_dict" not in checkpoint:
        if checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
            # a bare state dict, as torch.save(model.state_dict()) writes
            checkpoint = {"model_state_dict": dict(checkpoint)}
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("model_state_dict"), Mapping):
        found = sorted(checkpoint) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise CheckpointError(
            f"checkpoint {path} has no 'model_state_dict' (found {found}); expected the incasem "
            "format {'model_state_dict': ..., 'optimizer_state_dict': ...}"
        )
    return dict(checkpoint)


def _state_dict_of(source: Mapping[str, Any] | str | os.PathLike[str]) -> tuple[dict, str]:
    if isinstance(source, (str, os.PathLike)):
        return load_checkpoint(source)["model_state_dict"], str(source)
    if "model_state_dict" in source:
        return dict(source["model_state_dict"]), "checkpoint"
    return dict(source), "state dict"


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", ... ({len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def load_model_weights(
    model: torch.nn.Module, source: Mapping[str, Any] | str | os.PathLike[str]
) -> torch.nn.Module:
    """Load weights into ``model`` with strict key and shape checks; return the model.

    ``source`` is a checkpoint path, a checkpoint dict or a bare state dict. On any mismatch a
    CheckpointError lists the missing, unexpected and differently shaped tensors and, when the
    checkpoint is another incasem U-Net, the architecture it was trained with.
    """
    state, name = _state_dict_of(source)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or wrong:
        lines = [f"{name} does not match the network:"]
        if missing:
            lines.append(f"missing tensors: {_listed(missing)}")
        if unexpected:
            lines.append(f"unexpected tensors: {_listed(unexpected)}")
        if wrong:
            lines.append(f"shape mismatches (checkpoint vs network): {_listed(wrong)}")
        try:
            inferred = infer_model_config(state)
        except CheckpointError:
            lines.append("It is not an incasem U-Net checkpoint.")
        else:
            lines.append(
                "The checkpoint is a U-Net with "
                f"num_fmaps={inferred.num_fmaps}, fmap_inc_factor={inferred.fmap_inc_factor}, "
                f"{len(inferred.downsample_factors)} downsamplings and "
                f"num_classes={inferred.num_classes}; set these in the model config, or use "
                "build_model_from_checkpoint."
            )
        raise CheckpointError(" ".join(lines))
    model.load_state_dict(state, strict=True)
    return model


_L_CONV = re.compile(r"^unet\.l_conv\.(\d+)\.conv_pass\.0\.weight$")


def infer_model_config(state_dict: Mapping[str, Any], *, downsample_factors: Any = None) -> ModelConfig:
    """Read the U-Net architecture off a state dict's tensor shapes.

    Levels = number of ``l_conv`` entries, ``num_fmaps`` = output channels of the first
    convolution, ``num_classes`` = output channels of the final convolution. Pooling factors are
    not stored in weights: they default to 2x2x2 per level (all published models) unless given.
    Transposed-convolution upsampling (``r_up`` weights) is not supported.
    """
    state = dict(state_dict.get("model_state_dict", state_dict))
    levels = sorted(int(m.group(1)) for k in state if (m := _L_CONV.match(k)))
    final = state.get("final_conv_pass.conv_pass.0.weight")
    if not levels or final is None or levels != list(range(len(levels))):
        raise CheckpointError(
            "the state dict is not an incasem U-Net (expected unet.l_conv.<level>.conv_pass.0."
            "weight and final_conv_pass.conv_pass.0.weight tensors)"
        )
    if any(k.startswith("unet.r_up.") for k in state):
        raise CheckpointError(
            "the checkpoint uses transposed-convolution upsampling (unet.r_up.* weights); only the "
            "published nearest-upsampling U-Net (constant_upsample=True) is supported"
        )
    num_fmaps = int(state["unet.l_conv.0.conv_pass.0.weight"].shape[0])
    inc = 1
    if len(levels) > 1:
        second = int(state["unet.l_conv.1.conv_pass.0.weight"].shape[0])
        if second % num_fmaps:
            raise CheckpointError(
                f"feature maps {num_fmaps} -> {second} between levels 0 and 1 are not a whole "
                "growth factor; not an incasem U-Net"
            )
        inc = second // num_fmaps
    factors = downsample_factors
    if factors is None:
        factors = ((2, 2, 2),) * (len(levels) - 1)
    return ModelConfig(
        num_fmaps=num_fmaps,
        fmap_inc_factor=inc,
        downsample_factors=factors,
        num_classes=int(final.shape[0]),
    )


def build_model_from_checkpoint(
    path: str | os.PathLike[str],
    *,
    config: ModelConfig | None = None,
    map_location: str | torch.device = "cpu",
) -> tuple[UNet, dict[str, Any]]:
    """Build the U-Net a checkpoint describes, load its weights, return ``(model, checkpoint)``.

    The architecture comes from ``config`` if given, else from the checkpoint's ``incasem``
    metadata, else from its tensor shapes. The model is returned in eval mode.
    """
    checkpoint = load_checkpoint(path, map_location=map_location)
    if config is None:
        stored = checkpoint.get("incasem", {}).get("model")
        if stored is not None:
            try:
                config = ModelConfig.model_validate(stored)
            except ValueError as err:
                raise CheckpointError(f"checkpoint {path} has invalid architecture metadata: {err}") from err
        else:
            config = infer_model_config(checkpoint["model_state_dict"])
    model = UNet(config)
    load_model_weights(model, checkpoint)
    model.eval()
    return model, checkpoint


def checkpoint_iteration(path: str | os.PathLike[str]) -> int | None:
    """Iteration encoded in a ``model_checkpoint_<iteration>`` file name, else None."""
    name = Path(path).name
    if not name.startswith(CHECKPOINT_PREFIX):
        return None
    digits = name[len(CHECKPOINT_PREFIX) :].split(".")[0]
    return int(digits) if digits.isdigit() else None


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """The ``model_checkpoint_<iteration>`` in ``directory`` with the highest iteration, or None.

    Sorted by the number, not the name (``model_checkpoint_10000`` after ``_9000``).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return None
    found = [
        (it, p) for p in directory.iterdir() if p.is_file() and (it := checkpoint_iteration(p)) is not None
    ]
    return max(found)[1] if found else None
