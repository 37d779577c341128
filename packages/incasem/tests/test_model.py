"""The U-Net: published geometry, state-dict keys, parameter count and size helpers."""

import pytest
import torch

from incasem.config.model import ModelConfig
from incasem.errors import ConfigError
from incasem.model import UNet, build_model, count_parameters

# The 30 tensors of the published checkpoints (brief section 1.3), in state-dict order.
PUBLISHED_KEYS = (
    [
        f"unet.l_conv.{level}.conv_pass.{i}.{kind}"
        for level in range(4)
        for i in (0, 2)
        for kind in ("weight", "bias")
    ]
    + [
        f"unet.r_conv.0.{level}.conv_pass.{i}.{kind}"
        for level in range(3)
        for i in (0, 2)
        for kind in ("weight", "bias")
    ]
    + ["final_conv_pass.conv_pass.0.weight", "final_conv_pass.conv_pass.0.bias"]
)

PUBLISHED_SHAPES = {
    "unet.l_conv.0.conv_pass.0.weight": (32, 1, 3, 3, 3),
    "unet.l_conv.0.conv_pass.2.weight": (32, 32, 3, 3, 3),
    "unet.l_conv.1.conv_pass.0.weight": (64, 32, 3, 3, 3),
    "unet.l_conv.3.conv_pass.2.weight": (256, 256, 3, 3, 3),
    "unet.r_conv.0.0.conv_pass.0.weight": (32, 96, 3, 3, 3),
    "unet.r_conv.0.1.conv_pass.0.weight": (64, 192, 3, 3, 3),
    "unet.r_conv.0.2.conv_pass.0.weight": (128, 384, 3, 3, 3),
    "final_conv_pass.conv_pass.0.weight": (2, 32, 3, 3, 3),
    "final_conv_pass.conv_pass.0.bias": (2,),
}


def test_published_network_has_the_checkpoint_keys_in_order():
    """The default network's state dict has exactly the published key list."""
    assert list(UNet().state_dict()) == PUBLISHED_KEYS


def test_published_network_tensor_shapes():
    """Channel counts follow 32 fmaps x2 per level and [skip, upsampled] decoder inputs."""
    state = UNet().state_dict()
    for key, shape in PUBLISHED_SHAPES.items():
        assert tuple(state[key].shape) == shape, key


def test_published_network_has_5837730_parameters_in_30_tensors():
    """Parameter count and tensor count match the reference network."""
    assert count_parameters(build_model()) == (5_837_730, 30)


def test_204_cube_gives_110_cube_of_two_logits():
    """204^3 -> 110^3 with 2 channels; run on the meta device (shapes only, no compute)."""
    with torch.device("meta"):
        model = UNet()
        out = model(torch.empty(1, 1, 204, 204, 204))
    assert tuple(out.shape) == (1, 2, 110, 110, 110)


def test_non_cubic_valid_inputs_lose_94_voxels_per_axis():
    """Each axis shrinks by 94 independently (108 -> 14, 116 -> 22, 300 -> 206)."""
    with torch.device("meta"):
        out = UNet()(torch.empty(1, 1, 108, 116, 300))
    assert tuple(out.shape[2:]) == (14, 22, 206)


def test_small_network_forward_matches_geometry_helper():
    """A 2-fmap network computes real logits with the shape the config predicts."""
    torch.manual_seed(0)
    model = UNet(ModelConfig(num_fmaps=2, downsample_factors=((2, 2, 2),))).eval()
    with torch.inference_mode():
        out = model(torch.rand(1, 1, 44, 52, 60) * 2 - 1)
    assert tuple(out.shape) == (1, 2, *model.output_shape((44, 52, 60)))
    assert model.output_shape((44, 52, 60)) == (26, 34, 42)
    assert torch.isfinite(out).all()


def test_fmaps_knob_scales_parameters():
    """Fewer feature maps: same keys, far fewer parameters."""
    small = UNet(ModelConfig(num_fmaps=4))
    assert list(small.state_dict()) == PUBLISHED_KEYS
    assert count_parameters(small)[0] < count_parameters(UNet())[0] / 50


def test_odd_feature_map_raises_clear_error():
    """An input whose feature map cannot be pooled names the fix instead of failing in torch."""
    model = UNet(ModelConfig(num_fmaps=2, downsample_factors=((2, 2, 2),)))
    with pytest.raises(ValueError, match="not divisible by the pooling factor"):
        model(torch.zeros(1, 1, 45, 44, 44))


@pytest.mark.parametrize(
    ("size", "output"), [(100, 6), (108, 14), (116, 22), (196, 102), (204, 110), (212, 118)]
)
def test_geometry_helper_output_is_input_minus_94(size, output):
    """Valid sizes 8k + 4 lose 94 voxels (the reference network's measured sizes)."""
    assert ModelConfig().output_size_1d(size) == output


def test_geometry_helper_lists_valid_sizes_and_context():
    """Valid inputs are 8k + 4 from 100; the context is 47 voxels per side."""
    config = ModelConfig()
    valid = [s for s in range(1, 260) if config.is_valid_input_size(s)]
    assert valid == list(range(100, 260, 8))
    assert config.context((204, 204, 204)) == (47, 47, 47)
    assert config.min_input_size() == 100
    assert config.nearest_valid_sizes(200) == [196, 204]


def test_geometry_helper_rejects_invalid_sizes_naming_valid_ones():
    """205 cannot be pooled (suggests 204 or 212); 60 is too small (suggests 100)."""
    config = ModelConfig()
    with pytest.raises(ConfigError, match="204 or 212"):
        config.output_shape((205, 204, 204))
    with pytest.raises(ConfigError, match="100"):
        config.output_size_1d(60)


def test_geometry_helper_agrees_with_forward_pass_for_every_small_size():
    """For a 1-level network the helper and the real forward agree on every size 30..60."""
    config = ModelConfig(num_fmaps=2, downsample_factors=((2, 2, 2),))
    model = UNet(config)
    with torch.device("meta"):
        meta = UNet(config)
    for size in range(30, 61):
        if config.is_valid_input_size(size):
            out = meta(torch.empty(1, 1, size, 44, 44))
            assert out.shape[2] == config.output_size_1d(size)
        else:
            with pytest.raises((ValueError, RuntimeError)):
                model(torch.zeros(1, 1, size, 44, 44))
