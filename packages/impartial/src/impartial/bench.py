"""`impartial bench`: speed and memory figures, each a ratio measured in one run.

Training patches/s, inference s/MPix (5 checkpoints x 10 MC passes), GFLOP/s against this
machine's float32 matmul peak, peak memory predicting a 4096^2 image, and vectorised blind-spot
masking against the per-pixel loop.

The matmul peak is the best of several timed 2048^2 and 4096^2 products in this process (a
1024^2 product under-estimates it, so counted convolution FLOPs read as more than the peak).
The full mode uses the paper's network (base 64) throughout, with few repetitions so that it
runs in minutes on a laptop CPU; ``parts`` runs only some figures (the 4096^2 memory run
alone takes about as long as the rest together on 2 cores).
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


def _matmul_peak(sizes: tuple[int, ...] = (2048, 4096), repeats: int = 3) -> tuple[float, int]:
    """Best float32 ``torch.mm`` GFLOP/s over ``repeats`` timed products per size, and its size."""
    import torch

    best, best_n = 0.0, sizes[0]
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)  # warm up (threads, allocation)
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(a, b)
            rate = 2 * n**3 / (time.perf_counter() - t0) / 1e9
            if rate > best:
                best, best_n = rate, n
    return best, best_n


def _flops(fn) -> float:  # noqa: ANN001
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def _speed(config, peak_note: str) -> tuple[list[dict], dict]:  # noqa: ANN001
    """Training patches/s and inference s/MPix of the full network, with their FLOP counts."""
    import torch

    from impartial.config import LossConfig, ModelConfig, TaskConfig
    from impartial.model import build_model
    from impartial.predict import Ensemble, predict_image
    from impartial.train.blindspot import apply_blind_spots, draw_blind_spots
    from impartial.train.losses import impartial_loss

    mc = ModelConfig(in_channels=2, tasks=[TaskConfig(rec_channels=[0, 1])])  # base 64, depth 4
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
    steps = config.repeats or 2
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    dt = min(times)
    train_pps = batch / dt
    train_gflops = train_flops / dt / 1e9
    log.info("training step (batch %d): best %.2f s of %s", batch, dt, [round(t, 2) for t in times])

    size = 128 if config.quick else 256
    ens = Ensemble(mc, [build_model(mc).state_dict() for _ in range(5)])
    img = torch.rand(2, size, size).numpy()
    one = _flops(lambda: model.eval()(torch.from_numpy(img)[None].expand(10, -1, -1, -1)))
    t0 = time.perf_counter()
    predict_image(ens, img, mc_passes=10, tile=512, batch=10)
    infer = time.perf_counter() - t0
    s_per_mpix = infer / (size * size / 1e6)
    infer_gflops = 5 * one / infer / 1e9
    figures = [
        {
            "name": "training patches/s (128^2, full U-Net, CPU)",
            "value": train_pps,
            "unit": "patches/s",
            "target": "",
            "met": None,
            "note": f"U-Net base 64 depth 4, batch {batch}, blind spots + loss + Adam step, best of {steps}",
        },
        {
            "name": "training GFLOP/s / matmul peak",
            "value": train_gflops,
            "unit": "fraction",
            "target": "",
            "met": None,
            "note": f"{train_gflops:.1f} GFLOP/s (counted, forward + backward) of {peak_note}",
        },
        {
            "name": "inference s/MPix, 5 checkpoints x 10 MC passes",
            "value": s_per_mpix,
            "unit": "s/MPix",
            "target": "",
            "met": None,
            "note": f"{size}x{size} image, U-Net base 64, 50 forward passes in batches of 10",
        },
        {
            "name": "inference GFLOP/s / matmul peak",
            "value": infer_gflops,
            "unit": "fraction",
            "target": "",
            "met": None,
            "note": f"{infer_gflops:.1f} GFLOP/s (counted) of {peak_note}",
        },
    ]
    return figures, {"train_flops_per_step": train_flops, "train_step_s": times, "infer_s": infer}


def _masking() -> dict:
    import torch

    from impartial.train.blindspot import apply_blind_spots, apply_blind_spots_loop, draw_blind_spots

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
    return {
        "name": "blind-spot masking: vectorised vs per-pixel loop",
        "value": ratio,
        "unit": "x",
        "target": ">= 20",
        "met": ratio >= 20,
        "note": f"8x2x128^2 batch: {vec * 1e3:.2f} ms vs {loop * 1e3:.0f} ms",
    }


def _memory(config) -> dict:  # noqa: ANN001
    mem_base = 16 if config.quick else 64
    t0 = time.perf_counter()
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
    gib = mem["peak_rss_mib"] / 1024
    return {
        "name": "peak memory predicting 4096x4096",
        "value": gib,
        "unit": "GiB",
        "target": "< 2",
        "met": gib < 2,
        "note": (
            f"peak RSS (VmHWM) of a fresh process, U-Net base {mem_base}, 512^2 tiles + 32 px margins, "
            f"1 checkpoint x 1 pass, {time.perf_counter() - t0:.0f} s"
        ),
    }


def run_bench(config) -> Path:  # noqa: ANN001
    """Measure and write ``bench.json`` (tools/bench.py schema) into ``config.out``."""
    import torch

    from cellsight_shared.io import write_json

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[dict] = []
    details: dict = {"quick": config.quick, "parts": list(config.parts), "threads": torch.get_num_threads()}
    if "speed" in config.parts:
        before, n_before = _matmul_peak()
        speed, extra = _speed(config, "the matmul peak")
        after, n_after = _matmul_peak()  # the same process, before and after: the best counts
        peak, n = (before, n_before) if before >= after else (after, n_after)
        note = (
            f"{peak:.1f} GFLOP/s (best fp32 torch.mm at {n}^2, before and after: {before:.1f}, {after:.1f})"
        )
        for f in speed:
            if f["unit"] == "fraction":
                f["note"] = f["note"].replace("the matmul peak", note)
                f["value"] = f["value"] / peak
        figures += speed
        details.update(extra, matmul_peak_gflops=peak, matmul_peak_size=n)
    if "masking" in config.parts:
        figures.append(_masking())
    if "memory" in config.parts:
        figures.append(_memory(config))
    result = {"package": "impartial", "figures": figures, "details": details}
    write_json(out / "bench.json", result)
    for f in figures:
        log.info("%s: %.4g %s %s", f["name"], f["value"], f["unit"], f["note"])
    return out / "bench.json"
