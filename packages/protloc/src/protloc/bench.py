"""``protloc bench``: training images/s of both models, inference s/megapixel, fraction of matmul peak.

In one process and one run: the machine's float32 matmul peak (2048^2 GEMM), then for each model
a timed series of training steps on random crops and a timed tiled prediction of a synthetic
image. FLOPs are counted with ``torch.utils.flop_counter`` on one step, so achieved GFLOP/s over
the matmul peak is a ratio the noise of a shared machine affects in both terms alike.
"""

from __future__ import annotations

import logging
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from protloc.config import BenchConfig, DataConfig, GanConfig, RegressionConfig, TrainConfig

__all__ = ["matmul_peak_gflops", "run_bench"]

logger = logging.getLogger(__name__)


def matmul_peak_gflops(device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """Best-of-``repeats`` float32 GEMM throughput in GFLOP/s (2 n^3 FLOP per product)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        (a @ b).sum().item()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def _flops(fn: Any) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def _train_speed(config: TrainConfig, device: torch.device, steps: int) -> dict[str, Any]:
    from protloc.data.proteins import ProteinList
    from protloc.theta import random_theta
    from protloc.train import build_state, gan_step, regression_step

    proteins = ProteinList([f"P{i}" for i in range(8)])
    theta = random_theta(8, config.model.theta_dim, seed=0) if isinstance(config.model, GanConfig) else None
    state = build_state(config, proteins, device, theta)
    step = gan_step if state.is_gan else regression_step
    b, s = config.batch_size, config.crop_size
    nuc = torch.rand(b, 1, s, s, device=device)
    pro = torch.rand(b, 1, s, s, device=device)
    ids = torch.randint(0, 8, (b,), device=device)
    flops = _flops(lambda: step(state, nuc, pro, ids))
    step(state, nuc, pro, ids)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step(state, nuc, pro, ids)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - t) / steps
    return {
        "batch": b,
        "crop": s,
        "seconds_per_step": seconds,
        "images_per_second": b / seconds,
        "gflop_per_step": flops / 1e9,
        "gflops": flops / seconds / 1e9,
        "state": state,
    }


def _inference_speed(state: Any, side: int, device: torch.device) -> dict[str, Any]:
    from protloc.predict import predict_image

    nucleus = np.random.default_rng(0).random((side, side), dtype=np.float32)

    def run() -> np.ndarray:
        return predict_image(
            state.generator,
            state.config.model,
            nucleus,
            [0, 1],
            theta=state.theta,
            device=device,
            tile=256,
            margin=32,
        )

    run()
    t = time.perf_counter()
    run()
    seconds = time.perf_counter() - t
    megapixels = side * side * 2 / 1e6  # two proteins predicted
    return {
        "image_side": side,
        "proteins": 2,
        "seconds": seconds,
        "seconds_per_megapixel": seconds / megapixels,
    }


def run_bench(config: BenchConfig) -> Path:
    """Measure, write ``bench.json`` into ``config.out`` and return its path."""
    from cellsight_shared.io import write_json
    from protloc.train import resolve_device

    device = resolve_device(config.device)
    data = DataConfig(root=Path("."))  # not read: the benchmark feeds random tensors
    if config.full:
        models = {"regression": RegressionConfig(), "gan": GanConfig()}
        crop, batch, steps, side = 256, 2, 5, 1024
    else:
        models = {
            "regression": RegressionConfig(depth=3, wf=3, down_factor=2),
            "gan": GanConfig(num_downs=5, ngf=16),
        }
        crop, batch, steps, side = 64, 8, 10, 512
    peak = matmul_peak_gflops(device)
    logger.info("float32 matmul peak %.1f GFLOP/s on %s", peak, device)
    results: dict[str, Any] = {}
    for name, model in models.items():
        tc = TrainConfig(
            data=data, model=model, out=Path("unused"), crop_size=crop, batch_size=batch, tensorboard=False
        )
        speed = _train_speed(tc, device, steps)
        state = speed.pop("state")
        speed["fraction_of_matmul_peak"] = speed["gflops"] / peak
        speed["inference"] = _inference_speed(state, side, device)
        speed["model"] = model.model_dump(mode="json")
        results[name] = speed
        logger.info(
            "%s: %.1f training images/s, %.3f s/MPix inference",
            name,
            speed["images_per_second"],
            speed["inference"]["seconds_per_megapixel"],
        )
    size = "original-size networks, 256 px crops" if config.full else "CI-size networks, 64 px crops"
    figures = []
    for name, r in results.items():
        figures += [
            {
                "name": f"{name}: training throughput",
                "value": r["images_per_second"],
                "unit": "images/s",
                "note": f"{size}, batch {r['batch']}, {r['crop']} px, {device}",
            },
            {
                "name": f"{name}: training GFLOP/s / float32 matmul peak",
                "value": r["fraction_of_matmul_peak"],
                "unit": "fraction",
                "note": f"{r['gflops']:.1f} of {peak:.1f} GFLOP/s (FlopCounterMode, same process)",
            },
            {
                "name": f"{name}: inference",
                "value": r["inference"]["seconds_per_megapixel"],
                "unit": "s/MPix",
                "note": f"tiled {r['inference']['image_side']}^2, 2 proteins, 256 px tiles + 32 margin",
            },
        ]
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    path = write_json(
        out / "bench.json",
        {
            "package": "protloc",
            "figures": figures,
            "details": {
                "matmul_peak_gflops": peak,
                "device": str(device),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "python": platform.python_version(),
                "full": config.full,
                **results,
            },
        },
    )
    logger.info("wrote %s", path)
    return path
