"""Configuration models, one per command (pydantic v2, frozen, unknown keys rejected).

Every command also reads a TOML file (``--config``); command-line flags override its values.
The resolved config is written next to every output as ``config.json``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pairedinpaint.errors import ConfigError

FEATURE_LAYERS: tuple[str, ...] = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


class PairedinpaintConfig(BaseModel):
    """Base of every config: frozen, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(PairedinpaintConfig):
    """The pair network. Defaults are the paper's yeast model; ``organism='human'`` is 3+2 channels."""

    source_channels: int = Field(default=2, ge=1, le=16)
    """Channels of ``x_in``: protein first, then the markers (yeast 2, human 3)."""
    target_channels: int = Field(default=1, ge=1, le=16)
    """Channels of ``y_rfp``: the target cell's markers (yeast 1, human 2)."""
    size: int = Field(default=64, ge=16)
    """Crop side in pixels; must be divisible by 4 (two poolings)."""
    width: float = Field(default=1.0, gt=0, le=4)
    """Multiplier of every layer's filter count; 1.0 is the paper's network, smaller is for tests."""

    @model_validator(mode="after")
    def _check_size(self) -> ModelConfig:
        if self.size % 4:
            raise ValueError(f"size must be divisible by 4 (two 2x poolings), got {self.size}")
        return self

    @classmethod
    def for_organism(cls, organism: str, **kwargs: object) -> ModelConfig:
        """The paper's channel counts for 'yeast' (2 + 1) or 'human' (3 + 2)."""
        channels = {"yeast": (2, 1), "human": (3, 2)}
        if organism not in channels:
            raise ConfigError(f"organism must be 'yeast' or 'human', got {organism!r}")
        s, t = channels[organism]
        return cls(source_channels=s, target_channels=t, **kwargs)


class DataConfig(PairedinpaintConfig):
    """Where the crops are and how they are read."""

    root: Path
    """Folder of sub-directories (yeast: one per strain; human: one per well) of float TIFF crops."""
    layout: Literal["yeast", "human"] = "yeast"
    """File naming: yeast ``X_gfp.tif`` + ``X_bf.tif``/``X_rfp.tif``; human ``X_{green,blue,red}.tif``."""
    size: int = Field(default=64, ge=16)
    """Side of the crops fed to the network; human 128-px crops are halved by 2x2 means."""
    pair_with: Literal["directory", "field"] = "directory"
    """Draw the target cell from the same directory (the original) or the same field of view."""
    singletons: Literal["error", "skip"] = "error"
    """A group with one cell has no pair: refuse (default) or leave it out of training."""


class TrainConfig(PairedinpaintConfig):
    """Settings of `pairedinpaint train`. Defaults are the paper's yeast recipe."""

    data: DataConfig
    model: ModelConfig = ModelConfig()
    out: Path
    """Run folder; created, never overwritten (use --resume to continue a run)."""
    epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=1e-4, gt=0)
    beta_1: float = Field(default=0.5, ge=0, lt=1)
    beta_2: float = Field(default=0.999, ge=0, lt=1)
    epsilon: float = Field(default=1e-8, gt=0)
    augment: bool = True
    """Independent left-right and up-down flips of source and target (p = 0.5 each)."""
    seed: int = Field(default=0, ge=0)
    init_weights: Path | None = None
    """Start from these weights (.weights.h5 or the published Keras 2 .h5); never written to."""
    steps_per_epoch: int | None = Field(default=None, ge=1)
    """Batches per epoch; default N // batch_size as the original."""
    tensorboard: bool = True


class ExtractConfig(PairedinpaintConfig):
    """Settings of `pairedinpaint extract`: features of every cell in one batched pass."""

    data: DataConfig
    model: ModelConfig = ModelConfig()
    weights: Path | None = None
    """Trained weights; None extracts random-initialisation features (a baseline, logged)."""
    out: Path
    layers: tuple[str, ...] = FEATURE_LAYERS
    batch_size: int = Field(default=256, ge=1)
    legacy_text: bool = True
    """Also write the original ``<name>\\t<f1>\\t...\\t<fD>\\t`` text files (trailing tab kept)."""
    seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _check_layers(self) -> ExtractConfig:
        bad = [name for name in self.layers if name not in FEATURE_LAYERS]
        if bad or not self.layers:
            raise ValueError(f"layers must be a non-empty subset of {FEATURE_LAYERS}, got {self.layers}")
        return self


class BenchmarkConfig(PairedinpaintConfig):
    """Settings of `pairedinpaint benchmark`: kNN accuracy of features on a labelled set."""

    out: Path
    deeploc: tuple[Path, ...] = ()
    """DeepLoc/Chong hdf5 files (``data1``, ``Index1``, ``Index1_columns``), pooled."""
    folder: Path | None = None
    """A folder-labelled set in the yeast or human layout (label = sub-directory)."""
    layout: Literal["yeast", "human"] = "yeast"
    model: ModelConfig = ModelConfig()
    weights: Path | None = None
    random_init: bool = True
    """Also score the same network at random initialisation."""
    handcrafted: bool = True
    """Also score the mahotas Haralick + Zernike baseline."""
    layers: tuple[str, ...] = FEATURE_LAYERS
    k: int = Field(default=11, ge=1)
    exclude: tuple[str, ...] = ("DEAD", "GHOST")
    """DeepLoc classes left out (the CyCLOPS protocol); SPINDLEPOLE is merged into SPINDLE."""
    batch_size: int = Field(default=256, ge=1)
    seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _one_source(self) -> BenchmarkConfig:
        if bool(self.deeploc) == (self.folder is not None):
            raise ValueError("give exactly one labelled set: deeploc files or a folder")
        return self


