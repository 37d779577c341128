"""The pair network of Lu et al. 2019 in Keras 3, and the feature sub-model read by layer name.

Source encoder conv1_1..conv5_1 on ``x_in`` (protein first, then markers), target encoder
rfpconv1_1..rfpconv3_1 on ``y_rfp`` (the target cell's markers), concatenated at 1/4 size
([source, target], 288 channels at width 1), decoder conv6_1..conv10_1 with nearest upsampling
and no batch norm, linear 1x1 ``y_gfp``. Every encoder conv is Conv(ReLU) -> BN (-> max-pool),
BN after the ReLU as the original. BN layers are named ``<conv>_bn`` so that weights map by name.
"""

from __future__ import annotations

import keras

from pairedinpaint.config import FEATURE_LAYERS, ModelConfig

# (name, filters, pool after BN) of the source encoder, target encoder and decoder at width 1.
SOURCE_ENCODER = (
    ("conv1_1", 96, True),
    ("conv2_1", 256, True),
    ("conv3_1", 384, False),
    ("conv4_1", 384, False),
    ("conv5_1", 256, False),
)
TARGET_ENCODER = (("rfpconv1_1", 16, True), ("rfpconv2_1", 32, True), ("rfpconv3_1", 32, False))
DECODER = (
    ("conv6_1", 256, False),
    ("conv7_1", 384, False),
    ("conv8_1", 384, True),
    ("conv9_1", 256, True),
    ("conv10_1", 96, False),
)  # True: upsample after
CONV_NAMES = tuple(n for n, _, _ in SOURCE_ENCODER + TARGET_ENCODER + DECODER) + ("y_gfp",)
BN_PARENTS = tuple(n for n, _, _ in SOURCE_ENCODER + TARGET_ENCODER)


def filters(base: int, width: float) -> int:
    """Filter count of a layer at ``width`` (at least 4)."""
    return max(4, round(base * width))


def _conv(x: keras.KerasTensor, name: str, n: int) -> keras.KerasTensor:
    return keras.layers.Conv2D(n, 3, padding="same", activation="relu", name=name)(x)


def build_pair_model(config: ModelConfig | None = None) -> keras.Model:
    """Build the two-input pair model; layer and input names are the original's."""
    config = config or ModelConfig()
    s = config.size
    x_in = keras.Input((s, s, config.source_channels), name="x_in")
    y_rfp = keras.Input((s, s, config.target_channels), name="y_rfp")
    # Build in the original's creation order (source 1-2, target 1-2, source 3-5, target 3) so that
    # auto-named layers and the topological weight order match the Keras 2 model.
    x = x_in
    for name, n, pool in SOURCE_ENCODER[:2]:
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(_conv(x, name, filters(n, config.width)))
        x = keras.layers.MaxPooling2D(2)(x) if pool else x
    y = y_rfp
    for name, n, pool in TARGET_ENCODER[:2]:
        y = keras.layers.BatchNormalization(name=f"{name}_bn")(_conv(y, name, filters(n, config.width)))
        y = keras.layers.MaxPooling2D(2)(y) if pool else y
    for name, n, _ in SOURCE_ENCODER[2:]:
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(_conv(x, name, filters(n, config.width)))
    name, n, _ = TARGET_ENCODER[2]
    y = keras.layers.BatchNormalization(name=f"{name}_bn")(_conv(y, name, filters(n, config.width)))
    z = keras.layers.Concatenate(axis=-1, name="merge")([x, y])
    for name, n, upsample in DECODER:
        z = _conv(z, name, filters(n, config.width))
        z = keras.layers.UpSampling2D(2, interpolation="nearest")(z) if upsample else z
    y_gfp = keras.layers.Conv2D(1, 1, padding="same", activation=None, name="y_gfp")(z)
    return keras.Model(inputs=[x_in, y_rfp], outputs=y_gfp, name="pair_model")


def build_feature_model(model: keras.Model, layers: tuple[str, ...] = FEATURE_LAYERS) -> keras.Model:
    """A model from ``x_in`` to the global spatial max of each named conv's post-ReLU, pre-BN output.

    One forward pass gives every layer; earlier BN layers run in inference mode (moving statistics)
    as in the original's extraction.
    """
    x_in = model.get_layer("x_in").output
    outputs = [
        keras.layers.GlobalMaxPooling2D(name=f"{name}_max")(model.get_layer(name).output) for name in layers
    ]
    return keras.Model(inputs=x_in, outputs=outputs, name="features")


def count_flops(config: ModelConfig) -> dict[str, float]:
    """Multiply-adds x 2 of one forward pass per cell: the whole pair model and the source encoder."""
    s, w = config.size, config.width
    total = encoder = 0.0
    cin, side = config.source_channels, s
    for _name, n, pool in SOURCE_ENCODER:
        f = 2.0 * side * side * 9 * cin * filters(n, w)
        encoder += f
        cin = filters(n, w)
        side = side // 2 if pool else side
    total += encoder
    tin, side = config.target_channels, s
    for _, n, pool in TARGET_ENCODER:
        total += 2.0 * side * side * 9 * tin * filters(n, w)
        tin = filters(n, w)
        side = side // 2 if pool else side
    cin = cin + tin
    for _, n, upsample in DECODER:
        total += 2.0 * side * side * 9 * cin * filters(n, w)
        cin = filters(n, w)
        side = side * 2 if upsample else side
    total += 2.0 * side * side * cin
    return {"pair_model": total, "source_encoder": encoder}
