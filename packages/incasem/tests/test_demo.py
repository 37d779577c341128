"""``incasem demo`` end to end on a tiny configuration, through the console entry point."""

from __future__ import annotations

import json

from incasem.cli import main


def test_demo_writes_checkpoints_predictions_tables_and_figures(tmp_path, capsys):
    config = tmp_path / "demo.toml"
    config.write_text(
        "shape = [56, 56, 56]\ninput_shape = [36, 36, 36]\niterations = 2\nworkers = 2\n"
        "[model]\nnum_fmaps = 2\ndownsample_factors = [[2, 2, 2]]\n"
    )
    out = tmp_path / "demo"
    assert main(["-q", "demo", "--config", str(config), "--out", str(out), "--seed", "4"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert str(out / "summary.json") in capsys.readouterr().out
    assert 0.0 <= summary["f1"] <= 1.0
    assert (out / "train" / "checkpoints" / "model_checkpoint_2").exists()
    assert (out / "evaluation" / "metrics.md").read_text().count("|") > 10
    assert (out / "prediction_slices.png").stat().st_size > 5000
    assert (out / "train" / "loss_curve.png").exists()
    for cell in ("train_cell", "heldout_cell"):
        store = out / "data" / f"{cell}.zarr" / "volumes"
        assert (store / "raw_equalized_0.02" / ".zarray").exists()
        assert (store / "metric_masks" / "mito" / ".zarray").exists()
    assert main(["-q", "demo", "--config", str(config), "--out", str(out)]) == 1  # not overwritten
