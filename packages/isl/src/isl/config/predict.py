"""Configuration of ``isl predict``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from isl.config.base import IslConfigModel
from isl.config.data import DataConfig
from isl.config.model import ModelConfig

__all__ = ["STATISTICS", "PredictConfig"]

#: Statistics of the per-pixel 256-bin distribution that can be written.
STATISTICS: tuple[str, ...] = ("mode", "median", "mean", "std", "entropy")


class PredictConfig(IslConfigModel):
    """Whole-image prediction for wells; model settings come from the checkpoint's run directory."""

    checkpoint: Path
    """An isl run directory (holding config.json and checkpoints/) or a checkpoint directory."""
    wells: tuple[Path, ...] = Field(min_length=1)
    """Well directories, or directories whose sub-directories are wells."""
    out: Path
    """Output directory; one sub-directory per well."""
    crop_size: int | None = Field(default=None, ge=250)
    """Predict only the top-left crop of this side (the original's stitch_crop_size); None = all."""
    original_extent: bool = False
    """Shrink the output to the original's: whole runs of 16x16 patches only, 128 * floor((crop -
    250) / 128) px per axis (1152 for a 1500 crop). Needs pad = 'none'."""
    pad: Literal["none", "reflect"] = "none"
    """'reflect' pads by the 121-px margin so the whole image is predicted (original: 'none')."""
    channels: tuple[str, ...] | None = None
    """Target channels to write and show (the original's infer_channel_whitelist); None = all."""
    statistics: tuple[Literal["mode", "median", "mean", "std", "entropy"], ...] = STATISTICS
    """Statistics written per channel as 16-bit images."""
    image_format: Literal["png", "tiff"] = "png"
    """File format of the statistic images (16-bit)."""
    simplify_panels: bool = True
    """Three boxes per row (median, truth, error) instead of the full twelve."""
    input_panel: bool = False
    """Also compute the input-reconstruction heads and write input_error_panel.png (off by default:
    with 26 z-values those heads are 3/4 of the head arithmetic)."""
    overwrite: bool = False
    """Replace an existing per-well output directory."""
    model: ModelConfig | None = None
    """Network shape for a TF1 checkpoint (default: the published one); isl runs store their own."""
    data: DataConfig | None = None
    """Data settings for a TF1 checkpoint; isl runs store their own."""
    tile_size: int | None = Field(default=None, ge=250)
    """Input tile side per phase of the fully convolutional inference, 250 + 16k (the memory
    knob; None = chosen per image as the size with the fewest counted operations, at most 490 px
    exact and 714 px one pass)."""
    stitching: Literal["exact", "one_pass"] = "exact"
    """'exact' reproduces the original's stride-8 patch stitching within float32 rounding
    (shared-trunk tiles: 6.3-7x fewer multiply-accumulates than patchwise, counted; measured
    11.8-12.7x faster at 1500 px, BENCHMARKS.md); 'one_pass', for previews, does about 2.5x fewer
    multiply-accumulates than exact at 1500 px (counted; measured 2.2x faster, 25.9-26.8x over
    patchwise): blocks at odd multiples of 8 px see tower 4's 16-px grid shifted and differ
    slightly from the original."""

    @model_validator(mode="after")
    def _extent_without_padding(self) -> PredictConfig:
        if self.original_extent and self.pad != "none":
            raise ValueError("original_extent reproduces the unpadded original: set pad = 'none'")
        return self

    @field_validator("tile_size")
    @classmethod
    def _tile_on_grid(cls, value: int | None) -> int | None:
        if value is not None and (value - 250) % 16:
            raise ValueError(f"tile_size must be 250 + 16k (e.g. 506), got {value}")
        return value
