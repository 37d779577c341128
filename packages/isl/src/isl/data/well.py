"""Index, validate and load wells: one directory of PNGs per well.

A well holds the transmitted-light z-planes and the fluorescence maximum projections of one stitched,
registered field. Indexing reads only PNG headers (and checks every file's integrity), so all bad
input is reported before any training or prediction starts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from isl.data.naming import MAXPROJECT, parse_image_name
from isl.errors import DataError

__all__ = [
    "TRANSMISSION",
    "WellFiles",
    "check_wells",
    "find_wells",
    "index_well",
    "z_index",
    "z_labels",
]

logger = logging.getLogger(__name__)

#: The model's name for the sum of the transmitted-light modalities.
TRANSMISSION = "TRANSMISSION"

_PNG_MODES = {"L": np.uint8, "I;16": np.uint16, "I;16B": np.uint16, "I;16L": np.uint16, "I": None}


def z_labels(num_z_values: int) -> tuple[float, ...]:
    """Normalised z positions of the model's input planes: linspace(0, 1, n) rounded to 4 decimals."""
    if num_z_values == 1:
        return (0.0,)
    return tuple(round(float(v), 4) for v in np.linspace(0.0, 1.0, num_z_values))


def z_index(label: float, num_planes: int) -> int:
    """File z-index of a normalised z: ``int(round((N - 1) * z))`` as in the original."""
    return round((num_planes - 1) * label)


@dataclass(frozen=True)
class WellFiles:
    """The validated file index of one well (no pixels loaded)."""

    directory: Path
    files: dict[tuple[int | str, str], Path]
    """(z or MAXPROJECT, channel) -> path of the image (``is_mask-false`` files only)."""
    shape: tuple[int, int]
    """(rows, columns) shared by every image."""
    dtypes: dict[tuple[int | str, str], np.dtype] = field(repr=False)

    @property
    def name(self) -> str:
        """The well's directory name."""
        return self.directory.name

    @property
    def num_planes(self) -> int:
        """Number of z-planes (integer z values, 0..N-1)."""
        return len({z for z, _ in self.files if isinstance(z, int)})

    def plane_channels(self) -> set[str]:
        """Channels present as z-planes."""
        return {c for z, c in self.files if isinstance(z, int)}

    def projection_channels(self) -> set[str]:
        """Channels present as MAXPROJECT images (fluorescence targets)."""
        return {c for z, c in self.files if z == MAXPROJECT}


def _read_header(path: Path) -> tuple[tuple[int, int], np.dtype]:
    """Return (rows, columns) and dtype of a grayscale PNG; check the whole file's integrity."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            mode, (width, height) = image.mode, image.size
            image.verify()  # walks every chunk and its CRC: catches truncation and corruption
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path} is not a readable PNG ({err}); re-export or remove the file") from err
    if mode not in _PNG_MODES:
        raise DataError(f"{path} is a {mode!r} image; wells hold single-channel 8- or 16-bit grayscale PNGs")
    dtype = np.dtype(_PNG_MODES[mode] or np.uint16)
    return (height, width), dtype


def index_well(directory: str | Path, *, verify: bool = True) -> WellFiles:
    """Index the PNGs of one well and validate their names, z values and sizes.

    Raises DataError when the directory holds no PNG, a name cannot be parsed, the z values are not
    0..N-1, or images differ in size. With ``verify`` every file is checked for corruption.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"well directory {directory} does not exist or is not a directory")
    files: dict[tuple[int | str, str], Path] = {}
    dtypes: dict[tuple[int | str, str], np.dtype] = {}
    shapes: dict[tuple[int, int], Path] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() != ".png" or not path.is_file():
            continue
        try:
            key = parse_image_name(path)
        except ValueError as err:
            raise DataError(f"{directory}: {err}") from err
        if key is None:
            continue
        if key.is_mask:
            logger.warning("ignoring mask image %s (masks are derived from presence)", path.name)
            continue
        slot = (key.z, key.channel)
        if slot in files:
            raise DataError(
                f"{directory}: two files for z={key.z}, channel={key.channel}: "
                f"{files[slot].name} and {path.name}; keep one"
            )
        if verify:
            shape, dtype = _read_header(path)
        else:
            from PIL import Image

            with Image.open(path) as image:
                shape, dtype = (image.size[1], image.size[0]), np.dtype(np.uint16)
        files[slot] = path
        dtypes[slot] = dtype
        shapes.setdefault(shape, path)
    if not files:
        raise DataError(
            f"{directory} holds no well PNGs; expected files named like "
            "'...,z_depth-0,channel-PHASE_CONTRAST,is_mask-false.png'"
        )
    if len(shapes) > 1:
        listing = "; ".join(f"{r}x{c} ({p.name})" for (r, c), p in shapes.items())
        raise DataError(
            f"{directory}: images of a well must all have the same size, found {listing}; "
            "re-stitch or crop them to one size"
        )
    z_values = sorted({z for z, _ in files if isinstance(z, int)})
    if z_values != list(range(len(z_values))):
        raise DataError(
            f"{directory}: z values must be 0..N-1 without gaps, found {z_values}; "
            "a z-plane file is missing or misnamed"
        )
    return WellFiles(directory=directory, files=files, shape=next(iter(shapes)), dtypes=dtypes)


