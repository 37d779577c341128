"""Training: the loss falls, the schedule saves per-cycle checkpoints, a resumed run is identical."""

import json

import pytest
import torch

from impartial.config import ModelConfig, SamplerConfig, TaskConfig, TrainConfig
from impartial.errors import DataError
from impartial.train.checkpoint import load_checkpoint
from impartial.train.loop import train


def _config(out, **kw):
    base = dict(
        out=out,
        model=ModelConfig(
            in_channels=2, tasks=[TaskConfig(rec_channels=[0, 1])], base=4, depth=2, p_drop=0.2
        ),
        sampler=SamplerConfig(patch_size=32, npatches_epoch=16, val_patches=8),
        batch_size=8,
        epochs=4,
        nsaves=2,
        patience=0,
        min_epochs_cycle=1,
        tensorboard=False,
        seed=3,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_schedule_writes_cycle_checkpoints_history_and_curve(tiny_sample, tmp_path):
    """Cycles end on no improvement; each keeps its best checkpoint; curves land as PNG."""
    run = train(_config(tmp_path / "run", epochs=12, lr=5e-3), samples=[tiny_sample])
    hist = json.loads((run / "history.json").read_text())
    assert (run / "loss_curve.png").stat().st_size > 1000
    assert len(hist["train_loss"]) <= 12 and hist["train_loss"][-1] < hist["train_loss"][0]
    ckpts = sorted((run / "checkpoints").glob("cycle*.pt"))
    assert 1 <= len(ckpts) <= 2
    config, state = load_checkpoint(ckpts[0])
    assert config.n_output == 12 and "outc.0.weight" in state
    with pytest.raises(DataError, match="already exists"):
        train(_config(run), samples=[tiny_sample])


def test_resume_equals_an_uninterrupted_run(tiny_sample, tmp_path):
    """Stop after 2 of 4 epochs, resume: weights and history equal the uninterrupted run's."""
    full = train(_config(tmp_path / "full"), samples=[tiny_sample])
    part = train(_config(tmp_path / "part"), samples=[tiny_sample], stop_after=2)
    train(_config(tmp_path / "part"), samples=[tiny_sample], resume=True)
    a = torch.load(full / "state.pt", weights_only=True)
    b = torch.load(part / "state.pt", weights_only=True)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    ha, hb = json.loads(a["history"]), json.loads(b["history"])
    assert ha["train_loss"] == hb["train_loss"] and ha["val_loss"] == hb["val_loss"]


def test_no_scribbles_is_refused_before_work(tiny_sample, tmp_path):
    """All-zero scribbles: a clear error and no run folder."""
    from dataclasses import replace

    empty = replace(tiny_sample, scribble=tiny_sample.scribble * 0)
    with pytest.raises(DataError, match="no scribbles at all"):
        train(_config(tmp_path / "run"), samples=[empty])
    assert not (tmp_path / "run").exists()
    wrong = replace(tiny_sample, scribble=tiny_sample.scribble[:, :10])
    with pytest.raises(DataError, match="scribbles have shape"):
        train(_config(tmp_path / "run"), samples=[wrong])
