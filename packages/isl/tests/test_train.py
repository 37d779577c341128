"""Training: it learns, it resumes exactly, it distributes, it refuses bad runs up front."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from conftest import SMALL_TARGETS, make_tiny_network, two_logical_cpus  # noqa: E402

from cellsight_shared.testing import require_test_data  # noqa: E402
from isl.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from isl.errors import ConfigError, DataError  # noqa: E402
from isl.train import LOSS_LOG, train  # noqa: E402

# Two logical CPUs for the MirroredStrategy test.
TWO_CPUS = two_logical_cpus()


def _config(wells: list[Path], out: Path, **overrides: object) -> TrainConfig:
    settings: dict[str, object] = dict(
        wells=wells,
        out=out,
        model=ModelConfig(num_z_values=5, target_channels=SMALL_TARGETS, base_depth=24),
        data=DataConfig(
            input_channels=("PHASE_CONTRAST",),
            derived_channels={},
            patch_size=24,
            crop_size=48,
            patch_stride=24,
            crops_per_visit=2,
        ),
        steps=30,
        batch_size=8,
        learning_rate=1e-2,
        checkpoint_every=10,
        log_every=5,
        seed=0,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


def _losses(run: Path) -> dict[int, float]:
    with (run / LOSS_LOG).open(newline="") as handle:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(handle)}


def _weights(run: Path, config: TrainConfig) -> list[np.ndarray]:
    net = make_tiny_network(config.model)
    tf.train.Checkpoint(model=net).restore(
        tf.train.latest_checkpoint(str(run / "checkpoints"))
    ).expect_partial()
    return [v.numpy() for v in net.trainable_variables]


def test_training_lowers_the_loss_and_writes_its_run_folder(
    synthetic_wells: list[Path], tmp_path: Path
) -> None:
    """30 steps of the stand-in network cut the loss; config, provenance, logs and curve exist."""
    config = _config(synthetic_wells, tmp_path / "run")
    checkpoints = train(config, network_factory=make_tiny_network)
    losses = _losses(config.out)
    assert losses[1] > 0.95  # about a uniform predictor at the start
    assert losses[30] < 0.85 * losses[1]
    assert tf.train.latest_checkpoint(str(checkpoints)).endswith("ckpt-30")
    for name in ("config.json", "run_info.json", "loss_curve.png"):
        assert (config.out / name).is_file(), name
    assert list((config.out / "logs").glob("events.out.tfevents.*"))
    assert TrainConfig.model_validate_json((config.out / "config.json").read_text()) == config


def test_resumed_run_matches_an_uninterrupted_one(synthetic_wells: list[Path], tmp_path: Path) -> None:
    """Stopping at step 10 and resuming to 20 gives the weights and losses of one 20-step run."""
    tf.config.experimental.enable_op_determinism()
    straight = _config(synthetic_wells, tmp_path / "straight", steps=20)
    train(straight, network_factory=make_tiny_network)
    first = _config(synthetic_wells, tmp_path / "resumed", steps=10)
    train(first, network_factory=make_tiny_network)
    resumed = _config(synthetic_wells, tmp_path / "resumed", steps=20)
    train(resumed, network_factory=make_tiny_network)

    for a, b in zip(_weights(straight.out, straight), _weights(resumed.out, resumed), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    expected, got = _losses(straight.out), _losses(resumed.out)
    assert sorted(got) == sorted(expected) == [1, 5, 10, 15, 20]
    for step in (15, 20):
        assert got[step] == pytest.approx(expected[step], rel=1e-5)


@pytest.mark.skipif(not TWO_CPUS, reason="could not create two logical CPU devices")
def test_mirrored_strategy_on_two_devices_matches_one_device(
    synthetic_wells: list[Path], tmp_path: Path
) -> None:
    """The global batch split over two replicas gives the single-device loss and weights."""
    single = _config(synthetic_wells, tmp_path / "single", steps=6, checkpoint_every=6, log_every=1)
    train(single, network_factory=make_tiny_network)
    mirrored = _config(
        synthetic_wells, tmp_path / "mirrored", steps=6, checkpoint_every=6, log_every=1,
        strategy="mirrored",
    )  # fmt: skip
    train(mirrored, network_factory=make_tiny_network)
    info = (mirrored.out / "run_info.json").read_text()
    assert '"replicas": 2' in info
    for step, loss in _losses(single.out).items():
        assert _losses(mirrored.out)[step] == pytest.approx(loss, rel=1e-4)
    for a, b in zip(_weights(single.out, single), _weights(mirrored.out, mirrored), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.skipif(not TWO_CPUS, reason="could not create two logical CPU devices")
def test_batch_must_split_evenly_over_replicas(synthetic_wells: list[Path], tmp_path: Path) -> None:
    """A batch of 7 on two replicas is a ConfigError before anything is written."""
    config = _config(synthetic_wells, tmp_path / "run", batch_size=7, strategy="mirrored")
    with pytest.raises(ConfigError, match="multiple of the 2 replicas"):
        train(config, network_factory=make_tiny_network)
    assert not config.out.exists()


def test_foreign_or_different_run_directory_is_refused(synthetic_wells: list[Path], tmp_path: Path) -> None:
    """A non-empty non-run folder, or a run with another model, is not overwritten."""
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not an isl run directory"):
        train(_config(synthetic_wells, foreign), network_factory=make_tiny_network)

    run = tmp_path / "run"
    train(_config(synthetic_wells, run, steps=2), network_factory=make_tiny_network)
    other = ModelConfig(num_z_values=3, target_channels=SMALL_TARGETS, base_depth=24)
    with pytest.raises(ConfigError, match="different 'model'"):
        train(_config(synthetic_wells, run, model=other), network_factory=make_tiny_network)


def test_wells_smaller_than_the_crop_are_refused(synthetic_wells: list[Path], tmp_path: Path) -> None:
    """128-px wells cannot give 520-px crops: DataError naming the well, nothing created."""
    data = DataConfig(input_channels=("PHASE_CONTRAST",), derived_channels={})
    config = _config(synthetic_wells, tmp_path / "run", data=data)
    with pytest.raises(DataError, match="smaller than the 520x520"):
        train(config, network_factory=make_tiny_network)
    assert not config.out.exists()


def test_few_steps_on_the_real_sample_lower_the_loss(tmp_path: Path) -> None:
    """On the real Condition B well, 6 steps of a narrow network lower the loss.

    The original's sampling (520 crops -> 4 patches of 250), the well's 13 planes and 4 labels.
    """
    well = require_test_data("isl", "condition_b_sample")
    config = TrainConfig(
        wells=(well,),
        out=tmp_path / "run",
        model=ModelConfig(
            num_z_values=13,
            target_channels=("DAPI_CONFOCAL", "NFH_CONFOCAL", "MAP2_CONFOCAL", "NEURITE_CONFOCAL"),
            base_depth=16,
            projection_depth=4,
        ),
        data=DataConfig(crops_per_visit=1, expected_z_planes=13),
        steps=6,
        batch_size=4,
        learning_rate=1e-2,
        log_every=1,
        checkpoint_every=6,
    )
    train(config)
    losses = _losses(config.out)
    assert losses[1] > 0.95  # a uniform predictor scores 1
    assert losses[6] < losses[1] - 0.03


def test_small_network_learns_the_nuclear_label(demo_run: Path) -> None:
    """LEARNING: 45 steps on synthetic stacks -> Pearson r >= 0.7 for nuclei on a held-out well."""
    from cellsight_shared.io import read_json

    metrics = read_json(demo_run / "metrics" / "metrics.json")
    assert metrics["DAPI_CONFOCAL"]["pearson_r"] >= 0.7
    losses = _losses(demo_run / "run")
    assert losses[45] < 0.8 * losses[1]


def test_multi_worker_strategy_needs_a_cluster_description(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without TF_CONFIG, 'multi_worker_mirrored' is a ConfigError that says what to do."""
    from isl.train import make_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        make_strategy("multi_worker_mirrored")


