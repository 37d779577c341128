"""Shared fixtures: synthetic wells in the original naming and a tiny stand-in network."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SMALL_TARGETS = ("DAPI_CONFOCAL", "CELLMASK_CONFOCAL", "MAP2_CONFOCAL")
#: (row, column, rows, columns) of the fake predictions in their wells.
REGION = (10, 20, 96, 80)


def write_fake_prediction(root: Path, well: Path, *, noise: float, seed: int) -> np.ndarray:
    """An ``isl predict``-style folder whose medians are the truth plus noise; returns the truth.

    DAPI and MAP2 have truth in synthetic wells; DEAD_CONFOCAL is predicted but has none.
    """
    from cellsight_shared.io import write_json
    from isl.data import find_wells, load_well
    from isl.outputs import PREDICTION_INFO, statistic_filename, write_statistic

    files = find_wells([well])[0]
    channels = ("DAPI_CONFOCAL", "MAP2_CONFOCAL")
    images = load_well(files, input_channels=(), target_channels=channels)
    truth, _ = images.target_images(channels, {}, REGION)
    folder = root / files.name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for index, channel in enumerate(channels):
        predicted = np.clip(truth[..., index] + rng.normal(0, noise, truth.shape[:2]), 0, 1)
        write_statistic(folder / statistic_filename(channel, "median"), predicted)
    # A predicted label without ground truth in the well.
    write_statistic(folder / statistic_filename("DEAD_CONFOCAL", "median"), truth[..., 0])
    write_json(
        folder / PREDICTION_INFO,
        {
            "well": str(well),
            "region": list(REGION),
            "channels": [*channels, "DEAD_CONFOCAL"],
            "statistics": ["median"],
            "image_format": "png",
            "derived_channels": {},
        },
    )
    return truth


@pytest.fixture(scope="session")
def synthetic_wells(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three 128x128 synthetic wells (5 phase-contrast planes, DAPI/CELLMASK/MAP2)."""
    from isl.synthetic import write_synthetic_wells

    root = tmp_path_factory.mktemp("wells")
    return write_synthetic_wells(root, 3, shape=(128, 128), n_planes=5, seed=0)


def randomize_batch_norm(network, seed: int = 0):  # noqa: ANN001, ANN201 - test helper
    """Give every BN layer random moving statistics and offsets, so that every layer matters."""
    rng = np.random.default_rng(seed)
    for name, variable in network.variables_by_name.items():
        if name.endswith("moving_variance"):
            variable.assign(rng.uniform(0.5, 2.0, variable.shape).astype(np.float32))
        elif name.endswith(("moving_mean", "beta")):
            variable.assign(rng.normal(0.0, 0.3, variable.shape).astype(np.float32))
    return network


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
            return tf.reshape(y, [shape[0], shape[1], shape[2], len(self.head_names), self.num_classes])

    return TinyNetwork()


@pytest.fixture
def tiny_network_factory():  # noqa: ANN201
    """``network_factory`` for :func:`isl.train.train` that builds the tiny stand-in."""
    return make_tiny_network


#: The learning test's demo: 45 steps of the real (narrow) network on nuclei only (held-out r 0.70-0.95
#: over runs at 30 steps, whose floating-point order varies with the suite's device setup).
DEMO_TOML = """
steps = 45
channels = ["DAPI_CONFOCAL"]
train_wells = 3
test_wells = 1
image_size = 384
z_planes = 3
"""


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``isl demo`` run once per session through the CLI; later tests read its outputs."""
    from isl.cli import main

    root = tmp_path_factory.mktemp("demo")
    config = root / "demo.toml"
    config.write_text(DEMO_TOML)
    out = root / "run"
    code = main(["-q", "demo", "--config", str(config), "--out", str(out)])
    if code != 0:
        pytest.fail(f"isl demo exited with {code}")
    return out


def two_logical_cpus() -> bool:
    """Split the CPU into two logical devices for the multi-replica tests; True if there are two.

    Only possible before TensorFlow's runtime starts: a later call reports whether an earlier one
    (another test module) already made them.
    """
    import tensorflow as tf

    try:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
        )
        return True
    except RuntimeError:  # the runtime has started
        return len(tf.config.list_logical_devices("CPU")) >= 2
