"""The benchmark writes bench.json in tools/bench.py's schema (tiny sizes; numbers not asserted)."""

import json

from pairedinpaint.bench import memory_run, run_bench
from pairedinpaint.config import BenchConfig


def test_memory_run_streams_every_cell(tmp_path):
    result = memory_run(300, 0.0625, 128, str(tmp_path))
    assert result["cells"] == 300 and result["peak_rss_mb"] > 0
    assert len((tmp_path / "features_conv5_1.txt").read_text().splitlines()) == 300


def test_bench_json_has_the_schema(tmp_path):
    config = BenchConfig(
        out=tmp_path, width=0.0625, train_cells=8, extract_cells=16, memory_cells=200, batch_size=8
    )
    path = run_bench(config)
    result = json.loads(path.read_text())
    assert result["package"] == "pairedinpaint"
    names = [f["name"] for f in result["figures"]]
    assert any("matmul peak" in n for n in names) and any("one cell per predict" in n for n in names)
    assert all(isinstance(f["value"], float) and f["value"] > 0 for f in result["figures"])
