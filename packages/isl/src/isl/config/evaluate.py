"""Configuration of ``isl evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from isl.config.base import IslConfigModel

__all__ = ["EvaluateConfig"]


class EvaluateConfig(IslConfigModel):
    """Compare predicted statistics with the true fluorescence of the same wells."""

    predictions: Path
    """Output directory of ``isl predict`` (per-well folders with prediction.json)."""
    out: Path
    """Where metrics.csv and metrics.md are written."""
    statistic: Literal["mode", "median", "mean"] = "median"
    """Which prediction image is compared with the truth (the paper shows medians)."""
    channels: tuple[str, ...] | None = None
    """Channels to evaluate; None = every predicted channel that has ground truth."""
    ssim_data_range: float = Field(default=1.0, gt=0.0)
    """Data range for SSIM; images are compared in [0, 1]."""
    overwrite: bool = False
    """Replace the metrics of an earlier evaluation in ``out`` (otherwise that is an error)."""
