"""Configuration models, one per command; each run writes its resolved config next to its outputs.

Defaults are the original's (clu0/generative_protein) where it had one: a depth-5 U-Net with
16..256 channels pooling by 4 and a 16-number protein embedding at the bottleneck; pix2pix
``unet_256`` (ngf 64, 8 downsamplings) with a PatchGAN of ndf 16 and 3 layers; L1 weight 100;
Adam 2e-4, beta1 0.5 for the GAN and 3e-4 for the regression; 100 constant + 100 decaying epochs.
Importing this module does not import torch.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from protloc.errors import ConfigError

__all__ = [
    "BenchConfig",
    "DataConfig",
    "DemoConfig",
    "DownloadConfig",
    "EvaluateConfig",
    "FrozenModel",
    "GanConfig",
    "PredictConfig",
    "RegressionConfig",
    "TrainConfig",
    "load_config",
    "write_config",
]


class FrozenModel(BaseModel):
    """Base of every config: unknown keys are errors (a misspelt key fails) and values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RegressionConfig(FrozenModel):
    """The conditional regression U-Net (the original ``Unet`` with its ``thetas`` table)."""

    kind: Literal["regression"] = "regression"
    depth: int = Field(default=5, ge=1, le=8)
    """Number of encoder levels; the bottleneck is the deepest one."""
    wf: int = Field(default=4, ge=0, le=8)
    """Width factor: level i has 2**(wf + i) channels (the original: 16, 32, 64, 128, 256)."""
    padding: bool = True
    """Same padding (True, the original) or valid convolutions with centre-cropped skips."""
    batch_norm: bool = True
    """BatchNorm after each ReLU, as in the original blocks."""
    up_mode: Literal["upconv", "upsample"] = "upconv"
    """Transposed convolution (the original) or bilinear upsampling followed by a 1x1 conv."""
    down_factor: int = Field(default=4, ge=2, le=4)
    """Max-pool size between levels: 4 in the original (256 px -> 1 px bottleneck), 2 in a classic U-Net."""
    second_layer: bool = False
    """Two 3x3 convs per block instead of one (the original's ``--second_layer``)."""
    embedding_dim: int = Field(default=16, ge=1, le=1024)
    """Numbers per protein in the learned embedding table."""
    embedding_std: float = Field(default=0.125, gt=0)
    """SD of the embedding's initialisation, N(0, 1/8) in the original."""
    add_label: bool = False
    """Also concatenate the tiled embedding after every decoder upsampling (``--add_label``)."""


class GanConfig(FrozenModel):
    """pix2pix: U-Net generator on (theta tiled, nucleus), PatchGAN on (theta, nucleus, protein)."""

    kind: Literal["gan"] = "gan"
    theta_dim: int = Field(default=16, ge=1, le=1024)
    """Numbers per protein in theta; the generator sees 1 + theta_dim input channels."""
    num_downs: int = Field(default=8, ge=2, le=10)
    """Generator downsamplings by 2: 8 = pix2pix ``unet_256`` (256 px -> 1 px)."""
    ngf: int = Field(default=64, ge=1)
    """Generator filters in the outermost layer."""
    ndf: int = Field(default=16, ge=1)
    """Discriminator filters in its first layer (16 in the original, 64 in stock pix2pix)."""
    n_layers_d: int = Field(default=3, ge=1, le=6)
    """PatchGAN depth; 3 gives the 70x70 receptive field."""
    use_dropout: bool = True
    """Dropout 0.5 in the generator's three innermost decoder blocks, as pix2pix."""
    lambda_l1: float = Field(default=100.0, ge=0)
    """Weight of the L1 term in the generator loss."""
    init_gain: float = Field(default=0.02, gt=0)
    """SD of the N(0, gain) weight initialisation."""


def _model_kind(value: Any) -> str:
    kind = (
        value.get("kind", "regression") if isinstance(value, dict) else getattr(value, "kind", "regression")
    )
    return kind if kind in ("regression", "gan") else "regression"


ModelField = Annotated[
    Annotated[RegressionConfig, Tag("regression")] | Annotated[GanConfig, Tag("gan")],
    Discriminator(_model_kind),
]
"""A model config: ``kind = "regression"`` (the default) or ``kind = "gan"``."""


class DataConfig(FrozenModel):
    """Where the images are, how they are laid out, and how they are split and normalised."""

    root: Path
    """Folder holding one sub-folder per protein."""
    layout: Literal["opencell", "pairs"] = "opencell"
    """``opencell``: ``<GENE>_<ENSG>/OC-FOV_..._proj.tif`` (2, H, W) files, channel 0 nucleus, 1
    protein. ``pairs``: one folder per protein of (marker, protein) image pairs."""
    image_list: Path | None = None
    """OpenCell CSV of file names (first column, or a ``filename`` column); optional ``protein``
    and ``split`` columns. Without it every ``*_proj.tif`` under ``root`` is used."""
    protein_list: Path | None = None
    """JSON protein list (a list of names or a {name: id} dict); legacy pickles are read safely.
    Without it the proteins found under ``root`` are used, sorted."""
    nucleus_channel: int = Field(default=0, ge=0)
    protein_channel: int = Field(default=1, ge=0)
    marker_suffix: str = "_rfp.tif"
    """``pairs`` layout: the marker (nucleus or other structure) image ends with this."""
    protein_suffix: str = "_gfp.tif"
    """``pairs`` layout: its protein image has the same name ending with this instead."""
    val_fraction: float = Field(default=0.15, ge=0, lt=1)
    test_fraction: float = Field(default=0.15, ge=0, lt=1)
    split_seed: int = Field(default=0, ge=0)
    """The split is by image, stratified by protein, and depends only on this seed and the names."""
    percentile_low: float = Field(default=1.0, ge=0, lt=100)
    percentile_high: float = Field(default=99.8, gt=0, le=100)

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must leave images for training (sum < 1)")
        if self.percentile_low >= self.percentile_high:
            raise ValueError("percentile_low must be below percentile_high")
        if self.layout == "opencell" and self.nucleus_channel == self.protein_channel:
            raise ValueError("nucleus_channel and protein_channel must differ")
        return self


class TrainConfig(FrozenModel):
    """Settings of ``protloc train``."""

    data: DataConfig
    model: ModelField = Field(default_factory=RegressionConfig)
    out: Path
    """Run folder; created, never overwritten (``--resume`` continues an existing one)."""
    theta: Path | None = None
    """GAN only: theta file (.npz/.safetensors with its protein list); random Gaussian if absent."""
    theta_std: float = Field(default=1.0, gt=0)
    """SD of a random Gaussian theta."""
    crop_size: int = Field(default=256, ge=8)
    """Side of the random training crops (the original's 2**img_w = 256)."""
    batch_size: int = Field(default=2, ge=1)
    crops_per_image: int = Field(default=1, ge=1)
    """Crops drawn from each training image per epoch."""
    n_epochs: int = Field(default=100, ge=0)
    """Epochs at the initial learning rate."""
    n_epochs_decay: int = Field(default=100, ge=0)
    """Epochs over which the learning rate falls linearly towards zero (regression default: none)."""
    lr: float | None = Field(default=None, gt=0)
    """Adam learning rate; default 3e-4 (regression) or 2e-4 (GAN), the original's."""
    beta1: float | None = Field(default=None, ge=0, lt=1)
    """Adam beta1; default 0.9 (regression) or 0.5 (GAN)."""
    flips: bool = True
    rot90: bool = True
    """Random multiples of 90 degrees (the original rotated by any angle, filling corners)."""
    save_every: int = Field(default=10, ge=1)
    """Keep a numbered checkpoint every this many epochs (``latest.pt`` is written every epoch)."""
    seed: int = Field(default=0, ge=0, lt=2**32)
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu`` or ``cuda[:N]``."""
    num_threads: int | None = Field(default=None, ge=1)
    tensorboard: bool = True

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.n_epochs + self.n_epochs_decay < 1:
            raise ValueError("n_epochs + n_epochs_decay must be at least 1")
        if self.theta is not None and self.model.kind != "gan":
            raise ValueError("theta is a GAN setting; the regression model learns its own embedding")
        return self

    @property
    def learning_rate(self) -> float:
        """The configured or the original's default learning rate."""
        return self.lr if self.lr is not None else (2e-4 if self.model.kind == "gan" else 3e-4)

    @property
    def adam_beta1(self) -> float:
        """The configured or the original's default Adam beta1."""
        return self.beta1 if self.beta1 is not None else (0.5 if self.model.kind == "gan" else 0.9)


