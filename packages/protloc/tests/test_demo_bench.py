"""The demo runs end to end on synthetic cells; the benchmark writes bench.json in tools/bench.py's schema."""

from __future__ import annotations

import json

from protloc.cli import main


def test_demo_writes_metrics_grids_and_curves(tmp_path):
    """A 2-epoch demo: both models trained, evaluated against the baselines, pictures written."""
    from protloc.config import DemoConfig
    from protloc.demo import run_demo

    out = run_demo(DemoConfig(out=tmp_path / "demo", images_per_protein=4, size=64, epochs=2))
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["regression"]) == {"NUCA", "CYTA", "MEMA", "PUNA"}
    for model in ("regression", "gan"):
        for protein in metrics[model].values():
            assert set(protein) == {"model", "mean_image", "nucleus"}
    assert (out / "summary.md").read_text().count("\n") >= 8
    assert (out / "regression" / "losses.png").is_file() and (out / "gan" / "losses.png").is_file()
    assert len(list((out / "gan-evaluation" / "grids").glob("*.png"))) == 4
    assert main(["-q", "demo", "--out", str(out)]) == 1  # never overwritten


def test_bench_writes_figures_for_both_models(tmp_path):
    """bench.json has training images/s, matmul-peak fraction and s/MPix for both models."""
    assert main(["-q", "bench", "--out", str(tmp_path / "b"), "--device", "cpu"]) == 0
    result = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert result["package"] == "protloc"
    names = {f["name"] for f in result["figures"]}
    for model in ("regression", "gan"):
        assert f"{model}: training throughput" in names and f"{model}: inference" in names
    for figure in result["figures"]:
        assert isinstance(figure["value"], float) and figure["value"] > 0
    fractions = [f["value"] for f in result["figures"] if f["unit"] == "fraction"]
    assert all(0 < f < 2 for f in fractions) and result["details"]["matmul_peak_gflops"] > 1
