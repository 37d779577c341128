"""The console script in-process: exit codes 0 (done), 1 (expected error), 2 (usage)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from conftest import entry

from incasem import __version__
from incasem.cli import main


def test_version_and_help_exit_0(capsys):
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    assert main(["--help"]) == 0
    for command in (
        "convert",
        "equalize",
        "metric-mask",
        "export-tiff",
        "train",
        "finetune",
        "predict",
        "evaluate",
        "download",
        "download-data",
        "demo",
        "bench",
    ):
        assert main([command, "--help"]) == 0
        assert f"incasem {command}" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    assert main(["equalize"]) == 2
    assert main(["equalize", "x.zarr", "--clip-limit", "lots"]) == 2
    assert "invalid float value" in capsys.readouterr().err


def test_convert_equalize_and_metric_mask_exit_0(tmp_path, capsys):
    folder = tmp_path / "tifs"
    folder.mkdir()
    volume = np.random.default_rng(0).integers(0, 255, size=(16, 16, 16), dtype=np.uint8)
    for z, section in enumerate(volume):
        tifffile.imwrite(folder / f"s_{z}.tif", section)
    store = tmp_path / "c.zarr"
    assert main(["-q", "convert", str(folder), str(store), "--resolution", "4", "4", "4"]) == 0
    assert main(["-q", "equalize", str(store), "--kernel-size", "8", "--block-size", "8"]) == 0
    assert main(["-q", "metric-mask", str(store), "--labels", "volumes/raw"]) == 0
    assert "foreground_voxels" in capsys.readouterr().out


def test_expected_errors_exit_1_with_one_paragraph(tmp_path, capsys):
    assert main(["equalize", str(tmp_path / "missing.zarr")]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("error:") and "does not exist" in err and "Traceback" not in err


def test_bad_config_values_exit_1(tmp_path, capsys):
    config = tmp_path / "train.toml"
    config.write_text('data = "d.json"\nlr = -1\n')
    assert main(["train", "--config", str(config)]) == 1
    assert "lr" in capsys.readouterr().err


def test_misspelt_config_key_exits_1(tmp_path, capsys):
    config = tmp_path / "train.toml"
    config.write_text('data = "d.json"\nlearning_rate = 0.1\n')
    assert main(["train", "--config", str(config)]) == 1
    assert "learning_rate" in capsys.readouterr().err


def test_train_with_a_bad_data_json_exits_1(em_zarr, write_data_json, tmp_path, capsys):
    data = write_data_json({"far": entry(em_zarr, offset=(50, 10, 10))})
    config = tmp_path / "train.toml"
    config.write_text(
        f'data = "{data}"\nout = "{tmp_path / "run"}"\ninput_shape = [36, 36, 36]\n'
        "[model]\nnum_fmaps = 2\ndownsample_factors = [[2, 2, 2]]\n"
    )
    assert main(["train", "--config", str(config)]) == 1
    assert "'far'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_train_exits_0_and_prints_the_checkpoint_folder(em_zarr, write_data_json, tmp_path, capsys):
    data = write_data_json({"a": entry(em_zarr)})
    config = tmp_path / "train.toml"
    config.write_text(
        f'data = "{data}"\ninput_shape = [36, 36, 36]\niterations = 1\ndevice = "cpu"\n'
        "[model]\nnum_fmaps = 2\ndownsample_factors = [[2, 2, 2]]\n"
    )
    assert main(["-q", "train", "--config", str(config), "--out", str(tmp_path / "run")]) == 0
    assert str(tmp_path / "run" / "checkpoints") in capsys.readouterr().out


@pytest.mark.parametrize("value", ["mongodb://u:topsecret@127.0.0.1:9/"])
def test_mongo_url_from_the_environment_is_used_and_redacted(
    em_zarr, write_data_json, tmp_path, capsys, monkeypatch, value
):
    data = write_data_json({"a": entry(em_zarr)})
    config = tmp_path / "train.toml"
    config.write_text(
        f'data = "{data}"\ninput_shape = [36, 36, 36]\niterations = 0\ndevice = "cpu"\n'
        'observer = "none"\n[model]\nnum_fmaps = 2\ndownsample_factors = [[2, 2, 2]]\n'
    )
    monkeypatch.setenv("INCASEM_MONGO_URL", value)
    monkeypatch.setattr("incasem.experiment.MONGO_TIMEOUT_MS", 300)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "u:***@127.0.0.1:9" in err and "topsecret" not in err


def test_password_on_the_command_line_is_refused_before_any_work(tmp_path, capsys):
    """A --mongo-url with a password exits 1 naming the env variables, without echoing the secret."""
    config = tmp_path / "train.toml"
    config.write_text('data = "missing.json"\n')
    argv = ["train", "--config", str(config), "--out", str(tmp_path / "run")]
    assert main([*argv, "--mongo-url", "mongodb://u:topsecret@127.0.0.1:9/"]) == 1
    err = capsys.readouterr().err
    assert "INCASEM_MONGO_PASSWORD" in err and "topsecret" not in err
    assert not (tmp_path / "run").exists()
