"""The networks: the conditional regression U-Net, the pix2pix U-Net generator and the PatchGAN.

Conditioning follows the original. The regression U-Net owns a learned table of
``embedding_dim`` numbers per protein; a protein's row is tiled over the bottleneck and
concatenated to its features (and, with ``add_label``, after every decoder upsampling). The GAN
generator instead sees theta tiled over the whole image as extra input channels beside the
nucleus, and the discriminator judges (theta, nucleus, protein) stacks patch by patch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from protloc.config import GanConfig, RegressionConfig

__all__ = [
    "ConditionalUNet",
    "PatchDiscriminator",
    "Pix2PixGenerator",
    "build_discriminator",
    "build_generator",
    "init_weights",
    "size_multiple",
    "tile_theta",
]


def tile_theta(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, D) -> (B, D, height, width): the same vector at every pixel."""
    return theta[:, :, None, None].expand(-1, -1, height, width)


def _centre_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    dy, dx = (x.shape[-2] - height) // 2, (x.shape[-1] - width) // 2
    return x[..., dy : dy + height, dx : dx + width]


class _ConvBlock(nn.Sequential):
    """3x3 conv, ReLU, [BatchNorm] (once, or twice with ``second_layer``), as the original."""

    def __init__(self, cin: int, cout: int, *, padding: bool, batch_norm: bool, second_layer: bool) -> None:
        layers: list[nn.Module] = []
        for i in range(2 if second_layer else 1):
            layers += [
                nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=int(padding)),
                nn.ReLU(inplace=True),
            ]
            if batch_norm:
                layers.append(nn.BatchNorm2d(cout))
        super().__init__(*layers)


class ConditionalUNet(nn.Module):
    """The regression U-Net: nucleus (B, 1, H, W) + protein ids (B,) -> protein image (B, 1, H', W').

    H' = H with same padding; with valid padding the output is the centre of the input.
    """

    def __init__(self, config: RegressionConfig, n_proteins: int) -> None:
        super().__init__()
        self.config = config
        c = config
        kw = {"padding": c.padding, "batch_norm": c.batch_norm, "second_layer": c.second_layer}
        self.thetas = nn.Parameter(torch.randn(n_proteins, c.embedding_dim) * c.embedding_std)
        widths = [2 ** (c.wf + i) for i in range(c.depth)]
        self.down = nn.ModuleList()
        cin = 1
        for w in widths:
            self.down.append(_ConvBlock(cin, w, **kw))
            cin = w
        cin += c.embedding_dim  # the bottleneck carries the embedding
        self.up = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        f = c.down_factor
        for w in reversed(widths[:-1]):
            if c.up_mode == "upconv":
                self.up.append(nn.ConvTranspose2d(cin, w, kernel_size=f, stride=f))
            else:
                self.up.append(
                    nn.Sequential(nn.Upsample(scale_factor=f, mode="bilinear"), nn.Conv2d(cin, w, 1))
                )
            extra = c.embedding_dim if c.add_label else 0
            self.up_blocks.append(_ConvBlock(2 * w + extra, w, **kw))
            cin = w
        self.head = nn.Conv2d(cin, 1, 1)

    @property
    def n_proteins(self) -> int:
        """Rows of the embedding table."""
        return int(self.thetas.shape[0])

    def forward(self, nucleus: torch.Tensor, protein_ids: torch.Tensor) -> torch.Tensor:
        """Predict the protein image of each nucleus for each (per-sample) protein id."""
        theta = self.thetas[protein_ids]
        skips = []
        x = nucleus
        for i, block in enumerate(self.down):
            x = block(x)
            if i < len(self.down) - 1:
                skips.append(x)
                x = F.max_pool2d(x, self.config.down_factor)
        x = torch.cat([x, tile_theta(theta, x.shape[-2], x.shape[-1])], dim=1)
        for up, block, skip in zip(self.up, self.up_blocks, reversed(skips), strict=True):
            x = up(x)
            parts = [x, _centre_crop(skip, x.shape[-2], x.shape[-1])]
            if self.config.add_label:
                parts.append(tile_theta(theta, x.shape[-2], x.shape[-1]))
            x = block(torch.cat(parts, dim=1))
        return self.head(x)


