"""`pairedinpaint bench`: training and extraction speed, GFLOP/s vs the matmul peak, memory at 100k cells.

Every figure is a ratio or a rate measured in this one run (machines are shared and noisy):
float32 matmul peak of this machine; training cells/s of the paper-size network; extraction
cells/s batched vs one cell per ``predict`` call as the original did; peak resident memory of
the streaming extraction (FeatureWriter, the code path of ``extract``) over ``memory_cells``
cells in a child process. FLOPs are counted from the layer shapes (model.count_flops) as direct
convolution; oneDNN may use cheaper algorithms (Winograd), so a fraction can exceed 1. Training
is counted as 3x the forward pass (an estimate: forward + two backward products).
"""

from __future__ import annotations

import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pairedinpaint.config import FEATURE_LAYERS, BenchConfig, ModelConfig

logger = logging.getLogger(__name__)


def matmul_peak(n: int = 4096, repeats: int = 5) -> float:
    """Best float32 matmul GFLOP/s of TensorFlow and numpy on this machine (the fractions' denominator)."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    (a @ b).numpy()
    na, nb = a.numpy(), b.numpy()
    best = 0.0
    for _ in range(repeats):
        for func in (lambda: (a @ b).numpy(), lambda: na @ nb):
            t = time.perf_counter()
            func()
            best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def _train_rate(config: BenchConfig, model_config: ModelConfig) -> float:
    import keras

    from pairedinpaint.model import build_pair_model

    keras.utils.set_random_seed(config.seed)
    model = build_pair_model(model_config)
    model.compile(optimizer=keras.optimizers.Adam(1e-4, beta_1=0.5, epsilon=1e-8), loss="mean_squared_error")
    rng = np.random.default_rng(config.seed)
    b, s = config.batch_size, model_config.size
    x, y, t = (rng.random((b, s, s, c)).astype(np.float32) for c in (2, 1, 1))
    model.train_on_batch([x, y], t)  # compile and warm up
    steps = max(2, config.train_cells // b)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch([x, y], t)
    return steps * b / (time.perf_counter() - start)


def _extract_rates(config: BenchConfig, model_config: ModelConfig) -> tuple[float, float]:
    from pairedinpaint.predict import feature_extractor, features_of

    extractor = feature_extractor(model_config, None, FEATURE_LAYERS, seed=config.seed)
    crops = np.random.default_rng(1).random((config.extract_cells, 64, 64, 2)).astype(np.float32)
    features_of(extractor, crops[: config.batch_size], batch_size=config.batch_size)
    start = time.perf_counter()
    features_of(extractor, crops, batch_size=config.batch_size)
    batched = len(crops) / (time.perf_counter() - start)
    few = crops[:16]
    extractor.predict(few[:1], verbose=0)
    start = time.perf_counter()
    for i in range(len(few)):  # the original: one predict call per cell
        extractor.predict(few[i : i + 1], verbose=0)
    single = len(few) / (time.perf_counter() - start)
    return batched, single


def memory_run(n_cells: int, width: float, batch_size: int, folder: str) -> dict[str, float]:
    """Stream ``n_cells`` random crops through extraction into ``folder``; returns time and peak RSS."""
    from pairedinpaint.predict import FeatureWriter, feature_extractor, run_batches

    extractor = feature_extractor(ModelConfig(width=width), None, FEATURE_LAYERS)
    dims = [int(o.shape[-1]) for o in extractor.outputs]
    writer = FeatureWriter(Path(folder), FEATURE_LAYERS, dims, n_cells=n_cells, labels=["a", "b"])
    rng = np.random.default_rng(0)

    def batches():  # noqa: ANN202
        for start in range(0, n_cells, batch_size):
            yield rng.random((min(batch_size, n_cells - start), 64, 64, 2), dtype=np.float32)

    start, done = time.perf_counter(), 0
    for outs in run_batches(extractor, batches()):
        k = len(outs[0])
        writer.write(
            [f"cell_{done + i}" for i in range(k)], ["a" if (done + i) % 2 else "b" for i in range(k)], outs
        )
        done += k
    writer.close()
    seconds = time.perf_counter() - start
    return {
        "cells": done,
        "seconds": seconds,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _peak_rss_mb() -> float:
    """Peak resident memory of this process image (VmHWM; ru_maxrss keeps the parent's peak at fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _memory(config: BenchConfig) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        code = (
            "import json,sys; from pairedinpaint.bench import memory_run; "
            f"print(json.dumps(memory_run({config.memory_cells}, {config.memory_width}, 256, sys.argv[1])))"
        )
        out = subprocess.run([sys.executable, "-c", code, folder], capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])


def run_bench(config: BenchConfig) -> Path:
    """Measure everything and write ``bench.json`` (tools/bench.py schema) into ``config.out``."""
    from pairedinpaint.model import count_flops

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    paper = ModelConfig(width=config.width)
    flops = count_flops(paper)
    peak = matmul_peak()
    train_rate = _train_rate(config, paper)
    batched, single = _extract_rates(config, paper)
    memory = _memory(config)
    train_gflops = 3 * flops["pair_model"] * train_rate / 1e9
    extract_gflops = flops["source_encoder"] * batched / 1e9
    figures = [
        {
            "name": "float32 matmul peak (best of TF and numpy, 4096^2)",
            "value": peak,
            "unit": "GFLOP/s",
            "target": "",
            "met": None,
        },
        {
            "name": f"training, paper network (batch {config.batch_size})",
            "value": train_rate,
            "unit": "cells/s",
            "target": "",
            "met": None,
            "note": f"{train_gflops:.1f} GFLOP/s (3x forward, estimate)",
        },
        {
            "name": "training GFLOP/s / matmul peak",
            "value": train_gflops / peak,
            "unit": "fraction",
            "target": "",
            "met": None,
        },
        {
            "name": "extraction batched, paper network",
            "value": batched,
            "unit": "cells/s",
            "target": "",
            "met": None,
            "note": f"5 layers in one pass; {extract_gflops:.1f} GFLOP/s",
        },
        {
            "name": "extraction GFLOP/s / matmul peak",
            "value": extract_gflops / peak,
            "unit": "fraction",
            "target": "",
            "met": None,
        },
        {
            "name": "extraction batched vs one cell per predict (original)",
            "value": batched / single,
            "unit": "x",
            "target": ">= 10x",
            "met": batched / single >= 10,
        },
        {
            "name": f"peak memory extracting {memory['cells']:,} cells",
            "value": memory["peak_rss_mb"] / 1024,
            "unit": "GiB",
            "target": "< 2 GB",
            "met": memory["peak_rss_mb"] / 1024 < 2,
            "note": f"streaming writer incl. legacy text, network width {config.memory_width}; "
            f"{memory['cells'] / memory['seconds']:.0f} cells/s",
        },
    ]
    result = {
        "package": "pairedinpaint",
        "figures": figures,
        "details": {
            "flops_per_cell": flops,
            "single_cell_rate": single,
            "memory": memory,
            "config": config.model_dump(mode="json"),
        },
    }
    tmp = out / "bench.json.tmp"
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(out / "bench.json")
    for fig in figures:
        logger.info("%s: %.4g %s", fig["name"], fig["value"], fig["unit"])
    return out / "bench.json"
