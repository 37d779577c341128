"""``isl predict`` on a trained demo run: statistic images, panels, provenance, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from cellsight_shared.io import read_image, read_json  # noqa: E402
from isl.config import ModelConfig, PredictConfig  # noqa: E402
from isl.errors import CheckpointError, ConfigError  # noqa: E402
from isl.figures import PAD_WIDTH, PURPLE, TURQUOISE, read_png_rgb16  # noqa: E402
from isl.outputs import statistic_filename  # noqa: E402
from isl.predict import load_network, predict  # noqa: E402

CHANNELS = ("DAPI_CONFOCAL",)  # the demo_run fixture learns nuclei only


def test_demo_prediction_writes_statistics_panels_and_provenance(demo_run: Path) -> None:
    """Five 16-bit statistics per channel, both panels, prediction.json and config.json."""
    folder = demo_run / "predictions" / "test_0"
    info = read_json(folder / "prediction.json")
    row0, col0, rows, cols = info["region"]
    assert (row0, col0) == (121, 121)  # the original's output offset
    assert rows == cols == 8 * ((info_size(demo_run) - 250) // 8 + 1)
    assert tuple(info["channels"]) == CHANNELS
    for channel in CHANNELS:
        for statistic in ("mode", "median", "mean", "std", "entropy"):
            image = read_image(folder / statistic_filename(channel, statistic))
            assert image.dtype == np.uint16 and image.shape == (rows, cols)
    stats = {
        s: read_image(folder / statistic_filename("DAPI_CONFOCAL", s)) / 65535.0
        for s in ("median", "mean", "std", "entropy")
    }
    assert stats["std"].max() <= 0.5 and 0.0 < stats["entropy"].mean() < 1.0
    assert np.corrcoef(stats["median"].ravel(), stats["mean"].ravel())[0, 1] > 0.5

    panel = read_png_rgb16(folder / "target_error_panel.png")
    box = rows + 2 * PAD_WIDTH
    assert panel.shape == (len(CHANNELS) * box, 3 * box, 3)  # rows x [median, truth, error]
    np.testing.assert_allclose(panel[0, 0] / 65535, PURPLE, atol=1e-4)
    np.testing.assert_allclose(panel[0, box] / 65535, TURQUOISE, atol=1e-4)
    z_planes = int(read_json(demo_run / "config.json")["z_planes"])
    assert read_png_rgb16(folder / "input_error_panel.png").shape == (z_planes * box, 3 * box, 3)
    for name in ("config.json", "run_info.json"):
        assert (demo_run / "predictions" / name).is_file()


def info_size(demo_run: Path) -> int:
    """Image side of the demo's synthetic wells."""
    return int(read_json(demo_run / "config.json")["image_size"])


def test_bad_predict_requests_fail_before_any_work(demo_run: Path, tmp_path: Path) -> None:
    """Existing output, unknown channel, missing checkpoint, conflicting model: clear errors."""
    wells = (demo_run / "wells" / "test",)
    with pytest.raises(ConfigError, match="exists; set overwrite"):
        predict(PredictConfig(checkpoint=demo_run / "run", wells=wells, out=demo_run / "predictions"))
    with pytest.raises(ConfigError, match=r"\['TUJ1_WIDEFIELD'\] are not predicted"):
        predict(
            PredictConfig(
                checkpoint=demo_run / "run",
                wells=wells,
                out=tmp_path / "a",
                channels=("TUJ1_WIDEFIELD",),
            )  # fmt: skip
        )
    with pytest.raises(CheckpointError, match="does not exist"):
        predict(PredictConfig(checkpoint=tmp_path / "none", wells=wells, out=tmp_path / "b"))
    with pytest.raises(ConfigError, match="differs from the run's own"):
        predict(
            PredictConfig(checkpoint=demo_run / "run", wells=wells, out=tmp_path / "c", model=ModelConfig())
        )
    assert not any((tmp_path / n).exists() for n in ("a", "b", "c"))


