"""The incasem 3-D U-Net: funlib's UNet plus a final 3x3x3 convolution to class logits.

The module tree reproduces the published checkpoints' state-dict keys exactly
(``unet.l_conv.0.conv_pass.0.weight`` ... ``final_conv_pass.conv_pass.0.bias``): every
convolution sits at an even index of a ``conv_pass`` Sequential (its activation follows at the
odd index), decoder passes are indexed by head first (``r_conv.0.<level>``), and max-pooling and
nearest upsampling own no parameters. Any change in crop offsets or in the ``[skip, upsampled]``
concatenation order would silently ruin the published weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

import torch
from torch import nn

from incasem.config.model import ModelConfig

__all__ = ["ConvPass", "FunlibUNet", "UNet", "build_model", "count_parameters"]


class ConvPass(nn.Module):
    """``num_convs`` valid 3-D convolutions (with bias), each followed by ReLU or nothing."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        num_convs: int = 2,
        kernel_size: int = 3,
        activation: bool = True,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(num_convs):
            layers.append(nn.Conv3d(in_channels if i == 0 else out_channels, out_channels, kernel_size))
            # the activation slot is kept even when empty so parameters stay at even indices
            layers.append(nn.ReLU() if activation else nn.Identity())
        self.conv_pass = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the convolutions."""
        return self.conv_pass(x)


def _center_crop(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Crop the spatial axes of ``x`` to ``shape``, centred (offset = floor of half the excess)."""
    slices = [slice(None), slice(None)]
    for size, target in zip(x.shape[2:], shape, strict=True):
        start = (size - target) // 2
        slices.append(slice(start, start + target))
    return x[tuple(slices)]


def _crop_to_factor(x: torch.Tensor, factor: Sequence[int], conv_crop: int) -> torch.Tensor:
    """Crop ``x`` to the largest ``n * factor + conv_crop`` per axis (translation equivariance)."""
    spatial = x.shape[2:]
    target = [(s - conv_crop) // f * f + conv_crop for s, f in zip(spatial, factor, strict=True)]
    if list(spatial) == target:
        return x
    if any(t <= conv_crop for t in target):
        raise ValueError(
            f"feature map {tuple(spatial)} is too small to keep translation equivariance with "
            f"factor {tuple(factor)}; use a larger input block"
        )
    return _center_crop(x, target)


class FunlibUNet(nn.Module):
    """funlib.learn.torch's UNet with valid convolutions, max-pooling and nearest upsampling.

    One head; outputs ``num_fmaps`` channels at full resolution. ``l_down`` and ``r_up`` hold
    parameter-free pooling and upsampling modules, so they add no state-dict keys.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.downsample_factors = [tuple(f) for f in config.downsample_factors]
        self.conv_crop = config.convs_per_level * (config.kernel_size - 1)
        levels = config.num_levels

        def conv_pass(cin: int, cout: int) -> ConvPass:
            return ConvPass(cin, cout, num_convs=config.convs_per_level, kernel_size=config.kernel_size)

        self.l_conv = nn.ModuleList(
            conv_pass(1 if level == 0 else config.fmaps(level - 1), config.fmaps(level))
            for level in range(levels)
        )
        self.l_down = nn.ModuleList(nn.MaxPool3d(factor, stride=factor) for factor in self.downsample_factors)
        self.r_up = nn.ModuleList(
            [
                nn.ModuleList(
                    nn.Upsample(scale_factor=tuple(float(f) for f in factor), mode="nearest")
                    for factor in self.downsample_factors
                )
            ]
        )
        # decoder input = [skip (fmaps(level)), upsampled (fmaps(level + 1))]
        self.r_conv = nn.ModuleList(
            [
                nn.ModuleList(
                    conv_pass(config.fmaps(level) + config.fmaps(level + 1), config.fmaps(level))
                    for level in range(levels - 1)
                )
            ]
        )
        # crop_to_factor after each upsampling uses the product of all factors below that level
        self.crop_factors = [
            tuple(prod(f[axis] for f in self.downsample_factors[level:]) for axis in range(3))
            for level in range(levels - 1)
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(N, 1, z, y, x)`` to ``(N, num_fmaps, z', y', x')`` feature maps."""
        skips = []
        for level, conv in enumerate(self.l_conv):
            x = conv(x)
            if level < len(self.l_down):
                factor = self.downsample_factors[level]
                if any(s % f for s, f in zip(x.shape[2:], factor, strict=True)):
                    raise ValueError(
                        f"feature map {tuple(x.shape[2:])} at level {level} is not divisible by "
                        f"the pooling factor {factor}; use an input size the network accepts "
                        "(8k + 4 voxels for the default network, e.g. 204)"
                    )
                skips.append(x)
                x = self.l_down[level](x)
        for level in reversed(range(len(self.l_down))):
            x = self.r_up[0][level](x)
            x = _crop_to_factor(x, self.crop_factors[level], self.conv_crop)
            skip = _center_crop(skips[level], x.shape[2:])
            x = self.r_conv[0][level](torch.cat([skip, x], dim=1))
        return x


class UNet(nn.Module):
    """incasem's ``Unet``: a :class:`FunlibUNet` and a final valid 3x3x3 convolution to logits.

    Input ``(N, 1, z, y, x)`` float32 in [-1, 1] (CLAHE-equalised uint8 / 255 * 2 - 1); output
    ``(N, num_classes, z - 94, y - 94, x - 94)`` raw logits for the default network and inputs of
    ``8k + 4`` voxels (204^3 -> 110^3). Softmax over channels gives the probability maps.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else ModelConfig()
        self.unet = FunlibUNet(self.config)
        self.final_conv_pass = ConvPass(
            self.config.num_fmaps,
            self.config.num_classes,
            num_convs=1,
            kernel_size=self.config.kernel_size,
            activation=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits for a batch of raw blocks."""
        return self.final_conv_pass(self.unet(x))

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, int, int]:
        """Spatial output shape for a spatial input shape (see ModelConfig.output_shape)."""
        return self.config.output_shape(input_shape)


def build_model(config: ModelConfig | None = None) -> UNet:
    """Build the network described by ``config`` (default: the published architecture)."""
    return UNet(config)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """Return ``(number of parameters, number of parameter tensors)`` of ``model``."""
    params = list(model.parameters())
    return sum(p.numel() for p in params), len(params)
