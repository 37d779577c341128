"""The original's error visualisations and panels, and plots of training and evaluation.

Colours, box order and the 4-pixel borders follow the original ``visualize.py``: purple boxes are
predictions, teal the truth, white the additive error (grey = correct, orange tint = false
positive, blue tint = false negative), black the subtractive error (black = correct, orange =
false positive, blue = false negative) and mango the presence mask. Panels are 16-bit RGB PNGs,
``value * 65535`` truncated, as the original wrote them. matplotlib is imported inside the plots.
"""

from __future__ import annotations

import csv
import logging
import math
import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from isl.outputs import PredictionRecord, read_statistic, read_truth

__all__ = [
    "BLACK",
    "MANGO",
    "PAD_WIDTH",
    "PREDICTION_ORANGE",
    "PURPLE",
    "RED",
    "TARGET_BLUE",
    "TURQUOISE",
    "WHITE",
    "PanelRow",
    "add_border",
    "additive_error",
    "cross_entropy_error",
    "error_panel",
    "make_figures",
    "panel_boxes",
    "plot_loss_curve",
    "target_panel_rows",
    "plot_pearson",
    "read_png_rgb16",
    "subtractive_error",
    "write_error_panel",
]

logger = logging.getLogger(__name__)

PURPLE = (102.0 / 255.0, 0.0, 1.0)
RED = (1.0, 0.0, 0.0)
WHITE = (1.0, 1.0, 1.0)
BLACK = (0.0, 0.0, 0.0)
MANGO = (1.0, 130.0 / 255.0, 67.0 / 255.0)
TURQUOISE = (64.0 / 255.0, 224.0 / 255.0, 208.0 / 255.0)
PREDICTION_ORANGE = (1.0, 0.5, 0.0)
TARGET_BLUE = (0.0, 0.5, 1.0)
#: Border around every box of a panel, in pixels.
PAD_WIDTH = 4


def _colorize(image: np.ndarray, color: Sequence[float]) -> np.ndarray:
    return np.asarray(image, np.float32)[..., None] * np.asarray(color, np.float32)


