"""Configs of the data tools: convert, equalize, metric-mask and export-tiff."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from incasem.config.base import FrozenModel

__all__ = ["ConvertConfig", "EqualizeConfig", "ExportTiffConfig", "MetricMaskConfig"]

PositiveFloats = Annotated[tuple[Annotated[float, Field(gt=0)], ...], Field(min_length=3, max_length=3)]
Floats = Annotated[tuple[float, ...], Field(min_length=3, max_length=3)]
PositiveInts = Annotated[tuple[Annotated[int, Field(gt=0)], ...], Field(min_length=3, max_length=3)]


def _dataset_name(value: str) -> str:
    value = value.strip("/")
    if not value or ".." in value.split("/"):
        raise ValueError(f"invalid dataset name {value!r}; use a slash path like volumes/raw")
    return value


class ConvertConfig(FrozenModel):
    """``incasem convert``: TIFF sequence (or stack) -> zarr dataset, or the way back."""

    input: Path
    """A folder of TIFF sections, a multi-page TIFF, or a ``.zarr`` container."""
    output: Path
    """The ``.zarr`` container to write into, or the folder for TIFF sections."""
    dataset: str = "volumes/raw"
    """Dataset inside the zarr container (written, or read when converting back)."""
    pattern: str = r"(\d+)"
    """Regex searched in each file name; group 1 (or the whole match) is the section number."""
    resolution: PositiveFloats = (5.0, 5.0, 5.0)
    """Voxel size [z, y, x] in nm."""
    offset: Floats = (0.0, 0.0, 0.0)
    """World offset [z, y, x] of the first voxel in nm (a multiple of the resolution)."""
    chunks: PositiveInts = (128, 128, 128)
    """Zarr chunk shape in voxels (one daisy block per chunk)."""
    dtype: str | None = None
    """Output dtype, e.g. uint8 or uint32; default: the TIFFs' dtype."""
    invert: bool = False
    """Store ``255 - x`` (uint8 raw with inverted contrast, as done for COSEM data)."""
    overwrite: bool = False
    """Replace an existing dataset / TIFF folder."""
    workers: int = Field(default=1, ge=1)
    """daisy worker processes."""

    @field_validator("dataset")
    @classmethod
    def _valid_dataset(cls, value: str) -> str:
        return _dataset_name(value)


class EqualizeConfig(FrozenModel):
    """``incasem equalize``: blockwise 3-D CLAHE of a raw dataset."""

    zarr: Path
    """The zarr container holding the raw dataset; the output is written into it."""
    dataset: str = "volumes/raw"
    """Input dataset (uint8)."""
    out_dataset: str = "volumes/raw_equalized_0.02"
    """Output dataset."""
    kernel_size: int = Field(default=128, ge=2)
    """Edge of the cubic contextual regions in voxels."""
    clip_limit: float = Field(default=0.02, ge=0, le=1)
    """Histogram clip limit as a fraction of the region's voxel count."""
    nbins: int = Field(default=256, ge=2, le=16384)
    """Histogram bins over the 14-bit grey range."""
    block_size: int = Field(default=128, ge=8)
    """Edge of the daisy write blocks (and output chunks) in voxels."""
    method: Literal["fast", "reference"] = "fast"
    """``fast`` (vectorised) or ``reference`` (literal re-expression; slow)."""
    overwrite: bool = False
    """Replace an existing output dataset."""
    workers: int = Field(default=1, ge=1)
    """daisy worker processes."""

    @field_validator("dataset", "out_dataset")
    @classmethod
    def _valid_datasets(cls, value: str) -> str:
        return _dataset_name(value)


class MetricMaskConfig(FrozenModel):
    """``incasem metric-mask``: exclusion zone around label surfaces, excluded from F1."""

    zarr: Path
    """The zarr container holding the labels; the mask is written into it."""
    labels: str
    """Label dataset (non-zero = organelle)."""
    out_dataset: str | None = None
    """Output dataset; default ``volumes/metric_masks/<last part of labels>``."""
    inwards: int = Field(default=4, ge=0)
    """Voxels excluded inside each object (erosion iterations)."""
    outwards: int = Field(default=4, ge=0)
    """Voxels excluded outside each object (dilation iterations)."""
    block_size: int = Field(default=128, ge=8)
    """Edge of the daisy write blocks (and output chunks) in voxels."""
    overwrite: bool = False
    """Replace an existing output dataset."""
    workers: int = Field(default=1, ge=1)
    """daisy worker processes."""

    @field_validator("labels")
    @classmethod
    def _valid_labels(cls, value: str) -> str:
        return _dataset_name(value)

    @property
    def output_dataset(self) -> str:
        """The dataset the mask is written to."""
        if self.out_dataset:
            return _dataset_name(self.out_dataset)
        return f"volumes/metric_masks/{self.labels.rsplit('/', 1)[-1]}"


class ExportTiffConfig(FrozenModel):
    """``incasem export-tiff``: datasets as 8-bit TIFF sections for viewing."""

    zarr: Path
    """The zarr container."""
    datasets: list[str] = Field(min_length=1)
    """Datasets to export; each goes to ``out/<dataset with / replaced by _>/``."""
    out: Path
    """Output folder."""
    overwrite: bool = False
    """Replace existing TIFF folders."""
