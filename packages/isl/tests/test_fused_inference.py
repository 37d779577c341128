"""The fused inference kernels: XLA activations and head statistics equal their definitions."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import randomize_batch_norm

from isl.config.model import ModelConfig
from isl.inference import STATISTICS, distribution_statistics, predict_image, predict_statistics, stitching
from isl.inference.statistics import tf_logit_statistics, tf_statistics
from isl.model import build_model, layers

SMALL = ModelConfig(
    num_z_values=2, target_channels=("DAPI_CONFOCAL",), base_depth=8, projection_depth=4,
)  # fmt: skip


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _hard_distributions(bins: int) -> np.ndarray:
    """Broad, peaked, tied and block-boundary distributions over ``bins`` bins."""
    rng = np.random.default_rng(4)
    rows = [_softmax(rng.normal(0, s, (40, bins))) for s in (0.5, 3.0, 12.0)]
    tie = np.zeros((1, bins))
    tie[0, [bins // 4, bins - 1 - bins // 4]] = 0.5  # equal modes (the first wins); median on a tie
    point = np.zeros((1, bins))
    point[0, bins // 2] = 1.0  # zero spread
    edge = np.zeros((1, bins))
    edge[0, : min(16, bins // 2)] = 0.49 / min(16, bins // 2)  # cdf just below 0.5 at a block end
    edge[0, -1] = 0.51
    return np.concatenate([*rows, tie, point, edge]).astype(np.float32)


@pytest.mark.parametrize("bins", [256, 48, 4])
@pytest.mark.parametrize("jit", [False, True])
def test_tf_statistics_equal_the_numpy_definition(bins: int, jit: bool) -> None:
    """Blocked median and first-maximum mode (with and without XLA) equal the definitions."""
    probs = _hard_distributions(bins)
    fn = tf.function(tf_statistics, autograph=False, jit_compile=jit)

    got = fn(tf.constant(probs)).numpy()

    reference = distribution_statistics(probs)
    for index, name in enumerate(STATISTICS):
        np.testing.assert_allclose(got[:, index], reference[name], atol=2e-6, err_msg=name)


def test_logit_statistics_are_the_statistics_of_the_softmax() -> None:
    """tf_logit_statistics(l) = distribution_statistics(softmax(l)) within float32 rounding."""
    logits = np.random.default_rng(5).normal(0, 4, (300, 256)).astype(np.float32)
    fused = tf.function(tf_logit_statistics, autograph=False, jit_compile=True)

    got = fused(tf.constant(logits)).numpy()

    reference = distribution_statistics(_softmax(logits.astype(np.float64)))
    for index, name in enumerate(STATISTICS):
        np.testing.assert_allclose(got[:, index], reference[name], atol=2e-6, err_msg=name)


@pytest.fixture(scope="module")
def net():  # noqa: ANN201
    """A narrow network with random BN statistics, so that the activations' affine matters."""
    network = build_model(SMALL, seed=5)
    return randomize_batch_norm(network)


def test_fused_activations_match_the_op_by_op_network(net, monkeypatch) -> None:  # noqa: ANN001
    """Every activation fused (threshold 0) gives the op-by-op probabilities within 1e-5."""
    stack = np.random.default_rng(6).random((250 + 8 * 3, 250 + 8 * 2, SMALL.input_depth), np.float32)
    monkeypatch.setattr(layers, "FUSION_MIN_ELEMENTS", 1 << 62)
    plain = predict_image(net, stack, show_progress=False)
    calls = []
    fused = layers._fused_activation

    def counting(*args):  # noqa: ANN002, ANN202
        calls.append(1)
        return fused(*args)

    monkeypatch.setattr(layers, "FUSION_MIN_ELEMENTS", 0)
    monkeypatch.setattr(layers, "_fused_activation", counting)
    object.__setattr__(net, stitching._CACHE, {})  # retrace with the fused kernels

    merged = predict_image(net, stack, show_progress=False)

    assert len(calls) > 100  # every rv2 unit of the trunk and of the head went through XLA
    np.testing.assert_allclose(merged, plain, atol=1e-5, rtol=0)
    assert np.abs(merged - plain).max() > 0  # XLA's tanh rounds differently: the path changed
    object.__setattr__(net, stitching._CACHE, {})


def test_chunked_head_statistics_with_a_padded_last_chunk(net, monkeypatch) -> None:  # noqa: ANN001
    """Statistics computed in 700-pixel chunks (the last one zero-padded) equal the definition."""
    stack = np.random.default_rng(7).random((250 + 8 * 5, 250 + 8 * 4, SMALL.input_depth), np.float32)
    probs = predict_image(net, stack, show_progress=False)
    monkeypatch.setattr(stitching, "_STATISTICS_CHUNK", 700)  # 48 x 40 = 1920 = 2 x 700 + 520
    object.__setattr__(net, stitching._CACHE, {})

    stats = predict_statistics(net, stack, show_progress=False)

    reference = distribution_statistics(probs)
    for name in STATISTICS:
        assert stats[name].shape == (48, 40, 1)
        np.testing.assert_allclose(stats[name], reference[name], atol=2e-5, err_msg=name)
    object.__setattr__(net, stitching._CACHE, {})
