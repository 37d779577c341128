"""`impartial bench`: speed and memory figures, each a ratio measured in one run.

Training patches/s, inference s/MPix (5 checkpoints x 10 MC passes), GFLOP/s against this
machine's float32 matmul peak, peak memory predicting a 4096^2 image, and vectorised blind-spot
masking against the per-pixel loop.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["run_bench"]

log = logging.getLogger(__name__)

_MEMORY_SCRIPT = """
import json, sys, numpy as np, torch
from pathlib import Path
from impartial.config import ModelConfig, TaskConfig
from impartial.model import build_model
from impartial.predict import Ensemble, predict_image
size, base, tile, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
def hwm_kib():
    # VmHWM belongs to this process image; ru_maxrss would keep the parent's peak across exec
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")
torch.set_num_threads(2)
mc = ModelConfig(in_channels=2, tasks=[TaskConfig(rec_channels=[0, 1])], base=base)
ens = Ensemble(mc, [build_model(mc).state_dict()])
before = hwm_kib()
img = np.random.default_rng(0).random((2, size, size), dtype=np.float32)
maps = predict_image(ens, img, mc_passes=1, tile=tile, margin=32)
out.write_text(json.dumps({"peak_rss_mib": hwm_kib() / 1024, "before_mib": before / 1024}))
"""


def _matmul_peak(seconds: float = 1.0) -> float:
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    torch.mm(a, b)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b)
        n += 1
    return 2 * 1024**3 * n / (time.perf_counter() - t0) / 1e9


def _flops(fn) -> float:  # noqa: ANN001
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def run_bench(config) -> Path:  # noqa: ANN001
    """Measure and write ``bench.json`` (tools/bench.py schema) into ``config.out``."""
    import torch

    from cellsight_shared.io import write_json
    from impartial.config import LossConfig, ModelConfig, TaskConfig
    from impartial.model import build_model
    from impartial.predict import Ensemble, predict_image
    from impartial.train.blindspot import apply_blind_spots, apply_blind_spots_loop, draw_blind_spots
    from impartial.train.losses import impartial_loss

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    peak = _matmul_peak()
    mc = ModelConfig(in_channels=2, tasks=[TaskConfig(rec_channels=[0, 1])])
    torch.manual_seed(0)
    model = build_model(mc)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, weight_decay=1e-4)
    batch, patch = (2, 128) if config.quick else (8, 128)
    x = torch.rand(batch, 2, patch, patch)
    scr = (torch.rand(batch, 2, patch, patch) > 0.97).float()

    def step() -> None:
        inp, mask = apply_blind_spots(x, draw_blind_spots(tuple(x.shape)))
        loss = impartial_loss(model(inp), x, scr, mask, mc, LossConfig())["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    train_flops = _flops(step)
    steps = 2 if config.quick else 4
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = (time.perf_counter() - t0) / steps
    train_pps = batch / dt
    train_gflops = train_flops / dt / 1e9

    size = 128 if config.quick else 256
    ens = Ensemble(mc, [build_model(mc).state_dict() for _ in range(5)])
    img = torch.rand(2, size, size).numpy()
    one = _flops(lambda: model.eval()(torch.from_numpy(img)[None].expand(10, -1, -1, -1)))
    t0 = time.perf_counter()
    predict_image(ens, img, mc_passes=10, tile=512, batch=10)
    infer = time.perf_counter() - t0
    s_per_mpix = infer / (size * size / 1e6)
    infer_gflops = 5 * one / infer / 1e9

    g = torch.Generator().manual_seed(0)
    patch_t = torch.rand(8, 2, 128, 128)
    draw = draw_blind_spots(tuple(patch_t.shape), generator=g)
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        apply_blind_spots(patch_t, draw)
    vec = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    apply_blind_spots_loop(patch_t, draw)
    loop = time.perf_counter() - t0
    ratio = loop / vec

    mem_base = 16 if config.quick else 64
    with tempfile.TemporaryDirectory() as tmp:
        mem_json = Path(tmp) / "memory.json"
        res = subprocess.run(
            [sys.executable, "-c", _MEMORY_SCRIPT, "4096", str(mem_base), "512", str(mem_json)],
            capture_output=True,
            text=True,
            timeout=3000,
            check=False,
        )
        if res.returncode != 0:
            raise RuntimeError(f"the memory benchmark failed: {res.stderr[-2000:]}")
        mem = json.loads(mem_json.read_text())
    figures = [
        {
            "name": "training patches/s (128^2, full U-Net, CPU)",
            "value": train_pps,
            "unit": "patches/s",
            "target": "",
            "met": None,
            "note": f"batch {batch}, blind spots + loss + Adam step",
        },
        {
            "name": "training GFLOP/s / matmul peak",
            "value": train_gflops / peak,
            "unit": "fraction",
            "target": "",
            "met": None,
            "note": f"{train_gflops:.1f} GFLOP/s of {peak:.1f} (1024^2 fp32 matmul)",
        },
        {
            "name": "inference s/MPix, 5 checkpoints x 10 MC passes",
            "value": s_per_mpix,
            "unit": "s/MPix",
            "target": "",
            "met": None,
            "note": f"{size}x{size} image, full U-Net",
        },
        {
            "name": "inference GFLOP/s / matmul peak",
            "value": infer_gflops / peak,
            "unit": "fraction",
            "target": "",
            "met": None,
            "note": f"{infer_gflops:.1f} GFLOP/s",
        },
        {
            "name": "peak memory predicting 4096x4096",
            "value": mem["peak_rss_mib"] / 1024,
            "unit": "GiB",
            "target": "< 2",
            "met": mem["peak_rss_mib"] / 1024 < 2,
            "note": (
                f"peak RSS (VmHWM) of a fresh process, U-Net base {mem_base}, 512^2 tiles, "
                "1 checkpoint x 1 pass"
            ),
        },
        {
            "name": "blind-spot masking: vectorised vs per-pixel loop",
            "value": ratio,
            "unit": "x",
            "target": ">= 20",
            "met": ratio >= 20,
            "note": f"8x2x128^2 batch: {vec * 1e3:.2f} ms vs {loop * 1e3:.0f} ms",
        },
    ]
    result = {
        "package": "impartial",
        "figures": figures,
        "details": {"matmul_peak_gflops": peak, "quick": config.quick, "train_flops_per_step": train_flops},
    }
    write_json(out / "bench.json", result)
    for f in figures:
        log.info("%s: %.4g %s %s", f["name"], f["value"], f["unit"], f["note"])
    return out / "bench.json"
