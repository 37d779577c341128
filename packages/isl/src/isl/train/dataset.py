"""The streaming tf.data input of training, one pipeline per worker."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

from isl.config import TrainConfig
from isl.data import PatchLayout, PatchStream, WellFiles

__all__ = ["make_dataset_fn", "patch_stream"]


def patch_stream(
    wells: Sequence[WellFiles],
    layout: PatchLayout,
    config: TrainConfig,
    *,
    stream_id: int,
    augment_intensity: bool = True,
) -> PatchStream:
    """The patch stream a training configuration describes, seeded per ``stream_id``.

    Without ``augment_intensity`` no offset, multiplier or noise is added (flips and rotations
    still follow ``data.flip_and_rotate``): batch-norm re-estimation wants clean patches.
    """
    data = config.data
    noise = (
        {
            "offset_std": data.augment_offset_std,
            "multiplier_std": data.augment_multiplier_std,
            "noise_std": data.augment_noise_std,
        }
        if augment_intensity
        else {}
    )
    return PatchStream(
        wells,
        layout,
        crop_size=data.crop_size,
        patch_stride=data.patch_stride,
        crops_per_visit=data.crops_per_visit,
        seed=config.seed,
        stream_id=stream_id,
        flip_and_rotate=data.flip_and_rotate,
        **noise,
    )


def make_dataset_fn(
    wells: Sequence[WellFiles], layout: PatchLayout, config: TrainConfig, start_step: int
) -> Callable[[tf.distribute.InputContext], tf.data.Dataset]:
    """A ``distribute_datasets_from_function`` input: batches from patch ``start_step * batch``.

    Each input pipeline (worker) streams its own seeded patch sequence; within a worker the
    replicas take consecutive per-replica batches, so one step sees the same patches whatever the
    number of local replicas.
    """
    h, p, d = layout.num_heads, layout.patch_size, layout.input_depth
    o = layout.output_size

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        per_replica = context.get_per_replica_batch_size(config.batch_size)
        replicas_here = context.num_replicas_in_sync // context.num_input_pipelines
        stream = patch_stream(wells, layout, config, stream_id=context.input_pipeline_id)
        start = start_step * per_replica * replicas_here
        dataset = tf.data.Dataset.from_generator(
            lambda: stream.patches(start),
            output_signature=(
                tf.TensorSpec([p, p, d], tf.float32),
                tf.TensorSpec([o, o, h], tf.int32),
                tf.TensorSpec([o, o, h], tf.float32),
            ),
        )
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        options.deterministic = True
        return dataset.with_options(options).batch(per_replica, drop_remainder=True).prefetch(2)

    return dataset_fn
