"""The held-out-quarter learning check on the real Condition B well (isl.holdout and its script).

The fast tests check the baselines and the refusals; the slow one trains on the real well.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cellsight_shared.testing import require_test_data
from isl.errors import ConfigError
from isl.holdout import (
    HoldoutConfig,
    binned_mean_baseline,
    gaussian_blur,
    linear_baseline,
    split_columns,
)

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "real_sample_learning.py"


def _load_script():  # noqa: ANN202 - the script module
    spec = importlib.util.spec_from_file_location("real_sample_learning", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _features(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((64, 96, 5)).astype(np.float32)


def test_split_lies_on_the_grid_and_keeps_the_context() -> None:
    """1024 columns, a quarter held out: train 0-767, predict from column 640 (128 px context)."""
    assert split_columns(1024, 0.25, 314) == (768, 640)
    assert split_columns(500, 0.4, 250) == (304, 176)
    with pytest.raises(ConfigError, match="holdout_fraction"):
        split_columns(300, 0.25, 314)
    with pytest.raises(ConfigError, match="holdout_fraction"):
        split_columns(1024, 0.001, 314)


def test_linear_baseline_recovers_a_linear_label_and_ignores_held_out_targets() -> None:
    """An exactly linear target is recovered; scrambling the held-out targets changes nothing."""
    features = _features()
    weights = np.array([0.5, -0.2, 0.1, 0.0, 0.3], np.float32)
    target = (features @ weights + 0.1)[..., None]
    predicted = linear_baseline(features, target, 64)
    np.testing.assert_allclose(predicted[:, 64:], target[:, 64:], atol=1e-4)
    scrambled = target.copy()
    scrambled[:, 64:] = np.random.default_rng(1).random(scrambled[:, 64:].shape)
    np.testing.assert_array_equal(linear_baseline(features, scrambled, 64), predicted)


def test_binned_mean_follows_the_descriptor_and_ignores_held_out_targets() -> None:
    """A target that is a step function of the descriptor is predicted from the training bins."""
    descriptor = _features()[..., 0]
    target = np.where(descriptor > 0.5, 0.8, 0.2)[..., None].astype(np.float32)
    predicted = binned_mean_baseline([descriptor], target, 64, bins=8)
    held_out = np.corrcoef(predicted[:, 64:, 0].ravel(), target[:, 64:, 0].ravel())[0, 1]
    assert held_out > 0.95
    scrambled = target.copy()
    scrambled[:, 64:] = 1.0 - scrambled[:, 64:]
    np.testing.assert_array_equal(binned_mean_baseline([descriptor], scrambled, 64, bins=8), predicted)
    # Two descriptors: bins x bins cells, and a training mean where a cell holds no pixel.
    other = np.zeros_like(descriptor)
    two = binned_mean_baseline([descriptor, other], target, 64, bins=4)
    assert two.shape == target.shape and np.isfinite(two).all()


def test_gaussian_blur_keeps_constants_and_spreads_an_impulse_symmetrically() -> None:
    """Weights sum to one (a constant stays), and an impulse becomes a symmetric bump."""
    constant = np.full((40, 50, 2), 0.3, np.float32)
    np.testing.assert_allclose(gaussian_blur(constant, 3.0), constant, atol=1e-6)
    impulse = np.zeros((41, 41, 1), np.float32)
    impulse[20, 20] = 1.0
    bump = gaussian_blur(impulse, 2.0)[..., 0]
    assert bump.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(bump, bump.T, atol=1e-7)
    np.testing.assert_allclose(bump, bump[::-1, ::-1], atol=1e-7)
    assert bump[20, 20] == bump.max() and bump[20, 24] < bump[20, 22]


def test_configuration_errors_are_named() -> None:
    """Patch sides off the 16-px grid and bad sigmas are refused by the configuration."""
    with pytest.raises(ValueError, match="patch_size must be 250"):
        HoldoutConfig(well=Path("w"), out=Path("o"), patch_size=300)
    with pytest.raises(ValueError, match="linear_sigmas"):
        HoldoutConfig(well=Path("w"), out=Path("o"), linear_sigmas=(0.0,))


def test_script_refuses_an_existing_output_folder_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing --out is an error (exit 1) that names it; nothing in it changes."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    well = tmp_path / "no_well"
    code = _load_script().main(["--well", str(well), "--out", str(out), "-q"])
    assert code == 1
    assert str(out) in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_script_names_a_missing_well(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A well folder that does not exist is an error naming it; no output folder appears."""
    well = tmp_path / "no_well"
    code = _load_script().main(["--well", str(well), "--out", str(tmp_path / "out"), "-q"])
    assert code == 1
    assert str(well) in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_narrow_network_beats_both_baselines_on_the_held_out_quarter(tmp_path: Path) -> None:
    """LEARNING on real data: train on the left 3/4 of the Condition B well, score the right 1/4.

    With the script's defaults (300 steps; the test took 7 min 9 s on the shared 2-core machine)
    the network's DAPI r (predicted mean) was 0.535, against 0.411 for the binned training mean
    and 0.192 for the linear regression from the z-planes. The stronger smoothed linear
    regression reached 0.514 on DAPI; the network beats it clearly on MAP2 (0.698 vs 0.493) and NFH
    (0.594 vs 0.252) and is asserted to stay at least level with it on DAPI.
    """
    well = require_test_data("isl", "condition_b_sample")
    out = tmp_path / "real"
    command = [sys.executable, str(SCRIPT), "--well", str(well), "--out", str(out)]
    subprocess.run(command, check=True, timeout=1500)
    results = json.loads((out / "results.json").read_text())

    # No held-out target was trained on: the training well holds the left columns only.
    assert results["train_columns"] == [0, 768] and results["held_out_columns"] == [768, 1024]
    run_config = json.loads((out / "run" / "config.json").read_text())
    assert [Path(w).name for w in run_config["wells"]] == [well.name]
    from isl.data import index_well

    assert index_well(out / "train_region" / well.name, verify=False).shape == (1024, 768)

    train = results["train"]
    assert train["checkpoint_step"] == results["config"]["steps"]
    log = train["loss_log"]
    late_total, late_target = np.mean(log["loss"][-5:]), np.mean(log["target_loss"][-5:])
    assert log["loss"][0] > 0.95  # a uniform guess scores 1
    assert late_total < log["loss"][0] - 0.25, log["loss"]
    assert late_target < 0.6 * log["target_loss"][0], log["target_loss"]

    scores = results["held_out"]
    network = f"network_{results['statistic']}"
    dapi = scores["DAPI_CONFOCAL"]
    for baseline in ("binned_mean", "linear"):
        assert dapi[network]["pearson_r"] > dapi[baseline]["pearson_r"] + MARGIN, (baseline, dapi)
    assert dapi[network]["pearson_r"] > dapi["linear_smoothed"]["pearson_r"] - PARITY, dapi
    for label in ("MAP2_CONFOCAL", "NFH_CONFOCAL"):
        label_scores = scores[label]
        best = max(label_scores[b]["pearson_r"] for b in ("binned_mean", "linear", "linear_smoothed"))
        assert label_scores[network]["pearson_r"] > best + MARGIN, (label, label_scores)
    assert dapi["constant_mean"]["pearson_r"] is None  # a constant image has no correlation

    for name in ("r_per_label.png", "target_error_panel.png", "linear_error_panel.png"):
        assert (out / name).stat().st_size > 1000
    from isl.figures import read_png_rgb16

    panel = read_png_rgb16(out / "target_error_panel.png")
    assert panel.shape == (3 * (1024 + 8), 3 * (256 + 8), 3)  # 3 labels x (prediction, truth, error)


#: r margin over the baselines. On DAPI the measured margins over the binned mean were 0.12-0.16
#: in five runs of 250-360 steps (0.124 with the defaults), over the per-pixel linear regression
#: 0.34 or more; on MAP2 and NFH the margin over the best baseline was 0.18 with the defaults.
MARGIN = 0.08
#: On DAPI the network was 0.02-0.06 above the smoothed linear regression in those runs (0.020
#: with the defaults; below it, 0.553 vs 0.578, in the interior without reflected pixels): it
#: must not fall further below than this.
PARITY = 0.05
