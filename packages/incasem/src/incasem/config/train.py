"""Training config (``incasem train`` / ``finetune``): ``config_training.yaml`` as pydantic models.

Defaults are the original's (brief section 2.10): 204^3 -> 110^3 blocks, Adam lr 3e-5 and
weight decay 3e-5, checkpoints and validation every 1000 iterations, the foreground rule
(0.05, reject 0.9), the mask rule (0.75, reject 0.95), SimpleAugment, ElasticAugment (spacing
32, sigma 2, rotation up to pi/2, shift 0.05, misalign 2, subsample 4), IntensityAugment
(+-0.15), and class balancing clipped to [0.01, 0.99].
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from incasem.config.base import FrozenModel
from incasem.config.model import ModelConfig

__all__ = [
    "AugmentationConfig",
    "BalanceConfig",
    "ElasticConfig",
    "IntensityConfig",
    "RejectConfig",
    "TrainConfig",
]

Triple = Annotated[tuple[Annotated[int, Field(gt=0)], ...], Field(min_length=3, max_length=3)]
FloatTriple = Annotated[tuple[Annotated[float, Field(ge=0)], ...], Field(min_length=3, max_length=3)]


class RejectConfig(FrozenModel):
    """Sampling rules: foreground in the output block, and the sample mask."""

    min_foreground: float = Field(0.05, ge=0, le=1)
    """Foreground fraction below which a random location is usually re-drawn."""
    foreground_reject_probability: float = Field(0.9, ge=0, le=1)
    """Probability of re-drawing such a location (else it is kept)."""
    min_masked: float = Field(0.75, ge=0, le=1)
    """Sample-mask fraction a batch needs to be accepted outright."""
    mask_reject_probability: float = Field(0.95, ge=0, le=1)
    """Probability of rejecting a batch below ``min_masked``."""


class ElasticConfig(FrozenModel):
    """``gp.ElasticAugment`` parameters (voxels, radians)."""

    enabled: bool = True
    """Apply the elastic augmentation."""
    control_point_spacing: Triple = (32, 32, 32)
    """Distance between control points in voxels."""
    jitter_sigma: FloatTriple = (2.0, 2.0, 2.0)
    """Standard deviation of control-point jitter in voxels."""
    rotation_max: float = Field(math.pi / 2, ge=0, le=2 * math.pi)
    """Rotations are drawn uniformly from [0, rotation_max] (in-plane)."""
    prob_slip: float = Field(0.0, ge=0, le=1)
    """Probability that one section slips."""
    prob_shift: float = Field(0.05, ge=0, le=1)
    """Probability that a section and all after it shift."""
    max_misalign: int = Field(2, ge=0)
    """Largest slip/shift in voxels."""
    subsample: int = Field(4, ge=1)
    """Compute the deformation on a grid this much coarser."""


class IntensityConfig(FrozenModel):
    """``gp.IntensityAugment``: ``mean + (x - mean) * U[1-scale, 1+scale] + U[-shift, shift]``."""

    enabled: bool = True
    """Apply the intensity augmentation."""
    scale: float = Field(0.15, ge=0, lt=1)
    """Half-width of the multiplicative range around 1."""
    shift: float = Field(0.15, ge=0, le=1)
    """Half-width of the additive range around 0."""


class AugmentationConfig(FrozenModel):
    """Augmentations in the original order: simple, elastic, simple, intensity."""

    simple: bool = True
    """Random flips of every axis and permutations of ``transpose_only`` (twice)."""
    transpose_only: tuple[int, ...] = (0, 1, 2)
    """Axes SimpleAugment may permute (the data are isotropic)."""
    elastic: ElasticConfig = ElasticConfig()
    """Elastic deformation."""
    intensity: IntensityConfig = IntensityConfig()
    """Intensity scale and shift."""


class BalanceConfig(FrozenModel):
    """Per-batch class balancing: weight 1 / (K * clip(fraction, clipmin, clipmax))."""

    clipmin: float = Field(0.01, ge=0, le=1)
    """Lower clip of the class fractions."""
    clipmax: float = Field(0.99, ge=0, le=1)
    """Upper clip of the class fractions."""


class TrainConfig(FrozenModel):
    """``incasem train``: data, network, sampling, augmentation, optimiser and bookkeeping."""

    data: Path
    """Training data JSON (brief section 3.6)."""
    validation_data: Path | None = None
    """Validation data JSON; validated every ``validate_every`` iterations when given."""
    data_dir: Path | None = None
    """Folder the JSONs' ``file`` entries are relative to (default: each JSON's folder)."""
    out: Path = Path("runs/train")
    """Run directory: checkpoints/, tensorboard/, sacred/, log.csv, loss_curve.png, config.json."""
    model: ModelConfig = ModelConfig()
    """Network architecture; ``num_classes`` must equal 1 + the largest class id in the data."""
    input_shape: Triple = (204, 204, 204)
    """Raw block (z, y, x) in voxels; the label block is the network's output for it."""
    iterations: int = Field(200_000, ge=0)
    """Train until this iteration (one sample per iteration)."""
    save_every: int = Field(1000, ge=1)
    """Write ``model_checkpoint_<iteration>`` every this many iterations (and at the end)."""
    log_every: int = Field(100, ge=1)
    """Log the training loss (TensorBoard, sacred, ``log.csv``) every this many iterations.

    Each log point costs sacred's file observer a rewrite of an ever longer metrics file; 100
    keeps the cost far below 2 % of an iteration (``incasem bench`` measures it)."""
    metrics_every: int = Field(1000, ge=1)
    """Compute and log the training batch's softmax, F1 and class fractions every this many
    iterations (the original logged every 1000); they cost a softmax and a metric over the block."""
    validate_every: int = Field(1000, ge=1)
    """Validate every this many iterations (and at the end)."""
    lr: float = Field(3e-5, gt=0)
    """Adam learning rate."""
    weight_decay: float = Field(3e-5, ge=0)
    """Adam weight decay (coupled L2, as torch.optim.Adam does it)."""
    reject: RejectConfig = RejectConfig()
    """Sampling rules."""
    augmentation: AugmentationConfig = AugmentationConfig()
    """Augmentations."""
    balance: BalanceConfig = BalanceConfig()
    """Class balancing of the loss."""
    precache_workers: int = Field(0, ge=0)
    """gp.PreCache worker processes (the paper used 8); 0 = none, and exactly repeatable runs."""
    precache_size: int = Field(20, ge=1)
    """gp.PreCache queue length."""
    seed: int = Field(717968059, ge=0, lt=2**32)
    """Seed of the weights and of every batch (batch i uses a seed derived from it and i)."""
    device: str = "auto"
    """torch device: ``auto`` (CUDA if available), ``cpu``, ``cuda``, ``cuda:1``..."""
    threads: int | None = Field(None, ge=1)
    """torch CPU threads (default: torch's choice)."""
    run_id: int | None = None
    """Training run id stored in checkpoints (predictions go to ``train_<id>``); default: the
    first sacred run id of this run directory."""
    name: str = "incasem-train"
    """sacred experiment name."""
    observer: Literal["file", "sqlite", "none"] = "file"
    """Where the run is recorded besides MongoDB: ``<out>/sacred`` files or ``<out>/sacred.sqlite``."""
    mongo_db: str = "incasem_trainings"
    """MongoDB database when a MongoDB URL is given."""

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        # Fails early, naming valid sizes, if the block does not pass the network.
        self.model.output_shape(self.input_shape)
        if self.balance.clipmin > self.balance.clipmax:
            raise ValueError(f"balance.clipmin {self.balance.clipmin} exceeds clipmax {self.balance.clipmax}")
        if any(a not in (0, 1, 2) for a in self.augmentation.transpose_only):
            raise ValueError(
                f"augmentation.transpose_only must list axes 0, 1, 2, got {self.augmentation.transpose_only}"
            )
        return self

    @property
    def output_shape(self) -> tuple[int, int, int]:
        """Label/prediction block (z, y, x) in voxels for ``input_shape``."""
        return self.model.output_shape(self.input_shape)

    @property
    def context(self) -> tuple[int, int, int]:
        """Raw context per side in voxels (47 for the published network)."""
        return self.model.context(self.input_shape)
