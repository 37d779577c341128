"""Load, check and normalise image pairs; split by image; draw augmented training crops.

Everything here is numpy: the training loop turns batches into tensors. Each image is normalised
on its own (percentile stretch of each channel, P1 -> 0 and P99.8 -> 1 by default), which removes
the FOV-to-FOV differences in exposure and expression level that the original's fixed log
statistics left in.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from protloc.config import DataConfig
from protloc.data.layout import ImageRecord, find_images
from protloc.data.proteins import ProteinList, read_protein_list
from protloc.errors import DataError

__all__ = [
    "ImageSet",
    "Split",
    "load_dataset",
    "load_pair",
    "normalize_channel",
    "read_nucleus",
    "split_records",
]

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def _read(path: Path) -> np.ndarray:
    from cellsight_shared.io import read_tiff

    if not path.is_file():
        raise DataError(f"image {path} does not exist")
    try:
        return np.asarray(read_tiff(path))
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - tifffile raises many types for corrupt files
        raise DataError(
            f"cannot read {path} as a TIFF ({type(err).__name__}: {err}); is it complete?"
        ) from err


def _check_plane(image: np.ndarray, path: Path, what: str) -> np.ndarray:
    if image.ndim != 2:
        raise DataError(f"{path}: the {what} image has shape {image.shape}; expected one (H, W) plane")
    if not np.issubdtype(image.dtype, np.number) or np.issubdtype(image.dtype, np.complexfloating):
        raise DataError(f"{path}: the {what} image has dtype {image.dtype}; expected integers or floats")
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        bad = int((~np.isfinite(image)).sum())
        raise DataError(
            f"{path}: the {what} image has {bad} NaN or infinite pixels; fix or drop the file "
            "(protloc never guesses values for them)"
        )
    return image


def normalize_channel(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """Percentile-stretch one plane to float32, ``low`` -> 0 and ``high`` -> 1 (not clipped)."""
    from cellsight_shared.normalize import percentile_normalize

    return percentile_normalize(image, low=low, high=high)


def load_pair(record: ImageRecord, config: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """The normalised (nucleus, protein) float32 planes of one field of view."""
    lo, hi = config.percentile_low, config.percentile_high
    if record.protein_path is None:
        image = _read(record.path)
        if image.ndim == 4:
            raise DataError(
                f"{record.path} is a z-stack {image.shape}; protloc trains on the (2, H, W) *_proj.tif "
                "projections (or take a maximum projection over z first)"
            )
        needed = max(config.nucleus_channel, config.protein_channel) + 1
        if image.ndim != 3 or image.shape[0] < needed:
            raise DataError(
                f"{record.path} has shape {image.shape}; expected (C, H, W) with C >= {needed} holding the "
                f"nucleus in channel {config.nucleus_channel} (data.nucleus_channel) and the protein in "
                f"channel {config.protein_channel} (data.protein_channel)"
            )
        nucleus = _check_plane(image[config.nucleus_channel], record.path, "nucleus")
        protein = _check_plane(image[config.protein_channel], record.path, "protein")
    else:
        nucleus = _check_plane(np.squeeze(_read(record.path)), record.path, "marker")
        protein = _check_plane(np.squeeze(_read(record.protein_path)), record.protein_path, "protein")
        if nucleus.shape != protein.shape:
            raise DataError(
                f"{record.path} is {nucleus.shape} but its protein image {record.protein_path} is "
                f"{protein.shape}; a pair must have the same size"
            )
    return normalize_channel(nucleus, lo, hi), normalize_channel(protein, lo, hi)


def read_nucleus(path: Path, *, channel: int | None, low: float, high: float) -> np.ndarray:
    """The normalised nucleus plane of any image a user gives ``predict``: (H, W) or (C, H, W)."""
    image = _read(Path(path))
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim == 2:
        if channel not in (None, 0):
            raise DataError(f"{path} is a single (H, W) plane; it has no channel {channel} (nucleus_channel)")
        plane = image
    elif image.ndim == 3:
        if channel is None:
            raise DataError(
                f"{path} has {image.shape[0]} channels {image.shape}; say which is the nucleus with "
                "--nucleus-channel (OpenCell projections: 0)"
            )
        if channel >= image.shape[0]:
            raise DataError(
                f"{path} has {image.shape[0]} channels, so it has no nucleus channel {channel}; pass "
                f"--nucleus-channel between 0 and {image.shape[0] - 1} or an image that holds the nucleus"
            )
        plane = image[channel]
    else:
        raise DataError(
            f"{path} has shape {image.shape}; expected an (H, W) nucleus image or a (C, H, W) stack of "
            "channels (take a maximum projection of a z-stack first)"
        )
    return normalize_channel(_check_plane(plane, Path(path), "nucleus"), low, high)


def _split_counts(n: int, val: float, test: float) -> tuple[int, int]:
    n_test = int(round(n * test))
    n_val = int(round(n * val))
    if n >= 3:
        n_test = max(n_test, 1 if test > 0 else 0)
        n_val = max(n_val, 1 if val > 0 else 0)
    while n_test + n_val >= n and (n_test or n_val):  # keep at least one training image
        if n_val >= n_test and n_val:
            n_val -= 1
        else:
            n_test -= 1
    return n_val, n_test


def split_records(records: Sequence[ImageRecord], config: DataConfig) -> dict[str, list[ImageRecord]]:
    """Split by whole image, stratified by protein; an image list's ``split`` column wins.

    The assignment of a protein's images depends only on ``split_seed``, the protein's name and
    its image ids, so adding a protein does not reshuffle the others.
    """
    out: dict[str, list[ImageRecord]] = {s: [] for s in SPLITS}
    by_protein: dict[str, list[ImageRecord]] = {}
    for record in records:
        if record.split is not None:
            out[record.split].append(record)
        else:
            by_protein.setdefault(record.protein, []).append(record)
    for protein, items in sorted(by_protein.items()):
        items = sorted(items, key=lambda r: r.image_id)
        rng = np.random.default_rng((config.split_seed, zlib.crc32(protein.encode())))
        order = rng.permutation(len(items))
        n_val, n_test = _split_counts(len(items), config.val_fraction, config.test_fraction)
        for rank, index in enumerate(order):
            split = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
            out[split].append(items[index])
    for split in SPLITS:
        out[split].sort(key=lambda r: r.image_id)
    return out


@dataclass
class ImageSet:
    """Normalised images of one split, in memory, and the sampler of augmented crops."""

    records: list[ImageRecord]
    nuclei: list[np.ndarray]
    proteins: list[np.ndarray]
    protein_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.records)

    @property
    def min_size(self) -> int:
        """The shortest image side in the set."""
        return min(min(n.shape) for n in self.nuclei)

    def epoch_batches(
        self,
        rng: np.random.Generator,
        *,
        batch_size: int,
        crops_per_image: int = 1,
        rank: int = 0,
        world_size: int = 1,
    ) -> list[np.ndarray]:
        """Image indices of one epoch's batches for this rank: each image ``crops_per_image`` times.

        Every rank draws the same permutation and takes its own stride, so ranks never repeat each
        other's crops and all ranks run the same number of batches (the last partial one is dropped
        when there are several ranks, so gradient all-reduces stay in step).
        """
        order = rng.permutation(np.repeat(np.arange(len(self)), crops_per_image))
        mine = order[rank::world_size]
        if world_size > 1:
            per_rank = len(order) // world_size
            mine = mine[:per_rank]
        n_batches = (
            max(1, int(np.ceil(len(mine) / batch_size))) if world_size == 1 else len(mine) // batch_size
        )
        return [
            mine[i * batch_size : (i + 1) * batch_size]
            for i in range(n_batches)
            if len(mine[i * batch_size : (i + 1) * batch_size])
        ]

    def crops(
        self,
        indices: np.ndarray,
        rng: np.random.Generator,
        *,
        size: int,
        flips: bool = True,
        rot90: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Random ``size`` crops of the images ``indices`` with joint flips and rotations.

        Returns nucleus (B, 1, size, size), protein (B, 1, size, size) float32 and ids (B,) int64.
        """
        nuc = np.empty((len(indices), 1, size, size), np.float32)
        pro = np.empty_like(nuc)
        for b, i in enumerate(indices):
            n, p = self.nuclei[i], self.proteins[i]
            h, w = n.shape
            if h < size or w < size:
                raise DataError(
                    f"{self.records[i].path} is {h}x{w}, smaller than crop_size {size}; lower crop_size"
                )
            y = int(rng.integers(0, h - size + 1))
            x = int(rng.integers(0, w - size + 1))
            a, c = n[y : y + size, x : x + size], p[y : y + size, x : x + size]
            if flips and rng.random() < 0.5:
                a, c = a[::-1], c[::-1]
            if flips and rng.random() < 0.5:
                a, c = a[:, ::-1], c[:, ::-1]
            if rot90:
                k = int(rng.integers(0, 4))
                a, c = np.rot90(a, k), np.rot90(c, k)
            nuc[b, 0], pro[b, 0] = a, c
        return nuc, pro, self.protein_ids[np.asarray(indices)].astype(np.int64)

    def mean_images(self) -> dict[int, np.ndarray]:
        """The mean normalised protein image of each protein id (the mean-image baseline).

        Images of other sizes are resampled to the first image's size before averaging.
        """
        from scipy.ndimage import zoom

        sums: dict[int, np.ndarray] = {}
        counts: dict[int, int] = {}
        for pid, image in zip(self.protein_ids.tolist(), self.proteins, strict=True):
            if pid in sums and image.shape != sums[pid].shape:
                factors = [a / b for a, b in zip(sums[pid].shape, image.shape, strict=True)]
                image = zoom(image, factors, order=1)
            sums[pid] = sums.get(pid, 0) + image.astype(np.float64)
            counts[pid] = counts.get(pid, 0) + 1
        return {pid: (s / counts[pid]).astype(np.float32) for pid, s in sums.items()}

    def iter_images(self) -> Iterator[tuple[ImageRecord, np.ndarray, np.ndarray, int]]:
        """(record, nucleus, protein, protein id) of each image."""
        for i, record in enumerate(self.records):
            yield record, self.nuclei[i], self.proteins[i], int(self.protein_ids[i])


