"""The prediction benchmark writes a complete bench.json (small volume)."""

import json

import pytest

from incasem.bench import run_bench


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    return out, json.loads(run_bench(out=out, roi_shape=(60, 60, 102)).read_text())


def test_bench_reports_every_figure_with_units(bench):
    """Bare, in-process, 1- and 2-worker throughputs, overhead ratio and speedup are positive."""
    _, result = bench
    names = [f["name"] for f in result["figures"]]
    assert names == [
        "bare forward (1 thread)",
        "blockwise in-process (1 thread)",
        "pipeline overhead ratio",
        "blockwise 1 worker process",
        "blockwise 2 worker processes",
        "speedup 2 vs 1 workers",
    ]
    assert all(f["value"] > 0 for f in result["figures"])
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
