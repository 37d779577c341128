"""The pair network: the paper's parameter counts, layer names and order, and feature read-out."""

import numpy as np
import pytest

from pairedinpaint.config import FEATURE_LAYERS, ModelConfig


@pytest.fixture(scope="module")
def yeast_model():
    from pairedinpaint.model import build_pair_model

    return build_pair_model(ModelConfig())


def test_yeast_model_has_the_papers_parameter_count(yeast_model):
    """7,323,521 parameters, 2,912 of them non-trainable BN statistics."""
    assert yeast_model.count_params() == 7_323_521
    assert sum(int(np.prod(w.shape)) for w in yeast_model.non_trainable_weights) == 2_912


def test_human_model_has_the_papers_parameter_count():
    """3 source and 2 target channels: 7,324,529 parameters."""
    from pairedinpaint.model import build_pair_model

    model = build_pair_model(ModelConfig.for_organism("human"))
    assert model.count_params() == 7_324_529
    assert model.get_layer("conv1_1").count_params() == 2_688
    assert model.get_layer("rfpconv1_1").count_params() == 304


def test_layer_and_input_names_and_weighted_order_are_the_originals(yeast_model):
    """22 weighted layers in the Keras 2 topological order, inputs x_in and y_rfp, output y_gfp."""
    weighted = [layer.name for layer in yeast_model.layers if layer.weights]
    assert weighted == [
        "conv1_1",
        "conv1_1_bn",
        "conv2_1",
        "conv2_1_bn",
        "rfpconv1_1",
        "rfpconv1_1_bn",
        "conv3_1",
        "conv3_1_bn",
        "rfpconv2_1",
        "conv4_1",
        "rfpconv2_1_bn",
        "conv4_1_bn",
        "conv5_1",
        "rfpconv3_1",
        "conv5_1_bn",
        "rfpconv3_1_bn",
        "conv6_1",
        "conv7_1",
        "conv8_1",
        "conv9_1",
        "conv10_1",
        "y_gfp",
    ]
    assert [t.name for t in yeast_model.inputs] == ["x_in", "y_rfp"]
    assert yeast_model.get_layer("y_gfp").activation.__name__ == "linear"
    assert yeast_model.get_layer("y_gfp").kernel_size == (1, 1)
    assert yeast_model.get_layer("merge").output.shape[-1] == 288
    bn = yeast_model.get_layer("conv1_1_bn")
    assert (bn.epsilon, bn.momentum) == (1e-3, 0.99)


def test_channel_counts_are_configuration():
    """Any source/target channel count builds; the output is one protein channel at the input size."""
    from pairedinpaint.model import build_pair_model

    model = build_pair_model(ModelConfig(source_channels=4, target_channels=3, size=32, width=0.125))
    out = model.predict([np.zeros((2, 32, 32, 4), "float32"), np.zeros((2, 32, 32, 3), "float32")], verbose=0)
    assert out.shape == (2, 32, 32, 1)
    assert np.all(np.isfinite(out))


def test_features_are_the_global_max_of_the_pre_bn_conv_output():
    """The feature model gives, per layer, the spatial max of the post-ReLU conv activation."""
    import keras

    from pairedinpaint.model import build_feature_model, build_pair_model

    model = build_pair_model(ModelConfig(size=32, width=0.125))
    features = build_feature_model(model, FEATURE_LAYERS)
    x = np.random.default_rng(0).random((3, 32, 32, 2)).astype("float32")
    outs = features.predict(x, verbose=0)
    conv3 = keras.Model(model.get_layer("x_in").output, model.get_layer("conv3_1").output).predict(
        x, verbose=0
    )
    np.testing.assert_allclose(outs[2], conv3.max(axis=(1, 2)), rtol=1e-6)
    assert [o.shape[1] for o in outs] == [12, 32, 48, 48, 32]
    assert all(np.all(o >= 0) for o in outs)  # after ReLU


def test_flop_count_matches_the_layer_table():
    """The source encoder at width 1 costs about 2.05 GFLOP per 64x64 cell (counted from shapes)."""
    from pairedinpaint.model import count_flops

    flops = count_flops(ModelConfig())
    assert flops["source_encoder"] == pytest.approx(2.0526e9, rel=1e-3)
    assert flops["pair_model"] > 3 * flops["source_encoder"]
