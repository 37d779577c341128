"""``incasem bench``, part 1: blockwise prediction against the bare network, and workers (small net).

On one synthetic volume and one small network (sizes recorded in the JSON) it times:

1. the bare forward pass over exactly the blocks a prediction computes (windows already in
   memory, no I/O, one thread): the ceiling;
2. blockwise prediction in this process (``workers = 0``, one thread): the same blocks plus
   zarr reads and writes, softmax, argmax, markers, daisy scheduling, sacred records;
3. blockwise prediction with 1 and with 2 daisy worker processes (one thread each), which adds
   starting the processes and loading torch and the network in each.

Throughput is output voxels per second of wall time. The pipeline overhead ratio is the bare
throughput over the in-process blockwise throughput (1.0 = no overhead).
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BENCH_MODEL", "run_bench"]

logger = logging.getLogger(__name__)

BENCH_MODEL = {"num_fmaps": 4, "downsample_factors": [[2, 2, 2]]}
"""A one-level U-Net with 4 feature maps: the code path of the real one at a CPU-friendly cost."""
BENCH_INPUT = (60, 60, 60)
"""Raw block; the network turns it into a 42^3 output block (context 9 per side)."""
BENCH_ROI = (102, 186, 354)
"""Region predicted: 84 x 168 x 336 output voxels = 2 x 4 x 8 = 64 blocks, enough that the
blocks, not the start-up of the worker processes (about 3 s of CPU each), dominate."""


def _setup(work: Path, roi_shape: tuple[int, int, int], *, model: dict | None = None) -> tuple[Path, Path]:
    import torch

    from cellsight_shared.synthetic import em_volume, write_em_volume_zarr
    from incasem.checkpoint import save_checkpoint
    from incasem.config.model import ModelConfig
    from incasem.model import UNet

    write_em_volume_zarr(work / "cell.zarr", em_volume(shape=roi_shape, seed=0))
    torch.manual_seed(0)
    checkpoint = save_checkpoint(
        work / "bench.pt",
        UNet(ModelConfig.model_validate(model or BENCH_MODEL)),
        metadata={"run_id": 1, "voxel_size": [5, 5, 5]},
    )
    data = work / "data.json"
    entry = {
        "file": "cell.zarr",
        "offset": [0, 0, 0],
        "shape": list(roi_shape),
        "voxel_size": [5, 5, 5],
        "raw": "volumes/raw",
    }
    data.write_text(json.dumps({"bench": entry}), encoding="utf-8")
    return data, checkpoint


def _bare_forward(data: Path, checkpoint: Path) -> dict[str, Any]:
    """Time the network alone on the blocks a prediction computes (1 thread, no I/O)."""
    import torch

    from cellsight_shared.io import read_zarr
    from incasem.checkpoint import build_model_from_checkpoint
    from incasem.config.predict import PredictConfig
    from incasem.predict import block_begins, block_window, plan_prediction
    from incasem.raw import normalize_raw

    entry = plan_prediction(PredictConfig(data=data, checkpoint=checkpoint, input_shape=BENCH_INPUT)).entries[
        0
    ]
    raw = normalize_raw(read_zarr(entry.raw_store, entry.raw_dataset))
    windows = []
    for begin in block_begins(entry):
        read, _, _ = block_window(entry, begin)
        box = tuple(slice(r - o, r - o + i) for r, o, i in zip(read, entry.raw_offset, BENCH_INPUT))
        windows.append(torch.from_numpy(np.ascontiguousarray(raw[box]))[None, None])
    model, _ = build_model_from_checkpoint(checkpoint)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            model(windows[0])  # warm-up: first-call allocations
            start = time.perf_counter()
            for window in windows:
                torch.softmax(model(window), dim=1)
            seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return {"blocks": len(windows), "seconds": seconds}


def _blockwise(
    data: Path,
    checkpoint: Path,
    out: Path,
    workers: int,
    *,
    input_shape: tuple[int, int, int] = BENCH_INPUT,
    threads: int = 1,
) -> dict[str, float]:
    """Wall time of one prediction, and when its first and last blocks were finished."""
    import threading

    from incasem.config.predict import PredictConfig
    from incasem.predict import predict
    from incasem.predict.outputs import group_path

    config = PredictConfig(
        data=data,
        checkpoint=checkpoint,
        input_shape=input_shape,
        out=out,
        workers=workers,
        threads_per_worker=threads,
    )
    markers = out / group_path(1, 1) / "run" / "blocks" / "bench"
    finished: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        # block completion times, from the markers the workers write
        seen = 0
        while not stop.is_set():
            count = len(os.listdir(markers)) if markers.is_dir() else 0
            finished.extend([time.perf_counter()] * (count - seen))
            seen = count
            stop.wait(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    start = time.perf_counter()
    watcher.start()
    try:
        predict(config)
    finally:
        end = time.perf_counter()
        stop.set()
        watcher.join()
    result = {"seconds": end - start}
    if len(finished) >= 2:
        result["first_block_seconds"] = finished[0] - start
        result["steady_seconds_per_block"] = (finished[-1] - finished[0]) / (len(finished) - 1)
    return result


def run_bench(
    *,
    out: Path,
    roi_shape: tuple[int, int, int] = BENCH_ROI,
    published: bool = True,
    published_model: dict | None = None,
    published_input: tuple[int, int, int] = (204, 204, 204),
    published_blocks: int = 2,
    published_settings: tuple[str, ...] = ("channels_last", "torch_compile", "threads_1"),
    train_step: bool = True,
) -> Path:
    """Run the benchmark and write ``out/bench.json``.

    Part 1 (1-2 minutes on 2 CPU cores): the small network on ``roi_shape`` (voxels, at least 60
    per axis). Part 2 (``published``; several minutes on 2 cores): the published network (or
    ``published_model`` at ``published_input``, which tests shrink) on ``published_blocks``
    blocks, see :mod:`incasem.bench_published`. Part 3: the cost of training-loop logging at
    the defaults, see :mod:`incasem.bench_logging`.
    """
    from cellsight_shared.io import write_json
    from incasem import __version__
    from incasem.config.model import ModelConfig
    from incasem.model import UNet, count_parameters

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = ModelConfig.model_validate(BENCH_MODEL)
    output_block = model.output_shape(BENCH_INPUT)
    context = model.context(BENCH_INPUT)
    predicted = tuple(s - 2 * c for s, c in zip(roi_shape, context, strict=True))
    voxels = math.prod(predicted)
    runs: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="incasem-bench-", dir=out) as tmp:
        work = Path(tmp)
        data, checkpoint = _setup(work, roi_shape)
        logger.info("bare forward pass")
        bare = _bare_forward(data, checkpoint)
        runs["bare_forward"] = {"seconds": bare["seconds"]}
        for workers, name in (
            (0, "blockwise_in_process"),
            (1, "blockwise_1_worker"),
            (2, "blockwise_2_workers"),
        ):
            logger.info("blockwise prediction, %s", name)
            runs[name] = _blockwise(data, checkpoint, work / f"{name}.zarr", workers)
        heavy = None
        if published:
            from incasem.bench_published import run_published

            (work / "published").mkdir()
            heavy = run_published(
                work / "published",
                model_config=ModelConfig.model_validate(published_model or {}),
                input_shape=published_input,
                blocks=published_blocks,
                workers=2,
                settings=published_settings,
                train_step=train_step,
            )
    from incasem.bench_logging import logging_figures, run_logging_cost
    from incasem.bench_published import published_figures
    from incasem.config.train import TrainConfig

    defaults = TrainConfig(data="unused.json")
    logging_cost = run_logging_cost(
        output_block=(110, 110, 110),
        log_every=defaults.log_every,
        metrics_every=defaults.metrics_every,
        iteration_seconds=heavy["train_step_seconds"] if heavy else None,
    )
    rate = {name: voxels / run["seconds"] for name, run in runs.items()}
    block_voxels = voxels / bare["blocks"]
    steady = {
        name: block_voxels / run["steady_seconds_per_block"]
        for name, run in runs.items()
        if run.get("steady_seconds_per_block")
    }
    overhead = rate["bare_forward"] / rate["blockwise_in_process"]
    speedup = rate["blockwise_2_workers"] / rate["blockwise_1_worker"]
    steady_speedup = steady.get("blockwise_2_workers", math.nan) / steady.get("blockwise_1_worker", math.nan)
    load = os.getloadavg()[0]
    result = {
        "package": "incasem",
        "version": __version__,
        "figures": [
            {
                "name": "bare forward (1 thread)",
                "value": rate["bare_forward"] / 1e3,
                "unit": "kvoxel/s",
                "note": f"{bare['blocks']} blocks {list(BENCH_INPUT)} -> {list(output_block)}",
            },
            {
                "name": "blockwise in-process (1 thread)",
                "value": rate["blockwise_in_process"] / 1e3,
                "unit": "kvoxel/s",
                "note": "daisy serial mode, zarr I/O, softmax/argmax, markers, sacred",
            },
            {
                "name": "pipeline overhead ratio",
                "value": overhead,
                "unit": "x",
                "note": "bare / in-process blockwise throughput (1.0 = none)",
            },
            {
                "name": "blockwise 1 worker process",
                "value": rate["blockwise_1_worker"] / 1e3,
                "unit": "kvoxel/s",
                "note": "wall time incl. starting the worker (torch import, model load)",
            },
            {
                "name": "blockwise 2 worker processes",
                "value": rate["blockwise_2_workers"] / 1e3,
                "unit": "kvoxel/s",
                "note": "1 thread per worker",
            },
            {
                "name": "speedup 2 vs 1 workers",
                "value": speedup,
                "unit": "x",
                "note": f"whole run; after start-up {steady_speedup:.2f}x; {os.cpu_count()} CPU "
                f"cores, load average {load:.1f}",
            },
        ],
        "details": {
            "model": model.model_dump(mode="json"),
            "parameters": count_parameters(UNet(model))[0],
            "input_block": list(BENCH_INPUT),
            "output_block": list(output_block),
            "roi_shape": list(roi_shape),
            "predicted_shape": list(predicted),
            "predicted_voxels": voxels,
            "blocks": bare["blocks"],
            "runs": runs,
            "voxels_per_second": rate,
            "steady_voxels_per_second": steady,
            "machine": {
                "platform": platform.platform(),
                "python": platform.python_version(),
                "cpu_count": os.cpu_count(),
                "load_average_1min": load,
            },
        },
    }
    if heavy is not None:
        result["figures"] += published_figures(heavy)
        result["details"]["published"] = heavy
    result["figures"] += logging_figures(logging_cost)
    result["details"]["logging"] = logging_cost
    path = out / "bench.json"
    write_json(path, result, overwrite=True)
    return path
