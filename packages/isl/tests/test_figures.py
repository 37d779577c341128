"""The error visualisations reproduce the original's goldens; panels have the original layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cellsight_shared.errors import DataFileError
from cellsight_shared.io import read_png
from cellsight_shared.testing import require_test_data
from isl.figures import (
    BLACK,
    MANGO,
    PAD_WIDTH,
    PURPLE,
    TURQUOISE,
    WHITE,
    PanelRow,
    additive_error,
    cross_entropy_error,
    error_panel,
    plot_loss_curve,
    read_png_rgb16,
    subtractive_error,
    write_error_panel,
)


def _golden(kind: str, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    folder = require_test_data("isl", "goldens", f"{kind}_error")
    load = lambda name: read_png(folder / f"{name}_batch_{batch}_channel_0.png").astype(np.float32)  # noqa: E731
    # target_0 is the truth and target_1 the prediction, as in the original's test.
    return load("target_0") / 255, load("target_1") / 255, load("error") / 255


@pytest.mark.parametrize("batch", [0, 1])
def test_additive_error_reproduces_the_golden(batch: int) -> None:
    """(pred, (pred + truth)/2, truth) within 1/255 of the original's output."""
    truth, prediction, expected = _golden("additive", batch)
    error = np.abs(additive_error(truth, prediction) - expected).max()
    assert error <= 1 / 255 + 1e-6


@pytest.mark.parametrize("batch", [0, 1])
def test_subtractive_error_reproduces_the_golden(batch: int) -> None:
    """Orange false positives, blue false negatives within 1/255 of the original's output."""
    truth, prediction, expected = _golden("subtractive", batch)
    error = np.abs(subtractive_error(truth, prediction) - expected).max()
    assert error <= 1 / 255 + 1e-6


@pytest.mark.parametrize("batch", [0, 1])
def test_cross_entropy_error_reproduces_the_golden(batch: int) -> None:
    """16-class one-hot cross-entropy: exact except where 8-bit inputs hide the class boundary.

    The golden inputs are 8-bit truncations of the original floats; a stored value of 17k + 8
    may have been on either side of the boundary between classes k and k + 1 (a handful of
    pixels). Everywhere else the output must match exactly.
    """
    truth, prediction, expected = _golden("cross_entropy", batch)
    one_hot = lambda v: np.eye(16, dtype=np.float32)[np.rint(v * 15).astype(int)]  # noqa: E731
    error = cross_entropy_error(one_hot(truth), one_hot(prediction))
    ambiguous = np.isin(np.rint(truth * 255) % 17, [8]) | np.isin(np.rint(prediction * 255) % 17, [8])
    difference = np.abs(error - expected)
    assert difference[~ambiguous].max() <= 1 / 255
    assert np.count_nonzero(difference > 1 / 255) <= 3


def test_error_colours_mean_false_positive_orange_false_negative_blue() -> None:
    """A pixel predicted too bright is orange, too dark is blue, correct is grey/black."""
    truth = np.array([[0.5, 0.8, 0.2]], np.float32)
    prediction = np.array([[0.5, 0.2, 0.8]], np.float32)
    sub = subtractive_error(truth, prediction)
    np.testing.assert_allclose(sub[0, 0], [0, 0, 0])
    np.testing.assert_allclose(sub[0, 1], [0.0, 0.3, 0.6], atol=1e-6)  # false negative: blue
    np.testing.assert_allclose(sub[0, 2], [0.6, 0.3, 0.0], atol=1e-6)  # false positive: orange
    add = additive_error(truth, prediction)
    np.testing.assert_allclose(add[0, 0], [0.5, 0.5, 0.5])


def _row(value: float) -> PanelRow:
    stats = {s: np.full((6, 5), value, np.float32) for s in ("mode", "median", "mean", "std")}
    return PanelRow(statistics=stats, truth=np.full((6, 5), 0.25, np.float32), mask=np.ones((6, 5)))


