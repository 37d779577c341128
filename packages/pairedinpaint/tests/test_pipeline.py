"""Train -> extract -> benchmark on synthetic crops: outputs, resume, never overwrite, bad input."""

import json

import h5py
import numpy as np
import pytest

from pairedinpaint.config import BenchmarkConfig, DataConfig, ExtractConfig, ModelConfig, TrainConfig
from pairedinpaint.errors import CheckpointError, ConfigError, DataError

TINY = ModelConfig(size=32, width=0.125)


@pytest.fixture(scope="module")
def run(tmp_path_factory, synthetic_yeast_dir):
    """A 2-epoch tiny training run."""
    from pairedinpaint.train import train

    out = tmp_path_factory.mktemp("runs") / "run"
    config = TrainConfig(
        data=DataConfig(root=synthetic_yeast_dir, size=32),
        model=TINY,
        out=out,
        epochs=2,
        batch_size=16,
        learning_rate=1e-3,
        tensorboard=True,
    )
    return train(config, progress=False), config


def test_training_writes_weights_curve_history_and_config(run):
    out, _ = run
    history = json.loads((out / "history.json").read_text())
    assert history["epochs_done"] == 2 and all(np.isfinite(history["loss"]))
    for name in ("model.weights.h5", "checkpoint.keras", "loss_curve.png", "config.json"):
        assert (out / name).stat().st_size > 0
    assert any((out / "tensorboard").rglob("*tfevents*"))
    assert json.loads((out / "config.json").read_text())["config"]["beta_1"] == 0.5


def test_resume_continues_from_the_last_epoch(run):
    from pairedinpaint.train import train

    out, config = run
    train(config.model_copy(update={"epochs": 3}), resume=True, progress=False)
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 3


def test_an_existing_run_folder_is_never_overwritten(run):
    from pairedinpaint.train import train

    _, config = run
    with pytest.raises(ConfigError, match="already exists"):
        train(config, progress=False)


def test_pretrained_weights_inside_the_run_folder_are_refused(run):
    from pairedinpaint.train import train

    out, config = run
    with pytest.raises(ConfigError, match="read only"):
        train(config.model_copy(update={"init_weights": out / "model.weights.h5"}), progress=False)


def test_weights_of_another_architecture_are_refused(run, tmp_path, synthetic_yeast_dir):
    from pairedinpaint.predict import extract

    out, _ = run
    config = ExtractConfig(
        data=DataConfig(root=synthetic_yeast_dir, size=32),
        model=ModelConfig(size=32, width=0.25),
        weights=out / "model.weights.h5",
        out=tmp_path / "f",
    )
    with pytest.raises(CheckpointError, match="does not fit"):
        extract(config, progress=False)


def test_extract_writes_columnar_legacy_text_and_protein_means(run, tmp_path, synthetic_yeast_dir):
    from pairedinpaint.predict import extract, read_features

    out, _ = run
    config = ExtractConfig(
        data=DataConfig(root=synthetic_yeast_dir, size=32),
        model=TINY,
        weights=out / "model.weights.h5",
        out=tmp_path / "features",
        batch_size=40,
    )
    folder = extract(config, progress=False)
    feats, names, labels = read_features(folder, "conv3_1")
    assert feats.shape == (96, 48) and feats.dtype == np.float32 and np.all(feats >= 0)
    lines = (folder / "features_conv3_1.txt").read_text().splitlines()
    first = lines[0].split("\t")
    assert len(lines) == 96 and first[0] == names[0] and first[-1] == "" and len(first) == 50
    np.testing.assert_allclose([float(v) for v in first[1:-1]], feats[0], rtol=1e-6)
    means = dict(
        line.split("\t", 1) for line in (folder / "protein_means_conv3_1.tsv").read_text().splitlines()
    )
    cyto = np.array([float(v) for v in means["cytoplasmic"].split("\t")])
    np.testing.assert_allclose(cyto, feats[np.array(labels) == "cytoplasmic"].mean(axis=0), rtol=1e-4)
    assert not (tmp_path / "features.partial").exists()
    with pytest.raises(ConfigError, match="already exists"):
        extract(config, progress=False)


def test_one_batch_and_per_cell_extraction_agree(run, synthetic_yeast_dir):
    from pairedinpaint.data import index_cells, load_crops
    from pairedinpaint.predict import feature_extractor, features_of

    out, _ = run
    crops = load_crops(index_cells(synthetic_yeast_dir)[:5], layout="yeast", size=32, progress=False)
    extractor = feature_extractor(TINY, out / "model.weights.h5", ("conv4_1",))
    batched = features_of(extractor, crops, batch_size=5)[0]
    single = np.concatenate([features_of(extractor, crops[i : i + 1], batch_size=1)[0] for i in range(5)])
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-6)


def _deeploc(path, rng, classes, n_per):
    names = classes
    data = rng.random((len(names) * n_per, 8192)).astype(np.float32)
    onehot = np.repeat(np.eye(len(names)), n_per, axis=0)
    with h5py.File(path, "w") as f:
        f["data1"] = data
        f["Index1"] = onehot
        f["Index1_columns"] = np.array([n.encode() for n in names])


def test_deeploc_reader_merges_spindle_pole_and_drops_dead(tmp_path):
    from pairedinpaint.evaluate import read_deeploc

    _deeploc(
        tmp_path / "Chong_test_set.hdf5",
        np.random.default_rng(0),
        ["ACTIN", "SPINDLE", "SPINDLEPOLE", "DEAD"],
        3,
    )
    crops, labels = read_deeploc((tmp_path / "Chong_test_set.hdf5",))
    assert crops.shape == (9, 64, 64, 2) and crops.max() == pytest.approx(1.0)
    assert sorted(set(labels)) == ["ACTIN", "SPINDLE"] and (labels == "SPINDLE").sum() == 6


def test_benchmark_scores_trained_random_and_handcrafted(run, tmp_path, synthetic_yeast_dir):
    from pairedinpaint.evaluate import benchmark

    out, _ = run
    config = BenchmarkConfig(
        out=tmp_path / "bench",
        folder=synthetic_yeast_dir,
        model=TINY,
        weights=out / "model.weights.h5",
        layers=("conv3_1",),
    )
    folder = benchmark(config)
    table = (folder / "results.md").read_text()
    for method in ("trained", "random_init", "mahotas_haralick_zernike"):
        assert method in table
    rows = (folder / "results.csv").read_text().splitlines()
    assert len(rows) == 4
    accuracy = float(rows[-1].split(",")[2])
    assert accuracy > 0.5  # hand-crafted texture separates the 4 synthetic patterns (chance 0.25)


def test_benchmark_refuses_a_set_smaller_than_k(tmp_path):
    from pairedinpaint.data import write_layout
    from pairedinpaint.evaluate import benchmark

    write_layout(tmp_path / "d", np.random.rand(6, 2, 32, 32), ["A"] * 3 + ["B"] * 3)
    with pytest.raises(DataError, match="too few for k=11"):
        benchmark(BenchmarkConfig(out=tmp_path / "o", folder=tmp_path / "d", model=TINY))
