"""Load the published Keras 2.1 / tf.keras 1.x ``model_weights.h5`` files into the Keras 3 model.

The files are read with h5py (nothing is unpickled or deserialised as a model). Convolutions map
by name; each batch-norm group maps to the conv that feeds it, read from the file's stored
``model_config`` (``inbound_nodes``), falling back to the creation order of the original when the
config is missing. Files whose weighted layers or shapes differ are refused with a list of them.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import numpy as np

from pairedinpaint.errors import CheckpointError

logger = logging.getLogger(__name__)

# Creation order of the original's batch-norm layers (batch_normalization_1 .. _8).
BN_CREATION_ORDER = (
    "conv1_1",
    "conv2_1",
    "rfpconv1_1",
    "rfpconv2_1",
    "conv3_1",
    "conv4_1",
    "conv5_1",
    "rfpconv3_1",
)
BN_SUFFIXES = ("gamma", "beta", "moving_mean", "moving_variance")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bn_parents_from_config(model_config: str | bytes | None) -> dict[str, str]:
    """Map each BatchNormalization layer name to its inbound layer, from the stored model config."""
    if model_config is None:
        return {}
    try:
        config = json.loads(_text(model_config))
    except json.JSONDecodeError:
        return {}
    parents = {}
    for layer in config.get("config", {}).get("layers", []):
        if layer.get("class_name") != "BatchNormalization":
            continue
        try:
            parents[layer["config"]["name"] if "name" in layer.get("config", {}) else layer["name"]] = layer[
                "inbound_nodes"
            ][0][0][0]
        except (KeyError, IndexError, TypeError):
            continue
    return parents


def _suffix_number(name: str) -> int:
    match = re.search(r"_(\d+)$", name)
    return int(match.group(1)) if match else 0


def read_legacy_weights(path: str | os.PathLike[str]) -> dict[str, list[np.ndarray]]:
    """Read a Keras 2 h5 into {port layer name: [arrays in Keras 3 order]} (BN as ``<conv>_bn``)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist; check the path")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise CheckpointError(f"{path} is not a readable HDF5 file ({err}); download it again") from err
    with handle as f:
        group = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
        if "layer_names" not in group.attrs:
            raise CheckpointError(
                f"{path} has no 'layer_names' attribute: not a Keras 2 weights file. A Keras 3 file "
                "ends in .weights.h5 and is loaded directly."
            )
        bn_parents = _bn_parents_from_config(f.attrs.get("model_config"))
        layers: dict[str, list[np.ndarray]] = {}
        bn_groups: list[str] = []
        for raw_name in group.attrs["layer_names"]:
            name = _text(raw_name)
            weight_names = [_text(w) for w in group[name].attrs.get("weight_names", [])]
            if not weight_names:
                continue
            arrays = {w.rsplit("/", 1)[-1].split(":")[0]: np.asarray(group[name][w]) for w in weight_names}
            if set(arrays) >= set(BN_SUFFIXES):
                bn_groups.append(name)
                layers[name] = [arrays[s] for s in BN_SUFFIXES]
            elif set(arrays) == {"kernel", "bias"}:
                layers[name] = [arrays["kernel"], arrays["bias"]]
            else:
                layers[name] = [np.asarray(group[name][w]) for w in weight_names]
    missing_parent = [b for b in bn_groups if b not in bn_parents]
    if missing_parent:
        if len(bn_groups) != len(BN_CREATION_ORDER):
            raise CheckpointError(
                f"{path}: {len(bn_groups)} batch-norm layers without a stored config; the pair model "
                f"has {len(BN_CREATION_ORDER)}. Layers found: {sorted(layers)}"
            )
        logger.warning("%s has no usable model_config; mapping batch norms by creation order", path)
        bn_parents = dict(zip(sorted(bn_groups, key=_suffix_number), BN_CREATION_ORDER, strict=True))
    out = {}
    for name, arrays in layers.items():
        out[f"{bn_parents[name]}_bn" if name in bn_groups else name] = arrays
    return out


def load_legacy_weights(model: object, path: str | os.PathLike[str]) -> None:
    """Assign a Keras 2 h5 to ``model`` (from build_pair_model); refuses any layer or shape mismatch."""
    weights = read_legacy_weights(path)
    expected = {layer.name: layer for layer in model.layers if layer.weights}
    problems = []
    for name in sorted(set(expected) - set(weights)):
        problems.append(f"{name}: missing from the file")
    for name in sorted(set(weights) - set(expected)):
        problems.append(f"{name}: in the file, not in the model")
    for name in sorted(set(expected) & set(weights)):
        want = [tuple(v.shape) for v in expected[name].weights]
        got = [tuple(a.shape) for a in weights[name]]
        if want != got:
            problems.append(f"{name}: file {got}, model {want}")
    if problems:
        raise CheckpointError(
            f"{path} does not fit this pair model ({len(weights)} weighted layers in the file, "
            f"{len(expected)} in the model): " + "; ".join(problems) + ". Check the organism/channel "
            "settings (yeast 2+1, human 3+2) and width 1."
        )
    for name, layer in expected.items():
        layer.set_weights(weights[name])
    logger.info("loaded %d layers from the Keras 2 file %s", len(expected), path)


def load_weights(model: object, path: str | os.PathLike[str]) -> None:
    """Load ``.weights.h5`` (Keras 3) or a legacy Keras 2 ``.h5`` into ``model``, with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist; check the path")
    if path.name.endswith(".weights.h5"):
        try:
            model.load_weights(path)
        except (ValueError, KeyError) as err:
            raise CheckpointError(
                f"{path} does not fit this pair model ({err}); check the organism/channel and width settings"
            ) from err
        return
    load_legacy_weights(model, path)


def convert_legacy(source: str | os.PathLike[str], dest: str | os.PathLike[str], model: object) -> Path:
    """Convert a Keras 2 h5 once to a Keras 3 ``.weights.h5``; ``dest`` must not exist."""
    dest = Path(dest)
    if not dest.name.endswith(".weights.h5"):
        raise CheckpointError(f"the converted file must end in .weights.h5, got {dest.name}")
    if dest.exists():
        raise CheckpointError(f"{dest} already exists; choose another name or delete it")
    load_legacy_weights(model, source)
    tmp = dest.with_name(dest.name[: -len(".weights.h5")] + ".tmp.weights.h5")
    model.save_weights(tmp)
    os.replace(tmp, dest)
    return dest
