"""Benchmark of whole-image inference: tiled vs the original's patchwise path, and peak memory.

Speed: both paths predict the same synthetic stack with the same network; their outputs must agree
(they are the same computation, reordered) and their rates are reported in output megapixels per
second, after a warm-up run so that tracing is not timed. Memory: a child process predicts a crop
(1500x1500 in the full run) with the paper-size network and reports its peak resident memory, so
the figure holds everything a user's process would hold (TensorFlow, the stack, the outputs).
"""

from __future__ import annotations

import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from isl.config.base import IslConfigModel, load_config
from isl.config.model import ModelConfig
from isl.errors import IslError
from isl.memory_probe import measure_peak_memory, synthetic_stack

__all__ = ["BenchConfig", "run_bench", "run_benchmark"]

logger = logging.getLogger(__name__)

#: Largest allowed difference between tiled and patchwise statistics (float32 rounding).
IDENTICAL_ATOL = 1e-4
_CONTINUOUS = ("mean", "std", "probability_nonzero", "entropy")
#: Side of the square float32 matmul that measures the machine's peak, in the same process.
MATMUL_SIZE = 4096
_QUICK_SPEED_SIZES = (250 + 8 * 7,)  # 8x8 blocks = 64 patches with the paper network
#: The original's 16x16-patch run (370 px) and a realistic whole well (1500 px).
_FULL_SPEED_SIZES = (250 + 8 * 15, 1500)
_QUICK_MEMORY_SIZE = 250 + 16 * 8
_FULL_MEMORY_SIZE = 1500