def test_simplified_panel_has_median_truth_error_boxes_with_borders() -> None:
    """Three boxes per row (purple, teal, black borders of 4 px), rows stacked vertically."""
    panel = error_panel([_row(0.5), _row(0.75)], simplify=True)
    box_h, box_w = 6 + 2 * PAD_WIDTH, 5 + 2 * PAD_WIDTH
    assert panel.shape == (2 * box_h, 3 * box_w, 3)
    for index, color in enumerate((PURPLE, TURQUOISE, BLACK)):
        np.testing.assert_allclose(panel[0, index * box_w], color)
    np.testing.assert_allclose(panel[PAD_WIDTH, PAD_WIDTH], [0.5] * 3)  # median
    np.testing.assert_allclose(panel[box_h + PAD_WIDTH, 2 * box_w + PAD_WIDTH], [0.5, 0.25, 0.0])


def test_full_panel_has_the_twelve_boxes_in_the_original_order() -> None:
    """4 statistics, truth, 3 additive, 3 subtractive, mask."""
    panel = error_panel([_row(0.5)], simplify=False)
    box_w = 5 + 2 * PAD_WIDTH
    assert panel.shape[1] == 12 * box_w
    colors = [PURPLE] * 4 + [TURQUOISE] + [WHITE] * 3 + [BLACK] * 3 + [MANGO]
    for index, color in enumerate(colors):
        np.testing.assert_allclose(panel[0, index * box_w], color)


def test_panel_png_is_16_bit_rgb_truncated_like_the_original(tmp_path: Path) -> None:
    """Value * 65535 truncated to uint16, RGB order on disk, streamed row by row."""
    rows = [_row(0.5), _row(1.0 / 3.0)]
    path = write_error_panel(tmp_path / "panel.png", rows, simplify=False)
    pixels = read_png_rgb16(path)
    expected = (np.clip(error_panel(rows, simplify=False), 0, 1) * np.float32(65535)).astype(np.uint16)
    np.testing.assert_array_equal(pixels, expected)
    with pytest.raises(DataFileError, match="already exists"):
        write_error_panel(path, rows)


def test_loss_curve_is_drawn_from_the_loss_log(tmp_path: Path) -> None:
    """loss.csv -> a PNG; no log -> nothing drawn."""
    log = tmp_path / "loss.csv"
    log.write_text("step,loss,input_loss,target_loss\n1,1.0,1.0,1.0\n10,0.5,0.4,0.6\n")
    png = plot_loss_curve(log, tmp_path / "curve.png")
    assert png is not None and read_png(png).shape[:2] == (400, 600)
    assert plot_loss_curve(tmp_path / "missing.csv", tmp_path / "none.png") is None


def test_figures_command_redraws_panels_and_charts(synthetic_wells: list[Path], tmp_path: Path) -> None:
    """`isl figures` draws per-well panels from files, the Pearson chart and the loss curve."""
    from conftest import REGION, write_fake_prediction

    from isl.cli import main

    predictions = tmp_path / "predictions"
    write_fake_prediction(predictions, synthetic_wells[0], noise=0.05, seed=0)
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("well,channel,pixels,pearson_r,ssim,mae\nall,DAPI_CONFOCAL,10,0.8,0.7,0.1\n")
    config = tmp_path / "figures.toml"
    config.write_text(f'predictions = "{predictions}"\nmetrics = "{metrics}"\nout = "{tmp_path / "fig"}"\n')
    assert main(["-q", "figures", "--config", str(config)]) == 0
    panel = read_png_rgb16(tmp_path / "fig" / "well_0" / "target_error_panel.png")
    rows, cols = REGION[2] + 2 * PAD_WIDTH, REGION[3] + 2 * PAD_WIDTH
    # DAPI and MAP2 have truth; DEAD_CONFOCAL is predicted without truth (a black truth box).
    assert panel.shape == (3 * rows, 3 * cols, 3)
    assert read_png(tmp_path / "fig" / "pearson_r.png").ndim == 3
