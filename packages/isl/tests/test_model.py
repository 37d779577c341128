"""The concordance network: configuration, layer plan, parameter count, geometry, layer semantics."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import randomize_batch_norm
from pydantic import ValidationError

from isl.config.model import DEFAULT_TARGET_CHANNELS, ModelConfig

TINY = ModelConfig(
    num_z_values=2, target_channels=("DAPI_CONFOCAL", "MAP2_CONFOCAL"), base_depth=24,
    projection_depth=4,
)  # fmt: skip


# -- configuration (no TensorFlow) ----------------------------------------------------------------


def test_default_config_has_the_original_heads_in_order() -> None:
    """26 z heads labelled like the checkpoint (0.0, 0.04, ..., 1.0), then the 9 targets."""
    config = ModelConfig()
    names = config.head_names
    assert config.num_heads == 35 and config.num_input_heads == 26
    assert config.input_depth == 52
    assert names[:3] == ("0.0/TRANSMISSION", "0.04/TRANSMISSION", "0.08/TRANSMISSION")
    assert names[25] == "1.0/TRANSMISSION"
    assert names[26:] == tuple(f"MAXPROJECT/{c}" for c in DEFAULT_TARGET_CHANNELS)
    assert names[-1] == "MAXPROJECT/NEURITE_CONFOCAL"
    assert ModelConfig(num_z_values=13).z_labels[1] == "0.0833"


def test_input_planes_are_interleaved_image_then_mask_per_z() -> None:
    """Depth index = 2 z + mask: z0 image, z0 mask, z1 image, ..."""
    config = ModelConfig()
    assert config.input_plane_index(0) == 0
    assert config.input_plane_index(0, mask=True) == 1
    assert config.input_plane_index(25, mask=True) == 51


@pytest.mark.parametrize(
    "fields",
    [
        {"target_channels": ("DAPI CONFOCAL",)},
        {"target_channels": ("DAPI", "DAPI")},
        {"target_channels": ()},
        {"input_channels": ("TRANSMISSION",), "target_channels": ("TRANSMISSION",)},
        {"num_z_values": 0},
        {"base_depth": 4},
        {"num_z": 26},
    ],
)
def test_invalid_model_config_is_rejected(fields: dict) -> None:
    """Bad names, duplicates, empty lists, overlaps, out-of-range values and unknown keys fail."""
    with pytest.raises(ValidationError):
        ModelConfig(**fields)


def test_model_config_is_frozen() -> None:
    """A config cannot be changed after validation."""
    with pytest.raises(ValidationError):
        ModelConfig().base_depth = 10  # type: ignore[misc]


# -- layer plan (no TensorFlow) -------------------------------------------------------------------


def test_paper_configuration_parameter_count_matches_the_brief() -> None:
    """9,273,708 trainable (9,309,480 with BN statistics) for 26 z; 8,842,316 for 13 z."""
    from isl.model import count_parameters, variable_shapes

    assert count_parameters(ModelConfig()) == 9_273_708
    assert count_parameters(ModelConfig(), trainable_only=False) == 9_309_480
    assert len(variable_shapes(ModelConfig())) == 1252
    assert count_parameters(ModelConfig(num_z_values=13)) == 8_842_316
    assert len(variable_shapes(ModelConfig(num_z_values=13))) == 1174


def test_variable_names_and_shapes_follow_the_published_checkpoint() -> None:
    """Spot checks of the TF1 names and shapes listed in the brief (section 7.2)."""
    from isl.model import variable_shapes

    shapes = variable_shapes(ModelConfig())
    assert shapes["Conv/weights"] == (1, 1, 52, 16)
    assert shapes["Conv/biases"] == (16,)
    assert shapes["downscale_1_0/expand_rv2/Conv/weights"] == (4, 4, 32, 50)
    assert shapes["downscale_1_0/reduce_rv2/BatchNorm/beta"] == (66,)
    assert shapes["downscale_1_0/reduce_rv2/Conv/weights"] == (1, 1, 132, 16)
    assert shapes["upscale_1_0/expand_rv2/Conv2d_transpose/weights"] == (4, 4, 60, 40)
    assert shapes["upscale_1_0/reduce_rv2/Conv/weights"] == (1, 1, 120, 12)
    head = "head/0.04/TRANSMISSION/residual_v2_conv"
    assert shapes[f"{head}/Conv/weights"] == (1, 1, 128, 256)
    assert shapes[f"{head}/Conv/biases"] == (256,)
    assert shapes["head/MAXPROJECT/NEURITE_CONFOCAL/residual_v2_conv/BatchNorm/gamma"] == (64,)
    kinds = {name.rsplit("/", 1)[-1] for name in shapes}
    assert kinds == {"beta", "gamma", "moving_mean", "moving_variance", "weights", "biases"}
    assert sum(name.endswith("/biases") for name in shapes) == 36  # projection + 35 heads
    assert sum(name.endswith("/weights") for name in shapes) == 244


def test_module_depths_and_sizes_match_the_brief() -> None:
    """Tower depths 16+12+12+12+12 = 64 at 36 px, 104 modules, the brief's per-module depths."""
    from isl.model import network_plan

    plan = network_plan(ModelConfig())
    assert [t.crop for t in plan.towers] == [72, 102, 146, 202, 250]
    assert [t.out_depth for t in plan.towers] == [16, 12, 12, 12, 12]
    assert [len(t.lower) for t in plan.towers] == [18, 14, 10, 6, 2]
    assert plan.embedding_depth == 64 and len(plan.modules) == 104 and len(plan.upper) == 14
    by_name = {m.name: m for m in plan.modules}
    assert [m.out_depth for m in plan.towers[2].lower] == [16, 16, 16, 18, 20, 20, 24, 26, 30, 34]
    assert [m.out_depth for m in plan.towers[3].lower] == [24, 26, 30, 34, 40, 50]
    assert (by_name["downscale_4_3"].expansion, by_name["downscale_4_3"].out_depth) == (218, 40)
    assert (by_name["downscale_4_3_in_scale"].out_size, by_name["downscale_4_3"].in_size) == (10, 26)
    assert [m.out_size for m in plan.towers[4].down[::2]] == [124, 60, 28, 12]
    up = by_name["upscale_1_0"]
    assert (up.in_size, up.out_size, up.expansion, up.reduction, up.out_depth) == (20, 42, 60, 12, 12)
    assert by_name["upper_recursion_0"].in_size == 36
    assert (by_name["upper_recursion_13"].out_size, by_name["upper_recursion_13"].expansion) == (
        8,
        272,
    )