class BenchConfig(IslConfigModel):
    """Settings of ``isl bench``; the defaults are the quick run (2-3 minutes on 2 cores)."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    """The network to time (default: the paper's, 9.27 M parameters)."""
    speed_image_sizes: tuple[int, ...] | None = None
    """Sides of the stacks every path predicts (default 306 quick; 370 and 1500 full)."""
    matmul_size: int = Field(default=MATMUL_SIZE, ge=64)
    """Side of the float32 matmul whose rate is the machine's peak."""
    patchwise_max_batches: int = Field(default=16, ge=1)
    """Batches of patches timed at most per size; beyond, the patchwise rate is measured on a
    top-left crop and extrapolated (1500 px would take hours patch by patch)."""
    memory_image_size: int | None = Field(default=None, ge=250)
    """Side of the crop whose prediction's peak memory is measured (default 378 quick, 1500 full)."""
    measure_memory: bool = True
    """Run the peak-memory child process."""
    memory_scaling_sizes: tuple[int, ...] | None = None
    """Crop sides at which a narrow network's peak memory is measured, to show that streamed
    statistics keep it flat in the image size (default: none quick, 1024 and 4096 full)."""
    tile_size: int | None = Field(default=None, ge=250)
    """Tile side of the fully convolutional paths (250 + 16k; default: the inference default,
    chosen per image size and path)."""
    batch_size: int = Field(default=16, ge=1)
    """Patches per forward pass of the patchwise path (the original used 256)."""
    seed: int = 0
    """Seeds the network weights and the synthetic stack."""
    measure_training: bool = True
    """Time training steps (the demo network; with ``--full`` also the paper network)."""
    train_steps: int = Field(default=2, ge=1)
    """Timed repeats of each training part (after one warm-up step)."""
    training_models: tuple[str, ...] | None = None
    """Which training configurations to time, of "demo" and "paper" (default: demo quick,
    both full)."""


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def matmul_peak_gmacs(size: int = MATMUL_SIZE, repeats: int = 5) -> float:
    """Best rate of a float32 ``size``^2 matmul in this process (same threads as the network)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = tf.constant(rng.random((size, size), dtype=np.float32))
    b = tf.constant(rng.random((size, size), dtype=np.float32))
    product = tf.function(lambda a, b: tf.reduce_sum(tf.linalg.matmul(a, b)), autograph=False)
    product(a, b).numpy()
    best = min(_timed(lambda: product(a, b).numpy())[1] for _ in range(repeats))
    return size**3 / best / 1e9


def _agreement(tiled: dict[str, np.ndarray], naive: dict[str, np.ndarray]) -> dict[str, float]:
    """How far two statistics dicts of the same pixels differ.

    The continuous statistics must agree within float32 rounding; mode and median are bin
    indices that can flip where two bins are equal to rounding, so their flips are counted.
    """
    continuous = max(float(np.max(np.abs(tiled[k] - naive[k]))) for k in _CONTINUOUS)
    # A flip moves a bin (>= 1/255); the values themselves may differ by rounding of i / 255.
    flips = max(float(np.mean(np.abs(tiled[k] - naive[k]) > 0.5 / 255)) for k in ("mode", "median"))
    return {"max_abs_difference": continuous, "discrete_flip_fraction": flips}


def _speed(config: BenchConfig, size: int, peak: float) -> dict[str, Any]:
    """Exact, one-pass and patchwise inference of one ``size`` px stack, in one process.

    All three compute the statistics of the target heads, as ``isl predict`` does (the patchwise
    path computes every head in its forward pass and keeps the targets, as the original did).
    Tracing is not timed: each path first runs on a crop with the same tile shape. When the
    stack has more than ``patchwise_max_batches`` batches of patches, the patchwise path is
    timed on that many batches of the top-left blocks (its cost per block does not depend on the
    image size) and its seconds for the whole stack are extrapolated.
    """
    from isl.inference import auto_tile_size, naive_patchwise, predict_statistics, tiled_macs
    from isl.model import build_model, count_macs

    model = config.model
    net = build_model(model, seed=config.seed)
    stack = synthetic_stack(model, size, config.seed)
    heads = len(model.head_names) - model.num_input_heads or len(model.head_names)
    blocks_side = (size - 250) // 8 + 1
    blocks = blocks_side**2
    megapixels = blocks * 64 / 1e6
    naive_macs = count_macs(model) * blocks
    options = {"show_progress": False}
    paths: dict[str, dict[str, Any]] = {}
    outputs = {}
    for name, exact in (("exact", True), ("one_pass", False)):
        tile = config.tile_size or auto_tile_size(model, size, size, exact=exact)
        # Small stacks warm up whole (their edge tiles have other shapes); large ones on one
        # tile, since all their tiles share one shape.
        warm = size if size <= 2 * tile else tile + 8 if exact else tile
        predict_statistics(net, stack[:warm, :warm], tile_size=tile, exact=exact, **options)
        stats, seconds = _timed(predict_statistics, net, stack, tile_size=tile, exact=exact, **options)
        outputs[name] = stats
        macs = tiled_macs(model, size, size, tile_size=tile, exact=exact, heads=heads)
        paths[name] = {
            "tile_size": tile,
            "seconds": round(seconds, 3),
            "seconds_per_megapixel": seconds / megapixels,
            "gmacs": macs / 1e9,
            "mac_ratio": naive_macs / macs,
            "gmacs_per_second": macs / seconds / 1e9,
            "fraction_of_matmul_peak": macs / seconds / 1e9 / peak,
        }
    # Patchwise: whole stack, or a top-left crop of rows x all-column blocks when it is large.
    batch = config.batch_size
    limit = config.patchwise_max_batches * batch
    if blocks <= limit:
        crop_rows, crop_cols = blocks_side, blocks_side
    else:
        crop_cols = min(blocks_side, limit)
        crop_rows = max(1, limit // crop_cols)
    crop = stack[: 250 + 8 * (crop_rows - 1), : 250 + 8 * (crop_cols - 1)]
    naive_patchwise(net, stack[:250, :250], batch_size=batch, statistics=True, **options)
    naive, naive_s = _timed(naive_patchwise, net, crop, batch_size=batch, statistics=True, **options)
    sampled = crop_rows * crop_cols
    naive_total = naive_s * blocks / sampled
    rows, cols = 8 * crop_rows, 8 * crop_cols
    agreement = _agreement({k: v[:rows, :cols] for k, v in outputs["exact"].items()}, naive)
    if agreement["max_abs_difference"] > IDENTICAL_ATOL or agreement["discrete_flip_fraction"] > 1e-3:
        raise IslError(
            f"exact tiled and patchwise statistics differ ({agreement}); the exact path no longer "
            "reproduces the original stitching"
        )
    for run in paths.values():
        run["speedup"] = naive_total / run["seconds"]
        run["speedup_fraction_of_mac_ratio"] = run["speedup"] / run["mac_ratio"]
    return {
        "image_size": [size, size],
        "output_size": [8 * blocks_side, 8 * blocks_side],
        "patches": blocks,
        "heads": heads,
        "batch_size": batch,
        "exact": paths["exact"],
        "one_pass": paths["one_pass"],
        "patchwise": {
            "timed_patches": sampled,
            "timed_seconds": round(naive_s, 3),
            "seconds": round(naive_total, 3),
            "extrapolated": sampled < blocks,
            "seconds_per_megapixel": naive_total / megapixels,
            "gmacs": naive_macs / 1e9,
            "gmacs_per_second": naive_macs / naive_total / 1e9,
            "fraction_of_matmul_peak": naive_macs / naive_total / 1e9 / peak,
        },
        **agreement,
    }


#: The narrow network of the memory-scaling rows: the statistics, not the tiles, grow with area.
_SCALING_MODEL = ModelConfig(
    num_z_values=3,
    target_channels=("DAPI_CONFOCAL", "CELLMASK_CONFOCAL", "MAP2_CONFOCAL"),
    base_depth=8,
    projection_depth=2,
)


def _memory(config: BenchConfig, size: int) -> dict[str, Any]:
    return measure_peak_memory(config.model, size, tile_size=config.tile_size, seed=config.seed)


def _memory_scaling(config: BenchConfig, sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """Peak memory of a narrow network at each crop side in ``sizes`` (one pass, disk store)."""
    return [
        {"network": "narrow (base depth 8, 3 z-planes, 3 targets)", **measure_peak_memory(
            _SCALING_MODEL, size, tile_size=config.tile_size, seed=config.seed, exact=False)}
        for size in sizes
    ]  # fmt: skip


def run_benchmark(out_dir: Path, *, quick: bool = True, config: BenchConfig | None = None) -> dict[str, Any]:
    """Time tiled vs patchwise inference and measure peak memory; write ``out_dir/bench.json``.

    ``quick`` uses a 306-px stack for speed and a 378-px crop for memory (the full run: 370 and
    1500 px for speed, 1500 px for memory); sizes set in ``config`` win. Raises if the exact
    and patchwise outputs differ.
    """
    from cellsight_shared.io import write_json
    from isl import __version__

    config = config or BenchConfig()
    speed_sizes = config.speed_image_sizes or (_QUICK_SPEED_SIZES if quick else _FULL_SPEED_SIZES)
    memory_size = config.memory_image_size or (_QUICK_MEMORY_SIZE if quick else _FULL_MEMORY_SIZE)
    peak_before = matmul_peak_gmacs(config.matmul_size)
    speed = []
    for size in speed_sizes:
        logger.info("timing exact, one-pass and patchwise inference on a %d px stack", size)
        speed.append(_speed(config, size, peak_before))
    peak = max(peak_before, matmul_peak_gmacs(config.matmul_size))
    for entry in speed:  # rates against the better of the two matmul measurements
        for name in ("exact", "one_pass", "patchwise"):
            run = entry[name]
            run["fraction_of_matmul_peak"] = run["gmacs_per_second"] / peak
    result: dict[str, Any] = {
        "package": "isl",
        "version": __version__,
        "mode": "quick" if quick else "full",
        "note": (
            "quick run: smaller images than the full run (isl bench --full: 370 px for speed, "
            "1500x1500 for memory)"
            if quick
            else "full run"
        ),
        "model": config.model.model_dump(mode="json"),
        "parameters": _parameters(config.model),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
        },
        "matmul_peak_gmacs_per_second": peak,
        "matmul_note": (
            f"float32 {config.matmul_size}^2 tf.linalg.matmul, best of 5, timed before and after the "
            "inference runs in this process; the better one is the peak"
        ),
        "speed": speed,
        "targets": {
            "exact_speedup_at_least": 6.0,
            "exact_fraction_of_mac_ratio_at_least": 0.9,
            "one_pass_speedup_at_least": 15.0,
            "fraction_of_matmul_peak_at_least": 0.5,
            "target_size": max(speed_sizes),
            "peak_memory_below_gib": 4.0,
        },
        "target_note": (
            "speed-ups are seconds of the patchwise path over seconds of the tiled path on the "
            "same stack, target-head statistics for all; at sizes with more patches than "
            "patchwise_max_batches batches the patchwise seconds are extrapolated from a timed "
            "top-left crop (speed[].patchwise.extrapolated). mac_ratio is the counted "
            "multiply-accumulate ratio (the patchwise path computes all heads, as the original "
            "did). memory.seconds includes tracing the graph."
        ),
    }
    if config.measure_training:
        names = config.training_models or (("demo",) if quick else ("demo", "paper"))
        result["training"] = {name: _training(name, config) for name in names}
    if config.measure_memory:
        logger.info("measuring peak memory predicting a %d px crop", memory_size)
        result["memory"] = _memory(config, memory_size)
        sizes = config.memory_scaling_sizes
        sizes = sizes if sizes is not None else (() if quick else (1024, 4096))
        if sizes:
            logger.info("measuring peak memory of a narrow network at %s px", list(sizes))
            result["memory_scaling"] = _memory_scaling(config, sizes)
    result["figures"] = _figures(result)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "bench.json", result, overwrite=True)
    return result


def _figures(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows ``tools/bench.py`` puts in BENCHMARKS.md (name, value, unit, target, met, note)."""
    targets = result["targets"]
    figures: list[dict[str, Any]] = []
    for speed in result["speed"]:
        side = speed["image_size"][0]
        at_target = side == targets["target_size"]
        naive = speed["patchwise"]
        figures.append(
            {
                "name": f"patchwise inference, {side} px stack",
                "value": naive["seconds_per_megapixel"],
                "unit": "s/MPix",
                "note": f"one 250-px patch per 8x8 block, batch {speed['batch_size']}; "
                f"{100 * naive['fraction_of_matmul_peak']:.0f} % of matmul peak"
                + (
                    f"; timed on {naive['timed_patches']} of {speed['patches']} patches"
                    if naive["extrapolated"]
                    else ""
                ),
            }
        )
        for name, label in (("exact", "exact"), ("one_pass", "one pass (target heads)")):
            run = speed[name]
            speed_target = targets[f"{name}_speedup_at_least"]
            met = run["speedup"] >= speed_target
            if name == "exact":
                met = (
                    met
                    and run["speedup_fraction_of_mac_ratio"]
                    >= targets["exact_fraction_of_mac_ratio_at_least"]
                )
            figures += [
                {
                    "name": f"{label} inference, {side} px stack",
                    "value": run["seconds_per_megapixel"],
                    "unit": "s/MPix",
                    "note": f"tile {run['tile_size']} px"
                    + (", shared trunk, both phases per tile" if name == "exact" else ""),
                },
                {
                    "name": f"speedup {label} / patchwise, {side} px",
                    "value": run["speedup"],
                    "unit": "x",
                    "target": (
                        f">= {speed_target:g}x" + (" and >= 90 % of the MAC ratio" if name == "exact" else "")
                        if at_target
                        else ""
                    ),
                    "met": met if at_target else None,
                    "note": f"MAC ratio {run['mac_ratio']:.2f}x (counted); speed-up "
                    f"{100 * run['speedup_fraction_of_mac_ratio']:.0f} % of it"
                    + (
                        f"; max |diff| {speed['max_abs_difference']:.2g} vs patchwise"
                        if name == "exact"
                        else ""
                    ),
                },
                {
                    "name": f"{label} GMAC/s / matmul peak, {side} px",
                    "value": 100 * run["fraction_of_matmul_peak"],
                    "unit": "%",
                    "target": ">= 50 %" if at_target else "",
                    "met": run["fraction_of_matmul_peak"] >= targets["fraction_of_matmul_peak_at_least"]
                    if at_target
                    else None,
                    "note": f"{run['gmacs_per_second']:.0f} of {result['matmul_peak_gmacs_per_second']:.0f} "
                    "GMAC/s (float32 matmul, same process)",
                },
            ]
    memory = result.get("memory")
    if memory:
        figures.append(
            {
                "name": f"peak memory, {memory['image_size'][0]} px crop",
                "value": memory["peak_rss_gib"],
                "unit": "GiB",
                "target": f"< {targets['peak_memory_below_gib']:g} GiB",
                "met": memory["peak_rss_gib"] < targets["peak_memory_below_gib"],
                "note": f"paper network, {memory['seconds']:.0f} s including tracing",
            }
        )
    for run in result.get("memory_scaling", []):
        figures.append(
            {
                "name": f"peak memory, {run['image_size'][0]} px crop, narrow network",
                "value": run["peak_rss_gib"],
                "unit": "GiB",
                "note": f"statistics streamed to disk ({run['statistics_bytes'] / 2**30:.2f} GiB "
                f"in memory otherwise); the input stack alone is {run['stack_bytes'] / 2**30:.2f} GiB",
            }
        )
    return figures + _training_figures(result)


#: Training configurations of the benchmark: (model, patch size, batch size).
_TRAINING = {
    # isl demo's network: DemoConfig defaults (3 z-planes, 3 labels, base depth 16, projection 4).
    "demo": (
        ModelConfig(
            num_z_values=3,
            target_channels=("DAPI_CONFOCAL", "CELLMASK_CONFOCAL", "MAP2_CONFOCAL"),
            base_depth=16,
            projection_depth=4,
        ),
        314,
        4,
    ),
    "paper": (ModelConfig(), 250, 16),
}


def _training(name: str, config: BenchConfig) -> dict[str, Any]:
    """Steps per second and GMAC/s of one training configuration, vs this process's matmul."""
    from isl.train.profile import profile_training

    model, patch, batch = _TRAINING[name]
    logger.info("timing training steps of the %s network (%d px, batch %d)", name, patch, batch)
    result = profile_training(model, patch_size=patch, batch_size=batch, steps=config.train_steps)
    return {"network": name, **result}


def _training_figures(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, run in result.get("training", {}).items():
        where = f"{name} network, {run['patch_size']} px, batch {run['batch_size']}"
        rows.append(
            {
                "name": f"training steps/s, {where}",
                "value": run["steps_per_second"],
                "unit": "steps/s",
                "note": f"{run['step_seconds']:.2f} s per step, {run['step_gmacs']:.1f} GMAC per step "
                "(3x forward, counted)",
            }
        )
        rows.append(
            {
                "name": f"training GMAC/s / matmul peak, {where}",
                "value": 100 * run["fraction_of_matmul_peak"],
                "unit": "%",
                "target": ">= 30 %",
                "met": run["fraction_of_matmul_peak"] >= 0.30,
                "note": f"{run['gmacs_per_second']:.1f} of {run['matmul_peak_gmacs_per_second']:.0f} "
                "GMAC/s (float32 2048^2 matmul, same process)",
            }
        )
    return rows


def _parameters(model: ModelConfig) -> int:
    from isl.model import count_parameters

    return count_parameters(model)


def run_bench(config_path: Path | None, *, out: Path, full: bool = False) -> Path:
    """``isl bench``: read the optional TOML config, run the benchmark, return the JSON's path."""
    config = load_config(BenchConfig, config_path)
    run_benchmark(out, quick=not full, config=config)
    return Path(out) / "bench.json"
