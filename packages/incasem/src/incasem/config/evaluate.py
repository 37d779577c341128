"""Configuration of ``incasem evaluate``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from incasem.config.base import FrozenModel

__all__ = ["DEFAULT_THRESHOLDS", "EvaluateConfig"]

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""Probability thresholds of the sweep; 0.5 is the value the paper's F1 uses."""


class EvaluateConfig(FrozenModel):
    """Score a prediction against the labels of a data JSON, per ROI and pooled.

    Voxels count where the entry's ``mask`` is set (all voxels without one), and separately
    where the mask and every ``metric_masks`` dataset are set (the paper's F1, which ignores a
    thin band around each object surface). Only voxels the prediction covers are scored: the
    unpredicted 47-voxel rim is left out automatically.
    """

    data: Path
    """Data JSON whose entries carry ``labels`` (and optionally ``mask``, ``metric_masks``)."""
    data_dir: Path | None = None
    """Folder the JSON's ``file`` paths are relative to (default: the JSON's folder)."""
    prediction: Path
    """Prediction group, e.g. ``cell_6.zarr/volumes/predictions/train_1841/predict_0001``."""
    out: Path | None = None
    """Folder for metrics.csv, metrics.md and metrics.json (default: ``<prediction>/run/evaluation_<k>``)."""
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    """Probability thresholds of the sweep (``prob_maps/class_<c> >= t`` is foreground)."""
    classes: tuple[int, ...] | None = None
    """Class ids to score (default: every class of the labels, 1..K)."""
    roi_padding: int = Field(0, ge=0, le=1000)
    """Voxels left out at every side of the scored region, beyond the automatic rim exclusion.

    Needed for predictions of the original code only: their datasets span the whole ROI and
    leave the unpredicted rim at 0 (its evaluation script used 46)."""
    slab: int = Field(64, ge=1, le=4096)
    """z-planes read at a time (bounds memory on whole cells)."""
    allow_incomplete: bool = False
    """Score a prediction whose run has not finished (unpredicted blocks count as background)."""
    overwrite: bool = False
    """Replace an existing ``out`` folder."""

    @field_validator("thresholds")
    @classmethod
    def _thresholds_in_unit_interval(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value:
            raise ValueError("give at least one threshold")
        if any(not 0.0 <= t <= 1.0 for t in value):
            raise ValueError(f"thresholds must lie in [0, 1], got {list(value)}")
        return tuple(sorted(set(value)))

    @field_validator("classes")
    @classmethod
    def _positive_classes(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is not None and (not value or any(c < 1 for c in value)):
            raise ValueError(f"classes are label ids >= 1 (0 is background), got {value}")
        return value
