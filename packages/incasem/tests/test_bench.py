"""The prediction benchmark writes a complete bench.json (small volume)."""

import json

import pytest

from incasem.bench import run_bench


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    # the published-network part runs on a 2-fmap stand-in at 44^3 -> 26^3 (same code path)
    path = run_bench(
        out=out,
        roi_shape=(60, 60, 102),
        published_model={"num_fmaps": 2, "downsample_factors": [[2, 2, 2]]},
        published_input=(44, 44, 44),
        published_blocks=2,
        published_settings=("channels_last", "threads_1"),
    )
    return out, json.loads(path.read_text())


def test_bench_reports_every_figure_with_units(bench):
    """Bare, in-process, 1- and 2-worker throughputs, overhead ratio and speedup are positive."""
    _, result = bench
    names = [f["name"] for f in result["figures"]][:6]
    assert names == [
        "bare forward (1 thread)",
        "blockwise in-process (1 thread)",
        "pipeline overhead ratio",
        "blockwise 1 worker process",
        "blockwise 2 worker processes",
        "speedup 2 vs 1 workers",
    ]
    assert all(isinstance(f["value"], float) and f["value"] > 0 for f in result["figures"])
    assert result["package"] == "incasem"


def test_bench_records_sizes_and_consistent_rates(bench):
    """Sizes are recorded; rates are predicted voxels over the measured seconds."""
    _, result = bench
    details = result["details"]
    assert details["input_block"] == [60, 60, 60]
    assert details["output_block"] == [42, 42, 42]
    assert details["predicted_shape"] == [42, 42, 84]
    assert details["blocks"] == 2
    for name, rate in details["voxels_per_second"].items():
        assert rate == pytest.approx(42 * 42 * 84 / details["runs"][name]["seconds"])
    ratio = (
        details["voxels_per_second"]["bare_forward"] / details["voxels_per_second"]["blockwise_in_process"]
    )
    assert result["figures"][2]["value"] == pytest.approx(ratio)


def test_bench_leaves_only_the_json(bench):
    """The synthetic volume and predictions are removed; bench.json stays."""
    out, _ = bench
    assert sorted(p.name for p in out.iterdir()) == ["bench.json"]


def test_bench_times_the_published_network_path_against_the_matmul_peak(bench):
    """Bare, in-process and 2-worker rates, overhead, GMAC/s vs peak, settings, s per um^3."""
    _, result = bench
    p = result["details"]["published"]
    assert p["input_block"] == [44, 44, 44] and p["output_block"] == [26, 26, 26] and p["blocks"] == 2
    # MACs of the 2-fmap net counted from Conv3d shapes, checked by hand for the first layer
    assert p["macs_per_block"] > 42**3 * 2 * 27
    assert p["forward_gmac_per_second"] == pytest.approx(
        p["macs_per_block"] / (p["runs"]["bare_forward"]["seconds"] / 2) / 1e9
    )
    assert p["forward_fraction_of_matmul_peak"] == pytest.approx(
        2 * p["forward_gmac_per_second"] / p["matmul_peak_gflops"]
    )
    assert set(p["voxels_per_second"]) == {"bare_forward", "blockwise_in_process", "blockwise_2_workers"}
    for name, rate in p["voxels_per_second"].items():
        assert p["seconds_per_cubic_micrometre_5nm"][name] == pytest.approx(8e6 / rate)
    assert set(p["settings"]) == {"channels_last", "threads_1"}
    assert all(v["seconds_per_block"] > 0 for v in p["settings"].values())
    assert p["train_step_seconds"] > 0
    names = [f["name"] for f in result["figures"]]
    assert "published net: forward / float32 matmul peak" in names
    assert "published net: pipeline overhead ratio" in names


def test_bench_measures_the_logging_cost_of_the_defaults(bench):
    """Loss every 100 and F1 every 1000 cost under 2 % of an iteration; every iteration costs more."""
    _, result = bench
    c = result["details"]["logging"]
    assert (c["log_every"], c["metrics_every"]) == (100, 1000)
    assert 0 < c["loss_log_seconds"] < c["metrics_log_seconds"]
    assert c["per_iteration_seconds_defaults"] < c["per_iteration_seconds_every_iteration"]
    assert c["metrics_file_bytes_defaults"] < c["metrics_file_bytes_every_iteration"]
    assert c["fraction_defaults"] == pytest.approx(
        c["per_iteration_seconds_defaults"] / c["iteration_seconds"] + c["heartbeat_wall_fraction_defaults"]
    )
