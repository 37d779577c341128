"""Configuration of the multi-scale tower network (framework-free: no TensorFlow import)."""

from __future__ import annotations

import re

import numpy as np
from pydantic import Field, field_validator, model_validator

from isl.config.base import IslConfigModel

__all__ = [
    "DEFAULT_TARGET_CHANNELS",
    "TARGET_Z_LABEL",
    "ModelConfig",
    "z_labels",
]

#: The original's target channels in head order; NEURITE_CONFOCAL is synthetic, (NFH + MAP2) / 2.
DEFAULT_TARGET_CHANNELS: tuple[str, ...] = (
    "DAPI_CONFOCAL",
    "DAPI_WIDEFIELD",
    "CELLMASK_CONFOCAL",
    "TUJ1_WIDEFIELD",
    "NFH_CONFOCAL",
    "MAP2_CONFOCAL",
    "ISLET_WIDEFIELD",
    "DEAD_CONFOCAL",
    "NEURITE_CONFOCAL",
)
#: The z label of every target head: targets are maximum projections.
TARGET_Z_LABEL = "MAXPROJECT"

_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def z_labels(num_z_values: int) -> tuple[str, ...]:
    """Labels of the input z-values, as the original names its heads (``0.0, 0.04, ..., 1.0``).

    The original takes ``round(v, 4)`` of ``linspace(0, 1, n)`` and formats the float with ``str``.
    """
    return tuple(str(round(float(v), 4)) for v in np.linspace(0.0, 1.0, num_z_values))


class ModelConfig(IslConfigModel):
    """Shape of the network: its inputs, its heads and its width.

    The defaults are the published network (26 z-values, 9 targets, base depth 400: 9,273,708
    trainable parameters). ``base_depth`` and ``projection_depth`` shrink it for tests and demos.
    """

    num_z_values: int = Field(default=26, ge=1, le=1024)
    """Input z-values. 26 in the published checkpoint; Conditions A-D have 13 planes on disk, each
    read twice (z index = round((planes - 1) * z)), Condition E has 26."""
    input_channels: tuple[str, ...] = Field(default=("TRANSMISSION",), min_length=1)
    """Input channels per z-value as the network sees them (the original sums bright field, phase
    contrast and DIC into one TRANSMISSION channel). Each gets a reconstruction head per z."""
    target_channels: tuple[str, ...] = Field(default=DEFAULT_TARGET_CHANNELS, min_length=1)
    """Predicted fluorescence channels, one head each, in head order (configurable: issue #6)."""
    num_classes: int = Field(default=256, ge=2, le=65536)
    """Intensity bins per head; bin of a value v in [0, 1] is round(v * (num_classes - 1))."""
    base_depth: int = Field(default=400, ge=8, le=100_000)
    """The original's ``--base_depth``: layer depths are derived from it and the layer size."""
    projection_depth: int = Field(default=16, ge=1, le=4096)
    """Features of the initial 1x1 projection (16 in the original); the minimum trunk depth."""

    @field_validator("input_channels", "target_channels")
    @classmethod
    def _channel_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if not _CHANNEL_NAME.match(name):
                raise ValueError(
                    f"channel name {name!r} must contain only letters, digits and underscores "
                    "(it becomes part of checkpoint variable names)"
                )
        if len(set(names)) != len(names):
            raise ValueError(f"channel names must be unique, got {list(names)}")
        return names

    @model_validator(mode="after")
    def _targets_are_not_inputs(self) -> ModelConfig:
        both = sorted(set(self.input_channels) & set(self.target_channels))
        if both:
            raise ValueError(f"channels {both} are listed both as inputs and as targets")
        return self

    @property
    def z_labels(self) -> tuple[str, ...]:
        """Labels of the input z-values (``0.0, 0.04, ..., 1.0`` for 26)."""
        return z_labels(self.num_z_values)

    @property
    def input_depth(self) -> int:
        """Channels of the network input: z-values x input channels x [image, mask] (52)."""
        return self.num_z_values * len(self.input_channels) * 2

    @property
    def input_head_names(self) -> tuple[str, ...]:
        """Reconstruction heads ``"<z>/<channel>"``, z-major as in the original."""
        return tuple(f"{z}/{c}" for z in self.z_labels for c in self.input_channels)

    @property
    def target_head_names(self) -> tuple[str, ...]:
        """Target heads ``"MAXPROJECT/<channel>"`` in ``target_channels`` order."""
        return tuple(f"{TARGET_Z_LABEL}/{c}" for c in self.target_channels)

    @property
    def head_names(self) -> tuple[str, ...]:
        """All heads in output order: the input heads, then the target heads."""
        return self.input_head_names + self.target_head_names

    @property
    def num_input_heads(self) -> int:
        """Number of input-reconstruction heads (26 by default)."""
        return self.num_z_values * len(self.input_channels)

    @property
    def num_heads(self) -> int:
        """Number of heads (35 by default)."""
        return self.num_input_heads + len(self.target_channels)

    def input_plane_index(self, z: int, channel: int = 0, *, mask: bool = False) -> int:
        """Index in the input depth of plane ``z``, input channel ``channel``, image or mask."""
        return (z * len(self.input_channels) + channel) * 2 + int(mask)
