"""The console script: --version, usage errors (2), expected errors (1), and real commands."""

from __future__ import annotations

import json

from protloc import __version__
from protloc.cli import main


def test_version_is_printed(capsys):
    """--version prints the package version and returns 0."""
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_command_is_a_usage_error():
    """An unknown subcommand returns code 2."""
    assert main(["no-such-command"]) == 2


def test_missing_checkpoint_is_one_error_line(tmp_path, capsys):
    """Predict with a missing checkpoint prints one error paragraph and returns 1."""
    image = tmp_path / "n.tif"
    image.write_bytes(b"")
    code = main(
        [
            "predict",
            "--checkpoint",
            str(tmp_path / "none.pt"),
            "--image",
            str(image),
            "--protein",
            "A",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 1
    assert "checkpoint" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_bad_config_key_is_reported_with_its_field(tmp_path, capsys):
    """A misspelt TOML key fails validation with the key's name, exit 1."""
    config = tmp_path / "train.toml"
    config.write_text(f'out = "{tmp_path / "run"}"\nbatch_sise = 4\n[data]\nroot = "{tmp_path}"\n')
    assert main(["train", "--config", str(config)]) == 1
    assert "batch_sise" in capsys.readouterr().err


def test_train_export_theta_and_gan_from_the_command_line(synthetic_root, tmp_path):
    """Train (regression) -> export-theta -> train --model gan --theta, each via the CLI."""
    config = tmp_path / "train.toml"
    config.write_text(
        f"crop_size = 32\nbatch_size = 8\nn_epochs = 1\nn_epochs_decay = 0\ntensorboard = false\n"
        f'[data]\nroot = "{synthetic_root}"\n[model]\ndepth = 2\nwf = 2\ndown_factor = 2\n'
    )
    assert main(["-q", "train", "--config", str(config), "--out", str(tmp_path / "reg")]) == 0
    assert (
        main(
            [
                "-q",
                "export-theta",
                "--checkpoint",
                str(tmp_path / "reg/checkpoints/latest.pt"),
                "--out",
                str(tmp_path / "theta.npz"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "theta.npz.proteins.json").read_text()) == ["CYTA", "MEMA", "NUCA", "PUNA"]
    gan = tmp_path / "gan.toml"
    gan.write_text(
        f"crop_size = 32\nbatch_size = 8\nn_epochs = 1\nn_epochs_decay = 1\ntensorboard = false\n"
        f'[data]\nroot = "{synthetic_root}"\n[model]\nkind = "gan"\nnum_downs = 3\nngf = 4\nndf = 4\n'
    )
    assert (
        main(
            [
                "-q",
                "train",
                "--config",
                str(gan),
                "--theta",
                str(tmp_path / "theta.npz"),
                "--out",
                str(tmp_path / "gan"),
            ]
        )
        == 0
    )
    assert (tmp_path / "gan/checkpoints/latest.pt").is_file()
    # theta of another size than model.theta_dim
    assert (
        main(
            [
                "-q",
                "random-theta",
                "--proteins",
                str(tmp_path / "theta.npz.proteins.json"),
                "--dim",
                "8",
                "--out",
                str(tmp_path / "t8.npz"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "-q",
                "train",
                "--config",
                str(gan),
                "--theta",
                str(tmp_path / "t8.npz"),
                "--out",
                str(tmp_path / "gan2"),
            ]
        )
        == 1
    )
