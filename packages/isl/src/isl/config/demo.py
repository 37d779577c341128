"""Configuration of ``isl demo``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from isl.config.base import IslConfigModel

__all__ = ["DEMO_CHANNELS", "DemoConfig"]

#: The synthetic labels, named as the original's channels (nuclei, whole cells, neurites).
DEMO_CHANNELS: tuple[str, ...] = ("DAPI_CONFOCAL", "CELLMASK_CONFOCAL", "MAP2_CONFOCAL")


class DemoConfig(IslConfigModel):
    """Synthetic z-stacks -> short training of a small network -> prediction, panels, metrics."""

    out: Path
    """Run directory to create (must not exist or be empty)."""
    seed: int = 0
    train_wells: int = Field(default=3, ge=1)
    """Synthetic wells to train on."""
    test_wells: int = Field(default=1, ge=1)
    """Held-out synthetic wells to predict and evaluate."""
    image_size: int = Field(default=384, ge=250)
    """Side of each synthetic well image."""
    z_planes: int = Field(default=3, ge=1)
    """Transmitted-light z-planes per well (and the network's num_z_values)."""
    cells_per_well: int = Field(default=40, ge=1)
    """Somata per synthetic well."""
    channels: tuple[str, ...] = DEMO_CHANNELS
    """Labels to learn, a subset of DAPI_CONFOCAL, CELLMASK_CONFOCAL, MAP2_CONFOCAL."""
    base_depth: int = Field(default=16, ge=8)
    """Width of the small network (the paper uses 400)."""
    projection_depth: int = Field(default=4, ge=1)
    """Features of the first 1x1 projection (16 in the paper)."""
    recalibrate_batch_norm: int = Field(default=8, ge=0)
    """Batches for re-estimating the BN statistics after training: with the paper's decay of
    0.999 the moving averages of a short run are still near their initial values."""
    patch_size: int = Field(default=314, ge=250)
    """Training patch side, 250 + 16k: larger patches supervise more pixels per step (the paper
    trains on 250 -> 8x8 patches; 314 -> 72x72)."""
    steps: int = Field(default=60, ge=1)
    """Training steps."""
    batch_size: int = Field(default=4, ge=1)
    learning_rate: float = Field(default=1e-2, gt=0.0)
    """Much higher than the paper's 1e-4 so that a few dozen steps suffice."""

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, channels: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(channels) - set(DEMO_CHANNELS))
        if unknown or not channels:
            raise ValueError(f"channels must be a non-empty subset of {list(DEMO_CHANNELS)}")
        return channels

    @model_validator(mode="after")
    def _patch_fits(self) -> DemoConfig:
        if (self.patch_size - 250) % 16:
            raise ValueError(f"patch_size must be 250 + 16k, got {self.patch_size}")
        if self.patch_size > self.image_size:
            raise ValueError(f"patch_size ({self.patch_size}) must not exceed image_size ({self.image_size})")
        return self