def test_batch_norm_recalibration_makes_inference_match_training_mode() -> None:
    """Precise BN from one batch: inference on that batch matches training-mode output.

    Not exactly: moving variances are Bessel-corrected, batch normalisation is not, and the deep
    layers see few pixels (6x6 in tower 4), so about 1 % remains.
    """
    from isl.model import build_model
    from isl.train import recalibrate_batch_norm

    model = ModelConfig(num_z_values=2, target_channels=("DAPI_CONFOCAL",), base_depth=16, projection_depth=4)
    net = build_model(model, seed=1)
    x = tf.random.stateless_uniform([2, 250, 250, model.input_depth], seed=[1, 2])
    training_mode = net(x, training=True).numpy()
    before = net(x, training=False).numpy()
    layers = recalibrate_batch_norm(net, [x])
    after = net(x, training=False).numpy()
    assert layers > 100  # every module has BN layers; so does every head
    scale = np.abs(training_mode).max()
    error_after = np.abs(after - training_mode).max()
    assert error_after < 0.03 * scale
    assert np.abs(before - training_mode).max() > 10 * error_after


def test_patch_size_off_the_16_pixel_grid_is_refused(synthetic_wells: list[Path], tmp_path: Path) -> None:
    """The network takes 250 + 16k inputs: 260 is a ConfigError before anything is created."""
    data = DataConfig(input_channels=("PHASE_CONTRAST",), derived_channels={}, patch_size=260, crop_size=260)
    config = _config(synthetic_wells, tmp_path / "run", data=data)
    with pytest.raises(ConfigError, match="250 \\+ 16k"):
        train(config)
    assert not config.out.exists()


