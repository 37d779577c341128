"""DDP: two CPU processes (gloo) through torch.distributed.run train one run with averaged gradients."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import torch

from protloc.checkpoint import load_checkpoint


def test_two_gloo_processes_train_one_run(synthetic_root, tmp_path):
    """torch.distributed.run --nproc-per-node 2: rank 0 writes the run, the loss falls, weights are finite."""
    config = tmp_path / "train.toml"
    config.write_text(
        f"crop_size = 32\nbatch_size = 4\ncrops_per_image = 2\nn_epochs = 3\nn_epochs_decay = 0\nlr = 0.003\n"
        f'tensorboard = false\nnum_threads = 1\ndevice = "cpu"\n'
        f'[data]\nroot = "{synthetic_root}"\n[model]\ndepth = 2\nwf = 2\ndown_factor = 2\n'
    )
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "protloc",
        "-q",
        "train",
        "--config",
        str(config),
        "--out",
        str(out),
    ]
    # A new session, so that a hang kills torchrun's worker processes too, not only torchrun.
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    assert process.returncode == 0, stderr[-3000:]
    info = json.loads((out / "run_info.json").read_text())
    assert info["world_size"] == 2
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 3 and history[-1]["mse"] < history[0]["mse"]
    state = load_checkpoint(out / "checkpoints" / "latest.pt")["generator"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
