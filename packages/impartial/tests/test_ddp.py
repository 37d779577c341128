"""DistributedDataParallel: 2 CPU gloo processes equal one process on the same global batch."""

import json
import subprocess
import sys

import pytest
import torch

SCRIPT = """
import sys, numpy as np
from impartial.config import ModelConfig, SamplerConfig, TaskConfig, TrainConfig
from impartial.data.readers import Sample
from impartial.train.loop import train
rng = np.random.default_rng(0)
label = np.zeros((64, 64), np.int32); label[8:24, 8:24] = 1; label[36:56, 30:50] = 2
image = np.stack([(label > 0) * 0.8, (label > 0) * 0.5]) + rng.normal(0, 0.05, (2, 64, 64))
image = image.astype(np.float32)
scr = np.zeros((2, 64, 64), np.uint8); scr[0, 14:18, 10:20] = 1; scr[1, 2:4, 2:60] = 1
val = np.zeros((64, 64), np.uint8); val[40:60, 4:24] = 1
config = TrainConfig(out=sys.argv[1], batch_size=8, epochs=2, nsaves=1, min_epochs_cycle=1,
    tensorboard=False,
    model=ModelConfig(in_channels=2, tasks=[TaskConfig(rec_channels=[0, 1])], base=4, depth=2,
        mc_dropout=False),
    sampler=SamplerConfig(patch_size=32, npatches_epoch=16, val_patches=8))
train(config, samples=[Sample("t", image, label[None], scr, val)])
"""


@pytest.mark.slow
def test_two_gloo_processes_equal_single_process(tmp_path):
    """Same seeds, same global batch of 8: the weights after 2 epochs agree to float precision."""
    (tmp_path / "ddp.py").write_text(SCRIPT)
    subprocess.run(
        [sys.executable, str(tmp_path / "ddp.py"), str(tmp_path / "single")], check=True, timeout=300
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29517",
        str(tmp_path / "ddp.py"),
        str(tmp_path / "ddp"),
    ]
    subprocess.run(cmd, check=True, timeout=300)
    a = torch.load(tmp_path / "single" / "state.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "ddp" / "state.pt", weights_only=True)["model"]
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4), k
    ha = json.loads((tmp_path / "single" / "history.json").read_text())
    hb = json.loads((tmp_path / "ddp" / "history.json").read_text())
    assert ha["val_loss"] == pytest.approx(hb["val_loss"], rel=1e-4)