class Pix2PixGenerator(nn.Module):
    """pix2pix U-Net: (theta tiled, nucleus) with 1 + theta_dim channels -> protein in [-1, 1].

    Encoder: 4x4 stride-2 convs with ngf, 2ngf, 4ngf, then 8ngf channels, LeakyReLU 0.2 before
    each but the first and BatchNorm after each but the first and the innermost. Decoder: ReLU,
    4x4 stride-2 transposed conv, BatchNorm (dropout 0.5 in the three blocks after the innermost),
    skip concatenation; Tanh at the end. ``num_downs`` = 8 gives ``unet_256``.
    """

    def __init__(self, config: GanConfig) -> None:
        super().__init__()
        self.config = config
        n, ngf = config.num_downs, config.ngf
        widths = [ngf * min(2**i, 8) for i in range(n)]
        self.enc = nn.ModuleList()
        cin = 1 + config.theta_dim
        for i, w in enumerate(widths):
            layers: list[nn.Module] = []
            if i > 0:
                layers.append(nn.LeakyReLU(0.2, inplace=False))
            layers.append(nn.Conv2d(cin, w, 4, stride=2, padding=1, bias=i in (0, n - 1)))
            if 0 < i < n - 1:
                layers.append(nn.BatchNorm2d(w))
            self.enc.append(nn.Sequential(*layers))
            cin = w
        self.dec = nn.ModuleList()
        for j in range(n):  # j = 0 is the innermost
            level = n - 1 - j
            cin = widths[level] * (1 if j == 0 else 2)
            last = level == 0
            cout = 1 if last else widths[level - 1]
            layers = [
                nn.ReLU(inplace=False),
                nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=last),
            ]
            if last:
                layers.append(nn.Tanh())
            else:
                layers.append(nn.BatchNorm2d(cout))
                if config.use_dropout and 1 <= j <= 3:
                    layers.append(nn.Dropout(0.5))
            self.dec.append(nn.Sequential(*layers))

    def forward(self, nucleus: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Generate the protein image of each nucleus for its theta (B, theta_dim)."""
        x = torch.cat([tile_theta(theta, nucleus.shape[-2], nucleus.shape[-1]), nucleus], dim=1)
        skips = []
        for block in self.enc:
            x = block(x)
            skips.append(x)
        x = self.dec[0](skips[-1])
        for block, skip in zip(self.dec[1:], reversed(skips[:-1]), strict=True):
            x = block(torch.cat([x, skip], dim=1))
        return x


class PatchDiscriminator(nn.Module):
    """PatchGAN on (theta tiled, nucleus, protein): 2 + theta_dim channels -> a map of logits."""

    def __init__(self, config: GanConfig) -> None:
        super().__init__()
        ndf, n = config.ndf, config.n_layers_d
        cin = 2 + config.theta_dim
        layers: list[nn.Module] = [nn.Conv2d(cin, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        mult = 1
        for i in range(1, n + 1):
            prev, mult = mult, min(2**i, 8)
            stride = 2 if i < n else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(ndf * mult),
                nn.LeakyReLU(0.2),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, nucleus: torch.Tensor, protein: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Logits that each patch of ``protein`` is real, given its nucleus and theta."""
        tiled = tile_theta(theta, nucleus.shape[-2], nucleus.shape[-1])
        return self.net(torch.cat([tiled, nucleus, protein], dim=1))


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """pix2pix initialisation: conv weights N(0, gain), BatchNorm weights N(1, gain), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


def build_generator(config: RegressionConfig | GanConfig, n_proteins: int) -> nn.Module:
    """The generator network of a model config (regression U-Net or pix2pix generator)."""
    if isinstance(config, RegressionConfig):
        return ConditionalUNet(config, n_proteins)
    net = Pix2PixGenerator(config)
    init_weights(net, config.init_gain)
    return net


def build_discriminator(config: GanConfig) -> nn.Module:
    """The PatchGAN of a GAN config, initialised as pix2pix."""
    net = PatchDiscriminator(config)
    init_weights(net, config.init_gain)
    return net


def _valid_output(config: RegressionConfig, n: int) -> int | None:
    """Output side of the regression U-Net for input side ``n``; None if ``n`` does not fit."""
    convs = 2 if config.second_layer else 1
    shrink = 0 if config.padding else 2 * convs
    f = config.down_factor
    for i in range(config.depth):
        n -= shrink
        if n < 1:
            return None
        if i < config.depth - 1:
            if n % f:
                return None
            n //= f
    for _ in range(config.depth - 1):
        n = n * f - shrink
        if n < 1:
            return None
    return n


def size_multiple(config: RegressionConfig | GanConfig) -> int:
    """Input sides (same padding) must be multiples of this."""
    if isinstance(config, GanConfig):
        return 2**config.num_downs
    return config.down_factor ** (config.depth - 1)


def fit_input(config: RegressionConfig | GanConfig, side: int) -> tuple[int, int]:
    """The smallest valid input side whose output covers ``side`` pixels, and its context offset.

    Returns (input side, offset): output pixel i lies over input pixel offset + i.
    """
    if isinstance(config, GanConfig) or config.padding:
        m = size_multiple(config)
        return -(-side // m) * m, 0
    n = side
    while True:
        out = _valid_output(config, n)
        if out is not None and out >= side and (n - out) % 2 == 0:
            return n, (n - out) // 2
        n += 1
        if n > 64 * side + 4096:
            raise ValueError(f"no valid input size for output side {side}")
