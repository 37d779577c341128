"""Statistics streamed to disk equal the in-memory ones, and the disk store refuses misuse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from isl.config.model import ModelConfig
from isl.errors import DataError
from isl.inference import STATISTICS, predict_statistics
from isl.inference.store import DiskStore
from isl.model import build_model

TINY = ModelConfig(
    num_z_values=2, target_channels=("DAPI_CONFOCAL", "MAP2_CONFOCAL"), base_depth=16,
    projection_depth=4,
)  # fmt: skip


@pytest.fixture(scope="module")
def net():  # noqa: ANN201
    """A tiny network (random weights: the values only need to vary across pixels and heads)."""
    return build_model(TINY, seed=5)


@pytest.mark.parametrize(("exact", "reflect_pad"), [(True, False), (False, True)])
def test_statistics_on_disk_equal_the_in_memory_statistics(
    net, tmp_path: Path, exact: bool, reflect_pad: bool
) -> None:  # noqa: ANN001
    """Every statistic of every head, plane by plane, bit-equal to the arrays kept in memory."""
    stack = np.random.default_rng(2).random((250 + 8 * 5, 250 + 8 * 2, TINY.input_depth), dtype=np.float32)
    heads = ["MAXPROJECT/MAP2_CONFOCAL", "0.0/TRANSMISSION", "MAXPROJECT/DAPI_CONFOCAL"]
    options = {"tile_size": 266, "exact": exact, "reflect_pad": reflect_pad, "heads": heads}

    memory = predict_statistics(net, stack, show_progress=False, **options)
    disk = predict_statistics(net, stack, show_progress=False, store_dir=tmp_path / "stats", **options)

    assert set(disk) == set(STATISTICS)
    for name in STATISTICS:
        assert disk[name].shape == memory[name].shape
        for head in range(len(heads)):
            np.testing.assert_array_equal(disk[name][..., head], memory[name][..., head], err_msg=name)
    assert memory["mean"].std() > 1e-4  # the comparison is not between constants
    assert len(list((tmp_path / "stats").glob("*.npy"))) == len(STATISTICS) * len(heads)


def test_a_plane_is_read_into_memory_not_mapped(net, tmp_path: Path) -> None:  # noqa: ANN001
    """Reading a plane gives an ordinary array, so it keeps no file pages mapped."""
    stack = np.random.default_rng(3).random((266, 266, TINY.input_depth), dtype=np.float32)
    stats = predict_statistics(net, stack, tile_size=266, show_progress=False, store_dir=tmp_path / "s")

    plane = stats["median"][..., 0]

    assert type(plane) is np.ndarray and not isinstance(plane, np.memmap)
    assert plane.flags.c_contiguous and plane.shape == (24, 24)
    with pytest.raises(TypeError, match="one head at a time"):
        stats["median"][0]
    with pytest.raises(IndexError):
        stats["median"].plane(2)


def test_the_disk_store_refuses_a_directory_with_files(tmp_path: Path) -> None:
    """Planes never land beside (or over) other files."""
    (tmp_path / "old.npy").write_bytes(b"x")

    with pytest.raises(DataError, match="not empty"):
        DiskStore(tmp_path, (8, 8), 1)
