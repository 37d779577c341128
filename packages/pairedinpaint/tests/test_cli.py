"""The console script: --version, usage errors (2), expected errors (1) before any work."""

import numpy as np
import pytest

from pairedinpaint import __version__
from pairedinpaint.cli import main


def test_version_is_printed(capsys):
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_command_is_a_usage_error():
    assert main(["no-such-command"]) == 2


@pytest.mark.parametrize(
    "command",
    [
        "train",
        "extract",
        "benchmark",
        "convert-weights",
        "download-hpa",
        "segment-and-crop",
        "filter",
        "demo",
        "bench",
    ],
)
def test_every_command_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert "usage: pairedinpaint" in capsys.readouterr().out


def test_existing_demo_folder_is_refused_with_exit_1(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["demo", "--out", str(tmp_path / "run")]) == 1
    assert "already exists" in capsys.readouterr().err


def test_missing_data_folder_is_a_clear_error(tmp_path, capsys):
    code = main(["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "run")])
    assert code == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_unknown_config_key_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text("epochz = 3\n")
    assert main(["train", "--config", str(path), "--data", "x", "--out", str(tmp_path / "r")]) == 1
    assert "epochz" in capsys.readouterr().err


def test_extract_via_cli_on_real_yeast_subset(yeast_subset, tmp_path):
    """The console path end to end on real crops (random-init tiny network, 2 layers)."""
    out = tmp_path / "f"
    assert (
        main(
            [
                "-q",
                "extract",
                "--data",
                str(yeast_subset),
                "--out",
                str(out),
                "--width",
                "0.125",
                "--layers",
                "conv3_1",
                "conv4_1",
            ]
        )
        == 0
    )
    assert len((out / "features_conv4_1.txt").read_text().splitlines()) == 200


def test_convert_weights_command_writes_a_keras3_file(tmp_path):
    """convert-weights turns a Keras 2 layout file into .weights.h5 that loads into the model."""
    from legacy_h5 import write_keras2_h5

    from pairedinpaint.config import ModelConfig
    from pairedinpaint.legacy import load_weights
    from pairedinpaint.model import build_pair_model

    model = build_pair_model(ModelConfig())
    expected = write_keras2_h5(tmp_path / "model_weights.h5", model, seed=4)
    assert (
        main(["-q", "convert-weights", str(tmp_path / "model_weights.h5"), str(tmp_path / "y.weights.h5")])
        == 0
    )
    fresh = build_pair_model(ModelConfig())
    load_weights(fresh, tmp_path / "y.weights.h5")
    np.testing.assert_array_equal(fresh.get_layer("y_gfp").get_weights()[0], expected["y_gfp"][0])
