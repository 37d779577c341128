"""Find the images of a dataset: the OpenCell folder layout and generic (marker, protein) pairs.

OpenCell: ``<root>/<GENE>_<ENSG>/OC-FOV_<GENE>_<ENSG>_CID<n>_FID<n>_proj.tif``, each a (2, H, W)
uint16 maximum projection, channel 0 Hoechst (nucleus), 1 the mNeonGreen-tagged protein. An image
list CSV may select files; its first column (or one called ``filename``) holds the names.

Pairs: ``<root>/<PROTEIN>/<key><marker_suffix>`` with ``<key><protein_suffix>`` beside it, as the
yeast toy subset (``_rfp.tif`` marker, ``_gfp.tif`` protein).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from protloc.config import DataConfig
from protloc.errors import DataError

__all__ = ["OPENCELL_NAME", "ImageRecord", "find_images", "parse_opencell_name"]

OPENCELL_NAME = re.compile(
    r"OC-FOV_(?P<gene>.+?)_(?P<ensg>ENSG\d+)_(?P<cid>CID\d+)_(?P<fid>FID\d+)_(?P<kind>proj|stack)\.tiff?$"
)
"""File names of OpenCell fields of view: gene, Ensembl id, cell-line id, FOV id, proj or stack."""


@dataclass(frozen=True)
class ImageRecord:
    """One field of view: its id (unique in the dataset), protein, and file(s)."""

    image_id: str
    protein: str
    path: Path
    """The (C, H, W) OpenCell file, or the marker image of a pair."""
    protein_path: Path | None = None
    """The protein image of a pair; None for OpenCell (the protein is a channel of ``path``)."""
    split: str | None = None
    """A split assigned by the image list (train/val/test), else None."""


def parse_opencell_name(name: str) -> dict[str, str]:
    """The parts of an OpenCell FOV file name; :class:`DataError` for any other name."""
    match = OPENCELL_NAME.search(Path(name).name)
    if match is None:
        raise DataError(
            f"{name!r} is not an OpenCell FOV name; expected OC-FOV_<GENE>_<ENSG...>_CID<n>_FID<n>_proj.tif"
        )
    return match.groupdict()


def _read_image_list(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"image list {path} does not exist; pass a CSV whose first column holds file names")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.reader(handle) if r and any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"image list {path} is empty")
    header = [c.strip().lower() for c in rows[0]]
    if "filename" in header:
        names = header
        body = rows[1:]
    else:  # the original's CSV: file names in the first column, maybe a header we do not know
        names = ["filename"] + [f"col{i}" for i in range(1, len(header))]
        body = rows if OPENCELL_NAME.search(rows[0][0].strip()) else rows[1:]
    return [dict(zip(names, (c.strip() for c in row), strict=False)) for row in body]


def _opencell(config: DataConfig) -> list[ImageRecord]:
    root = config.root
    if config.image_list is not None:
        rows = _read_image_list(config.image_list)
        records = []
        for row in rows:
            name = row["filename"]
            parts = parse_opencell_name(name)
            folder = f"{parts['gene']}_{parts['ensg']}"
            candidates = [root / name, root / folder / Path(name).name]
            path = next((c for c in candidates if c.is_file()), None)
            if path is None:
                raise DataError(
                    f"image list {config.image_list} names {name}, found neither {candidates[0]} nor "
                    f"{candidates[1]}; download it (protloc download) or fix the list"
                )
            split = row.get("split") or None
            if split is not None and split not in {"train", "val", "test"}:
                raise DataError(
                    f"image list {config.image_list}: split {split!r} for {name}; use train, val or test"
                )
            records.append(
                ImageRecord(Path(name).stem, row.get("protein") or parts["gene"], path, None, split)
            )
        return records
    records = []
    for path in sorted(root.glob("*/*_proj.tif*")):
        parts = parse_opencell_name(path.name)
        records.append(ImageRecord(path.stem, parts["gene"], path))
    return records


def _pairs(config: DataConfig) -> list[ImageRecord]:
    records = []
    for folder in sorted(p for p in config.root.iterdir() if p.is_dir()):
        for marker in sorted(folder.glob(f"*{config.marker_suffix}")):
            key = marker.name[: -len(config.marker_suffix)]
            protein = folder / f"{key}{config.protein_suffix}"
            if not protein.is_file():
                raise DataError(
                    f"{marker} has no protein image {protein.name} beside it; every marker image "
                    f"ending {config.marker_suffix!r} needs one ending {config.protein_suffix!r}"
                )
            records.append(ImageRecord(f"{folder.name}/{key}", folder.name, marker, protein))
    return records


def find_images(config: DataConfig) -> list[ImageRecord]:
    """Every image of the dataset ``config`` describes, in a stable order."""
    if not config.root.is_dir():
        raise DataError(f"data root {config.root} is not a folder; set data.root to the dataset folder")
    records = _opencell(config) if config.layout == "opencell" else _pairs(config)
    if not records:
        pattern = "*/OC-FOV_*_proj.tif" if config.layout == "opencell" else f"*/*{config.marker_suffix}"
        raise DataError(f"no images under {config.root} match {pattern} (layout {config.layout!r})")
    ids = [r.image_id for r in records]
    if len(set(ids)) != len(ids):
        raise DataError(f"image ids repeat under {config.root}; each FOV must be listed once")
    return records
