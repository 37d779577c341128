"""The console script: --version, usage errors, config errors before work, the pipeline end to end."""

import json

import numpy as np
import tifffile

from impartial import __version__
from impartial.cli import main


def test_version_is_printed(capsys):
    """--version prints the package version and returns 0."""
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_command_is_a_usage_error():
    """An unknown subcommand returns code 2."""
    assert main(["no-such-command"]) == 2


def test_bad_config_is_one_paragraph_and_exit_1(tmp_path, capsys):
    """An unknown field and a bad value name the file and the field; nothing is created."""
    cfg = tmp_path / "train.toml"
    cfg.write_text(f'out = "{tmp_path / "run"}"\nbatch_sizee = 3\n')
    assert main(["train", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "batch_sizee" in err and "train.toml" in err
    cfg.write_text(f'out = "{tmp_path / "run"}"\n[model]\nin_channels = 1\n')
    assert main(["train", str(cfg)]) == 1
    assert "input channels" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_train_predict_evaluate_from_the_command_line(tmp_path, tiny_sample):
    """TIFF pairs -> train (TOML) -> predict -> evaluate writes checkpoints, OME-TIFF maps and tables."""
    root = tmp_path / "data"
    for d in ("images", "labels", "scribbles"):
        (root / d).mkdir(parents=True)
    for name in ("a", "b"):
        tifffile.imwrite(root / "images" / f"{name}.tif", tiny_sample.image)
        tifffile.imwrite(root / "labels" / f"{name}.tif", tiny_sample.label[0])
    scr = tiny_sample.scribble[0] + 2 * tiny_sample.scribble[1]
    tifffile.imwrite(root / "scribbles" / "a.tif", scr.astype(np.uint8))
    cfg = tmp_path / "train.toml"
    cfg.write_text(
        f'out = "{tmp_path / "run"}"\nbatch_size = 4\nepochs = 2\nnsaves = 1\nmin_epochs_cycle = 1\n'
        f'tensorboard = false\n[data]\nformat = "tiff_pairs"\nroot = "{root}"\ntrain = ["a"]\ntest = ["b"]\n'
        "[model]\nbase = 4\ndepth = 2\n[sampler]\npatch_size = 32\nnpatches_epoch = 8\nval_patches = 4\n"
    )
    assert main(["train", str(cfg)]) == 0
    assert (tmp_path / "run" / "checkpoints" / "cycle0.pt").is_file()
    images = [str(root / "images" / "a.tif"), str(root / "images" / "b.tif")]
    assert (
        main(["predict", str(tmp_path / "run"), *images, "--out", str(tmp_path / "pred"), "--mc-passes", "2"])
        == 0
    )
    prob = tifffile.imread(tmp_path / "pred" / "b" / "cell_prob.ome.tif")
    assert prob.shape == (2, 64, 64) and np.allclose(prob.sum(axis=0), 1, atol=1e-4)
    assert (tmp_path / "pred" / "b" / "overlay.png").is_file()
    for m in ("variance", "entropy", "mutual_information"):
        assert (tmp_path / "pred" / "b" / f"cell_{m}.ome.tif").is_file()
    assert main(["predict", str(tmp_path / "run"), *images, "--out", str(tmp_path / "pred")]) == 1  # exists
    code = main(
        [
            "evaluate",
            str(tmp_path / "pred"),
            "--labels",
            str(root / "labels"),
            "--train",
            "a",
            "--test",
            "b",
            "--out",
            str(tmp_path / "eval"),
        ]
    )
    assert code == 0
    table = (tmp_path / "eval" / "metrics.md").read_text()
    assert "faithful" in table and "improved" in table
    # a checkpoint with other channels than the image: refused before any output
    tifffile.imwrite(tmp_path / "one.tif", tiny_sample.image[0])
    assert (
        main(["predict", str(tmp_path / "run"), str(tmp_path / "one.tif"), "--out", str(tmp_path / "p2")])
        == 1
    )
    assert not (tmp_path / "p2").exists()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["base"] == 4


def test_bench_masking_part_writes_its_figure(tmp_path):
    """`impartial bench --only masking` measures one figure in the tools/bench.py schema."""
    assert main(["bench", "--out", str(tmp_path / "b"), "--only", "masking"]) == 0
    result = json.loads((tmp_path / "b" / "bench.json").read_text())
    (fig,) = result["figures"]
    assert fig["name"].startswith("blind-spot masking") and fig["value"] > 1 and isinstance(fig["met"], bool)
    assert result["details"]["parts"] == ["masking"]
