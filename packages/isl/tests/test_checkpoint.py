"""Loading and writing checkpoints in the published TF1 layout, by variable name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from isl.checkpoint import (
    list_tf1_variables,
    load_tf1_checkpoint,
    resolve_checkpoint,
    save_tf1_checkpoint,
    set_weights,
)
from isl.config.model import ModelConfig
from isl.errors import CheckpointError
from isl.model import build_model, variable_shapes

TINY = ModelConfig(
    num_z_values=2, target_channels=("DAPI_CONFOCAL", "MAP2_CONFOCAL"), base_depth=24,
    projection_depth=4,
)  # fmt: skip


def random_weights(config: ModelConfig, seed: int) -> dict[str, np.ndarray]:
    """Random values for every TF1 variable of ``config`` (positive BN variances)."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in variable_shapes(config).items():
        if name.endswith("moving_variance"):
            value = rng.uniform(0.5, 2.0, shape)
        elif name.endswith("gamma"):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.normal(0.0, 0.3, shape)
        weights[name] = value.astype(np.float32)
    return weights


def write_tf1_checkpoint(prefix: Path, tensors: dict[str, np.ndarray]) -> Path:
    """Write ``tensors`` under their names exactly as TF1's Saver would, with raw SaveV2."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=list(tensors),
        shape_and_slices=[""] * len(tensors),
        tensors=[tf.constant(v) for v in tensors.values()],
    )
    return prefix


def snapshot(net) -> dict[str, np.ndarray]:  # noqa: ANN001
    """Copies of every variable, by TF1 name."""
    return {name: v.numpy().copy() for name, v in net.variables_by_name.items()}


@pytest.fixture(scope="module")
def patch() -> np.ndarray:
    """One 250x250 input patch for TINY."""
    return np.random.default_rng(9).random((1, 250, 250, TINY.input_depth), dtype=np.float32)


def test_loading_a_tf1_checkpoint_reproduces_the_forward_pass_bit_for_bit(
    tmp_path: Path, patch: np.ndarray
) -> None:
    """A TF1 checkpoint (with Adam slots and global_step) loads by name, bit-for-bit.

    The loaded net computes exactly what a net with the same weights assigned directly does.
    """
    weights = random_weights(TINY, seed=1)
    extras = {
        "global_step": np.array(984658, np.int64),
        "beta1_power": np.array(0.9, np.float32),
        "Conv/weights/Adam": np.zeros_like(weights["Conv/weights"]),
        "Conv/weights/Adam_1": np.zeros_like(weights["Conv/weights"]),
    }
    prefix = write_tf1_checkpoint(tmp_path / "train" / "model.ckpt-984658", {**weights, **extras})

    loaded = build_model(TINY, seed=11)
    report = load_tf1_checkpoint(loaded, tmp_path / "train")
    direct = build_model(TINY, seed=12)
    for name, variable in direct.variables_by_name.items():
        variable.assign(weights[name])
    fresh = build_model(TINY, seed=11)

    assert report.prefix == prefix and report.global_step == 984658
    assert len(report.restored) == len(weights) and report.kept == ()
    assert set(report.ignored) == set(extras)
    out_loaded, out_direct = loaded(patch).numpy(), direct(patch).numpy()
    assert np.array_equal(out_loaded, out_direct)
    assert np.abs(out_loaded - fresh(patch).numpy()).max() > 1e-2  # the load changed something


@pytest.mark.parametrize("problem", ["missing", "mismatched", "unexpected"])
def test_checkpoint_that_does_not_fit_raises_and_leaves_the_net_untouched(
    tmp_path: Path, problem: str
) -> None:
    """Missing, mismatched and unexpected variables are all listed by name; nothing is assigned."""
    weights = random_weights(TINY, seed=2)
    name = "lower_scale_0_recursion_3/reduce_rv2/Conv/weights"
    if problem == "missing":
        del weights[name]
    elif problem == "mismatched":
        weights[name] = np.zeros((1, 1, 3, 3), np.float32)
    else:
        name = "lower_scale_0_recursion_99/reduce_rv2/Conv/weights"
        weights[name] = np.zeros((1, 1, 3, 3), np.float32)
    write_tf1_checkpoint(tmp_path / "model.ckpt-1", weights)
    net = build_model(TINY, seed=0)
    before = snapshot(net)

    with pytest.raises(CheckpointError) as excinfo:
        load_tf1_checkpoint(net, tmp_path / "model.ckpt-1")

    message = str(excinfo.value)
    assert name in message and f"1 {problem}" in message
    after = snapshot(net)
    assert all(np.array_equal(before[n], after[n]) for n in before)


def test_different_z_count_is_refused_with_a_hint_then_transferred(tmp_path: Path) -> None:
    """A 2-z checkpoint into a 3-z net is refused with a hint, then loads with transfer=True.

    The projection and the new 0.5 head keep their initial values, everything else is restored.
    """
    weights = random_weights(TINY, seed=3)
    write_tf1_checkpoint(tmp_path / "model.ckpt-5", weights)
    config = TINY.model_copy(update={"num_z_values": 3})
    net = build_model(config, seed=0)
    initial = snapshot(net)

    with pytest.raises(CheckpointError, match="num_z_values = 2"):
        load_tf1_checkpoint(net, tmp_path)
    report = load_tf1_checkpoint(net, tmp_path, transfer=True)

    after = snapshot(net)
    new_head = "head/0.5/TRANSMISSION/residual_v2_conv"
    kept = {n for n in after if n.startswith(("Conv/", new_head))}
    assert set(report.kept) == kept and len(kept) == 2 + 6
    assert all(np.array_equal(after[n], initial[n]) for n in kept)
    restored = set(after) - kept
    assert restored == set(report.restored)
    assert all(np.array_equal(after[n], weights[n]) for n in restored)
    assert "Conv/weights" in report.ignored


def test_transfer_to_a_new_target_channel_keeps_the_new_head(tmp_path: Path) -> None:
    """Channels are configuration: a net with a new label loads the rest of the checkpoint."""
    weights = random_weights(TINY, seed=4)
    write_tf1_checkpoint(tmp_path / "model.ckpt-7", weights)
    config = TINY.model_copy(update={"target_channels": ("DAPI_CONFOCAL", "GFAP_CONFOCAL")})
    net = build_model(config, seed=0)
    initial = snapshot(net)

    with pytest.raises(CheckpointError, match="GFAP_CONFOCAL"):
        load_tf1_checkpoint(net, tmp_path)
    report = load_tf1_checkpoint(net, tmp_path, transfer=True)

    after = snapshot(net)
    gfap = [n for n in after if "GFAP_CONFOCAL" in n]
    assert sorted(report.kept) == sorted(gfap)
    assert all(np.array_equal(after[n], initial[n]) for n in gfap)
    dapi = "head/MAXPROJECT/DAPI_CONFOCAL/residual_v2_conv/Conv/weights"
    assert np.array_equal(after[dapi], weights[dapi])
    assert any("MAP2_CONFOCAL" in n for n in report.ignored)


def test_restore_heads_false_skips_every_head(tmp_path: Path) -> None:
    """The original's --norestore_logits: trunk restored, heads untouched."""
    weights = random_weights(TINY, seed=5)
    write_tf1_checkpoint(tmp_path / "model.ckpt-3", weights)
    net = build_model(TINY, seed=0)
    initial = snapshot(net)

    report = load_tf1_checkpoint(net, tmp_path, restore_heads=False)

    heads = {n for n in initial if n.startswith("head/")}
    assert set(report.kept) == heads and len(heads) == TINY.num_heads * 6
    after = snapshot(net)
    assert all(np.array_equal(after[n], initial[n]) for n in heads)
    assert np.array_equal(after["Conv/weights"], weights["Conv/weights"])