def test_forward_pass_costs_about_8_gflops_per_patch() -> None:
    """4.08 G multiply-accumulates (8.2 GFLOPs) for one 250-px patch of the paper network."""
    from isl.model import count_macs

    assert count_macs(ModelConfig()) == pytest.approx(4.078e9, rel=1e-3)


def test_geometry_helpers() -> None:
    """250 + 16k in -> 8 + 16k out; other sizes are refused."""
    from isl.model import input_size, output_size

    assert output_size(250) == 8 and output_size(250 + 16 * 5) == 88
    assert input_size(24) == 266
    with pytest.raises(ValueError, match="250 \\+ 16k"):
        output_size(258)
    with pytest.raises(ValueError):
        input_size(16)


# -- the TensorFlow network -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_net():  # noqa: ANN201
    """A shrunken network (2 z-values, 2 targets, depth >= 4) with random BN statistics."""
    from isl.model import build_model

    net = build_model(TINY, seed=3)
    return randomize_batch_norm(net)


def test_built_paper_network_has_the_plan_variables() -> None:
    """The TF network holds exactly the plan's TF1 names and shapes, 9,273,708 trainable."""
    from isl.model import build_model, variable_shapes

    net = build_model(ModelConfig())
    shapes = {name: tuple(v.shape) for name, v in net.variables_by_name.items()}
    assert shapes == variable_shapes(ModelConfig())
    assert list(shapes) == list(variable_shapes(ModelConfig()))  # creation order too
    assert net.count_parameters() == 9_273_708
    assert net.count_parameters(trainable_only=False) == 9_309_480
    assert len(net.trainable_variables) == 1252 - 2 * 243


def test_patch_gives_8x8_logits_per_head(tiny_net) -> None:  # noqa: ANN001
    """[B, 250, 250, D] -> [B, 8, 8, heads, 256]; non-square 250 + 16k inputs work too."""
    rng = np.random.default_rng(1)
    logits = tiny_net(rng.random((2, 250, 250, TINY.input_depth), dtype=np.float32))
    assert logits.shape == (2, 8, 8, TINY.num_heads, 256)
    assert tiny_net.head_names == TINY.head_names
    wide = tiny_net.embed(rng.random((1, 266, 282, TINY.input_depth), dtype=np.float32))
    assert wide.shape == (1, 24, 40, tiny_net.plan.embedding_depth)
    assert tiny_net.output_offset == 121 and tiny_net.output_size(266) == 24


def test_larger_input_equals_patches_at_16_pixel_offsets(tiny_net) -> None:  # noqa: ANN001
    """Margin crops make a 266-px input compute the 250-px patches at offsets 0 and 16."""
    x = np.random.default_rng(2).random((1, 266, 250, TINY.input_depth), dtype=np.float32)
    big = tiny_net.embed(x).numpy()
    for offset in (0, 16):
        patch = tiny_net.embed(x[:, offset : offset + 250]).numpy()
        np.testing.assert_allclose(big[:, offset : offset + 8], patch, atol=1e-5)
    shifted = tiny_net.embed(x[:, 8:258]).numpy()
    assert np.abs(big[:, 8:16] - shifted).max() > 1e-3  # 8-px offsets are a different phase


def test_wrong_input_shapes_raise_data_error(tiny_net) -> None:  # noqa: ANN001
    """Wrong depth or a side that is not 250 + 16k is refused before any computation."""
    from isl.errors import DataError

    with pytest.raises(DataError, match="250 \\+ 16k"):
        tiny_net(np.zeros((1, 260, 250, TINY.input_depth), np.float32))
    with pytest.raises(DataError, match="2 z-values"):
        tiny_net(np.zeros((1, 250, 250, TINY.input_depth + 2), np.float32))


