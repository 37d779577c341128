"""Architecture of the incasem U-Net, and its valid-convolution geometry, without torch.

The geometry helpers walk a size through the network exactly as the forward pass does (valid
3x3x3 convolutions, 2x2x2 max-pooling, nearest upsampling, ``crop_to_factor``, a final 3x3x3
convolution), so configs can check block sizes before any framework is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import ClassVar

from pydantic import Field, field_validator

from incasem.config.base import FrozenModel
from incasem.errors import ConfigError

__all__ = ["ModelConfig"]

Factor = tuple[int, int, int]


class ModelConfig(FrozenModel):
    """The funlib U-Net as incasem builds it (``model.*`` keys of ``config_training.yaml``).

    The defaults are the published networks: 32 feature maps, x2 per level, three 2x2x2
    downsamplings, two valid 3x3x3 convolutions per level, 2 output classes (204^3 -> 110^3).
    """

    num_fmaps: int = Field(32, ge=1, le=1024)
    """Feature maps of the first level (``model.num_fmaps``)."""
    fmap_inc_factor: int = Field(2, ge=1, le=8)
    """Feature maps grow by this factor per level (``model.fmap_inc_factor``)."""
    downsample_factors: tuple[Factor, ...] = ((2, 2, 2), (2, 2, 2), (2, 2, 2))
    """Max-pooling factor (z, y, x) of each downsampling; their number + 1 is the depth."""
    num_classes: int = Field(2, ge=2, le=256)
    """Output channels of the final convolution (``model.num_fmaps_out``): background + organelles."""

    @field_validator("downsample_factors")
    @classmethod
    def _positive_factors(cls, value: tuple[Factor, ...]) -> tuple[Factor, ...]:
        if any(f < 1 for factor in value for f in factor):
            raise ValueError(f"downsample factors must be >= 1, got {value}")
        return value

    # ------------------------------------------------------------------ geometry
    kernel_size: ClassVar[int] = 3
    """Edge of every convolution kernel (fixed by the architecture)."""
    convs_per_level: ClassVar[int] = 2
    """Convolutions per U-Net level (fixed by the architecture)."""

    @property
    def num_levels(self) -> int:
        """Number of resolution levels (downsamplings + 1)."""
        return len(self.downsample_factors) + 1

    def fmaps(self, level: int) -> int:
        """Feature maps at ``level`` (0 = full resolution)."""
        return self.num_fmaps * self.fmap_inc_factor**level

    def _walk(self, size: int, axis: int) -> int | str:
        """Output length for ``size`` voxels along ``axis``, or why the size does not pass."""
        conv_crop = self.convs_per_level * (self.kernel_size - 1)
        factors = [f[axis] for f in self.downsample_factors]
        s = int(size)
        skips = []
        for level in range(self.num_levels):
            s -= conv_crop
            if s < 1:
                return "too small"
            if level < len(factors):
                if s % factors[level]:
                    return (
                        f"it gives a feature map of {s} voxels at level {level}, not divisible "
                        f"by the pooling factor {factors[level]}"
                    )
                skips.append(s)
                s //= factors[level]
        for level in reversed(range(len(factors))):
            s *= factors[level]
            # crop_to_factor: keep the largest n * f + c <= s so the output is translation
            # equivariant (f = product of the pooling factors below this level)
            crop_factor = prod(factors[level:])
            target = (s - conv_crop) // crop_factor * crop_factor + conv_crop
            if target != s and target <= conv_crop:
                return "too small"
            s = target
            if skips[level] < s or s - conv_crop < 1:
                return "too small"
            s -= conv_crop
        s -= self.kernel_size - 1
        return s if s >= 1 else "too small"

    def is_valid_input_size(self, size: int, axis: int = 0) -> bool:
        """Whether ``size`` voxels pass the network along ``axis``."""
        return isinstance(self._walk(size, axis), int)

    def output_size_1d(self, size: int, axis: int = 0) -> int:
        """Output length along ``axis`` for an input of ``size`` voxels.

        Raises ConfigError when the size cannot pass the network: a feature map not divisible by
        its pooling factor, or too small for the convolutions or for ``crop_to_factor``.
        """
        result = self._walk(size, axis)
        if isinstance(result, int):
            return result
        if result == "too small":
            raise ConfigError(
                f"input size {size} (axis {axis}) is too small for this network; the smallest "
                f"valid size is {self.min_input_size(axis)}"
            )
        raise ConfigError(
            f"input size {size} (axis {axis}) does not fit the network: {result}; use a valid "
            f"size such as {' or '.join(map(str, self.nearest_valid_sizes(size, axis)))}"
        )

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, int, int]:
        """Output shape (z, y, x) for an input block of ``input_shape`` voxels.

        For the default network an input of ``8k + 4`` voxels gives ``input - 94`` (204 -> 110).
        """
        if len(input_shape) != 3:
            raise ConfigError(f"input shape must have 3 entries (z, y, x), got {input_shape}")
        z, y, x = (self.output_size_1d(s, axis) for axis, s in enumerate(input_shape))
        return (z, y, x)

    def context(self, input_shape: Sequence[int]) -> tuple[int, int, int]:
        """Voxels of context per side that ``input_shape`` consumes (47 for the default network)."""
        output = self.output_shape(input_shape)
        z, y, x = ((i - o) // 2 for i, o in zip(input_shape, output, strict=True))
        return (z, y, x)

    def min_input_size(self, axis: int = 0, *, limit: int = 4096) -> int:
        """Smallest valid input size along ``axis`` (100 for the default network)."""
        for size in range(1, limit):
            if self.is_valid_input_size(size, axis):
                return size
        raise ConfigError(f"no valid input size below {limit} voxels for this network")

    def nearest_valid_sizes(self, size: int, axis: int = 0, *, search: int = 256) -> list[int]:
        """The valid input sizes just below and just above ``size`` (for error messages)."""
        below = next(
            (s for s in range(size - 1, max(0, size - search), -1) if self.is_valid_input_size(s, axis)),
            None,
        )
        above = next((s for s in range(size + 1, size + search) if self.is_valid_input_size(s, axis)), None)
        return [s for s in (below, above) if s is not None]