def additive_error(target: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """RGB = truth * TARGET_BLUE + prediction * PREDICTION_ORANGE = (pred, (pred+truth)/2, truth)."""
    return _colorize(target, TARGET_BLUE) + _colorize(prediction, PREDICTION_ORANGE)


def subtractive_error(target: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """RGB of d = prediction - truth: orange where d > 0 (false positive), blue where d < 0."""
    difference = np.asarray(prediction, np.float32) - np.asarray(target, np.float32)
    false_positive = np.where(difference > 0, difference, 0.0)
    false_negative = np.where(difference < 0, -difference, 0.0)
    return _colorize(false_positive, PREDICTION_ORANGE) + _colorize(false_negative, TARGET_BLUE)


def cross_entropy_error(target: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Cross-entropy of distributions [..., classes] / ln(classes), clipped to [0, 1].

    0 is no error and 1 the error of a uniform predictor (larger errors are clipped).
    """
    predicted = np.asarray(predicted, np.float32)
    product = np.log(predicted + np.float32(1e-6)) * np.asarray(target, np.float32)
    error = -product.sum(axis=-1) / math.log(predicted.shape[-1])
    return np.clip(error, 0.0, 1.0).astype(np.float32)


def add_border(image: np.ndarray, color: Sequence[float], width: int = PAD_WIDTH) -> np.ndarray:
    """A grey [H, W] or RGB [H, W, 3] image inside a ``width``-pixel border of ``color``."""
    image = np.asarray(image, np.float32)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    rows, cols = image.shape[:2]
    out = np.empty((rows + 2 * width, cols + 2 * width, 3), np.float32)
    out[...] = np.asarray(color, np.float32)
    out[width : width + rows, width : width + cols] = image
    return out


@dataclass(frozen=True)
class PanelRow:
    """One row of an error panel: a (z, channel) pair's statistics, truth and presence mask."""

    statistics: Mapping[str, np.ndarray]
    """'mode', 'median', 'mean', 'std' -> [H, W] in [0, 1] (only 'median' for simplified panels)."""
    truth: np.ndarray
    mask: np.ndarray | None = None


def panel_boxes(row: PanelRow, *, simplify: bool) -> list[np.ndarray]:
    """The bordered boxes of one row, left to right, in the original's order."""
    statistics = ["median"] if simplify else ["mode", "median", "mean", "std"]
    boxes = [add_border(row.statistics[s], PURPLE) for s in statistics]
    boxes.append(add_border(row.truth, TURQUOISE))
    if not simplify:
        boxes += [add_border(additive_error(row.truth, row.statistics[s]), WHITE) for s in statistics[:3]]
    boxes += [add_border(subtractive_error(row.truth, row.statistics[s]), BLACK) for s in statistics[:3]]
    if not simplify:
        mask = row.mask if row.mask is not None else np.ones_like(row.truth)
        boxes.append(add_border(mask, MANGO))
    return boxes


def _panel_rows(rows: Iterable[PanelRow], *, simplify: bool) -> Iterator[np.ndarray]:
    for row in rows:
        yield np.concatenate(panel_boxes(row, simplify=simplify), axis=1)


def error_panel(rows: Sequence[PanelRow], *, simplify: bool = True) -> np.ndarray:
    """The whole panel as float RGB [rows * (H + 8), boxes * (W + 8), 3] (small inputs only)."""
    return np.concatenate(list(_panel_rows(rows, simplify=simplify)), axis=0)


def _to_uint16(rgb: np.ndarray) -> np.ndarray:
    # The original multiplied by 65535 and truncated (numpy astype), after clipping implicitly.
    return (np.clip(rgb, 0.0, 1.0) * np.float32(65535)).astype(np.uint16)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_error_panel(
    path: str | Path, rows: Iterable[PanelRow], *, simplify: bool = True, overwrite: bool = False
) -> Path:
    """Write a panel as a 16-bit RGB PNG, streaming row by row (panels can be gigapixels)."""
    from cellsight_shared.io import atomic_write

    strips = _panel_rows(rows, simplify=simplify)
    first = next(strips, None)
    if first is None:
        raise ValueError("an error panel needs at least one row")
    pending = [first]
    height = 0
    path = Path(path)
    with atomic_write(path, overwrite=overwrite) as tmp:
        with Path(tmp).open("wb") as handle:
            width = first.shape[1]
            # The height is only known at the end: write IDAT chunks per strip, IHDR patched last.
            handle.write(b"\x89PNG\r\n\x1a\n")
            header_at = handle.tell()
            handle.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, 0, 16, 2, 0, 0, 0)))
            compressor = zlib.compressobj(6)
            for strip in _chain(pending, strips):
                if strip.shape[1] != width:
                    raise ValueError("all panel rows must have the same width")
                data = _to_uint16(strip).astype(">u2")
                raw = np.concatenate(
                    [np.zeros((data.shape[0], 1), np.uint8), data.reshape(data.shape[0], -1).view(np.uint8)],
                    axis=1,
                )
                height += strip.shape[0]
                chunk = compressor.compress(raw.tobytes())
                if chunk:
                    handle.write(_png_chunk(b"IDAT", chunk))
            handle.write(_png_chunk(b"IDAT", compressor.flush()))
            handle.write(_png_chunk(b"IEND", b""))
            handle.seek(header_at)
            handle.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)))
    return path


def _chain(first: list[np.ndarray], rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield from first
    yield from rest


def read_png_rgb16(path: str | Path) -> np.ndarray:
    """Read a 16-bit RGB PNG as uint16 [H, W, 3] (Pillow reduces these to 8 bits).

    Handles all five PNG row filters, non-interlaced images only.
    """
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG file")
    position, idat = 8, []
    width = height = 0
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 16 or color != 2 or interlace:
                raise ValueError(f"{path} is not a non-interlaced 16-bit RGB PNG")
        elif kind == b"IDAT":
            idat.append(body)
        position += 12 + length
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(height, 1 + width * 6)
    out = np.zeros((height, width * 6), np.uint8)
    bpp = 6
    for r in range(height):
        kind, line = raw[r, 0], raw[r, 1:].astype(np.int32)
        prior = out[r - 1].astype(np.int32) if r else np.zeros(width * 6, np.int32)
        if kind == 0:
            out[r] = line
        elif kind == 2:
            out[r] = (line + prior) & 255
        else:  # filters 1, 3, 4 depend on the reconstructed left neighbour: do it byte by byte
            row = np.zeros(width * 6, np.int32)
            for i in range(width * 6):
                left = row[i - bpp] if i >= bpp else 0
                up = prior[i]
                upper_left = prior[i - bpp] if i >= bpp else 0
                if kind == 1:
                    value = left
                elif kind == 3:
                    value = (left + up) // 2
                else:
                    p = left + up - upper_left
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - upper_left)
                    value = left if pa <= pb and pa <= pc else (up if pb <= pc else upper_left)
                row[i] = (line[i] + value) & 255
            out[r] = row
    return out.view(">u2").astype(np.uint16).reshape(height, width, 3)


