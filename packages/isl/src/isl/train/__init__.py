"""``isl train``: train or fine-tune the network on wells, resumably, on one or many devices.

- :mod:`isl.train.run`: :func:`train` (run folder, checkpoints, the loop, logs);
- :mod:`isl.train.dataset`: the streaming ``tf.data`` input;
- :mod:`isl.train.strategy`: ``tf.distribute`` strategies;
- :mod:`isl.train.batchnorm`: BN statistics across replicas, and re-estimating them after training.
"""

from isl.train.batchnorm import recalibrate_batch_norm, set_batch_norm_sync
from isl.train.run import CHECKPOINT_DIR, LOSS_LOG, network_output_size, train
from isl.train.strategy import make_strategy

__all__ = [
    "CHECKPOINT_DIR",
    "LOSS_LOG",
    "make_strategy",
    "network_output_size",
    "recalibrate_batch_norm",
    "set_batch_norm_sync",
    "train",
]