class DownloadHpaConfig(PairedinpaintConfig):
    """Settings of `pairedinpaint download-hpa`."""

    protein_list: Path
    """Tab-separated ``Gene<TAB>Gene name`` list of Ensembl ids (the original proteinlist.txt)."""
    out: Path
    base_url: str = "https://www.proteinatlas.org"
    workers: int = Field(default=4, ge=1, le=16)
    """Concurrent requests; keep it small to be polite to the server."""
    retries: int = Field(default=3, ge=0, le=10)
    backoff: float = Field(default=1.0, ge=0)
    """Seconds before the first retry; doubled each time."""
    timeout: float = Field(default=60.0, gt=0)


class CropConfig(PairedinpaintConfig):
    """Settings of `pairedinpaint segment-and-crop` (the original's human crop pipeline)."""

    images: Path
    """Folder of ``<GENE>/<plate>_<well>_<field>_blue_red_green.jpg`` composites."""
    out: Path
    scale: int = Field(default=4, ge=1)
    sigma: float = Field(default=5.0, gt=0)
    hole_area: int = Field(default=300, ge=0)
    min_area: int = Field(default=100, ge=0)
    crop: int = Field(default=128, ge=8)
    save_size: int = Field(default=128, ge=8)
    """Side of the saved crops: 128 as the original, or 64 (2x2 means, ready for the network)."""
    legacy_skip_last_label: bool = False
    """Reproduce the original's off-by-one that never cropped the highest label."""
    workers: int = Field(default=1, ge=1)


class FilterConfig(PairedinpaintConfig):
    """Settings of `pairedinpaint filter`: keep directories with at least ``min_cells`` cells."""

    data: Path
    out: Path
    layout: Literal["yeast", "human"] = "human"
    min_cells: int | None = Field(default=None, ge=1)
    """Keep directories with >= this many cells; default 6 human (the code), 30 yeast (the code)."""
    copy_files: bool = False
    """Copy the kept directories instead of linking them."""


class DemoConfig(PairedinpaintConfig):
    """Settings of `pairedinpaint demo`."""

    out: Path
    """Folder for the demo's outputs; created, never overwritten."""
    seed: int = Field(default=0, ge=0)
    """Seed for the synthetic data and the model initialisation."""
    classes: tuple[str, ...] = ("nuclear", "nucleolar", "cytoplasmic", "membrane", "punctate")
    cells_per_class: int = Field(default=60, ge=4)
    epochs: int = Field(default=30, ge=1)
    """The paper's 30. Fewer leave conv4/conv5 level with random init: with 200-300 cells an epoch
    is a dozen steps, and BN's moving statistics (momentum 0.99) lag far behind the batch ones."""
    batch_size: int = Field(default=16, ge=1)
    """16 rather than the paper's 64: the same compute per epoch gives a small set 4x the steps."""
    width: float = Field(default=0.25, gt=0)
    layout: Literal["yeast", "human"] = "human"
    """Synthetic cells as yeast (protein + cell marker) or human (protein + nucleus + cell marker)."""
    learning_rate: float = Field(default=1e-3, gt=0)
    """Higher than the paper's 1e-4 so that a few epochs on a CPU learn."""


class BenchConfig(PairedinpaintConfig):
    """Settings of `pairedinpaint bench`."""

    out: Path
    width: float = Field(default=1.0, gt=0)
    """Filter multiplier of the timed network (1 = the paper's)."""
    train_cells: int = Field(default=128, ge=8)
    extract_cells: int = Field(default=512, ge=8)
    memory_cells: int = Field(default=100_000, ge=100)
    memory_width: float = Field(default=0.125, gt=0)
    """Filter multiplier of the network used for the 100k-cell memory run (the pipeline is measured)."""
    batch_size: int = Field(default=64, ge=1)
    seed: int = Field(default=0, ge=0)


def load_config(model: type[PairedinpaintConfig], path: Path | None, overrides: dict) -> PairedinpaintConfig:
    """Read a TOML file (if given), apply non-None ``overrides`` on top and validate."""
    values: dict = {}
    if path is not None:
        try:
            values = tomllib.loads(Path(path).read_text())
        except FileNotFoundError as err:
            raise ConfigError(f"config file {path} does not exist; check the path") from err
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"config file {path} is not valid TOML: {err}") from err
    for key, value in overrides.items():
        if value is None:
            continue
        target = values
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    try:
        return model.model_validate(values)
    except ValidationError as err:
        where = f" in {path}" if path is not None else ""
        raise ConfigError(f"invalid {model.__name__}{where}: {err}") from err
