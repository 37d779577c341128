"""Checkpoints load with weights_only and refuse a config whose tasks or channels differ."""

import pytest

from impartial.config import ModelConfig, TaskConfig
from impartial.errors import CheckpointError
from impartial.model import build_model
from impartial.train.checkpoint import load_checkpoint, save_checkpoint


def test_mismatched_tasks_or_channels_are_refused(tmp_path):
    """Same file: loads with its own config, refused for other tasks or another channel count."""
    config = ModelConfig(in_channels=2, tasks=[TaskConfig(rec_channels=[0, 1])], base=4, depth=2)
    path = save_checkpoint(tmp_path / "c.pt", build_model(config), config, val_loss=1.0)
    loaded, state = load_checkpoint(path, expect=config)
    assert loaded == config and "outc.0.weight" in state
    other_tasks = config.model_copy(update={"tasks": [TaskConfig(ncomponents=[3, 3], rec_channels=[0])]})
    with pytest.raises(CheckpointError, match="tasks"):
        load_checkpoint(path, expect=other_tasks)
    one_channel = ModelConfig(in_channels=1, tasks=[TaskConfig()], base=4, depth=2)
    with pytest.raises(CheckpointError, match="in_channels"):
        load_checkpoint(path, expect=one_channel)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not an impartial checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
