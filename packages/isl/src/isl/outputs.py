"""The on-disk layout of predictions: per-well folders of 16-bit statistic images + prediction.json.

Statistic images are named in the paper-data scheme, which the well reader skips (``PREDICTED``)::

    channel,value-DAPI_CONFOCAL,statistic,value-MEDIAN,kind,value-PREDICTED.png

Values v in [0, 1] are stored as ``round(v * 65535)`` (uint16 PNG or TIFF). ``prediction.json``
records where the predicted region lies in the well's images, so evaluate and figures can read
the matching ground truth from the well itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from isl.errors import DataError

__all__ = [
    "PREDICTION_INFO",
    "PredictionRecord",
    "iter_prediction_wells",
    "read_statistic",
    "read_truth",
    "statistic_filename",
    "write_statistic",
]

PREDICTION_INFO = "prediction.json"
_SCALE = 65535.0


def statistic_filename(channel: str, statistic: str, image_format: str = "png") -> str:
    """File name of one statistic image of one channel."""
    suffix = "tif" if image_format == "tiff" else "png"
    return f"channel,value-{channel},statistic,value-{statistic.upper()},kind,value-PREDICTED.{suffix}"


def write_statistic(path: Path, image: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write a [0, 1] float image as 16-bit PNG or TIFF (by suffix)."""
    from cellsight_shared.io import write_png, write_tiff

    data = np.round(np.clip(image, 0.0, 1.0) * _SCALE).astype(np.uint16)
    if path.suffix == ".tif":
        return write_tiff(path, data, overwrite=overwrite)
    return write_png(path, data, overwrite=overwrite)


@dataclass(frozen=True)
class PredictionRecord:
    """What ``prediction.json`` says about one predicted well."""

    directory: Path
    well: Path
    region: tuple[int, int, int, int]
    """(row, column, rows, columns) of the predicted area in the well's images."""
    channels: tuple[str, ...]
    statistics: tuple[str, ...]
    image_format: str
    derived_channels: dict[str, tuple[str, ...]]
    info: dict[str, Any]

    @property
    def name(self) -> str:
        """The well folder's name."""
        return self.directory.name

    @classmethod
    def load(cls, directory: Path) -> PredictionRecord:
        """Read ``directory/prediction.json``."""
        from cellsight_shared.io import read_json

        path = directory / PREDICTION_INFO
        if not path.is_file():
            raise DataError(f"{directory} has no {PREDICTION_INFO}; is it an isl predict output?")
        info = read_json(path)
        try:
            return cls(
                directory=directory,
                well=Path(info["well"]),
                region=tuple(int(v) for v in info["region"]),  # type: ignore[arg-type]
                channels=tuple(info["channels"]),
                statistics=tuple(info["statistics"]),
                image_format=str(info["image_format"]),
                derived_channels={k: tuple(v) for k, v in info["derived_channels"].items()},
                info=info,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{path} is incomplete or malformed ({err!r})") from err


def iter_prediction_wells(predictions: str | Path) -> Iterator[PredictionRecord]:
    """Every predicted well under an ``isl predict`` output directory, sorted by name."""
    root = Path(predictions)
    if not root.is_dir():
        raise DataError(f"prediction directory {root} does not exist")
    folders = sorted(p for p in root.iterdir() if (p / PREDICTION_INFO).is_file())
    if not folders:
        raise DataError(f"{root} holds no predicted wells (no */{PREDICTION_INFO})")
    for folder in folders:
        yield PredictionRecord.load(folder)


def read_statistic(record: PredictionRecord, channel: str, statistic: str) -> np.ndarray:
    """One statistic image of one channel as float32 in [0, 1]."""
    from cellsight_shared.io import read_image

    path = record.directory / statistic_filename(channel, statistic, record.image_format)
    if not path.is_file():
        raise DataError(f"missing prediction image {path}; was '{statistic}' written for {channel}?")
    return read_image(path).astype(np.float32) / np.float32(_SCALE)


def read_truth(record: PredictionRecord, channels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth [h, w, C] and presence masks [C] of the predicted region, from the well."""
    from isl.data import index_well, load_well

    files = index_well(record.well, verify=False)
    well = load_well(
        files,
        input_channels=(),
        model_input_channels=(),
        target_channels=channels,
        derived=record.derived_channels,
    )
    return well.target_images(channels, record.derived_channels, record.region)
