"""``isl train``: train or fine-tune the network on wells, resumably, on one or many devices.

Resumption: the run directory holds tf.train.CheckpointManager checkpoints of the network, the
Adam state and the step. A second call with the same run directory restores the latest one and
continues at that step; the data stream is a pure function of (seed, patch index), so the resumed
run sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from isl import __version__
from isl.config import ModelConfig, TrainConfig, save_config
from isl.data import PatchLayout, WellFiles, check_wells, find_wells
from isl.errors import CheckpointError, ConfigError, ResourceError, TrainingError
from isl.losses import combine_head_losses, head_losses, head_sums_and_counts
from isl.optimizer import Adam
from isl.train.batchnorm import recalibrate_from_stream, set_batch_norm_sync
from isl.train.dataset import make_dataset_fn
from isl.train.strategy import is_chief, make_strategy

__all__ = ["CHECKPOINT_DIR", "LOSS_LOG", "network_output_size", "train"]

logger = logging.getLogger(__name__)

#: CSV of the training loss per logged step, inside the run directory.
LOSS_LOG = "loss.csv"
CHECKPOINT_DIR = "checkpoints"

NetworkFactory = Callable[[ModelConfig, int], Any]


def network_output_size(net: Any, patch_size: int, input_depth: int) -> int:
    """Side of the network output for a square input of ``patch_size``."""
    if hasattr(net, "output_size"):
        return int(net.output_size(patch_size))
    probe = net(tf.zeros([1, patch_size, patch_size, input_depth]), training=False)
    return int(probe.shape[1])


def _default_network(config: ModelConfig, seed: int) -> Any:
    from isl.model import build_model

    return build_model(config, seed=seed)


def _prepare_run_directory(config: TrainConfig) -> None:
    """Create the run directory or check that an existing one belongs to this run."""
    out = config.out
    stored = out / "config.json"
    if stored.is_file():
        from cellsight_shared.io import read_json

        previous = TrainConfig.model_validate(read_json(stored))
        for part in ("model", "data", "wells", "batch_size", "seed"):
            if getattr(previous, part) != getattr(config, part):
                raise ConfigError(
                    f"{out} holds a run with a different '{part}' setting; resume it with its "
                    f"own configuration ({stored}) or choose a new output directory"
                )
    elif out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists, is not empty and is not an isl run directory; choose a new --out")
    out.mkdir(parents=True, exist_ok=True)


def _check_inputs(config: TrainConfig, *, default_network: bool) -> list[WellFiles]:
    """Validate wells, sizes and the restore source before any work starts."""
    patch = config.data.patch_size
    if default_network and (patch < 250 or (patch - 250) % 16):
        raise ConfigError(
            f"data.patch_size must be 250 + 16k for this network (250 as in the paper), got {patch}"
        )
    wells = find_wells(config.wells)
    data = config.data
    check_wells(
        wells,
        input_channels=data.input_channels,
        model_input_channels=config.model.input_channels,
        required_channels=data.required_channels,
        expected_z_planes=data.expected_z_planes,
        min_size=data.crop_size,
    )
    if config.restore_from is not None and not Path(config.restore_from).exists():
        raise CheckpointError(
            f"restore_from {config.restore_from} does not exist; give a TF1 checkpoint "
            "directory/prefix or an isl run directory"
        )
    return wells


def _restore_initial_weights(net: Any, config: TrainConfig) -> None:
    """Load ``restore_from`` (a TF1 checkpoint or an isl run) into a fresh network."""
    source = Path(config.restore_from)  # type: ignore[arg-type]
    run_checkpoints = source / CHECKPOINT_DIR
    if run_checkpoints.is_dir() or _is_object_checkpoint(source):
        directory = run_checkpoints if run_checkpoints.is_dir() else source
        latest = tf.train.latest_checkpoint(str(directory)) or str(directory)
        if not config.restore_heads or not config.restore_inputs:
            raise ConfigError(
                "restore_heads/restore_inputs = false is supported for TF1 checkpoints only; "
                "to transfer an isl run, export it with isl.checkpoint.save_tf1_checkpoint"
            )
        tf.train.Checkpoint(model=net).restore(latest).expect_partial()
        logger.info("initial weights from isl checkpoint %s", latest)
        return
    from isl.checkpoint import load_tf1_checkpoint

    # transfer=True lets new target heads and a new z-count (projection shape) start fresh.
    report = load_tf1_checkpoint(
        net,
        source,
        transfer=True,
        restore_heads=config.restore_heads,
        restore_inputs=config.restore_inputs,
    )
    logger.info("initial weights from TF1 checkpoint %s: %s", source, report)


def _is_object_checkpoint(path: Path) -> bool:
    try:
        prefix = tf.train.latest_checkpoint(str(path)) if path.is_dir() else str(path)
        if not prefix:
            return False
        names = {name for name, _ in tf.train.list_variables(prefix)}
    except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError):
        return False
    return "_CHECKPOINTABLE_OBJECT_GRAPH" in names


def _read_loss_log(path: Path, *, until_step: int) -> list[list[str]]:
    """Rows of an existing loss log up to ``until_step`` (later rows are repeated on resume)."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    return [row for row in rows[1:] if row and int(row[0]) <= until_step]


