"""Where the stitched prediction goes: arrays in memory, or one file per statistic and head on disk.

The in-memory store keeps probabilities or statistics as numpy arrays (what the Python API returns
by default). The disk store writes every tile's statistics straight into ``.npy`` planes (one per
statistic and head), mapping only the rows a tile touches and unmapping them right away, so the
resident memory of a prediction does not grow with the image area or the number of heads: a
4096x4096 crop needs the same few hundred MB as a 1024x1024 one (measured in ``isl bench``).
Planes are read back one at a time with :meth:`DiskStatistics.plane` (no memory map, so reading
them does not keep file pages resident either).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from isl.errors import DataError
from isl.inference.statistics import STATISTICS

__all__ = ["ArrayStore", "DiskStatistics", "DiskStore", "OutputStore"]


class OutputStore:
    """The interface of a stitched output: ``write`` tile results, then ``result`` a region."""

    def write(self, index: tuple[np.ndarray, np.ndarray], values: np.ndarray) -> None:
        """Store ``values`` [rows, cols, heads, 6 or classes] at ``np.ix_(rows, cols)`` ``index``."""
        raise NotImplementedError

    def result(self, region: tuple[int, int, int, int]) -> object:
        """The stitched output restricted to ``(row0, col0, rows, cols)``."""
        raise NotImplementedError


class ArrayStore(OutputStore):
    """The stitched result in memory: one array of probabilities, or one array per statistic.

    Statistics go straight into separate [rows, cols, heads] arrays so that returning them needs
    no copy.
    """

    def __init__(self, shape: tuple[int, int], heads: int, statistics: bool, classes: int) -> None:
        self.statistics = statistics
        if statistics:
            self.arrays = [np.zeros((*shape, heads), np.float32) for _ in STATISTICS]
        else:
            self.arrays = [np.zeros((*shape, heads, classes), np.float32)]

    def write(self, index: tuple[np.ndarray, np.ndarray], values: np.ndarray) -> None:
        if self.statistics:
            for i, array in enumerate(self.arrays):
                array[index] = values[..., i]
        else:
            self.arrays[0][index] = values

    def result(self, region: tuple[int, int, int, int]) -> np.ndarray | dict[str, np.ndarray]:
        """The requested region (a view, not a copy)."""
        row0, col0, rows, cols = region
        cropped = [a[row0 : row0 + rows, col0 : col0 + cols] for a in self.arrays]
        return dict(zip(STATISTICS, cropped, strict=True)) if self.statistics else cropped[0]


class DiskStatistics(Mapping[str, "DiskStatistic"]):
    """Statistics stored on disk, by name (like the in-memory dict): ``stats["median"].plane(h)``."""

    def __init__(self, directory: Path, heads: int, region: tuple[int, int, int, int]) -> None:
        self.directory = directory
        self.heads = heads
        self.region = region

    def __getitem__(self, name: str) -> DiskStatistic:
        if name not in STATISTICS:
            raise KeyError(name)
        return DiskStatistic(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(STATISTICS)

    def __len__(self) -> int:
        return len(STATISTICS)


class DiskStatistic:
    """One statistic of every head on disk; ``shape`` is [rows, cols, heads] as in memory."""

    def __init__(self, owner: DiskStatistics, name: str) -> None:
        self._owner = owner
        self.name = name

    @property
    def shape(self) -> tuple[int, int, int]:
        """[rows, cols, heads] of the returned region."""
        _, _, rows, cols = self._owner.region
        return rows, cols, self._owner.heads

    def plane(self, head: int) -> np.ndarray:
        """The [rows, cols] float32 image of head ``head`` (read into memory, region only)."""
        if not 0 <= head < self._owner.heads:
            raise IndexError(f"head {head} out of range for {self._owner.heads} heads")
        full = np.load(_plane_path(self._owner.directory, self.name, head), allow_pickle=False)
        row0, col0, rows, cols = self._owner.region
        return np.ascontiguousarray(full[row0 : row0 + rows, col0 : col0 + cols])

    def __getitem__(self, key: tuple) -> np.ndarray:
        """``stat[..., h]``: the plane of head ``h``, so code written for arrays keeps working."""
        if isinstance(key, tuple) and len(key) == 2 and key[0] is Ellipsis and isinstance(key[1], int):
            return self.plane(key[1] % self._owner.heads)
        raise TypeError("a statistic on disk is read one head at a time: stat[..., head]")


def _plane_path(directory: Path, statistic: str, head: int) -> Path:
    return directory / f"{statistic}-{head:03d}.npy"


class DiskStore(OutputStore):
    """Statistics written per tile into one ``.npy`` plane per statistic and head under ``directory``.

    ``directory`` must be empty or absent (it is created); the files are left for the caller, who
    usually deletes the directory once the planes are converted to images.
    """

    def __init__(self, directory: Path, shape: tuple[int, int], heads: int) -> None:
        directory = Path(directory)
        if directory.exists() and any(directory.iterdir()):
            raise DataError(f"statistics directory {directory} is not empty; give a new or empty one")
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.shape = shape
        self.heads = heads
        for name in STATISTICS:
            for head in range(heads):
                # Writes the header and sizes the file (sparse) without touching its pages.
                plane = np.lib.format.open_memmap(
                    _plane_path(directory, name, head), mode="w+", dtype=np.float32, shape=shape
                )
                del plane

    def write(self, index: tuple[np.ndarray, np.ndarray], values: np.ndarray) -> None:
        rows, cols = (np.asarray(i).reshape(-1) for i in index)
        first, last = int(rows.min()), int(rows.max()) + 1
        local = np.ix_(rows - first, cols)
        for s, name in enumerate(STATISTICS):
            for head in range(self.heads):
                path = _plane_path(self.directory, name, head)
                # Map only the rows this tile touches; unmapping after the write keeps RSS flat.
                plane = np.load(path, mmap_mode="r+", allow_pickle=False)
                window = plane[first:last]
                window[local] = values[..., head, s]
                window.flush()
                del window, plane

    def result(self, region: tuple[int, int, int, int]) -> DiskStatistics:
        return DiskStatistics(self.directory, self.heads, region)