# ------------------------------------------------------------------------------------- plots


def plot_loss_curve(log_csv: str | Path, png: str | Path) -> Path | None:
    """Plot the training loss (total, input heads, target heads) from ``loss.csv``."""
    log_csv, png = Path(log_csv), Path(png)
    if not log_csv.is_file():
        logger.warning("no loss log at %s; skipping the loss curve", log_csv)
        return None
    with log_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cellsight_shared.io import atomic_write

    steps = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(steps, [float(r["loss"]) for r in rows], label="total", color="black")
    ax.plot(steps, [float(r["input_loss"]) for r in rows], label="input heads", color="tab:blue")
    ax.plot(steps, [float(r["target_loss"]) for r in rows], label="target heads", color="tab:orange")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy / ln 256")
    ax.set_title("training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_write(png, overwrite=True) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return png


def plot_pearson(metrics_csv: str | Path, png: str | Path) -> Path:
    """Bar chart of the per-label Pearson r from an ``isl evaluate`` metrics.csv."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cellsight_shared.io import atomic_write

    with Path(metrics_csv).open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("well") == "all"]
    labels = [r["channel"] for r in rows]
    values = [float(r["pearson_r"]) for r in rows]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(labels) + 2), 4), dpi=100)
    ax.bar(range(len(labels)), values, color="tab:purple")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylim(min(0.0, min(values, default=0.0)), 1.0)
    ax.set_ylabel("Pearson r (pixel-wise)")
    ax.set_title("predicted vs true fluorescence")
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.2f}", ha="center", va="bottom")
    fig.tight_layout()
    with atomic_write(png, overwrite=True) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(png)


def make_figures(config) -> list[Path]:  # noqa: ANN001 - FiguresConfig, imported lazily
    """``isl figures``: redraw panels from a prediction folder, the Pearson chart, the loss curve."""
    from isl.config import FiguresConfig
    from isl.errors import ConfigError

    assert isinstance(config, FiguresConfig)
    if config.predictions is None and config.metrics is None and config.run is None:
        raise ConfigError("figures needs at least one of 'predictions', 'metrics' or 'run'")
    config.out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if config.run is not None:
        path = plot_loss_curve(Path(config.run) / "loss.csv", config.out / "loss_curve.png")
        if path is not None:
            written.append(path)
    if config.metrics is not None:
        written.append(plot_pearson(config.metrics, config.out / "pearson_r.png"))
    if config.predictions is not None:
        from isl.outputs import iter_prediction_wells

        for record in iter_prediction_wells(config.predictions):
            target = config.out / record.name / "target_error_panel.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            rows = target_panel_rows(record, simplify=config.simplify_panels)
            written.append(write_error_panel(target, rows, simplify=config.simplify_panels, overwrite=True))
    return written


def target_panel_rows(record: PredictionRecord, *, simplify: bool) -> Iterator[PanelRow]:
    """Panel rows of the predicted channels, from the files (for ``isl figures``)."""
    needed = ["median"] if simplify else ["mode", "median", "mean", "std"]
    truth, masks = read_truth(record, record.channels)
    for index, channel in enumerate(record.channels):
        statistics = {s: read_statistic(record, channel, s) for s in needed}
        yield PanelRow(
            statistics=statistics,
            truth=truth[..., index],
            mask=np.full(truth.shape[:2], masks[index], np.float32),
        )