def train(
    config: TrainConfig,
    *,
    network_factory: NetworkFactory | None = None,
    sync_batch_norm: bool | None = None,
) -> Path:
    """Train for ``config.steps`` steps (resuming a run in ``config.out``); return the checkpoint dir.

    Adam is TF1's (:class:`isl.optimizer.Adam`); BN statistics update as the network defines.
    With several replicas, ``sync_batch_norm`` (None: ``config.sync_batch_norm``, true by default)
    normalises with the global batch's statistics, so the step equals the one-device step;
    ``False`` gives each replica its own slice's statistics, as the original's asynchronous
    workers had (:func:`set_batch_norm_sync`).

    ``network_factory(model_config, seed)`` replaces :func:`isl.model.build_model` (for custom or
    stand-in networks with the same call contract: ``net(x, training)`` -> logits
    [B, h, w, heads, classes], ``trainable_variables``).
    """
    wells = _check_inputs(config, default_network=network_factory is None)
    if sync_batch_norm is None:
        sync_batch_norm = config.sync_batch_norm
    strategy = make_strategy(config.strategy)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ConfigError(f"batch_size {config.batch_size} must be a multiple of the {replicas} replicas")
    _prepare_run_directory(config)
    chief = is_chief(strategy)
    if chief:
        save_config(config, config.out)
        from cellsight_shared.provenance import write_run_info

        write_run_info(
            config.out,
            package="isl",
            config=config.model_dump(mode="json"),
            seed=config.seed,
            extra={"strategy": config.strategy, "replicas": replicas},
        )
    from cellsight_shared.cli import seed_everything

    seed_everything(config.seed)
    tf.random.set_seed(config.seed)
    factory = network_factory or _default_network
    model_config = config.model

    with strategy.scope():
        net = factory(model_config, config.seed)
        synchronised = set_batch_norm_sync(net, sync_batch_norm)
        optimizer = Adam(net.trainable_variables, learning_rate=config.learning_rate)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    checkpoint = tf.train.Checkpoint(model=net, optimizer=optimizer, step=step)
    checkpoint_dir = config.out / CHECKPOINT_DIR
    if not chief:  # every worker must save (collective ops); only the chief keeps its files
        checkpoint_dir = config.out / f".worker_{strategy.cluster_resolver.task_id}"
    manager = tf.train.CheckpointManager(checkpoint, str(checkpoint_dir), max_to_keep=config.keep_checkpoints)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        logger.info("resuming %s at step %d", manager.latest_checkpoint, int(step.numpy()))
    elif config.restore_from is not None:
        _restore_initial_weights(net, config)
    start_step = int(step.numpy())

    patch = config.data.patch_size
    layout = PatchLayout(
        num_z_values=model_config.num_z_values,
        model_input_channels=tuple(model_config.input_channels),
        target_channels=tuple(model_config.target_channels),
        patch_size=patch,
        output_size=network_output_size(net, patch, model_config.input_depth),
        input_channels=tuple(config.data.input_channels),
        derived_channels=dict(config.data.derived_channels),
    )
    if list(getattr(net, "head_names", model_config.head_names)) != list(model_config.head_names):
        raise ConfigError("the network's heads do not match model.head_names")
    logger.info(
        "isl %s: training %d wells, %d -> %d steps, batch %d on %d replica(s), patch %d -> %d",
        __version__,
        len(wells),
        start_step,
        config.steps,
        config.batch_size,
        replicas,
        patch,
        layout.output_size,
    )
    if start_step >= config.steps:
        logger.info("nothing to do: the run is already at step %d", start_step)
        return checkpoint_dir

    dataset = strategy.distribute_datasets_from_function(make_dataset_fn(wells, layout, config, start_step))
    train_step = _make_train_step(strategy, net, optimizer, layout.num_input_heads, step)
    finalize = None
    if config.recalibrate_batch_norm:

        def finalize() -> None:
            recalibrate_from_stream(net, wells, layout, config)

    if replicas > 1 and synchronised:
        logger.info(
            "batch norm: %s statistics in %d layers",
            "global-batch" if sync_batch_norm else "per-replica",
            synchronised,
        )
    _loop(config, strategy, train_step, iter(dataset), step, manager, layout, chief, finalize)
    if chief:
        from isl.figures import plot_loss_curve

        plot_loss_curve(config.out / LOSS_LOG, config.out / "loss_curve.png")
    return checkpoint_dir


