"""Configuration of ``isl train``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from isl.config.base import IslConfigModel
from isl.config.data import DataConfig
from isl.config.model import ModelConfig

__all__ = ["TrainConfig"]


class TrainConfig(IslConfigModel):
    """Training or fine-tuning a network on wells in the original PNG naming."""

    wells: tuple[Path, ...] = Field(min_length=1)
    """Well directories, or directories whose sub-directories are wells."""
    out: Path
    """Run directory: checkpoints/, logs/ (TensorBoard), config.json, loss_curve.png."""
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    steps: int = Field(default=1000, ge=1)
    """Total optimisation steps; a resumed run stops at the same total."""
    batch_size: int = Field(default=16, ge=1)
    """Patches per step (global batch; split across replicas by the strategy)."""
    learning_rate: float = Field(default=1e-4, gt=0.0)
    """Adam learning rate (beta1 0.9, beta2 0.999, epsilon 1e-8 as in TF1)."""
    checkpoint_every: int = Field(default=200, ge=1)
    """Save a checkpoint every this many steps (and at the end)."""
    keep_checkpoints: int = Field(default=3, ge=1)
    """How many recent checkpoints to keep."""
    log_every: int = Field(default=10, ge=1)
    """Write the loss to TensorBoard and the log every this many steps."""
    restore_from: Path | None = None
    """Initial weights: a TF1 checkpoint (the published one) or an isl run/checkpoint directory."""
    restore_heads: bool = True
    """Restore the 256-bin heads from ``restore_from`` (False: new labels, like --norestore_logits)."""
    restore_inputs: bool = True
    """Restore the input projection and input heads (False: a new z-count, e.g. 13 -> 26)."""
    strategy: Literal["default", "mirrored", "multi_worker_mirrored"] = "default"
    """tf.distribute strategy: one device, all local devices, or several hosts (TF_CONFIG)."""
    sync_batch_norm: bool = True
    """With several replicas, batch norm uses the global batch's statistics, so a step equals the
    one-device step (tested); false gives each replica its own slice's statistics, as the
    original's asynchronous workers had."""
    seed: int = 0
    """Seeds weights and the data order; a resumed run repeats the same order."""
    recalibrate_batch_norm: int = Field(default=0, ge=0)
    """After the last step, re-estimate the BN moving statistics from this many batches ("precise
    BN"). 0 keeps the original's moving averages (decay 0.999), which need thousands of steps to
    settle: short runs and fine-tunes predict better with ~8-16."""
