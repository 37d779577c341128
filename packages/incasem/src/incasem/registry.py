"""The published models as data: id -> organelle, preparation, voxel size, classes, checkpoint.

The registry ships inside the package (``incasem/models.json``), so prediction needs no MongoDB:
the original read each model's settings from the ``incasem_trainings`` database.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files

from pydantic import Field

from incasem.config.base import FrozenModel
from incasem.config.model import ModelConfig
from incasem.errors import ConfigError

__all__ = ["PublishedModel", "Registry", "get_model", "list_models", "load_registry"]


class PublishedModel(FrozenModel):
    """One published checkpoint and what it was trained for."""

    id: str = Field(pattern=r"^\d+$")
    """Training run id of the original (``train_<id>`` in prediction paths)."""
    organelle: str
    """Organelle segmented as class 1."""
    label: str
    """Short organelle name used in dataset paths (``volumes/labels/<label>``)."""
    preparation: str
    """Sample preparation: CF (chemical fixation) or HPF (high-pressure freezing)."""
    voxel_size: tuple[int, int, int]
    """Voxel size (z, y, x) in nm the model was trained at; data must match it."""
    classes: tuple[str, ...]
    """Class names by output channel (channel 0 is background)."""
    checkpoint: str | None = None
    """File name in the bucket's checkpoint folder; None when only a bucket listing knows it."""
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    """SHA-256 of the checkpoint file, when known."""
    trained_on: str = ""
    """Training data, as the original README describes it."""
    metric_mask_voxels: tuple[int, int] = (4, 4)
    """Recommended exclusion zone (inwards, outwards) in voxels for F1 metric masks."""
    model: ModelConfig = ModelConfig()
    """Architecture (all published models use the default U-Net)."""

    @property
    def train_id(self) -> int:
        """The number in ``volumes/predictions/train_<id>/...``."""
        return int(self.id)


class Registry(FrozenModel):
    """The contents of ``models.json``."""

    bucket: str
    """Public S3 bucket that holds checkpoints and cells."""
    checkpoint_prefix: str
    """Key prefix of the checkpoint files in the bucket."""
    notes: str = ""
    """Provenance of the entries."""
    models: tuple[PublishedModel, ...]
    """The published models."""


@lru_cache(maxsize=1)
def load_registry() -> Registry:
    """Read the registry shipped with the package."""
    text = (files("incasem") / "models.json").read_text(encoding="utf-8")
    return Registry.model_validate(json.loads(text))


def list_models() -> list[PublishedModel]:
    """All published models, in registry order."""
    return list(load_registry().models)


def get_model(model_id: str | int) -> PublishedModel:
    """The published model with ``model_id`` (e.g. ``1847``); ConfigError if unknown."""
    wanted = str(model_id).strip()
    for model in load_registry().models:
        if model.id == wanted:
            return model
    known = ", ".join(f"{m.id} ({m.organelle}, {m.preparation})" for m in load_registry().models)
    raise ConfigError(f"unknown model id {model_id!r}; the published models are: {known}")
