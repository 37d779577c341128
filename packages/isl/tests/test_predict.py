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
from isl.predict import predict  # noqa: E402

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
    median = read_image(folder / statistic_filename("DAPI_CONFOCAL", "median")).astype(float)
    mean = read_image(folder / statistic_filename("DAPI_CONFOCAL", "mean")).astype(float)
    assert np.corrcoef(median.ravel(), mean.ravel())[0, 1] > 0.9

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


def test_reflect_padding_predicts_the_whole_image_as_tiff_with_full_panels(
    demo_run: Path, tmp_path: Path
) -> None:
    """pad='reflect' covers every pixel; the full panel has the twelve boxes."""
    config = PredictConfig(
        checkpoint=demo_run / "run",
        wells=(demo_run / "wells" / "test",),
        out=tmp_path / "pred",
        pad="reflect",
        channels=("DAPI_CONFOCAL",),
        statistics=("median",),
        image_format="tiff",
        simplify_panels=False,
        input_panel=False,
    )
    folder = predict(config) / "test_0"
    size = info_size(demo_run)
    assert read_json(folder / "prediction.json")["region"] == [0, 0, size, size]
    median = read_image(folder / statistic_filename("DAPI_CONFOCAL", "median", "tiff"))
    assert median.shape == (size, size) and median.dtype == np.uint16
    panel = read_png_rgb16(folder / "target_error_panel.png")
    assert panel.shape == (size + 2 * PAD_WIDTH, 12 * (size + 2 * PAD_WIDTH), 3)
    assert not (folder / "input_error_panel.png").exists()


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


def test_tf1_checkpoint_predictions_match_the_network_they_came_from(
    synthetic_wells: list[Path], tmp_path: Path
) -> None:
    """A TF1-named checkpoint (as published) predicts what its network predicts, to 16 bits."""
    from isl.checkpoint import save_tf1_checkpoint
    from isl.config import DataConfig
    from isl.data import find_wells, interleave, load_well
    from isl.inference import predict_statistics
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
            input_panel=False,
        )  # fmt: skip
    )
    folder = out / synthetic_wells[0].name
    assert read_json(folder / "prediction.json")["checkpoint_step"] == 1234

    well = load_well(find_wells([synthetic_wells[0]])[0], input_channels=("PHASE_CONTRAST",))
    values, masks = well.input_planes(5, ("TRANSMISSION",))
    direct = predict_statistics(
        net, interleave(values, masks), reflect_pad=True, heads=["MAXPROJECT/DAPI_CONFOCAL"]
    )
    for statistic in ("median", "mean"):
        written = read_image(folder / statistic_filename("DAPI_CONFOCAL", statistic)) / 65535.0
        np.testing.assert_allclose(written, direct[statistic][..., 0], atol=0.5 / 65535 + 1e-7)
