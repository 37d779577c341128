"""Read and write checkpoints in the TF1 layout of the published ``checkpoints.zip``.

Variables are matched by their TF1 names (``downscale_1_0/expand_rv2/Conv/weights``,
``head/0.04/TRANSMISSION/residual_v2_conv/Conv/biases``, ...) with shape checks; nothing is assigned
unless the whole checkpoint fits, so a failed load leaves the network untouched.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from isl.config.model import TARGET_Z_LABEL
from isl.errors import CheckpointError
from isl.model import IslNetwork

__all__ = [
    "LoadReport",
    "list_tf1_variables",
    "load_tf1_checkpoint",
    "resolve_checkpoint",
    "save_tf1_checkpoint",
    "set_weights",
]

logger = logging.getLogger(__name__)

#: Checkpoint entries that are not model variables: the step and optimizer state of TF1 training.
_TRAINING_EXTRAS = re.compile(r"^(global_step|beta1_power|beta2_power)$|/(Adam|Adam_1|Momentum|Adagrad)$")
_PROJECTION = ("Conv/weights", "Conv/biases")
_LISTED = 12


@dataclass(frozen=True)
class LoadReport:
    """What a load did: which variables came from the checkpoint and which kept their values."""

    prefix: Path
    """The checkpoint prefix that was read (``.../model.ckpt-984658``)."""
    global_step: int | None
    """The checkpoint's ``global_step``, if it holds one."""
    restored: tuple[str, ...]
    """Network variables assigned from the checkpoint."""
    kept: tuple[str, ...]
    """Network variables left as they were (re-initialised projection, new or skipped heads)."""
    ignored: tuple[str, ...]
    """Checkpoint entries not used (optimizer slots, heads the network does not have)."""

    def __str__(self) -> str:
        return (
            f"{len(self.restored)} variables restored from {self.prefix} (step {self.global_step}), "
            f"{len(self.kept)} kept, {len(self.ignored)} checkpoint entries ignored"
        )


def resolve_checkpoint(path: Path | str) -> Path:
    """The checkpoint prefix for a directory, a prefix, or one of the checkpoint's files.

    A directory is resolved through its ``checkpoint`` file; when that names a path from another
    machine (the published zip does), the newest ``*.index`` in the directory is used instead.
    """
    path = Path(path)
    if path.is_dir():
        latest = tf.train.latest_checkpoint(str(path))
        if latest is not None and Path(f"{latest}.index").is_file():
            return Path(latest)
        indexes = sorted(path.glob("*.index"), key=_step_then_name)
        if not indexes:
            raise CheckpointError(
                f"no TF1 checkpoint in {path}: expected files like model.ckpt-<step>.index and "
                "model.ckpt-<step>.data-00000-of-00001; pass the directory that holds them"
            )
        return indexes[-1].with_suffix("")
    match = re.match(r"^(.*)\.(index|meta|data-\d+-of-\d+)$", path.name)
    prefix = path.with_name(match.group(1)) if match else path
    if not Path(f"{prefix}.index").is_file():
        raise CheckpointError(
            f"checkpoint {path} not found: {prefix}.index does not exist; pass a checkpoint "
            "directory, a prefix like .../model.ckpt-984658, or its .index file"
        )
    return prefix


def _step_then_name(index: Path) -> tuple[int, str]:
    match = re.search(r"-(\d+)$", index.stem)
    return (int(match.group(1)) if match else -1, index.name)


def list_tf1_variables(path: Path | str) -> dict[str, tuple[int, ...]]:
    """Names and shapes of every entry of a checkpoint (model variables and training extras)."""
    prefix = resolve_checkpoint(path)
    try:
        reader = tf.train.load_checkpoint(str(prefix))
    except (tf.errors.OpError, ValueError) as err:
        raise CheckpointError(f"cannot read checkpoint {prefix}: {err}") from err
    return {name: tuple(shape) for name, shape in reader.get_variable_to_shape_map().items()}


def _is_head(name: str) -> bool:
    return name.startswith("head/")


