"""The ImPartial U-Net (milesial bilinear variant, configurable depth/width) and its output layout.

DoubleConv = [Conv3x3 -> Dropout? -> BN? -> ReLU] x 2 (dropout before BN and activation, as the
original); the first block (``inc``) never gets dropout. Encoder: depth max-pools; the last down
block halves its output (bilinear factor 2). Decoder: bilinear x2 (align_corners=True), pad to the
skip, concat [skip, up], DoubleConv(C, out, mid=C//2). Head: 1x1 conv to ``n_output``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from impartial.config import ModelConfig, TaskConfig

__all__ = ["TaskSlices", "UNet", "build_model", "count_parameters", "enable_dropout", "task_slices"]


class DoubleConv(nn.Module):
    """Two 3x3 convolutions, each followed by optional dropout, optional BN and the activation."""

    def __init__(
        self,
        cin: int,
        cout: int,
        mid: int | None = None,
        *,
        p_drop: float = 0.0,
        bn: bool = False,
        act: str = "relu",
    ) -> None:
        super().__init__()
        mid = mid or cout
        layers: list[nn.Module] = []
        for a, b in ((cin, mid), (mid, cout)):
            layers.append(nn.Conv2d(a, b, kernel_size=3, padding=1, bias=True))
            if p_drop > 0:
                layers.append(nn.Dropout(p_drop))
            if bn:
                layers.append(nn.BatchNorm2d(b))
            layers.append(nn.ELU(inplace=True) if act == "elu" else nn.ReLU(inplace=True))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Down(nn.Module):
    """MaxPool 2 then DoubleConv."""

    def __init__(self, cin: int, cout: int, **kw: object) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.conv = DoubleConv(cin, cout, **kw)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


class Up(nn.Module):
    """Bilinear x2, pad to the skip, concat [skip, up], DoubleConv(cin, cout, mid=cin // 2)."""

    def __init__(self, cin: int, cout: int, **kw: object) -> None:
        super().__init__()
        self.conv = DoubleConv(cin, cout, cin // 2, **kw)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        dy = skip.shape[2] - x.shape[2]
        dx = skip.shape[3] - x.shape[3]
        if dy or dx:
            x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """The U-Net of ImPartial; ``forward`` returns the raw output maps (B, n_output, H, W)."""

    def __init__(
        self,
        n_channels: int,
        n_output: int,
        *,
        depth: int = 4,
        base: int = 64,
        activation: str = "relu",
        batchnorm: bool = False,
        p_drop: float = 0.0,
        dropout_last_conv: bool = False,
    ) -> None:
        super().__init__()
        kw = {"p_drop": p_drop, "bn": batchnorm, "act": activation}
        self.inc = DoubleConv(n_channels, base, bn=batchnorm, act=activation)
        self.down_list = nn.ModuleList()
        c = base
        for i in range(depth):
            last = i == depth - 1
            self.down_list.append(Down(c, (2 * c) // 2 if last else 2 * c, **kw))
            if not last:
                c *= 2
        # c is now the channel count of the deepest skip; the bottleneck has c channels too.
        self.up_list = nn.ModuleList()
        cin = 2 * c
        for i in range(depth):
            last = i == depth - 1
            self.up_list.append(Up(cin, cin // 2 if last else (cin // 2) // 2, **kw))
            cin //= 2
        self.outc = nn.Sequential(nn.Conv2d(base, n_output, kernel_size=1))
        if dropout_last_conv and p_drop > 0:
            self.outc.append(nn.Dropout(p_drop))
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]
        for down in self.down_list:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.up_list:
            x = up(x, skips.pop())
        return self.outc(x)


def build_model(config: ModelConfig) -> UNet:
    """The U-Net for ``config`` (Dropout(p_drop) in every Down/Up conv when mc_dropout)."""
    return UNet(
        config.in_channels,
        config.n_output,
        depth=config.depth,
        base=config.base,
        activation=config.activation,
        batchnorm=config.batchnorm,
        p_drop=config.p_drop if config.mc_dropout else 0.0,
        dropout_last_conv=config.dropout_last_conv,
    )


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def enable_dropout(model: nn.Module) -> None:
    """Put only the Dropout modules in training mode (MC dropout at inference)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.train()


@dataclass(frozen=True)
class TaskSlices:
    """Where one task's maps sit in the output: logits, then per rec channel means (and log-stds)."""

    task: TaskConfig
    logits: slice
    means: list[slice]
    logstds: list[slice] | None
    scribbles: slice
    """Its scribble channels: foreground classes in order, then background."""
    groups: list[slice]
    """Component indices (within the task's K logits) of each class; the last is background."""


def task_slices(config: ModelConfig) -> list[TaskSlices]:
    """The output layout of ``config`` in task order (the original's channel order)."""
    out, off, soff = [], 0, 0
    for task in config.tasks:
        k = task.n_components
        logits = slice(off, off + k)
        off += k
        means, stds = [], []
        for _ in task.rec_channels:
            means.append(slice(off, off + k))
            off += k
            if config.std:
                stds.append(slice(off, off + k))
                off += k
        groups, g = [], 0
        for n in task.ncomponents:
            groups.append(slice(g, g + n))
            g += n
        out.append(
            TaskSlices(
                task,
                logits,
                means,
                stds if config.std else None,
                slice(soff, soff + task.classes + 1),
                groups,
            )
        )
        soff += task.classes + 1
    return out