def test_training_mode_updates_bn_statistics_and_yields_gradients() -> None:
    """training=True uses batch statistics, moves the averages by 0.1 %, gives every gradient."""
    import tensorflow as tf

    from isl.model import build_model

    net = build_model(TINY, seed=0)
    x = np.random.default_rng(3).random((2, 250, 250, TINY.input_depth), dtype=np.float32)
    projection, bn = net.projection, net.towers[0][0].expand.bn  # tower 0's first BN
    before = bn.moving_mean.numpy().copy()
    net(x, training=False)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(net(x, training=True)))
    grads = tape.gradient(loss, net.trainable_variables)
    assert all(g is not None for g in grads)
    assert all(np.isfinite(g.numpy()).all() for g in grads)
    projected = tf.nn.conv2d(x, projection.weights, 1, "VALID") + projection.biases
    batch_mean = tf.reduce_mean(projected[:, 89:-89, 89:-89], axis=[0, 1, 2]).numpy()
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.001 * batch_mean, rtol=1e-4, atol=1e-7)


# -- layer semantics against numpy ----------------------------------------------------------------


def _bn(x: np.ndarray, mean: np.ndarray, var: np.ndarray, beta: np.ndarray, gamma: np.ndarray):  # noqa: ANN202
    return (x - mean) / np.sqrt(var + 1e-3) * gamma + beta


def test_rv2_unit_is_bn_relu_tanh_conv_with_pre_bn_max_pool() -> None:
    """rv2 = conv(concat[ReLU(BN x), tanh(BN x)]) followed by max-pool(x) channels."""
    from isl.model.layers import ResidualV2Conv

    rng = np.random.default_rng(4)
    unit = ResidualV2Conv("u", 2, 3, kernel=3, stride=1, rng=rng, max_pool=True)
    values = {
        "mean": rng.normal(size=2), "var": rng.uniform(0.5, 2, 2), "beta": rng.normal(size=2),
        "gamma": rng.uniform(0.5, 2, 2),
    }  # fmt: skip
    unit.bn.moving_mean.assign(values["mean"].astype(np.float32))
    unit.bn.moving_variance.assign(values["var"].astype(np.float32))
    unit.bn.beta.assign(values["beta"].astype(np.float32))
    unit.bn.gamma.assign(values["gamma"].astype(np.float32))
    x = rng.normal(size=(1, 5, 5, 2)).astype(np.float32)
    y = unit(x, training=False).numpy()

    bn = _bn(x, values["mean"], values["var"], values["beta"], values["gamma"])
    act = np.concatenate([np.maximum(bn, 0), np.tanh(bn)], axis=-1)
    w = unit.weights.numpy()
    conv = np.zeros((1, 3, 3, 3))
    pool = np.zeros((1, 3, 3, 2))
    for i in range(3):
        for j in range(3):
            conv[0, i, j] = np.einsum("abc,abcd->d", act[0, i : i + 3, j : j + 3], w)
            pool[0, i, j] = x[0, i : i + 3, j : j + 3].max(axis=(0, 1))
    np.testing.assert_allclose(y, np.concatenate([conv, pool], axis=-1), atol=1e-5)


@pytest.mark.parametrize("kind", ["in_scale", "down", "up"])
def test_minception_residual_paths(kind: str) -> None:
    """With a zero reduction a module returns its residual passthrough.

    That is a crop, a crop + 2x2 mean, or nearest-neighbour x2 with a symmetric 1-px pad; depths
    are zero-padded (conv) or cut (deconv).
    """
    from isl.model.layers import Minception
    from isl.model.plan import ModuleSpec

    size = {"in_scale": 8, "down": 10, "up": 4}[kind]
    out = {"in_scale": 6, "down": 4, "up": 10}[kind]
    reduction = 3 if kind == "up" else 5
    spec = ModuleSpec("m", kind, 4, 6, reduction, min(4, 3) if kind == "up" else 5, size, out, 1,
                      0 if kind == "up" else 1)  # fmt: skip
    module = Minception(spec, np.random.default_rng(0))
    module.reduce.weights.assign(np.zeros(module.reduce.weights.shape, np.float32))
    x = np.random.default_rng(5).normal(size=(1, size, size, 4)).astype(np.float32)
    y = module(x, training=False).numpy()

    if kind == "in_scale":
        expected = np.concatenate([x[:, 1:-1, 1:-1], np.zeros((1, 6, 6, 1))], axis=-1)
    elif kind == "down":
        inner = x[:, 1:-1, 1:-1]
        pooled = inner.reshape(1, 4, 2, 4, 2, 4).mean(axis=(2, 4))
        expected = np.concatenate([pooled, np.zeros((1, 4, 4, 1))], axis=-1)
    else:
        upsampled = x.repeat(2, axis=1).repeat(2, axis=2)
        expected = np.pad(upsampled, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="symmetric")[..., :3]
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, atol=1e-6)
