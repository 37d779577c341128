"""Shared fixtures: synthetic wells in the original naming and a tiny stand-in network."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SMALL_TARGETS = ("DAPI_CONFOCAL", "CELLMASK_CONFOCAL", "MAP2_CONFOCAL")


@pytest.fixture(scope="session")
def synthetic_wells(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three 128x128 synthetic wells (5 phase-contrast planes, DAPI/CELLMASK/MAP2)."""
    from isl.synthetic import write_synthetic_wells

    root = tmp_path_factory.mktemp("wells")
    return write_synthetic_wells(root, 3, shape=(128, 128), n_planes=5, seed=0)


def make_tiny_network(config, seed: int = 0):  # noqa: ANN001, ANN201 - test helper
    """A 3x3 + 1x1 fully convolutional stand-in with the network's call contract (no BN)."""
    import tensorflow as tf

    class TinyNetwork(tf.Module):
        def __init__(self) -> None:
            super().__init__(name="tiny")
            rng = np.random.default_rng(seed)
            depth, hidden = config.input_depth, 8
            self.head_names = tuple(config.head_names)
            self.num_classes = config.num_classes
            scale1, scale2 = np.sqrt(2.0 / (9 * depth)), np.sqrt(1.0 / hidden)
            self.w1 = tf.Variable(rng.normal(0, scale1, (3, 3, depth, hidden)).astype(np.float32))
            self.b1 = tf.Variable(np.zeros(hidden, np.float32))
            out = len(self.head_names) * config.num_classes
            self.w2 = tf.Variable(rng.normal(0, scale2, (1, 1, hidden, out)).astype(np.float32))
            self.b2 = tf.Variable(np.zeros(out, np.float32))

        @staticmethod
        def output_size(size: int) -> int:
            return size - 2

        def __call__(self, x, training: bool = False):  # noqa: ANN001, ANN204
            h = tf.nn.relu(tf.nn.conv2d(x, self.w1, 1, "VALID") + self.b1)
            y = tf.nn.conv2d(h, self.w2, 1, "VALID") + self.b2
            shape = tf.shape(y)
            return tf.reshape(
                y, [shape[0], shape[1], shape[2], len(self.head_names), self.num_classes]
            )

    return TinyNetwork()


@pytest.fixture
def tiny_network_factory():  # noqa: ANN201
    """``network_factory`` for :func:`isl.train.train` that builds the tiny stand-in."""
    return make_tiny_network
