"""Peak memory of whole-image prediction, measured in a fresh child process.

The child builds the network, makes a synthetic stack and predicts its statistics the way
``isl predict`` does (streamed to disk by default, or kept in memory), then reports its peak
resident memory (Linux ``VmHWM``), so the figure holds everything a user's process would hold:
TensorFlow, the stack, the tiles' temporaries and the outputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from isl.config.model import ModelConfig
from isl.errors import IslError

__all__ = ["measure_peak_memory", "synthetic_stack"]


def synthetic_stack(config: ModelConfig, size: int, seed: int) -> np.ndarray:
    """A random stack [size, size, input_depth] in [0, 1] with all masks 1."""
    rng = np.random.default_rng(seed)
    stack = rng.random((size, size, config.input_depth), dtype=np.float32)
    stack[..., 1::2] = 1.0  # presence masks
    return stack


def _rss_kib(field: str) -> int:
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    import resource  # not Linux: the peak is all getrusage knows

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _probe(request: dict[str, Any]) -> dict[str, Any]:
    """Run in the child: predict statistics for a crop, report peak RSS and what it held."""
    from isl.inference import predict_statistics
    from isl.model import build_model

    model = ModelConfig.model_validate(request["model"])
    net = build_model(model, seed=request["seed"])
    stack = synthetic_stack(model, request["size"], request["seed"])
    rss_before = _rss_kib("VmRSS")
    with tempfile.TemporaryDirectory(prefix="isl-memory-") as scratch:
        store = Path(scratch) / "statistics" if request.get("store", "disk") == "disk" else None
        start = time.perf_counter()
        stats = predict_statistics(
            net, stack, tile_size=request["tile_size"], exact=request.get("exact", True),
            show_progress=False, store_dir=store,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        rows, cols, heads = stats["median"].shape
        statistics_bytes = 4 * rows * cols * heads * len(stats)
    return {
        "image_size": [request["size"], request["size"]],
        "output_size": [rows, cols],
        "heads": int(heads),
        "store": "disk" if store is not None else "memory",
        "exact": bool(request.get("exact", True)),
        "seconds": round(seconds, 3),
        "rss_before_predict_bytes": rss_before * 1024,
        "peak_rss_bytes": _rss_kib("VmHWM") * 1024,
        "stack_bytes": int(stack.nbytes),
        "statistics_bytes": int(statistics_bytes),
    }


_CHILD = (
    "import json, sys\n"
    "from isl.memory_probe import _probe\n"
    "print(json.dumps(_probe(json.loads(sys.argv[1]))))\n"
)


def measure_peak_memory(
    model: ModelConfig,
    size: int,
    *,
    tile_size: int | None,
    seed: int = 0,
    store: str = "disk",
    exact: bool = True,
) -> dict[str, Any]:
    """Peak resident memory of predicting a ``size`` x ``size`` synthetic crop, from a child.

    ``store`` is "disk" (what ``isl predict`` does: statistics stream to ``.npy`` planes) or
    "memory" (the Python API's default); ``tile_size`` None is the automatic tile.
    ``statistics_bytes`` is what the six statistics of every head take in float32, held in
    memory only with ``store="memory"``.
    """
    if store not in ("disk", "memory"):
        raise ValueError(f"store must be 'disk' or 'memory', got {store!r}")
    request = {
        "model": model.model_dump(mode="json"),
        "size": size,
        "tile_size": tile_size,
        "seed": seed,
        "store": store,
        "exact": exact,
    }
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(request)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise IslError(f"the memory benchmark process failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["peak_rss_gib"] = result["peak_rss_bytes"] / 2**30
    result["under_4_gib"] = result["peak_rss_bytes"] < 4 * 2**30
    return result