def test_tf1_checkpoint_loads_by_name_and_predicts_the_whole_padded_well(
    synthetic_wells: list[Path], tmp_path: Path
) -> None:
    """A TF1-named checkpoint (as published) loads by name and predicts the whole well.

    Reflect padding covers all 128x128 pixels; 16-bit TIFF statistics; the 12-box panel.
    """
    from isl.checkpoint import save_tf1_checkpoint
    from isl.config import DataConfig
    from isl.model import build_model

    model = ModelConfig(num_z_values=5, target_channels=("DAPI_CONFOCAL",), base_depth=16, projection_depth=4)
    net = build_model(model, seed=3)
    save_tf1_checkpoint(net, tmp_path / "tf1" / "model.ckpt", global_step=1234)
    data = DataConfig(input_channels=("PHASE_CONTRAST",), derived_channels={})
    out = predict(
        PredictConfig(
            checkpoint=tmp_path / "tf1",
            wells=(synthetic_wells[0],),
            out=tmp_path / "pred",
            pad="reflect",
            model=model,
            data=data,
            statistics=("median", "mean"),
            image_format="tiff",
            simplify_panels=False,
            input_panel=False,
        )  # fmt: skip
    )
    folder = out / synthetic_wells[0].name
    info = read_json(folder / "prediction.json")
    assert info["checkpoint_step"] == 1234 and info["region"] == [0, 0, 128, 128]
    panel = read_png_rgb16(folder / "target_error_panel.png")
    assert panel.shape == (128 + 2 * PAD_WIDTH, 12 * (128 + 2 * PAD_WIDTH), 3)
    assert not (folder / "input_error_panel.png").exists()

    for statistic in ("median", "mean"):
        written = read_image(folder / statistic_filename("DAPI_CONFOCAL", statistic, "tiff"))
        assert written.dtype == np.uint16 and written.shape == (128, 128)

    loaded, step = load_network(model, tmp_path / "tf1", isl_run=False)
    assert step == 1234
    for name, variable in net.variables_by_name.items():
        np.testing.assert_array_equal(loaded.variables_by_name[name].numpy(), variable.numpy())


def test_one_pass_stitching_matches_exact_on_the_16_px_grid(demo_run: Path, tmp_path: Path) -> None:
    """One-pass stitching equals the exact result on blocks at even multiples of 8 px.

    Only blocks whose patch offset is a multiple of 16 px share tower 4's grid with the one pass;
    the others are close (same network, tower 4 shifted by 8 px), not equal.
    """
    results = {}
    for stitching in ("exact", "one_pass"):
        config = PredictConfig(
            checkpoint=demo_run / "run",
            wells=(demo_run / "wells" / "test",),
            out=tmp_path / stitching,
            statistics=("mean",),
            input_panel=False,
            stitching=stitching,
        )
        folder = predict(config) / "test_0"
        assert read_json(folder / "prediction.json")["stitching"] == stitching
        results[stitching] = read_image(folder / statistic_filename("DAPI_CONFOCAL", "mean")).astype(float)
    exact, one_pass = results["exact"], results["one_pass"]
    assert exact.shape == one_pass.shape
    on_grid = (np.arange(exact.shape[0]) // 8 % 2 == 0)[:, None] & (np.arange(exact.shape[1]) // 8 % 2 == 0)
    np.testing.assert_allclose(one_pass[on_grid], exact[on_grid], atol=2)  # of 65535: float32 order
    assert np.corrcoef(one_pass[~on_grid], exact[~on_grid])[0, 1] > 0.9


@pytest.mark.slow
def test_original_extent_keeps_only_whole_runs_of_16_patches(demo_run: Path, tmp_path: Path) -> None:
    """A 384-px well gives the original's 128 x 128 output at (121, 121)."""
    config = PredictConfig(
        checkpoint=demo_run / "run",
        wells=(demo_run / "wells" / "test",),
        out=tmp_path / "pred",
        original_extent=True,
        statistics=("median",),
        input_panel=False,
    )
    info = read_json(predict(config) / "test_0" / "prediction.json")
    assert info["region"] == [121, 121, 128, 128]


@pytest.mark.slow
def test_real_sample_predicts_the_readme_channels_in_a_top_left_crop(tmp_path: Path) -> None:
    """Condition B well, a 26-z network saved as TF1, crop 506: 264 x 264 px of DAPI/MAP2/NFH."""
    from cellsight_shared.testing import require_test_data
    from isl.checkpoint import save_tf1_checkpoint
    from isl.model import build_model

    well = require_test_data("isl", "condition_b_sample")
    model = ModelConfig(base_depth=16, projection_depth=4)  # 26 z-values, the 9 original heads
    save_tf1_checkpoint(build_model(model), tmp_path / "tf1" / "model.ckpt", global_step=1)
    config = PredictConfig(
        checkpoint=tmp_path / "tf1", wells=(well,), out=tmp_path / "pred", model=model,
        crop_size=506, channels=("DAPI_CONFOCAL", "MAP2_CONFOCAL", "NFH_CONFOCAL"),
    )  # fmt: skip
    folder = predict(config) / well.name
    assert read_json(folder / "prediction.json")["region"] == [121, 121, 264, 264]
    box = 264 + 2 * PAD_WIDTH
    assert read_png_rgb16(folder / "target_error_panel.png").shape == (3 * box, 3 * box, 3)
    assert read_png_rgb16(folder / "input_error_panel.png").shape == (26 * box, 3 * box, 3)