def _is_input_part(name: str) -> bool:
    """The projection and the input-reconstruction heads (what depends on the z-count)."""
    if name in _PROJECTION:
        return True
    parts = name.split("/")
    return parts[0] == "head" and len(parts) > 1 and parts[1] != TARGET_Z_LABEL


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    more = len(names) - _LISTED
    return shown + (f" ... and {more} more" if more > 0 else "")


def _plan_load(
    net: IslNetwork,
    stored: Mapping[str, tuple[int, ...]],
    *,
    transfer: bool,
    restore_heads: bool,
    restore_inputs: bool,
) -> tuple[list[str], list[str], list[str], list[str], list[str], list[str]]:
    """Decide, for every name, restore / keep / ignore, and collect the problems."""
    expected = {name: tuple(v.shape) for name, v in net.variables_by_name.items()}
    restored, kept, missing, mismatched = [], [], [], []
    projection_fits = stored.get("Conv/weights") == expected["Conv/weights"]
    for name, shape in expected.items():
        skip = (_is_head(name) and not restore_heads) or (not restore_inputs and _is_input_part(name))
        if transfer and name in _PROJECTION and not projection_fits:
            skip = True  # a new z-count or new input channels: a fresh projection
        if skip:
            kept.append(name)
        elif name not in stored:
            if transfer and _is_head(name):
                kept.append(name)  # a head the checkpoint does not have: new label
            else:
                missing.append(name)
        elif stored[name] != shape:
            mismatched.append(f"{name} (checkpoint {list(stored[name])}, network {list(shape)})")
        else:
            restored.append(name)
    ignored, unexpected = [], []
    for name in stored:
        if name in expected:
            if name not in restored:
                ignored.append(name)
        elif (
            _TRAINING_EXTRAS.search(name)
            or (_is_head(name) and (transfer or not restore_heads))
            or (not restore_inputs and _is_input_part(name))
        ):
            ignored.append(name)
        else:
            unexpected.append(name)
    return restored, kept, ignored, missing, mismatched, unexpected


def _hint(net: IslNetwork, stored: Mapping[str, tuple[int, ...]]) -> str:
    shape = stored.get("Conv/weights")
    config = net.config
    if shape is not None and len(shape) == 4 and shape[2] != config.input_depth:
        planes = shape[2] // (2 * len(config.input_channels))
        return (
            f" The checkpoint's projection takes {shape[2]} input planes ({planes} z-values), "
            f"the network {config.input_depth} ({config.num_z_values}): set num_z_values = "
            f"{planes}, or load with transfer=True to re-initialise the projection."
        )
    if any(_is_head(n) for n in stored) and not any(
        n.startswith(f"head/{h}/") for n in stored for h in config.target_head_names
    ):
        return " The target heads differ: load with transfer=True (or restore_heads=False)."
    return (
        " The network was built with different settings (base_depth, projection_depth, "
        "channels) than the checkpoint; build it with the checkpoint's ModelConfig."
    )


