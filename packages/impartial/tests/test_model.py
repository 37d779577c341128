"""The U-Net matches the original's size and output layout for the paper's task configurations."""

import pytest
import torch

from impartial.config import ModelConfig, TaskConfig, preset_tasks
from impartial.model import UNet, build_model, count_parameters, enable_dropout, task_slices


def test_parameter_count_matches_the_original_network():
    """17,258,960 parameters for 2 input channels and 16 outputs (counted on the original)."""
    assert count_parameters(UNet(2, 16)) == 17_258_960


@pytest.mark.parametrize(
    ("preset", "n_output"),
    [("mibi2ch", 16), ("vectra2ch", 16), ("deepcell", 18), ("cellpose", 12), ("dapi1ch", 8)],
)
def test_output_channels_of_the_paper_configurations(preset, n_output):
    """n_output = sum over tasks of K_t (1 + R_t) for MIBI, Vectra, DeepCell, Cellpose, DAPI."""
    channels, tasks = preset_tasks(preset)
    config = ModelConfig(in_channels=channels, tasks=tasks, base=4, depth=2)
    assert config.n_output == n_output
    out = build_model(config)(torch.zeros(1, channels, 32, 32))
    assert out.shape == (1, n_output, 32, 32)


def test_layout_slices_follow_the_original_channel_order():
    """Per task: K logits, then K mean maps per reconstructed channel; tasks concatenated."""
    config = ModelConfig(in_channels=2, tasks=preset_tasks("mibi2ch")[1])
    a, b = task_slices(config)
    assert (a.logits, a.means) == (slice(0, 4), [slice(4, 8)])
    assert (b.logits, b.means) == (slice(8, 12), [slice(12, 16)])
    assert b.groups == [slice(0, 1), slice(1, 2), slice(2, 4)]
    assert (a.scribbles, b.scribbles) == (slice(0, 2), slice(2, 5))
    std = ModelConfig(in_channels=2, tasks=[TaskConfig(rec_channels=[0, 1])], std=True)
    assert std.n_output == 4 * (1 + 2 * 2)
    assert task_slices(std)[0].logstds == [slice(8, 12), slice(16, 20)]


def test_odd_sizes_and_mc_dropout_are_stochastic_only_when_enabled():
    """Any size runs (padding path); eval is deterministic, enable_dropout makes passes differ."""
    model = build_model(ModelConfig(in_channels=1, tasks=[TaskConfig()], base=4, depth=2))
    x = torch.rand(1, 1, 30, 22)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        enable_dropout(model)
        assert not torch.equal(model(x), model(x))
    assert model(x).shape == (1, 8, 30, 22)
    assert not any(isinstance(m, torch.nn.Dropout) for m in model.inc.modules())


def test_bad_task_configs_are_refused():
    """Ncomponents of the wrong length and rec channels beyond the input are clear errors."""
    with pytest.raises(ValueError, match="ncomponents"):
        TaskConfig(classes=2, ncomponents=[2, 2])
    with pytest.raises(ValueError, match="input channels"):
        ModelConfig(in_channels=1, tasks=[TaskConfig(rec_channels=[0, 1])])