def _small_real_config(wells: list[Path], out: Path, **overrides: object) -> TrainConfig:
    settings: dict[str, object] = dict(
        wells=wells,
        out=out,
        model=ModelConfig(num_z_values=5, target_channels=SMALL_TARGETS, base_depth=16, projection_depth=4),
        data=DataConfig(
            input_channels=("PHASE_CONTRAST",),
            derived_channels={},
            patch_size=250,
            crop_size=384,
            patch_stride=134,
            crops_per_visit=1,
        ),
        steps=2,
        batch_size=4,
        learning_rate=1e-3,
        log_every=1,
        checkpoint_every=2,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


@pytest.fixture(scope="module")
def large_wells(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two 384x384 synthetic wells (the real network needs 250-px patches)."""
    from isl.synthetic import write_synthetic_wells

    return write_synthetic_wells(tmp_path_factory.mktemp("large"), 2, shape=(384, 384), n_planes=5)


@pytest.mark.slow
@pytest.mark.skipif(not TWO_CPUS, reason="could not create two logical CPU devices")
def test_real_network_trains_under_mirrored_strategy(large_wells: list[Path], tmp_path: Path) -> None:
    """The BN network on two replicas: finite losses, synchronised moving statistics, checkpoint."""
    config = _small_real_config(large_wells, tmp_path / "run", strategy="mirrored")
    checkpoints = train(config)
    losses = _losses(config.out)
    assert all(np.isfinite(v) for v in losses.values()) and sorted(losses) == [1, 2]
    assert tf.train.latest_checkpoint(str(checkpoints)).endswith("ckpt-2")


@pytest.mark.slow
def test_fine_tuning_from_a_tf1_checkpoint_with_a_new_z_count_and_label(
    large_wells: list[Path], tmp_path: Path
) -> None:
    """Condition E style: 13-z TF1 weights -> a 5-z network with a new head; the trunk is kept."""
    from isl.checkpoint import save_tf1_checkpoint
    from isl.model import build_model

    source_model = ModelConfig(
        num_z_values=13, target_channels=("DAPI_CONFOCAL",), base_depth=16, projection_depth=4
    )
    source = build_model(source_model, seed=5)
    save_tf1_checkpoint(source, tmp_path / "tf1" / "model.ckpt", global_step=7)
    config = _small_real_config(
        large_wells, tmp_path / "run", restore_from=tmp_path / "tf1", restore_inputs=False, steps=1,
        learning_rate=1e-12, recalibrate_batch_norm=0,
    )  # fmt: skip
    train(config)
    tuned = build_model(config.model, seed=99)
    tf.train.Checkpoint(model=tuned).restore(
        tf.train.latest_checkpoint(str(config.out / "checkpoints"))
    ).expect_partial()
    name = "upper_recursion_0/expand_rv2/Conv/weights"
    np.testing.assert_allclose(
        tuned.variables_by_name[name].numpy(), source.variables_by_name[name].numpy(), atol=1e-6
    )
    assert tuned.variables_by_name["Conv/weights"].shape[2] == 10  # 5 z x [image, mask]


#: Losses (total, then per head) of the first three steps of the real narrow network below,
#: recorded with the code before the training-speed changes (strided-slice crops, TensorFlow's
#: default CPU allocator; issue 13), at the paper's learning rate of 1e-4. The faster step must
#: reproduce them: step 1 bit for bit, later steps within float32 rounding (the gradient of the
#: crops is now a Pad summed in another order; measured differences 3e-6 to 2e-5 relative).
GOLDEN_LOSSES = [
    [0.7556216716766357, 1.009657621383667, 1.0051648616790771, 1.0076640844345093, 0.0],
    [0.7547907829284668, 1.00850248336792, 1.0041017532348633, 1.0065587759017944, 0.0],
    [0.7541180849075317, 1.0077158212661743, 1.0032906532287598, 1.0054658651351929, 0.0],
]


def test_training_step_reproduces_the_recorded_losses_of_the_first_steps() -> None:
    """Three Adam steps of the real network on a fixed batch give the golden losses."""
    from isl.model import build_model
    from isl.optimizer import Adam
    from isl.train.run import _make_train_step

    model = ModelConfig(
        num_z_values=2, target_channels=("DAPI_CONFOCAL", "MAP2_CONFOCAL"), base_depth=16, projection_depth=4
    )
    rng = np.random.default_rng(7)
    x = rng.random((2, 266, 266, model.input_depth), dtype=np.float32)
    x[..., 1::2] = 1.0
    bins = rng.integers(0, 256, (2, 24, 24, model.num_heads)).astype(np.int32)
    weights = np.ones((2, 24, 24, model.num_heads), np.float32)
    weights[..., -1] = 0.0  # an absent target: loss 0, still counted in the mean
    net = build_model(model, seed=3)
    optimizer = Adam(net.trainable_variables, learning_rate=1e-4)
    step = tf.Variable(0, dtype=tf.int64)
    train_step = _make_train_step(tf.distribute.get_strategy(), net, optimizer, model.num_input_heads, step)
    iterator = iter(tf.data.Dataset.from_tensors((x, bins, weights)).repeat())
    got = []
    for i in range(3):
        loss, per_head = train_step(iterator)
        step.assign(i + 1)
        got.append([float(loss.numpy()), *per_head.numpy().tolist()])
    np.testing.assert_allclose(got[0], GOLDEN_LOSSES[0], rtol=1e-6, atol=1e-7)
    # Later steps: Adam's first updates are sign(gradient) * lr, so rounding in the gradient sum
    # (thread partitioning, op order) shows up at ~2e-5; a changed loss or update is >= 1e-3.
    np.testing.assert_allclose(got, GOLDEN_LOSSES, rtol=1e-4, atol=1e-7)
    assert got[2][0] < got[0][0]  # and it learns


def test_a_non_finite_loss_is_a_clear_error_naming_the_step(
    synthetic_wells: list[Path], tmp_path: Path
) -> None:
    """An exploding learning rate gives a TrainingError with the step and what to try."""
    from isl.errors import TrainingError

    config = _config(synthetic_wells, tmp_path / "run", learning_rate=1e30, steps=20, checkpoint_every=1)
    with pytest.raises(TrainingError, match=r"loss became (nan|inf) at step \d+.*lower learning_rate"):
        train(config, network_factory=make_tiny_network)


def test_out_of_memory_is_a_clear_error(synthetic_wells: list[Path], tmp_path: Path) -> None:
    """TensorFlow's ResourceExhaustedError becomes a ResourceError saying what to lower."""
    from isl.errors import ResourceError

    def exhausted(config, seed):  # noqa: ANN001, ANN202
        net = make_tiny_network(config, seed)

        class Exhausted(type(net)):
            def __call__(self, x, training=False):  # noqa: ANN001, ANN204
                raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")

        net.__class__ = Exhausted
        return net

    with pytest.raises(ResourceError, match="out of memory at step 1 .*lower batch_size"):
        train(_config(synthetic_wells, tmp_path / "run"), network_factory=exhausted)


@pytest.mark.parametrize("sync", [True, False])
def test_the_config_chooses_the_batch_norm_mode(
    synthetic_wells: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sync: bool
) -> None:
    """``sync_batch_norm`` in the TOML reaches the network (the keyword overrides it only if given)."""
    import isl.train.run as run_module

    seen: list[bool] = []

    def record(net: object, enabled: bool) -> int:
        seen.append(enabled)
        raise KeyboardInterrupt  # stop before any step: only the mode matters here

    monkeypatch.setattr(run_module, "set_batch_norm_sync", record)
    config = _config(synthetic_wells, tmp_path / "run", sync_batch_norm=sync)

    with pytest.raises(KeyboardInterrupt):
        run_module.train(config, network_factory=make_tiny_network)

    assert seen == [sync]