def test_restore_inputs_false_skips_projection_and_input_heads(tmp_path: Path) -> None:
    """restore_inputs=False re-uses only the trunk and the target heads, whatever the z-count."""
    write_tf1_checkpoint(tmp_path / "model.ckpt-3", random_weights(TINY, seed=6))
    config = TINY.model_copy(update={"num_z_values": 3})
    net = build_model(config, seed=0)

    report = load_tf1_checkpoint(net, tmp_path, restore_inputs=False)

    assert {n.split("/")[0] for n in report.kept} == {"Conv", "head"}
    assert all(not n.startswith("head/MAXPROJECT") for n in report.kept)
    assert len(report.kept) == 2 + config.num_input_heads * 6
    assert len([n for n in report.ignored if n.startswith("head/")]) == TINY.num_input_heads * 6


def test_save_tf1_checkpoint_round_trips(tmp_path: Path, patch: np.ndarray) -> None:
    """What save_tf1_checkpoint writes has the original names and loads into a fresh net."""
    source = build_model(TINY, seed=0)
    set_weights(source, random_weights(TINY, seed=7))
    prefix = save_tf1_checkpoint(source, tmp_path / "ckpt" / "model.ckpt-42", global_step=42)

    names = list_tf1_variables(tmp_path / "ckpt")
    target = build_model(TINY, seed=1)
    report = load_tf1_checkpoint(target, tmp_path / "ckpt")

    assert set(names) == set(variable_shapes(TINY)) | {"global_step"}
    assert report.global_step == 42 and resolve_checkpoint(tmp_path / "ckpt") == prefix
    assert np.array_equal(target(patch).numpy(), source(patch).numpy())
    with pytest.raises(CheckpointError, match="already exists"):
        save_tf1_checkpoint(source, prefix)
    assert sorted(p.name for p in prefix.parent.iterdir()) == [
        "checkpoint", "model.ckpt-42.data-00000-of-00001", "model.ckpt-42.index",
    ]  # fmt: skip


def test_checkpoint_file_from_another_machine_falls_back_to_newest_index(tmp_path: Path) -> None:
    """The published zip's 'checkpoint' file names a foreign path; the newest step is used."""
    for step in (5, 40):
        write_tf1_checkpoint(tmp_path / f"model.ckpt-{step}", {"global_step": np.int64(step)})
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "/usr/local/x/model.ckpt-5"\n')
    (tmp_path / "empty").mkdir()

    assert resolve_checkpoint(tmp_path) == tmp_path / "model.ckpt-40"
    assert resolve_checkpoint(tmp_path / "model.ckpt-5.index") == tmp_path / "model.ckpt-5"
    with pytest.raises(CheckpointError, match="no TF1 checkpoint"):
        resolve_checkpoint(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="not found"):
        resolve_checkpoint(tmp_path / "model.ckpt-6")


def test_tf2_object_checkpoint_is_refused_with_advice(tmp_path: Path) -> None:
    """A tf.train.Checkpoint (isl train's own format) is not mistaken for a TF1 checkpoint."""
    net = build_model(TINY, seed=0)
    path = tf.train.Checkpoint(model=net).write(str(tmp_path / "ckpt"))

    with pytest.raises(CheckpointError, match="tf.train.Checkpoint"):
        load_tf1_checkpoint(net, path)
