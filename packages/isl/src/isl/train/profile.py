"""Where a training step's time goes: input pipeline, forward, loss, gradient, update.

Used by ``isl bench`` (training rows) and ``scripts/profile_training.py``. Every part is a traced
function timed after a warm-up call, and the same process times a large float32 matmul, so the
step's arithmetic rate is stated as a fraction of what this machine reaches on plain matmuls.
A step's arithmetic is taken as 3x the forward pass's multiply-accumulates (forward, and the
backward pass's two products per convolution), counted by :func:`isl.model.count_macs`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from isl.config import ModelConfig, TrainConfig
from isl.data import PatchLayout, WellFiles
from isl.losses import isl_loss
from isl.optimizer import Adam
from isl.train.dataset import patch_stream

__all__ = ["matmul_peak_gmacs", "profile_training"]

#: Side of the square matmul that measures the machine's float32 peak.
MATMUL_SIZE = 2048


def _median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def matmul_peak_gmacs(size: int = MATMUL_SIZE, repeats: int = 5) -> float:
    """Measured float32 matmul rate of this process, in G multiply-accumulates per second."""
    rng = np.random.default_rng(0)
    a = tf.constant(rng.random((size, size), dtype=np.float32))
    b = tf.constant(rng.random((size, size), dtype=np.float32))
    product = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)), autograph=False)
    product(a, b).numpy()
    seconds = _median_seconds(lambda: product(a, b).numpy(), repeats)
    return size**3 / seconds / 1e9


def _synthetic_batch(model: ModelConfig, patch: int, output: int, batch: int, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    x = rng.random((batch, patch, patch, model.input_depth), dtype=np.float32)
    x[..., 1::2] = 1.0  # presence masks
    bins = rng.integers(0, model.num_classes, (batch, output, output, model.num_heads)).astype(np.int32)
    weights = np.ones((batch, output, output, model.num_heads), np.float32)
    return x, bins, weights


def profile_training(
    model: ModelConfig,
    *,
    patch_size: int,
    batch_size: int,
    steps: int = 3,
    wells: Sequence[WellFiles] | None = None,
    train_config: TrainConfig | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Time the parts of one training step of the real network; return seconds and rates.

    ``steps`` timed repeats of each part follow one warm-up (tracing) call; medians are reported.
    With ``wells`` (and the ``train_config`` whose data settings sample them) the input
    pipeline's seconds per batch are measured too, on the same patch stream training uses.
    """
    from isl.model import build_model, count_macs
    from isl.train.run import _make_train_step

    net = build_model(model, seed=seed)
    output = int(net.output_size(patch_size))
    x, bins, weights = (tf.constant(a) for a in _synthetic_batch(model, patch_size, output, batch_size, seed))
    n_in = model.num_input_heads
    optimizer = Adam(net.trainable_variables, learning_rate=1e-4)
    step = tf.Variable(0, dtype=tf.int64)

    forward = tf.function(lambda x: tf.reduce_sum(net.embed(x, training=True)), autograph=False)

    @tf.function(autograph=False)
    def forward_loss(x: tf.Tensor, bins: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        return isl_loss(net(x, training=True), bins, weights, num_input_heads=n_in)[0]

    @tf.function(autograph=False)
    def gradient(x: tf.Tensor, bins: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = isl_loss(net(x, training=True), bins, weights, num_input_heads=n_in)[0]
        grads = tape.gradient(loss, net.trainable_variables)
        return tf.add_n([tf.reduce_sum(g) for g in grads])

    dataset = tf.data.Dataset.from_tensors((x, bins, weights)).repeat()
    iterator = iter(dataset)
    train_step = _make_train_step(tf.distribute.get_strategy(), net, optimizer, n_in, step)

    def run_step() -> None:
        loss, _ = train_step(iterator)
        loss.numpy()
        step.assign_add(1)

    parts: dict[str, float] = {}
    trace_start = time.perf_counter()
    run_step()
    parts["trace_and_first_step_seconds"] = time.perf_counter() - trace_start
    parts["step_seconds"] = _median_seconds(run_step, steps)
    for name, fn in (("trunk_forward", forward), ("forward_and_loss", forward_loss), ("gradient", gradient)):
        args = (x,) if name == "trunk_forward" else (x, bins, weights)
        fn(*args).numpy()
        parts[f"{name}_seconds"] = _median_seconds(lambda fn=fn, args=args: fn(*args).numpy(), steps)
    if wells is not None and train_config is not None:
        layout = PatchLayout(
            num_z_values=model.num_z_values,
            model_input_channels=tuple(model.input_channels),
            target_channels=tuple(model.target_channels),
            patch_size=patch_size,
            output_size=output,
            input_channels=tuple(train_config.data.input_channels),
            derived_channels=dict(train_config.data.derived_channels),
        )
        patches = patch_stream(wells, layout, train_config, stream_id=0).patches()
        next(patches)  # the first visit decodes the well
        parts["input_batch_seconds"] = _median_seconds(
            lambda: [next(patches) for _ in range(batch_size)], steps
        )
    peak = matmul_peak_gmacs()
    forward_macs = count_macs(model, (patch_size, patch_size)) * batch_size
    step_gmacs = 3 * forward_macs / 1e9
    rate = step_gmacs / parts["step_seconds"]
    return {
        "patch_size": patch_size,
        "batch_size": batch_size,
        "output_size": output,
        "heads": model.num_heads,
        "timed_repeats": steps,
        **{k: round(v, 4) for k, v in parts.items()},
        "steps_per_second": 1.0 / parts["step_seconds"],
        "forward_gmacs_per_step": forward_macs / 1e9,
        "step_gmacs": step_gmacs,
        "gmacs_per_second": rate,
        "matmul_peak_gmacs_per_second": peak,
        "fraction_of_matmul_peak": rate / peak,
        "loss_share_of_forward": 1.0
        - parts["trunk_forward_seconds"] / max(parts["forward_and_loss_seconds"], 1e-9),
    }