def load_tf1_checkpoint(
    net: IslNetwork,
    path: Path | str,
    *,
    transfer: bool = False,
    restore_heads: bool = True,
    restore_inputs: bool = True,
) -> LoadReport:
    """Assign a TF1 checkpoint (e.g. the published one) to ``net`` by variable name.

    Every network variable must be in the checkpoint with the same shape, and every checkpoint
    entry must belong to the network (optimizer slots and ``global_step`` are skipped), otherwise
    :class:`CheckpointError` lists the missing, unexpected and mismatched names and nothing is
    assigned.

    ``transfer=True`` adapts the published network to a new task (the README's Condition E):
    the projection is re-initialised when the z-count or input channels differ, heads the
    checkpoint lacks keep their initial values, heads the network lacks are ignored; everything
    else must still match. ``restore_heads=False`` skips all heads (the original's
    ``--norestore_logits``); ``restore_inputs=False`` skips the projection and the input heads.
    """
    prefix = resolve_checkpoint(path)
    stored = list_tf1_variables(prefix)
    if any(".ATTRIBUTES" in name for name in stored):
        raise CheckpointError(
            f"{prefix} is a TF2 object-based checkpoint (written by tf.train.Checkpoint), not a "
            "TF1 checkpoint; restore it with tf.train.Checkpoint(model=net).restore(...)"
        )
    restored, kept, ignored, missing, mismatched, unexpected = _plan_load(
        net, stored, transfer=transfer, restore_heads=restore_heads, restore_inputs=restore_inputs
    )
    if missing or mismatched or unexpected:
        problems = []
        if missing:
            problems.append(f"missing from the checkpoint: {_listing(missing)}")
        if mismatched:
            problems.append(f"different shapes: {_listing(mismatched)}")
        if unexpected:
            problems.append(f"not in the network: {_listing(unexpected)}")
        raise CheckpointError(
            f"checkpoint {prefix} does not fit the network ({len(missing)} missing, "
            f"{len(mismatched)} mismatched, {len(unexpected)} unexpected variables). "
            + "; ".join(problems)
            + "."
            + _hint(net, stored)
        )
    reader = tf.train.load_checkpoint(str(prefix))
    variables = net.variables_by_name
    for name in restored:
        value = reader.get_tensor(name)
        if value.dtype != np.float32:
            raise CheckpointError(f"{prefix}: {name} is {value.dtype}, expected float32")
        variables[name].assign(value)
    step = int(reader.get_tensor("global_step")) if "global_step" in stored else None
    report = LoadReport(prefix, step, tuple(restored), tuple(kept), tuple(ignored))
    logger.info("%s", report)
    return report


def set_weights(net: IslNetwork, weights: Mapping[str, np.ndarray]) -> None:
    """Assign arrays to the network's variables by TF1 name (every variable, exact shapes)."""
    variables = net.variables_by_name
    missing = sorted(set(variables) - set(weights))
    unexpected = sorted(set(weights) - set(variables))
    mismatched = [
        f"{n} ({list(np.shape(weights[n]))} vs {list(variables[n].shape)})"
        for n in variables
        if n in weights and tuple(np.shape(weights[n])) != tuple(variables[n].shape)
    ]
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"weights do not fit the network: missing {_listing(missing) or 'none'}; "
            f"unexpected {_listing(unexpected) or 'none'}; "
            f"different shapes {_listing(mismatched) or 'none'}"
        )
    for name, variable in variables.items():
        variable.assign(np.asarray(weights[name], dtype=np.float32))


def save_tf1_checkpoint(
    net: IslNetwork,
    prefix: Path | str,
    *,
    global_step: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the network's variables under their TF1 names (readable by the original code).

    Writes ``<prefix>.index``, ``<prefix>.data-00000-of-00001`` and a ``checkpoint`` file naming
    the prefix, through a temporary directory, so a failure leaves nothing half-written.
    """
    prefix = Path(prefix)
    directory = prefix.parent
    directory.mkdir(parents=True, exist_ok=True)
    targets = [Path(f"{prefix}.index"), Path(f"{prefix}.data-00000-of-00001")]
    if not overwrite and any(t.exists() for t in targets):
        raise CheckpointError(f"checkpoint {prefix} already exists; pass overwrite=True")
    named = {name: tf.convert_to_tensor(v) for name, v in net.variables_by_name.items()}
    if global_step is not None:
        named["global_step"] = tf.constant(global_step, dtype=tf.int64)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".tmp-ckpt-") as tmp:
        tmp_prefix = Path(tmp) / prefix.name
        tf.raw_ops.SaveV2(
            prefix=str(tmp_prefix),
            tensor_names=list(named),
            shape_and_slices=[""] * len(named),
            tensors=list(named.values()),
        )
        for target in targets:
            shutil.move(str(Path(tmp) / target.name), target)
    state = directory / "checkpoint"
    tmp_state = directory / ".checkpoint.tmp"
    tmp_state.write_text(
        f'model_checkpoint_path: "{prefix.name}"\nall_model_checkpoint_paths: "{prefix.name}"\n'
    )
    tmp_state.replace(state)
    return prefix
