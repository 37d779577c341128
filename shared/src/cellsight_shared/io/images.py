"""Image files: TIFF (multi-page, OME), 8/16-bit PNG, NPY and NPZ (never with pickles).

Arrays keep the file's axis order: 2-D images are (row, column), stacks (plane, row, column),
RGB PNGs (row, column, channel).
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from cellsight_shared.errors import DataFileError, InvalidArgumentError
from cellsight_shared.io.atomic import atomic_write

__all__ = [
    "read_image",
    "read_npz",
    "read_png",
    "read_tiff",
    "read_tiff_metadata",
    "write_image",
    "write_npz",
    "write_png",
    "write_tiff",
]

logger = logging.getLogger(__name__)

TIFF_SUFFIXES = (".tif", ".tiff")
PNG_SUFFIXES = (".png",)


def _existing_file(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"{path} does not exist; check the path (and the current directory).")
    if not path.is_file():
        raise DataFileError(f"{path} is not a file.")
    return path


# --------------------------------------------------------------------------------------- TIFF


def read_tiff(path: str | os.PathLike[str], *, memmap: bool = False) -> np.ndarray:
    """Read a (multi-page, possibly OME) TIFF as one array in the file's axis order.

    With ``memmap=True`` an uncompressed file is memory-mapped (nothing read until indexed);
    a compressed one cannot be and is read whole, with a log message.
    """
    import tifffile

    path = _existing_file(path)
    try:
        if memmap:
            try:
                return tifffile.memmap(path, mode="r")
            except ValueError:
                logger.info("%s is compressed or not contiguous; reading it into memory", path)
        return tifffile.imread(path)
    except (tifffile.TiffFileError, ValueError, OSError, KeyError, IndexError) as err:
        raise DataFileError(f"{path} is not a readable TIFF file ({err}); is it corrupt?") from err


def read_tiff_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return shape, dtype, axes and (when present) OME physical pixel sizes of a TIFF."""
    import tifffile

    path = _existing_file(path)
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            meta: dict[str, Any] = {
                "shape": tuple(int(s) for s in series.shape),
                "dtype": str(series.dtype),
                "axes": series.axes,
                "is_ome": bool(tif.is_ome),
                "physical_size": {},
            }
            if tif.is_ome and tif.ome_metadata:
                meta["physical_size"] = _ome_physical_sizes(tif.ome_metadata)
            elif tif.is_imagej and tif.imagej_metadata:
                meta["imagej"] = {k: v for k, v in tif.imagej_metadata.items() if k != "ROI"}
    except (tifffile.TiffFileError, ValueError, OSError) as err:
        raise DataFileError(f"{path} is not a readable TIFF file ({err}); is it corrupt?") from err
    return meta


def _ome_physical_sizes(ome_xml: str) -> dict[str, float]:
    root = ET.fromstring(ome_xml)
    sizes: dict[str, float] = {}
    for element in root.iter():
        if element.tag.endswith("Pixels"):
            for axis in "XYZ":
                value = element.get(f"PhysicalSize{axis}")
                if value is not None:
                    sizes[axis] = float(value)
            break
    return sizes


def write_tiff(
    path: str | os.PathLike[str],
    array: np.ndarray,
    *,
    axes: str | None = None,
    ome: bool = False,
    metadata: dict[str, Any] | None = None,
    compression: str | None = "zlib",
    photometric: str = "minisblack",
    overwrite: bool = False,
) -> Path:
    """Write ``array`` as a TIFF atomically; ``ome=True`` writes OME-XML with ``axes`` and metadata.

    Planes are grayscale (``photometric="minisblack"``) unless ``photometric="rgb"`` is asked for.

    ``metadata`` entries such as ``PhysicalSizeX`` go into the OME-XML (OME) or the
    tifffile description (plain TIFF).
    """
    import tifffile

    array = np.asarray(array)
    target = Path(path)
    meta: dict[str, Any] = dict(metadata or {})
    if axes is not None:
        if len(axes) != array.ndim:
            raise InvalidArgumentError(
                f"axes {axes!r} has {len(axes)} letters but the array has {array.ndim} dimensions"
            )
        meta["axes"] = axes
    with atomic_write(target, overwrite=overwrite) as tmp:
        tifffile.imwrite(tmp, array, ome=ome, metadata=meta, compression=compression, photometric=photometric)
    return target


# ---------------------------------------------------------------------------------------- PNG


