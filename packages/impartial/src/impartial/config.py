"""Configuration models, one per command; written next to every output as config.json.

The task layout follows the original ``classification_tasks``: each task has ``classes``
foreground classes, ``ncomponents`` (one entry per foreground class, the last entry is the
background's) and the input channels it reconstructs (``rec_channels``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from impartial.errors import ConfigError

__all__ = [
    "PRESETS",
    "BenchConfig",
    "DataConfig",
    "DemoConfig",
    "EvaluateConfig",
    "FinetuneConfig",
    "LossConfig",
    "ModelConfig",
    "PredictConfig",
    "SamplerConfig",
    "TaskConfig",
    "TrainConfig",
    "load_toml",
    "preset_tasks",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskConfig(_Model):
    """One classification task: its classes, mixture components and reconstructed channels."""

    name: str = "cell"
    classes: int = Field(default=1, ge=1)
    ncomponents: list[int] = Field(default_factory=lambda: [2, 2])
    """Mixture components per foreground class, then the background's (classes + 1 entries)."""
    rec_channels: list[int] = Field(default_factory=lambda: [0])
    """Input channels this task reconstructs at the blind spots."""
    weight_classes: list[float] | None = None
    """Weights of the foreground classes in the scribble loss; default 1/classes each."""
    weight_rec_channels: list[float] | None = None
    """Weights of the reconstructed channels; default 1/len(rec_channels) each."""

    @model_validator(mode="after")
    def _check(self) -> TaskConfig:
        if len(self.ncomponents) != self.classes + 1:
            raise ValueError(
                f"task {self.name!r}: ncomponents needs classes + 1 = {self.classes + 1} entries "
                f"(one per foreground class, then the background), got {self.ncomponents}"
            )
        if any(k < 1 for k in self.ncomponents):
            raise ValueError(
                f"task {self.name!r}: every ncomponents entry must be >= 1, got {self.ncomponents}"
            )
        if not self.rec_channels or any(c < 0 for c in self.rec_channels):
            raise ValueError(f"task {self.name!r}: rec_channels must list input channels >= 0")
        if self.weight_classes is not None and len(self.weight_classes) != self.classes:
            raise ValueError(f"task {self.name!r}: weight_classes needs {self.classes} entries")
        if self.weight_rec_channels is not None and len(self.weight_rec_channels) != len(self.rec_channels):
            raise ValueError(
                f"task {self.name!r}: weight_rec_channels needs {len(self.rec_channels)} entries"
            )
        return self

    @property
    def n_components(self) -> int:
        """K_t, the number of component logits of this task."""
        return sum(self.ncomponents)

    def class_weights(self) -> list[float]:
        """Weights of the foreground classes (default 1/C)."""
        return list(self.weight_classes or [1.0 / self.classes] * self.classes)

    def rec_weights(self) -> list[float]:
        """Weights of the reconstructed channels (default 1/R)."""
        n = len(self.rec_channels)
        return list(self.weight_rec_channels or [1.0 / n] * n)


def _t(name: str, classes: int, ncomp: list[int], rec: list[int]) -> TaskConfig:
    return TaskConfig(name=name, classes=classes, ncomponents=ncomp, rec_channels=rec)


#: The dataset configurations of the original main_impartial.py (channels, tasks).
PRESETS: dict[str, tuple[int, list[TaskConfig]]] = {
    "mibi2ch": (2, [_t("cytoplasm", 1, [2, 2], [0]), _t("nuclei", 2, [1, 1, 2], [1])]),
    "vectra2ch": (2, [_t("cytoplasm", 1, [2, 2], [0]), _t("nuclei", 2, [1, 1, 2], [1])]),
    "vectra2ch_1task": (2, [_t("cell", 1, [2, 2], [0, 1])]),
    "deepcell": (2, [_t("cell", 1, [2, 2], [0, 1]), _t("nuclei", 1, [1, 2], [0])]),
    "cellpose": (2, [_t("cell", 1, [2, 2], [0, 1])]),
    "dapi1ch": (1, [_t("nuclei", 1, [2, 2], [0])]),
    "mibi1ch": (1, [_t("cell", 1, [2, 2], [0])]),
}


def preset_tasks(name: str) -> tuple[int, list[TaskConfig]]:
    """The (input channels, tasks) of a named original dataset configuration."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]


class ModelConfig(_Model):
    """The U-Net (milesial bilinear variant) and its output layout."""

    in_channels: int = Field(default=2, ge=1)
    tasks: list[TaskConfig] = Field(default_factory=lambda: [TaskConfig(rec_channels=[0, 1])])
    depth: int = Field(default=4, ge=1, le=6)
    base: int = Field(default=64, ge=2)
    activation: Literal["relu", "elu"] = "relu"
    batchnorm: bool = False
    mc_dropout: bool = True
    """Dropout(p_drop) after every conv of every Down/Up block, in training and at inference."""
    p_drop: float = Field(default=0.5, ge=0.0, lt=1.0)
    dropout_last_conv: bool = False
    std: bool = False
    """Also predict per-component log-std maps (the original default is fixed sigma = 1)."""

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if not self.tasks:
            raise ValueError("tasks is empty; give at least one task")
        for task in self.tasks:
            bad = [c for c in task.rec_channels if c >= self.in_channels]
            if bad:
                raise ValueError(
                    f"task {task.name!r} reconstructs channels {bad} but the model has "
                    f"{self.in_channels} input channels (0..{self.in_channels - 1})"
                )
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, got {names}")
        return self

    @property
    def n_output(self) -> int:
        """Output channels: sum over tasks of K_t (1 + R_t (1 + std))."""
        per = 2 if self.std else 1
        return sum(t.n_components * (1 + per * len(t.rec_channels)) for t in self.tasks)

    @property
    def n_scribble_channels(self) -> int:
        """Scribble channels: sum over tasks of classes + 1 (foreground classes, background)."""
        return sum(t.classes + 1 for t in self.tasks)


class LossConfig(_Model):
    """Loss weights and variant (section 5 of the method brief)."""

    variant: Literal["v2", "v1"] = "v2"
    """v2: scribble CE + p-weighted patch-mean Gaussian; v1: Brier scribble loss + expected NLL."""
    w_fore: float = Field(default=0.45, ge=0)
    w_back: float = Field(default=0.45, ge=0)
    w_rec: float = Field(default=0.1, ge=0)
    w_reg: float = Field(default=0.0, ge=0)
    reg: Literal["L1", "L2"] = "L1"
    rec: Literal["gaussian", "laplacian"] = "gaussian"
    weight_tasks: list[float] | None = None


class SamplerConfig(_Model):
    """Patch sampling and blind-spot masking."""

    patch_size: int = Field(default=128, ge=16)
    p_scribble: float = Field(default=0.6, ge=0, le=1)
    shift_crop: int = Field(default=32, ge=1)
    npatches_epoch: int = Field(default=4096, ge=1)
    min_npatch_image: int = Field(default=6, ge=1)
    blind_ratio: float = Field(default=0.95, gt=0, le=1)
    """Fraction of pixels kept; 0.95 hides 5 % per channel."""
    blind_window: int = Field(default=10, ge=1)
    flips: bool = True
    val_patches: int = Field(default=256, ge=1)
    """Fixed validation subset (the original drew 4096 patches with 3 MC passes)."""
    val_mc_passes: int = Field(default=1, ge=1)


class DataConfig(_Model):
    """Where the training images, labels and scribbles are."""

    format: Literal["tiff_roi", "npz_csv", "tiff_pairs", "synthetic"] = "tiff_roi"
    root: Path | None = None
    """tiff_roi: <name>.tif + labels/final/<name>.zip; tiff_pairs: images/, labels/ (scribbles/)."""
    csv: Path | None = None
    """npz_csv: the v2 scribble CSV (input_dir, input_file, scribble_file, ..., gt_index_task{t})."""
    files_csv: Path | None = None
    """npz_csv: the v2 files.csv; its group = test images join as held-out images."""
    train: list[str] = Field(default_factory=list)
    """Image names (stems) to train on; empty = every image with a label or scribble."""
    test: list[str] = Field(default_factory=list)
    scribble_budget: int | None = Field(default=None, ge=2)
    """Generate scribbles from full labels with this per-image instance budget (if no scribbles)."""
    scribble_rate: float | None = Field(default=None, gt=0, le=1)
    """Or a budget as a fraction of each image's instances (v3 style)."""
    val_perc: float = Field(default=0.4, gt=0, lt=1)
    normalize: Literal["auto", "global_p1_p98", "none"] = "auto"
    """auto: global P1/P98 for TIFFs, none for v2 npz files (shipped normalised)."""
    relabel: bool = False
    """Relabel instance ids with gaps to 1..N instead of refusing them."""
    seed: int = Field(default=43, ge=0)