def _make_train_step(
    strategy: tf.distribute.Strategy,
    net: Any,
    optimizer: Adam,
    num_input_heads: int,
    step: tf.Variable,
) -> Callable[[Any], tuple[tf.Tensor, tf.Tensor]]:
    def replica_step(inputs: tf.Tensor, bins: tf.Tensor, weights: tf.Tensor):
        context = tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
            logits = net(inputs, training=True)
            sums, counts = head_sums_and_counts(logits, bins, weights)
            # Global counts make each replica's loss its exact share of the whole batch's loss.
            # stop_gradient: counts need none, and without it tracing walks the other replicas'
            # graphs (see isl.model.layers.cross_replica_sum).
            counts = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.stop_gradient(counts))
            per_head = head_losses(sums, counts)
            loss = combine_head_losses(per_head, num_input_heads)
        variables = net.trainable_variables
        gradients = tape.gradient(loss, variables)
        if context.num_replicas_in_sync > 1:  # replica losses add up, so their gradients do
            gradients = context.all_reduce(
                tf.distribute.ReduceOp.SUM, [tf.stop_gradient(g) for g in gradients]
            )
        optimizer.apply(gradients, variables, step + 1)
        return loss, per_head

    # No autograph: the network is plain Python over tensors, and conversion costs trace time.
    @tf.function(autograph=False)
    def train_step(iterator: Any) -> tuple[tf.Tensor, tf.Tensor]:
        inputs, bins, weights = next(iterator)
        loss, per_head = strategy.run(replica_step, args=(inputs, bins, weights))
        total = strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        heads = strategy.reduce(tf.distribute.ReduceOp.SUM, per_head, axis=None)
        return total, heads

    return train_step


def _loop(
    config: TrainConfig,
    strategy: tf.distribute.Strategy,
    train_step: Callable[[Any], tuple[tf.Tensor, tf.Tensor]],
    iterator: Any,
    step: tf.Variable,
    manager: tf.train.CheckpointManager,
    layout: PatchLayout,
    chief: bool,
    before_final_save: Callable[[], None] | None = None,
) -> None:
    from cellsight_shared.cli import progress

    start = int(step.numpy())
    log_path = config.out / LOSS_LOG
    rows = _read_loss_log(log_path, until_step=start) if chief else []
    writer = tf.summary.create_file_writer(str(config.out / "logs")) if chief else None
    heads = tuple(config.model.head_names)
    n_in = layout.num_input_heads
    bar = progress(total=config.steps, initial=start, desc="train", unit="step", disable=not chief or None)
    try:
        for current in range(start + 1, config.steps + 1):
            try:
                loss, per_head = train_step(iterator)
                loss_value = float(loss.numpy())
            except tf.errors.ResourceExhaustedError as err:
                raise ResourceError(
                    f"TensorFlow ran out of memory at step {current} (batch {config.batch_size} "
                    f"of {config.data.patch_size}-px patches, {len(heads)} heads); lower batch_size "
                    "or data.patch_size, or train on more devices (strategy = 'mirrored'). "
                    f"The run resumes from its last checkpoint. ({err.message.splitlines()[0]})"
                ) from err
            step.assign(current)
            if not np.isfinite(loss_value):
                saved = manager.latest_checkpoint or "none yet"
                raise TrainingError(
                    f"the training loss became {loss_value} at step {current}; the weights are "
                    f"no longer usable. Last checkpoint: {saved}. Try a lower learning_rate (now "
                    f"{config.learning_rate:g}), check the wells for saturated or constant "
                    "images, and resume from the checkpoint (or start a new --out)"
                )
            bar.update(1)
            if current % config.log_every == 0 or current in (1, config.steps):
                head_values = per_head.numpy()
                in_loss = float(head_values[:n_in].mean()) if n_in else 0.0
                t_loss = float(head_values[n_in:].mean()) if len(heads) > n_in else 0.0
                bar.set_postfix(loss=f"{loss_value:.4f}")
                logger.info(
                    "step %d: loss %.4f (input %.4f, target %.4f)", current, loss_value, in_loss, t_loss
                )
                rows.append([str(current), f"{loss_value:.6f}", f"{in_loss:.6f}", f"{t_loss:.6f}"])
                if writer is not None:
                    with writer.as_default(step=current):
                        tf.summary.scalar("loss/total", loss_value)
                        tf.summary.scalar("loss/input", in_loss)
                        tf.summary.scalar("loss/target", t_loss)
                        for name, value in zip(heads, head_values, strict=True):
                            tf.summary.scalar(f"loss/{name}", float(value))
            if current == config.steps and before_final_save is not None:
                before_final_save()
            if current % config.checkpoint_every == 0 or current == config.steps:
                manager.save(checkpoint_number=current)
                if chief:
                    _write_loss_log(log_path, rows)
    finally:
        bar.close()
        if writer is not None:
            writer.flush()


def _write_loss_log(path: Path, rows: list[list[str]]) -> None:
    from cellsight_shared.io import atomic_write

    with atomic_write(path, overwrite=True) as tmp, Path(tmp).open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["step", "loss", "input_loss", "target_loss"])
        out.writerows(rows)