def read_png(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an 8- or 16-bit PNG (grayscale, RGB or RGBA) keeping its bit depth."""
    from PIL import Image, UnidentifiedImageError

    path = _existing_file(path)
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            array = np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataFileError(f"{path} is not a readable image ({err}); is it corrupt or truncated?") from err
    if mode in ("I;16", "I;16B", "I;16L"):
        return array.astype(np.uint16)
    if mode == "I":  # 16-bit PNGs sometimes open as 32-bit integer images
        if array.min() < 0 or array.max() > np.iinfo(np.uint16).max:
            raise DataFileError(f"{path} holds values outside 16 bits; not a 16-bit PNG?")
        return array.astype(np.uint16)
    if mode in ("P", "PA"):
        with Image.open(path) as image:
            return np.asarray(image.convert("RGBA" if "transparency" in image.info else "RGB"))
    if mode == "1":
        return array.astype(np.uint8) * 255
    return array


def write_png(path: str | os.PathLike[str], array: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write a uint8 (gray, RGB, RGBA) or uint16 (gray) array as PNG atomically."""
    from PIL import Image

    array = np.asarray(array)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    if array.dtype not in (np.uint8, np.uint16):
        raise InvalidArgumentError(
            f"PNG holds uint8 or uint16 pixels, got {array.dtype}; scale and cast the array first"
        )
    if array.dtype == np.uint16 and array.ndim != 2:
        raise InvalidArgumentError(
            "16-bit PNG is written for 2-D grayscale arrays only; use TIFF for 16-bit colour"
        )
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (3, 4))):
        raise InvalidArgumentError(f"PNG needs (H, W), (H, W, 3) or (H, W, 4), got shape {array.shape}")
    target = Path(path)
    image = Image.fromarray(np.ascontiguousarray(array))
    with atomic_write(target, overwrite=overwrite) as tmp:
        image.save(tmp, format="PNG")
    return target


# ------------------------------------------------------------------------------------ NPY/NPZ


def read_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read every array of an NPZ file into a dict; pickled object arrays are refused."""
    path = _existing_file(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except ValueError as err:
        if "allow_pickle" in str(err) or "pickled" in str(err):
            raise DataFileError(
                f"{path} holds pickled Python objects, which cellsight never loads; "
                "re-save it with plain numeric arrays."
            ) from err
        raise DataFileError(f"{path} is not a readable NPZ file ({err}).") from err
    except (OSError, EOFError) as err:
        raise DataFileError(f"{path} is not a readable NPZ file ({err}); is it corrupt?") from err


def write_npz(
    path: str | os.PathLike[str],
    arrays: dict[str, np.ndarray],
    *,
    compress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write a dict of arrays as NPZ atomically; object arrays are refused (they would pickle)."""
    for key, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise InvalidArgumentError(
                f"array {key!r} has dtype object, which NPZ can only store as a pickle"
            )
    target = Path(path)
    save = np.savez_compressed if compress else np.savez
    with atomic_write(target, overwrite=overwrite) as tmp, open(tmp, "wb") as handle:
        save(handle, **arrays)  # a file object keeps numpy from appending ".npz"
    return target


def _read_npy(path: Path, *, memmap: bool) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if memmap else None)
    except ValueError as err:
        raise DataFileError(f"{path} is not a plain numeric NPY file ({err}).") from err
    except (OSError, EOFError) as err:
        raise DataFileError(f"{path} is not a readable NPY file ({err}); is it corrupt?") from err


# -------------------------------------------------------------------------------- dispatching


def read_image(path: str | os.PathLike[str], *, memmap: bool = False) -> np.ndarray:
    """Read an image by its suffix: TIFF, PNG, JPEG, NPY or a single-array NPZ."""
    path = _existing_file(path)
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        return read_tiff(path, memmap=memmap)
    if suffix in PNG_SUFFIXES or suffix in (".jpg", ".jpeg", ".bmp"):
        return read_png(path)
    if suffix == ".npy":
        return _read_npy(path, memmap=memmap)
    if suffix == ".npz":
        arrays = read_npz(path)
        if len(arrays) != 1:
            raise DataFileError(
                f"{path} holds {len(arrays)} arrays ({', '.join(arrays)}); an image file must hold one. "
                "Use read_npz to pick one."
            )
        return next(iter(arrays.values()))
    raise DataFileError(
        f"{path} has suffix {suffix!r}; supported images are .tif/.tiff, .png, .jpg, .npy and .npz."
    )


def write_image(path: str | os.PathLike[str], array: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write an image by its suffix (TIFF, PNG, NPY or NPZ), atomically."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        return write_tiff(target, array, overwrite=overwrite)
    if suffix in PNG_SUFFIXES:
        return write_png(target, array, overwrite=overwrite)
    if suffix == ".npz":
        return write_npz(target, {"image": np.asarray(array)}, overwrite=overwrite)
    if suffix == ".npy":
        with atomic_write(target, overwrite=overwrite) as tmp, open(tmp, "wb") as handle:
            np.save(handle, np.asarray(array), allow_pickle=False)
        return target
    raise DataFileError(f"cannot write {target}: supported suffixes are .tif/.tiff, .png, .npy and .npz.")
