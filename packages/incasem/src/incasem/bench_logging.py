"""``incasem bench``, part 3: what sacred/TensorBoard/CSV logging costs a training iteration.

Inside a real sacred run with the default ``FileStorageObserver`` it times the training loop's
own logging call for a 110^3 output block: loss only, and loss plus softmax, F1 and class
fractions. sacred's heartbeat (every 10 s, in a background thread that holds the GIL) rewrites
the whole ``metrics.json``; its cost is timed with the file a 200,000-iteration run would have
written at the new defaults and at the old ones (every metric every iteration). The cost per
iteration is ``loss / log_every + metrics / metrics_every`` plus ``heartbeat / 10 s`` of the
wall time.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

__all__ = ["HEARTBEAT_SECONDS", "logging_figures", "run_logging_cost"]

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
"""sacred's default heartbeat interval."""
RUN_ITERATIONS = 200_000
"""Length of the run whose metrics file the heartbeat is timed with (the original's default)."""


def _prefill(directory: Path, points: dict[str, int]) -> int:
    """Write a metrics.json with ``points[name]`` entries per metric; return its size in bytes."""
    stamp = "2026-01-01T00:00:00.000000"
    metrics = {
        name: {"values": [0.5] * n, "steps": list(range(n)), "timestamps": [stamp] * n}
        for name, n in points.items()
    }
    path = directory / "metrics.json"
    path.write_text(json.dumps(metrics), encoding="utf-8")
    return path.stat().st_size


def _timed(function: Any, repeats: int) -> float:
    function()
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def run_logging_cost(
    *, output_block: tuple[int, int, int], log_every: int, metrics_every: int, iteration_seconds: float | None
) -> dict[str, Any]:
    """Time the logging paths (see module doc); fractions of ``iteration_seconds`` when given."""
    import torch
    from torch.utils.tensorboard import SummaryWriter

    from incasem.config.train import TrainConfig
    from incasem.experiment import run_experiment
    from incasem.train import _log_train

    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.normal(size=(1, 2, *output_block)).astype(np.float32))
    keys = SimpleNamespace(labels="labels", mask="mask", metric_mask="metric_mask")
    labels = (rng.random(output_block) < 0.2).astype(np.int64)
    batch = {
        "labels": SimpleNamespace(data=labels),
        "mask": SimpleNamespace(data=np.ones(output_block, dtype=np.uint8)),
        "metric_mask": SimpleNamespace(data=np.ones(output_block, dtype=np.uint8)),
    }
    header = ["iteration", "loss", "f1_class_1", "pct_class_0", "pct_class_1"]
    result: dict[str, Any] = {}

    with tempfile.TemporaryDirectory(prefix="incasem-bench-log-") as tmp:
        work = Path(tmp)

        def main(run: Any) -> None:
            writer = SummaryWriter(str(work / "tb"))
            csv = work / "log.csv"
            step = iter(range(1, 10**9))

            def loss_only() -> None:
                _log_train(run, writer, csv, header, next(step), 0.5, None, batch, keys, 2)

            def with_metrics() -> None:
                _log_train(run, writer, csv, header, next(step), 0.5, logits, batch, keys, 2)

            result["loss_log_seconds"] = _timed(loss_only, 200)
            result["metrics_log_seconds"] = _timed(with_metrics, 5)
            sacred_run = run._run
            directory = Path(sacred_run.observers[0].dir)
            for name, (loss_points, metric_points) in {
                "defaults": (RUN_ITERATIONS // log_every, RUN_ITERATIONS // metrics_every),
                "every_iteration": (RUN_ITERATIONS, RUN_ITERATIONS),
            }.items():
                size = _prefill(directory, {"loss_train": loss_points, "f1_class_1_train": metric_points})
                run.log_scalar("loss_train", 0.5, loss_points + 1)
                start = time.perf_counter()
                sacred_run._emit_heartbeat()
                result[f"heartbeat_seconds_{name}"] = time.perf_counter() - start
                result[f"metrics_file_bytes_{name}"] = size
            writer.close()

        run_experiment("bench-logging", TrainConfig(data="unused.json"), main, run_dir=work / "run")

    per_iteration_new = result["loss_log_seconds"] / log_every + result["metrics_log_seconds"] / metrics_every
    per_iteration_old = result["metrics_log_seconds"]
    result.update(
        {
            "log_every": log_every,
            "metrics_every": metrics_every,
            "output_block": list(output_block),
            "per_iteration_seconds_defaults": per_iteration_new,
            "per_iteration_seconds_every_iteration": per_iteration_old,
            "heartbeat_wall_fraction_defaults": result["heartbeat_seconds_defaults"] / HEARTBEAT_SECONDS,
            "heartbeat_wall_fraction_every_iteration": result["heartbeat_seconds_every_iteration"]
            / HEARTBEAT_SECONDS,
            "iteration_seconds": iteration_seconds,
        }
    )
    heartbeat = result["heartbeat_wall_fraction_defaults"]
    # the shortest iteration for which the defaults still cost under 2 %
    result["min_iteration_seconds_for_2_percent"] = (
        per_iteration_new / (0.02 - heartbeat) if heartbeat < 0.02 else None
    )
    if iteration_seconds:
        result["fraction_defaults"] = per_iteration_new / iteration_seconds + heartbeat
        result["fraction_every_iteration"] = (
            per_iteration_old / iteration_seconds + result["heartbeat_wall_fraction_every_iteration"]
        )
    return result


def logging_figures(c: dict) -> list[dict]:
    """bench.json figures of the logging-cost part."""
    figures = [
        {
            "name": "sacred/TB/CSV logging per iteration at the defaults",
            "value": c["per_iteration_seconds_defaults"] * 1e3,
            "unit": "ms",
            "note": f"loss every {c['log_every']} ({c['loss_log_seconds'] * 1e3:.2f} ms), softmax+F1 every "
            f"{c['metrics_every']} ({c['metrics_log_seconds'] * 1e3:.0f} ms), 110^3 block; heartbeat at "
            f"200k iterations {c['heartbeat_seconds_defaults'] * 1e3:.1f} ms per 10 s",
        },
        {
            "name": "logging per iteration if every iteration (old default)",
            "value": c["per_iteration_seconds_every_iteration"] * 1e3,
            "unit": "ms",
            "note": f"heartbeat at 200k iterations {c['heartbeat_seconds_every_iteration']:.2f} s per 10 s "
            f"({c['metrics_file_bytes_every_iteration'] / 1e6:.0f} MB metrics.json)",
        },
    ]
    if c.get("fraction_defaults") is not None:
        minimum = c["min_iteration_seconds_for_2_percent"] or float("nan")
        figures.append(
            {
                "name": "logging cost / training iteration (defaults)",
                "value": c["fraction_defaults"],
                "unit": "fraction",
                "target": "< 0.02",
                "met": c["fraction_defaults"] < 0.02,
                "note": f"iteration {c['iteration_seconds']:.3g} s (published net, this CPU); every "
                f"iteration instead: {c['fraction_every_iteration']:.4f}; the defaults stay under 2 % "
                f"for iterations >= {minimum * 1e3:.2f} ms",
            }
        )
    return figures