class PredictConfig(FrozenModel):
    """Settings of ``protloc predict``."""

    checkpoint: Path
    images: list[Path] = Field(min_length=1)
    proteins: list[str] = Field(min_length=1)
    """Protein names; several give one multi-channel TIFF per image, channels in this order."""
    out: Path
    """Output folder (created; must not exist)."""
    nucleus_channel: int | None = Field(default=None, ge=0)
    """Channel of the nucleus in a multi-channel image; required when an image has several."""
    tile: int = Field(default=512, ge=16)
    """Core size of the tiles a large image is cut into."""
    margin: int = Field(default=64, ge=0)
    """Context around each tile, blended with its neighbours."""
    percentile_low: float | None = None
    """Nucleus normalisation percentiles; default: those of the training run."""
    percentile_high: float | None = None
    device: str = "auto"


class EvaluateConfig(FrozenModel):
    """Settings of ``protloc evaluate``: held-out images of a training run against two baselines."""

    run: Path
    """Training run folder (its config.json and split.json say which images are held out)."""
    checkpoint: Path | None = None
    """Default: the run's ``checkpoints/latest.pt``."""
    split: Literal["test", "val"] = "test"
    out: Path | None = None
    """Output folder (created; must not exist); default ``<run>/evaluate-<split>[-N]``."""
    tile: int = Field(default=512, ge=16)
    margin: int = Field(default=64, ge=0)
    device: str = "auto"
    figures: bool = True
    """Also write the ground truth | generated | nucleus grids per protein."""


class DownloadConfig(FrozenModel):
    """Settings of ``protloc download``: selected proteins' FOVs from the OpenCell bucket."""

    proteins: list[str] = Field(min_length=1)
    """Gene names, or ``GENE_ENSG...`` folder names."""
    out: Path
    bucket_url: str = "https://czb-opencell.s3.us-west-2.amazonaws.com"
    """The public OpenCell bucket (CC BY-SA 4.0), listed with S3's ListObjectsV2 over HTTPS."""
    prefix: str = "microscopy/raw/"
    max_images: int | None = Field(default=None, ge=1)
    """At most this many FOVs per protein."""
    include_stacks: bool = False
    """Also fetch the ~70 MB z-stacks, not only the 2x600x600 projections."""
    retries: int = Field(default=3, ge=0)
    timeout: float = Field(default=60.0, gt=0)


class DemoConfig(FrozenModel):
    """Settings of ``protloc demo``."""

    out: Path
    """Folder for the demo's outputs; created, never overwritten."""
    seed: int = Field(default=0, ge=0)
    """Seed for the synthetic data and the model initialisation."""
    images_per_protein: int = Field(default=10, ge=3)
    size: int = Field(default=96, ge=32)
    epochs: int = Field(default=30, ge=1)


class BenchConfig(FrozenModel):
    """Settings of ``protloc bench``."""

    out: Path
    full: bool = False
    """Time the original-size networks at 256 px instead of the small CI-size ones."""
    device: str = "auto"


ModelT = TypeVar("ModelT", bound=BaseModel)


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Apply overrides; a dotted key (``data.root``) sets a nested value."""
    merged = dict(base)
    for key, value in overrides.items():
        if value is None:  # an option the user did not give
            continue
        head, _, rest = key.partition(".")
        if rest:
            inner = merged.get(head)
            merged[head] = _merge(dict(inner) if isinstance(inner, Mapping) else {}, {rest: value})
        else:
            merged[key] = value
    return merged


def load_config(
    model: type[ModelT], path: Path | str | None = None, overrides: Mapping[str, Any] | None = None
) -> ModelT:
    """Read a TOML (or JSON) file into ``model``; CLI overrides (``None`` = not given) win.

    Raises :class:`ConfigError` for an unreadable file, pydantic's ``ValidationError`` for wrong
    values; the CLI reports both as one paragraph and exits 1.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; pass an existing TOML file")
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"config file {path} is not valid TOML/JSON: {err}") from err
    return model.model_validate(_merge(data, overrides or {}))


def write_config(directory: Path | str, config: BaseModel, *, name: str = "config.json") -> Path:
    """Write ``config`` as JSON into ``directory`` (atomic; replaces an older copy)."""
    from cellsight_shared.io import write_json

    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, config.model_dump(mode="json"), overwrite=True)
    return path