class TrainConfig(_Model):
    """Settings of `impartial train`."""

    out: Path
    """Run folder; created, never overwritten (use `impartial train --resume` to continue)."""
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=5e-4, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    gradclip: float = Field(default=0.0, ge=0)
    epochs: int = Field(default=300, ge=1)
    nsaves: int = Field(default=5, ge=1)
    patience: int = Field(default=5, ge=0)
    min_epochs_cycle: int = Field(default=10, ge=1)
    improvement: float = Field(default=0.999, gt=0, le=1)
    seed: int = Field(default=42, ge=0)
    device: str = "cpu"
    tensorboard: bool = True
    """Write TensorBoard scalars when the tensorboard package is installed."""
    init_from: Path | None = None
    """Warm start from this checkpoint (finetune)."""


class FinetuneConfig(_Model):
    """Settings of `impartial finetune`: warm start from a run, new scribbles, N epochs."""

    out: Path
    run: Path
    """The run folder (or a checkpoint .pt) to start from."""
    data: DataConfig
    epochs: int = Field(default=10, ge=1)
    npatches_epoch: int = Field(default=512, ge=1)
    seed: int = Field(default=42, ge=0)


class PredictConfig(_Model):
    """Settings of `impartial predict`."""

    run: Path
    images: list[Path]
    out: Path
    mc_passes: int = Field(default=10, ge=1)
    checkpoints: int | None = Field(default=None, ge=1)
    """Use the first N cycle checkpoints (default all)."""
    tile: int = Field(default=512, ge=16)
    margin: int = Field(default=32, ge=0)
    batch: int = Field(default=10, ge=1)
    threshold: float = Field(default=0.5, gt=0, lt=1)
    device: str = "cpu"
    normalize: Literal["global_p1_p98", "none"] = "global_p1_p98"
    watershed: bool = True


class EvaluateConfig(_Model):
    """Settings of `impartial evaluate`: threshold chosen on train images, reported on test."""

    predictions: Path
    labels: Path
    """Folder of ground-truth label TIFFs or ImageJ ROI zips named like the images, or a v2
    scribble CSV (labels from its npz files, chosen by its gt_index_task{t} columns)."""
    train: list[str]
    test: list[str]
    out: Path
    task: str | None = None
    class_index: int = Field(default=0, ge=0)
    files_csv: Path | None = None
    """With a v2 CSV as labels: the files.csv that also lists the test images."""
    label_index: int | None = Field(default=None, ge=0)
    """Score against this label map (of a multi-map label) instead of the gt_index mapping."""


class DemoConfig(_Model):
    """Settings of `impartial demo`."""

    out: Path
    """Folder for the demo's outputs; created, never overwritten."""
    seed: int = Field(default=0, ge=0)
    """Seed for the synthetic data and the model initialisation."""
    epochs: int = Field(default=12, ge=1)
    size: int = Field(default=128, ge=64)


class BenchConfig(_Model):
    """Settings of `impartial bench`."""

    out: Path
    quick: bool = False
    """Smaller batches and images for the speed figures; a base-16 U-Net for the memory run."""
    parts: list[Literal["speed", "masking", "memory"]] = Field(
        default_factory=lambda: ["speed", "masking", "memory"], min_length=1
    )
    """Which figures to measure (the 4096^2 memory run of the full network takes minutes)."""
    repeats: int | None = Field(default=None, ge=1)
    """Timed training steps (default 2; the best counts)."""


def load_toml(path: Path, model: type[BaseModel], **overrides: object) -> BaseModel:
    """Read a TOML file into ``model``; errors name the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; check the path.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from err
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return model.model_validate(data)
    except ValidationError as err:
        lines = [f"{path}: invalid configuration:"]
        for item in err.errors():
            where = ".".join(str(p) for p in item["loc"]) or "(top level)"
            lines.append(f"  {where}: {item['msg']}")
        raise ConfigError("\n".join(lines)) from err
