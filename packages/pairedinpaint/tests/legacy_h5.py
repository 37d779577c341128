"""Write synthetic weight files in the Keras 2.1 / tf.keras 1.x layout with h5py (test helper)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

BN_ORDER = ("conv1_1", "conv2_1", "rfpconv1_1", "rfpconv2_1", "conv3_1", "conv4_1", "conv5_1", "rfpconv3_1")


def write_keras2_h5(
    path: Path, model, *, seed: int = 0, with_config: bool = True, drop: str | None = None
) -> dict:
    """Write random weights for ``model``'s layers as Keras 2 would; returns {port name: arrays}."""
    rng = np.random.default_rng(seed)
    k2_name = {f"{conv}_bn": f"batch_normalization_{i + 1}" for i, conv in enumerate(BN_ORDER)}
    arrays = {}
    layer_names = []
    config_layers = []
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.1.5-tf"
        f.attrs["backend"] = b"tensorflow"
        g = f.create_group("model_weights")
        for layer in model.layers:
            if drop is not None and layer.name == drop:
                continue
            name = k2_name.get(layer.name, layer.name)
            layer_names.append(name.encode())
            lg = g.create_group(name)
            if layer.name.endswith("_bn"):
                suffixes = ["gamma", "beta", "moving_mean", "moving_variance"]
                cls = "BatchNormalization"
                inbound = [[[layer.name[:-3], 0, 0, {}]]]
            else:
                suffixes = ["kernel", "bias"] if layer.weights else []
                cls = "Conv2D" if layer.weights else type(layer).__name__
                inbound = []
            values = [rng.normal(size=tuple(v.shape)).astype(np.float32) for v in layer.weights]
            if layer.name.endswith("_bn"):
                values[3] = np.abs(values[3]) + 0.5  # variances are positive
            weight_names = [f"{name}/{s}:0".encode() for s in suffixes]
            lg.attrs["weight_names"] = weight_names
            for wn, value in zip(weight_names, values, strict=True):
                lg.create_dataset(wn.decode(), data=value)
            if values:
                arrays[layer.name] = values
            config_layers.append(
                {"name": name, "class_name": cls, "config": {"name": name}, "inbound_nodes": inbound}
            )
        g.attrs["layer_names"] = layer_names
        if with_config:
            config = {"class_name": "Model", "config": {"name": "model_1", "layers": config_layers}}
            f.attrs["model_config"] = json.dumps(config).encode()
    return arrays
