"""Configuration of ``isl demo``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

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
    steps: int = Field(default=300, ge=1)
    """Training steps."""
    batch_size: int = Field(default=8, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0.0)
    """Higher than the paper's 1e-4 so that a few hundred steps suffice."""
