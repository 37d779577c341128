"""The raw-data rules: which raw the networks take, and how it becomes network input (numpy only).

The published models were trained on CLAHE-equalised uint8 raw (``incasem equalize``), mapped
``x / 255 * 2 - 1`` onto [-1, 1]. Prediction therefore takes uint8 raw as it is and refuses any
other dtype unless ``raw_range = [low, high]`` is set, which maps ``low..high`` linearly onto
the network's input range (values outside are clipped). Floating-point raw must be finite: NaN
or infinite values are refused before any output exists, and again per block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from incasem.errors import ConfigError, DataError

__all__ = ["check_prediction_raw", "normalize_raw", "scan_values"]


def scan_values(
    array: Any, *, begin: Sequence[int] | None = None, end: Sequence[int] | None = None, slab: int = 32
) -> tuple[float, float, int]:
    """``(min, max, number of NaN/inf voxels)`` of a (z, y, x) array region, read slab by slab."""
    begin = [0, 0, 0] if begin is None else [max(0, int(b)) for b in begin]
    shape = array.shape[-3:]
    end = list(shape) if end is None else [min(int(e), s) for e, s in zip(end, shape, strict=True)]
    low, high, bad = np.inf, -np.inf, 0
    for z in range(begin[0], end[0], slab):
        values = np.asarray(array[z : min(z + slab, end[0]), begin[1] : end[1], begin[2] : end[2]])
        if values.size == 0:
            continue
        if np.issubdtype(values.dtype, np.floating):
            finite = np.isfinite(values)
            bad += int(values.size - np.count_nonzero(finite))
            values = values[finite]
            if values.size == 0:
                continue
        low, high = min(low, float(values.min())), max(high, float(values.max()))
    return low, high, bad


def check_prediction_raw(
    array: Any,
    *,
    name: str,
    raw_range: Sequence[float] | None,
    begin: Sequence[int],
    end: Sequence[int],
) -> None:
    """Refuse raw a prediction would turn into meaningless input; read only for float raw.

    ``begin``/``end`` bound the voxels the blocks will read (array indices).
    """
    dtype = np.dtype(array.dtype)
    if dtype.kind not in "uif" or dtype == np.bool_:
        raise DataError(f"raw {name} has dtype {dtype}; convert it to uint8 (`incasem equalize`)")
    if dtype != np.uint8 and raw_range is None:
        raise ConfigError(
            f"raw {name} is {dtype}, but the published models were trained on CLAHE-equalised "
            "uint8 raw: equalise it (`incasem equalize`, which writes uint8), or set raw_range = "
            "[low, high] in the predict TOML to map low..high linearly onto the network's input "
            "range (values outside are clipped), e.g. [0, 65535] for uint16 or [0, 1] for float "
            "in [0, 1]"
        )
    if dtype.kind == "f":
        _, _, bad = scan_values(array, begin=begin, end=end)
        if bad:
            raise DataError(
                f"raw {name} holds {bad} NaN or infinite voxels in the region to predict; the "
                "network would output NaN there. Fill or mask them in the raw data (or convert it "
                "to uint8) before predicting"
            )


def normalize_raw(raw: np.ndarray, raw_range: Sequence[float] | None = None) -> np.ndarray:
    """Map raw intensities to float32 in [-1, 1]: ``(x - low) / (high - low) * 2 - 1``, clipped.

    Without ``raw_range`` only uint8 is accepted (low 0, high 255), as the published models
    expect. NaN or infinite values raise DataError.
    """
    if raw_range is None:
        if raw.dtype != np.uint8:
            raise DataError(
                f"raw data of dtype {raw.dtype} needs raw_range = [low, high]; the published models "
                "expect CLAHE-equalised uint8 (`incasem equalize`)"
            )
        return raw.astype(np.float32) / 255.0 * 2.0 - 1.0
    low, high = float(raw_range[0]), float(raw_range[1])
    scaled = (raw.astype(np.float32) - np.float32(low)) / np.float32(high - low)
    if np.issubdtype(raw.dtype, np.floating) and not np.isfinite(scaled).all():
        raise DataError("raw block holds NaN or infinite values; fill or mask them before predicting")
    np.clip(scaled, 0.0, 1.0, out=scaled)
    return scaled * np.float32(2.0) - np.float32(1.0)