def resolve_proteins(config: DataConfig, records: Sequence[ImageRecord]) -> ProteinList:
    """The protein list of a dataset: the configured file, or the proteins found, sorted."""
    found = sorted({r.protein for r in records})
    if config.protein_list is None:
        return ProteinList(found)
    proteins = read_protein_list(config.protein_list)
    missing = [p for p in found if p not in proteins]
    if missing:
        raise DataError(
            f"the images under {config.root} show proteins {', '.join(missing[:10])} that the protein list "
            f"{config.protein_list} does not name; add them to the list or drop those images"
        )
    return proteins


def load_set(records: Sequence[ImageRecord], config: DataConfig, proteins: ProteinList) -> ImageSet:
    """Read and normalise ``records`` into memory."""
    from cellsight_shared.cli import progress

    nuclei, prots = [], []
    for record in progress(records, desc="reading images", unit="image", leave=False):
        n, p = load_pair(record, config)
        nuclei.append(n)
        prots.append(p)
    ids = np.asarray([proteins.index(r.protein) for r in records], dtype=np.int64)
    return ImageSet(list(records), nuclei, prots, ids)


@dataclass
class Split:
    """A dataset split by image, with its protein list."""

    proteins: ProteinList
    records: dict[str, list[ImageRecord]]

    def to_json(self) -> dict[str, object]:
        """What ``split.json`` of a run holds."""
        return {
            "proteins": list(self.proteins.names),
            **{s: [{"image_id": r.image_id, "protein": r.protein} for r in self.records[s]] for s in SPLITS},
        }


def load_dataset(config: DataConfig) -> Split:
    """Find, check and split a dataset (reads no pixels)."""
    records = find_images(config)
    proteins = resolve_proteins(config, records)
    records_by_split = split_records(records, config)
    if not records_by_split["train"]:
        raise DataError(f"no training images left under {config.root} after the split; lower the fractions")
    logger.info(
        "%d images of %d proteins: %s",
        len(records),
        len(proteins),
        ", ".join(f"{len(v)} {k}" for k, v in records_by_split.items()),
    )
    return Split(proteins, records_by_split)


def select_split(split: Split, name: str, ids: Sequence[str]) -> list[ImageRecord]:
    """The records of ``split`` named in a run's ``split.json``; error if the data changed."""
    by_id = {r.image_id: r for recs in split.records.values() for r in recs}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise DataError(
            f"the run's split.json lists {len(missing)} {name} images no longer found, e.g. {missing[0]}; "
            "evaluate with the data the run was trained on"
        )
    return [by_id[i] for i in ids]
