"""``isl evaluate``: per-label Pearson r, SSIM and MAE of predictions against the wells' truth."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import write_fake_prediction

from cellsight_shared.io import read_png
from cellsight_shared.metrics import pearson_r
from isl.config import EvaluateConfig
from isl.errors import DataError
from isl.evaluate import evaluate
from isl.outputs import statistic_filename


def test_metrics_per_well_and_pooled_are_written_as_csv_and_markdown(
    synthetic_wells: list[Path], tmp_path: Path
) -> None:
    """Pearson r equals a direct computation; the pooled row covers both wells' pixels."""
    predictions = tmp_path / "predictions"
    truths = [
        write_fake_prediction(predictions, well, noise=n, seed=i)
        for i, (well, n) in enumerate(zip(synthetic_wells[:2], (0.02, 0.1), strict=True))
    ]
    summary = evaluate(EvaluateConfig(predictions=predictions, out=tmp_path / "metrics"))

    with (tmp_path / "metrics" / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["well"], r["channel"]) for r in rows] == [
        ("well_0", "DAPI_CONFOCAL"),
        ("well_0", "MAP2_CONFOCAL"),
        ("well_1", "DAPI_CONFOCAL"),
        ("well_1", "MAP2_CONFOCAL"),
        ("all", "DAPI_CONFOCAL"),
        ("all", "MAP2_CONFOCAL"),
    ]  # DEAD_CONFOCAL has no truth in these wells: skipped
    stored = read_png(predictions / "well_0" / statistic_filename("DAPI_CONFOCAL", "median"))
    direct = pearson_r(truths[0][..., 0], stored.astype(np.float64) / 65535)
    assert float(rows[0]["pearson_r"]) == pytest.approx(direct, rel=1e-6)
    r0, r1 = float(rows[0]["pearson_r"]), float(rows[2]["pearson_r"])
    assert 0.9 < r0 <= 1.0 and r1 < r0  # more noise, lower correlation
    assert int(rows[4]["pixels"]) == 2 * 96 * 80
    assert min(r1, r0) <= summary["DAPI_CONFOCAL"]["pearson_r"] <= max(r1, r0)
    assert 0.0 < summary["DAPI_CONFOCAL"]["mae"] < 0.1
    assert -1.0 <= summary["MAP2_CONFOCAL"]["ssim"] <= 1.0
    table = (tmp_path / "metrics" / "metrics.md").read_text()
    assert "| well | channel | pixels | pearson_r | ssim | mae |" in table
    assert f"| all | DAPI_CONFOCAL | {2 * 96 * 80} |" in table


def test_missing_statistic_or_folder_is_a_data_error(synthetic_wells: list[Path], tmp_path: Path) -> None:
    """Evaluating a statistic predict did not write, or a non-prediction folder, fails clearly."""
    predictions = tmp_path / "predictions"
    write_fake_prediction(predictions, synthetic_wells[0], noise=0.05, seed=0)
    with pytest.raises(DataError, match="statistic 'mean' was not written"):
        evaluate(EvaluateConfig(predictions=predictions, out=tmp_path / "m", statistic="mean"))
    with pytest.raises(DataError, match="no predicted wells"):
        evaluate(EvaluateConfig(predictions=tmp_path, out=tmp_path / "m"))


def test_an_existing_evaluation_is_not_overwritten(synthetic_wells: list[Path], tmp_path: Path) -> None:
    """A second evaluation into the same folder is refused unless overwrite = true."""
    from isl.errors import ConfigError

    predictions = tmp_path / "predictions"
    write_fake_prediction(predictions, synthetic_wells[0], noise=0.05, seed=0)
    out = tmp_path / "metrics"
    evaluate(EvaluateConfig(predictions=predictions, out=out))
    before = (out / "metrics.csv").read_text()
    with pytest.raises(ConfigError, match="already holds an evaluation"):
        evaluate(EvaluateConfig(predictions=predictions, out=out, statistic="mode"))
    assert (out / "metrics.csv").read_text() == before
    evaluate(EvaluateConfig(predictions=predictions, out=out, overwrite=True))
    assert (out / "metrics.csv").is_file()
