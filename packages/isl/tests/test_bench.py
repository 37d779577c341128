"""The inference benchmark runs and records its figures (no timing asserts: speed lives here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from isl.bench import BenchConfig, run_bench, run_benchmark
from isl.config.model import ModelConfig

TINY = ModelConfig(num_z_values=2, target_channels=("DAPI_CONFOCAL",), base_depth=24, projection_depth=4)
SPEED_KEYS = {
    "image_size", "output_size", "patches", "heads", "batch_size", "exact", "one_pass", "patchwise",
    "max_abs_difference", "discrete_flip_fraction",
}  # fmt: skip
PATH_KEYS = {
    "tile_size", "seconds", "seconds_per_megapixel", "gmacs", "mac_ratio", "gmacs_per_second",
    "fraction_of_matmul_peak", "speedup", "speedup_fraction_of_mac_ratio",
}  # fmt: skip
MEMORY_KEYS = {
    "store", "exact",
    "image_size", "output_size", "heads", "seconds", "rss_before_predict_bytes",
    "peak_rss_bytes", "stack_bytes", "statistics_bytes", "peak_rss_gib", "under_4_gib",
}  # fmt: skip


def test_benchmark_writes_json_with_identical_outputs(tmp_path: Path) -> None:
    """A tiny run times every path on a 274-px stack, finds exact = patchwise, writes bench.json.

    16 patches are more than 2 batches of 4, so the patchwise rate is measured on a crop of 8
    patches and extrapolated, as at 1500 px in the full run.
    """
    config = BenchConfig(
        model=TINY, speed_image_sizes=(274,), batch_size=4, patchwise_max_batches=2,
        matmul_size=512, measure_memory=False, measure_training=False,
    )  # fmt: skip

    result = run_benchmark(tmp_path, config=config)

    written = json.loads((tmp_path / "bench.json").read_text())
    assert written == json.loads(json.dumps(result))
    (speed,) = written["speed"]
    assert set(speed) == SPEED_KEYS
    assert set(speed["exact"]) == set(speed["one_pass"]) == PATH_KEYS
    assert speed["max_abs_difference"] < 1e-5 and speed["discrete_flip_fraction"] <= 1e-3
    for name in ("exact", "one_pass"):
        run = speed[name]
        assert run["seconds"] > 0 and run["mac_ratio"] > 1
        assert run["speedup"] == pytest.approx(speed["patchwise"]["seconds"] / run["seconds"], rel=1e-2)
        assert run["fraction_of_matmul_peak"] == pytest.approx(
            run["gmacs_per_second"] / written["matmul_peak_gmacs_per_second"]
        )
    naive = speed["patchwise"]
    assert speed["patches"] == 16 and naive["timed_patches"] == 8 and naive["extrapolated"] is True
    assert naive["seconds"] == pytest.approx(2 * naive["timed_seconds"], rel=1e-2)
    assert written["mode"] == "quick" and "quick run" in written["note"]
    assert written["parameters"] == 137_508
    assert "memory" not in written
    # tools/bench.py turns these rows into BENCHMARKS.md; targets are judged at the largest size.
    rows = {row["name"]: row for row in written["figures"]}
    assert len(rows) == 7
    target = rows["speedup exact / patchwise, 274 px"]
    exact = speed["exact"]
    assert target["value"] == exact["speedup"]
    assert target["met"] is (exact["speedup"] >= 6 and exact["speedup_fraction_of_mac_ratio"] >= 0.9)
    peak_row = rows["one pass (target heads) GMAC/s / matmul peak, 274 px"]
    assert peak_row["met"] is (speed["one_pass"]["fraction_of_matmul_peak"] >= 0.5)


@pytest.mark.slow
def test_memory_probe_reports_peak_rss_from_a_child_process(tmp_path: Path) -> None:
    """The memory part runs in a fresh process and reports its peak resident memory."""
    config_path = tmp_path / "bench.toml"
    config_path.write_text(
        "speed_image_sizes = [258]\nmemory_image_size = 266\ntile_size = 266\nbatch_size = 4\n"
        "[model]\nnum_z_values = 2\ntarget_channels = ['DAPI_CONFOCAL']\nbase_depth = 24\n"
        "projection_depth = 4\n"
    )

    path = run_bench(config_path, out=tmp_path / "out")

    memory = json.loads(path.read_text())["memory"]
    assert set(memory) == MEMORY_KEYS
    assert memory["output_size"] == [24, 24] and memory["heads"] == 3
    assert memory["peak_rss_bytes"] >= memory["rss_before_predict_bytes"] > memory["stack_bytes"]
    peak = next(f for f in json.loads(path.read_text())["figures"] if f["name"].startswith("peak memory"))
    assert peak["value"] == memory["peak_rss_gib"] and peak["met"] is memory["under_4_gib"]


def test_training_profile_reports_steps_and_the_matmul_fraction() -> None:
    """One timed step of a tiny real network: parts, steps/s and a fraction of the matmul peak."""
    from isl.bench import _training_figures
    from isl.train.profile import profile_training

    run = profile_training(TINY, patch_size=250, batch_size=1, steps=1)
    assert run["output_size"] == 8 and run["heads"] == 3
    assert run["step_seconds"] > 0
    assert run["steps_per_second"] == pytest.approx(1 / run["step_seconds"], rel=1e-3)
    assert run["step_gmacs"] == pytest.approx(3 * run["forward_gmacs_per_step"])
    assert (
        0
        < run["fraction_of_matmul_peak"]
        == pytest.approx(run["gmacs_per_second"] / run["matmul_peak_gmacs_per_second"])
    )
    assert run["trunk_forward_seconds"] <= run["gradient_seconds"]
    rows = _training_figures({"training": {"tiny": run}})
    assert [r["unit"] for r in rows] == ["steps/s", "%"] and rows[1]["met"] is (
        run["fraction_of_matmul_peak"] >= 0.3
    )


@pytest.mark.slow
def test_memory_scaling_rows_come_from_child_processes_with_the_disk_store(tmp_path: Path) -> None:
    """The scaling rows measure the narrow network at each size, streaming statistics to disk."""
    config = BenchConfig(
        model=TINY, speed_image_sizes=(258,), tile_size=266, batch_size=4, measure_training=False,
        memory_image_size=258, memory_scaling_sizes=(258, 290),
    )  # fmt: skip
    result = run_benchmark(tmp_path, quick=True, config=config)

    runs = result["memory_scaling"]
    assert [r["image_size"][0] for r in runs] == [258, 290]
    assert all(r["store"] == "disk" and r["exact"] is False for r in runs)
    assert runs[1]["stack_bytes"] > runs[0]["stack_bytes"] and runs[1]["output_size"] == [48, 48]
    rows = [f for f in result["figures"] if "narrow network" in f["name"]]
    assert [r["value"] for r in rows] == [r["peak_rss_gib"] for r in runs]
