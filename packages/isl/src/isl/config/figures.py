"""Configuration of ``isl figures``."""

from __future__ import annotations

from pathlib import Path

from isl.config.base import IslConfigModel

__all__ = ["FiguresConfig"]


class FiguresConfig(IslConfigModel):
    """Redraw the panels and plots from files that predict/evaluate/train wrote."""

    predictions: Path | None = None
    """An ``isl predict`` output directory: error panels are redrawn per well."""
    metrics: Path | None = None
    """A metrics.csv from ``isl evaluate``: a Pearson r bar chart is drawn."""
    run: Path | None = None
    """An ``isl train`` run directory: its loss curve is drawn."""
    out: Path
    """Where the figures are written."""
    simplify_panels: bool = True
    """Three boxes per row (median, truth, error) instead of the full twelve."""
