"""ImageJ ROI zips (Fiji's ROI Manager "Save...") rasterised to an instance label image.

Supports the area ROI types ImageJ writes for outlines: polygon (0), rectangle (1), oval (2),
freehand (7) and traced (8), with integer or sub-pixel coordinates. ROI i gets label i + 1, so the
first ROI is a cell (v3 painted it with id 0, i.e. as background, and lost it).
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np
from skimage import draw

from impartial.errors import DataError

__all__ = ["parse_roi", "read_roi_zip"]

_AREA_TYPES = {0: "polygon", 1: "rect", 2: "oval", 7: "freehand", 8: "traced"}
_SUB_PIXEL = 128


def parse_roi(data: bytes, *, where: str) -> tuple[str, np.ndarray]:
    """Return (kind, (N, 2) float array of (y, x) vertices) of one .roi file's bytes."""
    if len(data) < 64 or data[:4] != b"Iout":
        raise DataError(
            f"{where} is not an ImageJ ROI (no 'Iout' header); re-export the ROIs from Fiji's ROI Manager."
        )
    version = struct.unpack(">h", data[4:6])[0]
    kind = data[6]
    top, left, bottom, right, n = struct.unpack(">hhhhH", data[8:18])
    options = struct.unpack(">h", data[50:52])[0]
    if kind not in _AREA_TYPES:
        raise DataError(
            f"{where} has ROI type {kind}, not an area (polygon, rectangle, oval, freehand, traced); "
            "draw cell outlines as closed selections."
        )
    name = _AREA_TYPES[kind]
    if name in ("rect", "oval"):
        return name, np.array([[top, left], [bottom, right]], dtype=np.float64)
    need = 64 + 4 * n
    if len(data) < need or n < 3:
        raise DataError(f"{where} is truncated or has fewer than 3 vertices ({n}); the ROI zip is corrupt.")
    if options & _SUB_PIXEL and version >= 222 and len(data) >= need + 8 * n:
        xs = np.frombuffer(data, dtype=">f4", count=n, offset=need).astype(np.float64)
        ys = np.frombuffer(data, dtype=">f4", count=n, offset=need + 4 * n).astype(np.float64)
    else:
        xs = np.frombuffer(data, dtype=">i2", count=n, offset=64).astype(np.float64) + left
        ys = np.frombuffer(data, dtype=">i2", count=n, offset=64 + 2 * n).astype(np.float64) + top
    return name, np.stack([ys, xs], axis=1)


def read_roi_zip(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise every ROI of an ImageJ ROI zip into an int32 (H, W) label image (ids 1..N).

    Later ROIs are painted over earlier ones where they overlap. An ROI outside the image raises.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"ROI zip {path} does not exist; check the labels folder (labels/final/<name>.zip).")
    try:
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.namelist() if m.lower().endswith(".roi")]
            blobs = [(m, zf.read(m)) for m in members]
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise DataError(f"{path} is not a readable zip file ({err}); re-export the ROIs from Fiji.") from err
    if not blobs:
        raise DataError(f"{path} holds no .roi files; save the ROI Manager's outlines into it.")
    h, w = shape
    labels = np.zeros((h, w), dtype=np.int32)
    for i, (member, data) in enumerate(blobs):
        kind, pts = parse_roi(data, where=f"{path}:{member}")
        ys, xs = pts[:, 0], pts[:, 1]
        if ys.max() < 0 or xs.max() < 0 or ys.min() >= h or xs.min() >= w:
            raise DataError(
                f"{path}:{member} lies outside the {h}x{w} image (y {ys.min():.0f}..{ys.max():.0f}, "
                f"x {xs.min():.0f}..{xs.max():.0f}); is this the ROI zip of another image?"
            )
        if kind == "rect":
            (t, lft), (b, r) = pts
            rr, cc = draw.rectangle((t, lft), end=(b - 1, r - 1), shape=(h, w))
        elif kind == "oval":
            (t, lft), (b, r) = pts
            rr, cc = draw.ellipse(
                (t + b - 1) / 2, (lft + r - 1) / 2, (b - t) / 2, (r - lft) / 2, shape=(h, w)
            )
        else:
            rr, cc = draw.polygon(ys, xs, shape=(h, w))
            pr, pc = draw.polygon_perimeter(ys, xs, shape=(h, w), clip=False)
            keep = (pr >= 0) & (pr < h) & (pc >= 0) & (pc < w)
            rr, cc = np.concatenate([rr, pr[keep]]), np.concatenate([cc, pc[keep]])
        labels[rr, cc] = i + 1
    return labels
