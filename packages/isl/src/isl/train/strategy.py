"""tf.distribute strategies for training, and which worker is the chief."""

from __future__ import annotations

import os

import tensorflow as tf

from isl.errors import ConfigError

__all__ = ["is_chief", "make_strategy"]


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy for ``TrainConfig.strategy``.

    'mirrored' uses every local GPU, or every logical CPU device when there is no GPU;
    'multi_worker_mirrored' reads the cluster from the TF_CONFIG environment variable.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(
            devices=devices, cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
    if name == "multi_worker_mirrored":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError(
                "strategy 'multi_worker_mirrored' needs the TF_CONFIG environment variable "
                "describing the cluster; use 'mirrored' on a single host"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"unknown strategy {name!r}; use default, mirrored or multi_worker_mirrored")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's files (single host, the chief, or worker 0)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )
