"""``incasem bench``, part 2: the published network (32 fmaps, 3 downsamplings, 204^3 -> 110^3).

In one process, so every ratio compares numbers taken on the same loaded machine:

- the float32 matmul peak (a large ``A @ B``, best of several) at the thread count used;
- the multiply-accumulates of one block, counted from every Conv3d's output shape;
- the bare forward over the planned blocks, in-process blockwise prediction, and N worker
  processes, as output voxels per second and seconds per cubic micrometre at 5 nm;
- the forward's GMAC/s and its fraction of the matmul peak (1 MAC = 2 FLOP);
- torch settings on one block each: channels-last, ``torch.compile``, 1 thread;
- one training iteration (forward, backward, Adam step) for the logging-cost figures.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["conv_macs", "matmul_peak_gflops", "published_figures", "run_published"]

logger = logging.getLogger(__name__)

PUBLISHED_INPUT = (204, 204, 204)
"""The published network's input block (output 110^3)."""
VOXELS_PER_CUBIC_MICROMETRE_5NM = (1000 // 5) ** 3
"""8,000,000 voxels of 5 nm in one cubic micrometre."""


def matmul_peak_gflops(*, n: int = 2048, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of an ``n x n`` matmul at torch's current thread count."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def conv_macs(model_config: Any, input_shape: tuple[int, int, int]) -> int:
    """Multiply-accumulates of one forward pass, counted on the meta device (no compute)."""
    import torch

    from incasem.model import UNet

    model = UNet(model_config).to("meta")
    counts: list[int] = []

    def count(module: Any, _inputs: Any, output: Any) -> None:
        kernel = math.prod(module.kernel_size)
        counts.append(output[0].numel() * module.in_channels // module.groups * kernel)

    for module in model.modules():
        if isinstance(module, torch.nn.Conv3d):
            module.register_forward_hook(count)
    with torch.no_grad():
        model(torch.empty(1, 1, *input_shape, device="meta"))
    return sum(counts)


def _time_blocks(model: Any, windows: list[Any], *, threads: int, channels_last: bool = False) -> float:
    """Seconds per block of forward + softmax over ``windows`` (after one warm-up block)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            prepared = [w.to(memory_format=torch.channels_last_3d) if channels_last else w for w in windows]
            torch.softmax(model(prepared[0]), dim=1)  # warm-up: allocations, oneDNN primitives
            start = time.perf_counter()
            for window in prepared:
                torch.softmax(model(window), dim=1)
            return (time.perf_counter() - start) / len(prepared)
    finally:
        torch.set_num_threads(previous)


def _train_step_seconds(model_config: Any, input_shape: tuple[int, int, int]) -> float:
    """Wall time of one training iteration (forward, masked balanced loss, backward, Adam)."""
    import torch

    from incasem.model import UNet
    from incasem.train import masked_balanced_loss

    torch.manual_seed(0)
    model = UNet(model_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-5, weight_decay=3e-5)
    x = torch.rand(1, 1, *input_shape) * 2 - 1
    out = model_config.output_shape(input_shape)
    labels = torch.randint(0, model_config.num_classes, (1, *out))
    ones = torch.ones(1, *out)
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    loss = masked_balanced_loss(model(x), labels, ones, ones)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def run_published(
    work: Path,
    *,
    model_config: Any,
    input_shape: tuple[int, int, int],
    blocks: int,
    workers: int,
    settings: tuple[str, ...],
    train_step: bool,
) -> dict[str, Any]:
    """Measure the published network on ``blocks`` blocks of a synthetic cell (see module doc)."""
    import os

    import torch

    from cellsight_shared.io import read_zarr
    from incasem.bench import _blockwise, _setup
    from incasem.checkpoint import build_model_from_checkpoint
    from incasem.config.predict import PredictConfig
    from incasem.predict import block_begins, block_window, plan_prediction
    from incasem.raw import normalize_raw

    threads = max(1, os.cpu_count() or 1)
    output_block = model_config.output_shape(input_shape)
    # `blocks` output blocks in a row along x
    roi = (input_shape[0], input_shape[1], input_shape[2] + output_block[2] * (blocks - 1))
    data, checkpoint = _setup(work, roi, model=model_config.model_dump(mode="json"))
    config = PredictConfig(data=data, checkpoint=checkpoint, input_shape=input_shape)
    entry = plan_prediction(config).entries[0]
    raw = normalize_raw(read_zarr(entry.raw_store, entry.raw_dataset))
    windows = []
    for begin in block_begins(entry):
        read, _, _ = block_window(entry, begin)
        box = tuple(
            slice(r - o, r - o + i) for r, o, i in zip(read, entry.raw_offset, input_shape, strict=True)
        )
        windows.append(torch.from_numpy(np.ascontiguousarray(raw[box]))[None, None])
    voxels = math.prod(entry.output_shape)
    block_voxels = voxels / len(windows)
    model, _ = build_model_from_checkpoint(checkpoint)
    model.eval()

    torch.set_num_threads(threads)
    peak = matmul_peak_gflops()
    peak_1 = None
    macs = conv_macs(model_config, input_shape)
    logger.info("published network: bare forward, %d blocks, %d threads", len(windows), threads)
    bare = _time_blocks(model, windows, threads=threads)
    runs: dict[str, dict[str, float]] = {"bare_forward": {"seconds": bare * len(windows)}}
    logger.info("published network: blockwise in-process")
    runs["blockwise_in_process"] = _blockwise(
        data, checkpoint, work / "published_in_process.zarr", 0, input_shape=input_shape, threads=threads
    )
    logger.info("published network: blockwise, %d workers", workers)
    runs[f"blockwise_{workers}_workers"] = _blockwise(
        data, checkpoint, work / "published_workers.zarr", workers, input_shape=input_shape, threads=1
    )
    rate = {name: voxels / run["seconds"] for name, run in runs.items()}
    gmacs = macs / bare / 1e9
    variants: dict[str, dict[str, float]] = {}
    one = windows[:1]
    if "channels_last" in settings:
        logger.info("published network: channels-last")
        cl_model = model.to(memory_format=torch.channels_last_3d)
        seconds = _time_blocks(cl_model, one, threads=threads, channels_last=True)
        variants["channels_last"] = {"seconds_per_block": seconds}
        model = model.to(memory_format=torch.contiguous_format)
    if "threads_1" in settings:
        logger.info("published network: 1 thread")
        torch.set_num_threads(1)
        peak_1 = matmul_peak_gflops()
        torch.set_num_threads(threads)
        seconds = _time_blocks(model, one, threads=1)
        variants["threads_1"] = {"seconds_per_block": seconds, "matmul_peak_gflops": peak_1}
    if "torch_compile" in settings:
        logger.info("published network: torch.compile")
        try:
            start = time.perf_counter()
            compiled = torch.compile(model)
            with torch.inference_mode():
                compiled(one[0])
            compile_seconds = time.perf_counter() - start
            variants["torch_compile"] = {
                "seconds_per_block": _time_blocks(compiled, one, threads=threads),
                "first_call_seconds": compile_seconds,
            }
        except Exception as err:  # inductor needs a C++ compiler; report, do not fail the bench
            variants["torch_compile"] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0]}"}
    for value in variants.values():
        if "seconds_per_block" in value:
            value["gmac_per_second"] = macs / value["seconds_per_block"] / 1e9
            value["speed_vs_default"] = bare / value["seconds_per_block"]
    step = _train_step_seconds(model_config, input_shape) if train_step else None
    return {
        "threads": threads,
        "input_block": list(input_shape),
        "output_block": list(output_block),
        "roi_shape": list(roi),
        "blocks": len(windows),
        "block_voxels": block_voxels,
        "macs_per_block": macs,
        "matmul_peak_gflops": peak,
        "matmul_peak_gflops_1_thread": peak_1,
        "forward_gmac_per_second": gmacs,
        "forward_fraction_of_matmul_peak": 2 * gmacs / peak,
        "runs": runs,
        "voxels_per_second": rate,
        "seconds_per_cubic_micrometre_5nm": {n: VOXELS_PER_CUBIC_MICROMETRE_5NM / r for n, r in rate.items()},
        "overhead_ratio": rate["bare_forward"] / rate["blockwise_in_process"],
        "settings": variants,
        "train_step_seconds": step,
    }


def published_figures(p: dict) -> list[dict]:
    """bench.json figures of the published-network part."""
    shape = f"{p['input_block'][0]}^3 -> {p['output_block'][0]}^3"
    rates, per_um3 = p["voxels_per_second"], p["seconds_per_cubic_micrometre_5nm"]
    workers = next(n for n in rates if n.endswith("_workers"))
    steady = p["runs"]["blockwise_in_process"].get("steady_seconds_per_block")
    bare_block = p["runs"]["bare_forward"]["seconds"] / p["blocks"]
    figures = [
        {
            "name": f"published net: bare forward ({p['threads']} threads)",
            "value": rates["bare_forward"] / 1e3,
            "unit": "kvoxel/s",
            "note": f"{p['blocks']} blocks {shape}; {per_um3['bare_forward']:.1f} s per um^3 at 5 nm",
        },
        {
            "name": f"published net: blockwise in-process ({p['threads']} threads)",
            "value": rates["blockwise_in_process"] / 1e3,
            "unit": "kvoxel/s",
            "note": f"{per_um3['blockwise_in_process']:.1f} s per um^3 at 5 nm (whole run incl. start-up)",
        },
        {
            "name": "published net: pipeline overhead ratio",
            "value": p["overhead_ratio"],
            "unit": "x",
            "target": "<= 1.05",
            "met": p["overhead_ratio"] <= 1.05,
            "note": "bare / in-process blockwise throughput, whole run"
            + (f"; steady block {steady / bare_block:.3f}x the bare block" if steady else ""),
        },
        {
            "name": f"published net: blockwise {workers.split('_')[1]} workers (1 thread each)",
            "value": rates[workers] / 1e3,
            "unit": "kvoxel/s",
            "note": f"{per_um3[workers]:.1f} s per um^3 at 5 nm (incl. worker start-up)",
        },
        {
            "name": "published net: forward GMAC/s",
            "value": p["forward_gmac_per_second"],
            "unit": "GMAC/s",
            "note": f"{p['macs_per_block'] / 1e9:.4g} GMAC per block (counted from Conv3d shapes)",
        },
        {
            "name": "published net: forward / float32 matmul peak",
            "value": p["forward_fraction_of_matmul_peak"],
            "unit": "fraction",
            "target": ">= 0.5",
            "met": p["forward_fraction_of_matmul_peak"] >= 0.5,
            "note": f"2 FLOP per MAC; matmul peak {p['matmul_peak_gflops']:.1f} GFLOP/s "
            f"(2048^2, {p['threads']} threads, same process)",
        },
    ]
    for name, variant in p["settings"].items():
        if "seconds_per_block" in variant:
            figures.append(
                {
                    "name": f"published net: forward with {name.replace('_', ' ')}",
                    "value": variant["speed_vs_default"],
                    "unit": "x default",
                    "note": f"{variant['seconds_per_block']:.2f} s per block, "
                    f"{variant['gmac_per_second']:.1f} GMAC/s"
                    + (
                        f"; first call {variant['first_call_seconds']:.1f} s"
                        if "first_call_seconds" in variant
                        else ""
                    )
                    + (
                        f"; 1-thread matmul peak {variant['matmul_peak_gflops']:.1f} GFLOP/s"
                        if "matmul_peak_gflops" in variant
                        else ""
                    ),
                }
            )
        else:
            figures.append(
                {
                    "name": f"published net: forward with {name.replace('_', ' ')}",
                    "value": "failed",
                    "unit": "",
                    "note": variant.get("error", ""),
                }
            )
    if p.get("train_step_seconds"):
        figures.append(
            {
                "name": "published net: training iteration",
                "value": p["train_step_seconds"],
                "unit": "s",
                "note": "forward, loss, backward, Adam step; one sample",
            }
        )
    return figures