def find_wells(paths: Iterable[str | Path], *, verify: bool = True) -> list[WellFiles]:
    """Index every well under ``paths``: a directory with PNGs is a well, otherwise its sub-dirs are."""
    wells: list[WellFiles] = []
    for root in paths:
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"{root} does not exist or is not a directory; expected a well folder")
        if any(p.suffix.lower() == ".png" for p in root.iterdir()):
            wells.append(index_well(root, verify=verify))
            continue
        subdirs = sorted(p for p in root.iterdir() if p.is_dir())
        found = [d for d in subdirs if any(p.suffix.lower() == ".png" for p in d.iterdir())]
        if not found:
            raise DataError(
                f"{root} holds no PNGs and no well sub-directories with PNGs; "
                "point to a well directory or to a folder of wells"
            )
        wells.extend(index_well(d, verify=verify) for d in found)
    return wells


def check_wells(
    wells: Sequence[WellFiles],
    *,
    input_channels: Sequence[str],
    model_input_channels: Sequence[str] = (TRANSMISSION,),
    required_channels: Sequence[str] = (),
    expected_z_planes: int | None = None,
    min_size: int = 0,
) -> None:
    """Validate wells against the data and model settings; raise DataError naming the well and fix."""
    for well in wells:
        planes = well.plane_channels()
        if TRANSMISSION in model_input_channels:
            present = [c for c in input_channels if c in planes]
            if not present:
                raise DataError(
                    f"well {well.directory}: no transmitted-light z-planes; expected one of "
                    f"{list(input_channels)} (found channels {sorted(planes) or 'none'}); set "
                    "data.input_channels to the modality your files use"
                )
            if len(present) > 1:
                raise DataError(
                    f"well {well.directory}: several transmitted-light modalities {present}; the "
                    "original sums them into TRANSMISSION assuming exactly one is present. Keep one "
                    "or restrict data.input_channels"
                )
        for channel in model_input_channels:
            if channel != TRANSMISSION and channel not in planes:
                raise DataError(f"well {well.directory}: model input channel {channel} has no z-planes")
        counts = {c: sum(1 for z, ch in well.files if ch == c and isinstance(z, int)) for c in planes}
        if len(set(counts.values())) > 1:
            raise DataError(f"well {well.directory}: channels have different numbers of z-planes {counts}")
        if expected_z_planes is not None and well.num_planes != expected_z_planes:
            raise DataError(
                f"well {well.directory}: expected {expected_z_planes} z-planes, found "
                f"{well.num_planes}; fix the data or data.expected_z_planes"
            )
        missing = [c for c in required_channels if c not in well.projection_channels()]
        if missing:
            raise DataError(
                f"well {well.directory}: missing required channel(s) {missing}; found "
                f"{sorted(well.projection_channels()) or 'none'}"
            )
        if min(well.shape) < min_size:
            raise DataError(
                f"well {well.directory}: images are {well.shape[0]}x{well.shape[1]}, smaller than "
                f"the {min_size}x{min_size} needed; use larger images or a smaller crop"
            )
