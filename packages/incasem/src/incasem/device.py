"""Which torch device a command runs on, checked before any work starts (imports torch)."""

from __future__ import annotations

import torch

from incasem.errors import ConfigError

__all__ = ["resolve_device"]


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; otherwise the named device, checked to exist.

    Raises ConfigError naming the device and the fix (``--device cpu``) for a CUDA or MPS device
    this machine lacks, so no later step blames a file for it.
    """
    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"device {name!r} is not a torch device (cpu, cuda, cuda:1, ...)") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {str(name)!r} requested but CUDA is not available on this machine "
                "(torch.cuda.is_available() is False); use --device cpu, or run on a machine with "
                "a CUDA GPU and a CUDA build of torch"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {str(name)!r} requested but this machine has {torch.cuda.device_count()} "
                "CUDA device(s); pick one of cuda:0.. or use --device cpu"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {str(name)!r} requested but MPS is not available; use --device cpu")
    return device
