"""Networks: the original's channel counts and shapes, and conditioning by protein."""

from __future__ import annotations

import pytest
import torch

from protloc.config import GanConfig, RegressionConfig
from protloc.model import ConditionalUNet, PatchDiscriminator, Pix2PixGenerator, fit_input


def test_regression_defaults_are_the_original():
    """16..256 channels, pooling by 4 to a 1x1 bottleneck at 256 px, 16 embedding numbers per protein."""
    net = ConditionalUNet(RegressionConfig(), n_proteins=100)
    assert [b[0].out_channels for b in net.down] == [16, 32, 64, 128, 256]
    assert net.thetas.shape == (100, 16)
    assert 0.1 < float(net.thetas.detach().std()) < 0.15  # N(0, 1/8)
    assert net.up[0].in_channels == 256 + 16  # the embedding joins the bottleneck
    seen = {}
    net.down[-1].register_forward_hook(lambda m, i, o: seen.update(bottleneck=o.shape))
    out = net(torch.rand(2, 1, 256, 256), torch.tensor([0, 99]))
    assert out.shape == (2, 1, 256, 256) and seen["bottleneck"][-2:] == (1, 1)


def test_add_label_concatenates_after_every_upsampling():
    """With add_label each decoder block takes 16 more channels."""
    plain = ConditionalUNet(RegressionConfig(depth=3, wf=2, down_factor=2), 3)
    labelled = ConditionalUNet(RegressionConfig(depth=3, wf=2, down_factor=2, add_label=True), 3)
    for a, b in zip(plain.up_blocks, labelled.up_blocks, strict=True):
        assert b[0].in_channels == a[0].in_channels + 16
    assert labelled(torch.rand(1, 1, 32, 32), torch.tensor([1])).shape == (1, 1, 32, 32)


@pytest.mark.parametrize("up_mode", ["upconv", "upsample"])
def test_valid_padding_output_is_centred_and_fit_input_covers_it(up_mode):
    """Valid convolutions shrink the output; fit_input finds an input whose output covers a side."""
    config = RegressionConfig(depth=3, wf=2, down_factor=2, padding=False, second_layer=True, up_mode=up_mode)
    net = ConditionalUNet(config, 2)
    side, offset = fit_input(config, 40)
    out = net(torch.rand(1, 1, side, side), torch.tensor([0]))
    assert out.shape[-1] >= 40 and side - out.shape[-1] == 2 * offset


def test_embedding_rows_change_the_prediction():
    """Two protein ids on the same nucleus give different outputs."""
    torch.manual_seed(0)
    net = ConditionalUNet(RegressionConfig(depth=3, wf=3, down_factor=2), 2).eval()
    x = torch.rand(1, 1, 32, 32).expand(2, -1, -1, -1)
    out = net(x, torch.tensor([0, 1]))
    assert not torch.allclose(out[0], out[1])


def test_pix2pix_defaults_are_unet_256_and_the_original_patchgan():
    """17 generator input channels (16 theta + nucleus), 64 filters, 8 downs; D: 18 channels, ndf 16."""
    config = GanConfig()
    gen, disc = Pix2PixGenerator(config), PatchDiscriminator(config)
    assert gen.enc[0][0].in_channels == 17 and gen.enc[0][0].out_channels == 64 and len(gen.enc) == 8
    assert disc.net[0].in_channels == 18 and disc.net[0].out_channels == 16
    out = gen.eval()(torch.rand(1, 1, 256, 256), torch.randn(1, 16))
    assert out.shape == (1, 1, 256, 256) and float(out.detach().abs().max()) <= 1.0
    logits = disc(torch.rand(1, 1, 256, 256), out, torch.randn(1, 16))
    assert logits.shape == (1, 1, 30, 30)  # the 70x70 PatchGAN's map at 256 px
