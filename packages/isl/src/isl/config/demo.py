"""Configuration of ``isl demo``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from isl.config.base import IslConfigModel

__all__ = ["DemoConfig"]


class DemoConfig(IslConfigModel):
    """Synthetic z-stacks -> short training of a small network -> prediction, panels, metrics."""

    out: Path
    """Run directory to create (must not exist or be empty)."""
    seed: int = 0
    train_wells: int = Field(default=3, ge=1)
    """Synthetic wells to train on."""
    test_wells: int = Field(default=1, ge=1)
    """Held-out synthetic wells to predict and evaluate."""
    image_size: int = Field(default=384, ge=266)
    """Side of each synthetic well image."""
    z_planes: int = Field(default=5, ge=1)
    """Transmitted-light z-planes per well."""
    base_depth: int = Field(default=24, ge=2)
    """Width of the small network (the paper uses 400)."""
    projection_depth: int = Field(default=4, ge=1)
    """Features of the first 1x1 projection (16 in the paper)."""
    patch_size: int = Field(default=314, ge=250)
    """Training patch side, 250 + 16k: larger patches supervise more pixels per step (the paper
    trains on 250 -> 8x8 patches; 314 -> 72x72)."""
    steps: int = Field(default=150, ge=1)
    """Training steps."""
    batch_size: int = Field(default=4, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0.0)
    """Higher than the paper's 1e-4 so that a short run suffices."""

    @model_validator(mode="after")
    def _patch_fits(self) -> DemoConfig:
        if (self.patch_size - 250) % 16:
            raise ValueError(f"patch_size must be 250 + 16k, got {self.patch_size}")
        if self.patch_size > self.image_size:
            raise ValueError(
                f"patch_size ({self.patch_size}) must not exceed image_size ({self.image_size})"
            )
        return self
