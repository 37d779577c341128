"""Reading the original crop layouts, validating them, and the seeded pair sampler (numpy only).

Yeast: ``<root>/<STRAIN>/<STRAIN>_<field>_rfp_<cell>_gfp.tif`` (protein) with its marker
``..._bf.tif`` (brightfield, tried first as the original did) or ``..._rfp.tif``.
Human: ``<root>/<GENE>_<plate>_<well>/<plate>_<well>_<field>_<cell>_{green,blue,red}.tif``
(antibody, nucleus, microtubules). Every cell is one array (size, size, C) channels-last with the
protein first; the network sees all C channels of the source and channels 1.. of the target.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pairedinpaint.errors import DataError
from pairedinpaint.preprocess import fit_size, normalise_channels

logger = logging.getLogger(__name__)

LAYOUTS = {
    # protein suffix, marker suffixes (alternatives tried in order) per marker channel, modes
    "yeast": ("_gfp", (("_bf", "_rfp"),), ("minmax", "minmax")),
    "human": ("_green", (("_blue",), ("_red",)), ("minmax", "window", "window")),
}


@dataclass(frozen=True)
class Cell:
    """One cell: its name (file stem before the channel tag), directory label, field and files."""

    name: str
    label: str
    field: str
    paths: tuple[Path, ...]


def channel_count(layout: str) -> int:
    """Channels per cell of a layout (yeast 2, human 3)."""
    return 1 + len(LAYOUTS[layout][1])


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise DataError(f"layout must be one of {sorted(LAYOUTS)}, got {layout!r}")


def index_cells(root: str | os.PathLike[str], layout: str = "yeast") -> list[Cell]:
    """Find every cell under ``root/<dir>/``, sorted by directory and name (repeatable, unlike listdir)."""
    _check_layout(layout)
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist or is not a folder; check data.root")
    protein, markers, _ = LAYOUTS[layout]
    cells = []
    missing = []
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(directory.glob(f"*{protein}.tif")):
            stem = path.name[: -len(protein + ".tif")]
            paths = [path]
            for alternatives in markers:
                found = next(
                    (
                        directory / f"{stem}{s}.tif"
                        for s in alternatives
                        if (directory / f"{stem}{s}.tif").is_file()
                    ),
                    None,
                )
                if found is None:
                    missing.append(str(directory / f"{stem}{alternatives[-1]}.tif"))
                    break
                paths.append(found)
            else:
                cells.append(
                    Cell(stem, directory.name, f"{directory.name}/{stem.rsplit('_', 1)[0]}", tuple(paths))
                )
    if missing:
        raise DataError(
            f"{len(missing)} cells under {root} lack a marker channel, e.g. {missing[:3]}; every "
            f"{protein}.tif needs its marker file(s) in the {layout} layout"
        )
    if not cells:
        raise DataError(
            f"no cells found under {root}: expected <dir>/<name>{protein}.tif files ({layout} layout); "
            "check data.root and data.layout"
        )
    return cells


def read_cell(cell: Cell, *, layout: str, size: int) -> np.ndarray:
    """Read and normalise one cell to float32 (size, size, C); bad files raise DataError naming them."""
    import tifffile

    channels = []
    for path in cell.paths:
        try:
            image = np.asarray(tifffile.imread(path), dtype=np.float32)
        except (OSError, ValueError, tifffile.TiffFileError) as err:
            raise DataError(f"cannot read {path} ({err}); the file may be corrupt") from err
        image = np.squeeze(image)
        if image.ndim != 2:
            raise DataError(
                f"{path} has shape {image.shape}; expected one grey channel (a 2-D crop). Save each "
                "channel as its own single-page TIFF."
            )
        if image.shape[0] != image.shape[1] or fit_size(image, size).shape != (size, size):
            raise DataError(
                f"{path} is {image.shape[0]}x{image.shape[1]} px; expected {size}x{size} (or {2 * size}x"
                f"{2 * size}, halved by 2x2 means). Set data.size or re-crop the cells."
            )
        if not np.all(np.isfinite(image)):
            raise DataError(f"{path} contains NaN or infinite values; fix or drop this crop")
        channels.append(fit_size(image, size))
    return normalise_channels(channels, list(LAYOUTS[layout][2]))


def check_crops(cells: Sequence[Cell], *, layout: str, size: int, limit: int | None = 64) -> None:
    """Read the first ``limit`` cells (all when None) so that a wrong size fails before work starts."""
    for cell in cells[: limit if limit is not None else len(cells)]:
        read_cell(cell, layout=layout, size=size)


def pair_groups(
    cells: Sequence[Cell], *, pair_with: str = "directory", singletons: str = "error"
) -> list[np.ndarray]:
    """Group cell indices by directory (or field); one-cell groups raise or are dropped."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, cell in enumerate(cells):
        groups[cell.label if pair_with == "directory" else cell.field].append(i)
    lonely = sorted(key for key, members in groups.items() if len(members) < 2)
    if lonely and singletons == "error":
        raise DataError(
            f"{len(lonely)} {pair_with} group(s) hold a single cell, so no target cell can be drawn: "
            f"{lonely[:5]}. Add cells, remove them (pairedinpaint filter), or set data.singletons = 'skip'."
        )
    if lonely:
        logger.warning("leaving out %d single-cell groups: %s", len(lonely), lonely[:5])
    kept = [np.asarray(m) for k, m in sorted(groups.items()) if len(m) >= 2]
    if not kept:
        raise DataError("no group holds two or more cells; paired inpainting needs pairs from one image")
    return kept


class PairSampler:
    """Seeded pairs: every source cell once per epoch, the target uniform among the others of its group.

    Batch ``b`` of epoch ``e`` depends only on (seed, e, b), so a resumed run draws what the
    uninterrupted one would have drawn.
    """

    def __init__(
        self, groups: list[np.ndarray], *, batch_size: int, seed: int = 0, augment: bool = True
    ) -> None:
        self.groups = groups
        self.sources = np.concatenate(groups)
        self.group_of = {int(i): g for g in groups for i in g}
        self.batch_size = batch_size
        self.seed = seed
        self.augment = augment

    def __len__(self) -> int:
        return max(1, len(self.sources) // self.batch_size)

    def batch(self, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(source ids, target ids, flips (B, 4) bool: src lr, src ud, tgt lr, tgt ud) of one batch."""
        order = np.random.default_rng((self.seed, epoch)).permutation(self.sources)
        start = (index % len(self)) * self.batch_size
        src = order[start : start + self.batch_size]
        if len(src) < self.batch_size:  # fewer cells than a batch: wrap around
            src = np.resize(order, self.batch_size)
        rng = np.random.default_rng((self.seed, epoch, index, 1))
        tgt = np.empty_like(src)
        for j, s in enumerate(src):
            members = self.group_of[int(s)]
            pick = int(rng.integers(len(members) - 1))
            others = members[members != s]
            tgt[j] = others[pick]
        flips = rng.random((len(src), 4)) < 0.5 if self.augment else np.zeros((len(src), 4), bool)
        return src, tgt, flips


def assemble(
    crops: np.ndarray, src: np.ndarray, tgt: np.ndarray, flips: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Build (x_in, y_rfp, y_gfp) from crops (N, H, W, C) for the given source/target ids and flips."""
    x = crops[src].copy()
    t = crops[tgt].copy()
    for j in range(len(src)):
        if flips[j, 0]:
            x[j] = x[j, :, ::-1]
        if flips[j, 1]:
            x[j] = x[j, ::-1]
        if flips[j, 2]:
            t[j] = t[j, :, ::-1]
        if flips[j, 3]:
            t[j] = t[j, ::-1]
    return x, t[..., 1:], t[..., :1]


def load_crops(cells: Sequence[Cell], *, layout: str, size: int, progress: bool = True) -> np.ndarray:
    """Read and normalise every cell into one float32 array (N, size, size, C)."""
    from cellsight_shared.cli import progress as bar

    out = np.empty((len(cells), size, size, channel_count(layout)), np.float32)
    for i, cell in enumerate(bar(cells, desc="reading crops", disable=not progress)):
        out[i] = read_cell(cell, layout=layout, size=size)
    return out


def iter_batches(cells: Sequence[Cell], *, layout: str, size: int, batch_size: int) -> Iterator[np.ndarray]:
    """Stream normalised crops in batches (memory bounded by one batch)."""
    for start in range(0, len(cells), batch_size):
        yield np.stack([read_cell(c, layout=layout, size=size) for c in cells[start : start + batch_size]])


def write_layout(
    root: str | os.PathLike[str], images: np.ndarray, labels: Sequence[str], *, layout: str = "yeast"
) -> list[Cell]:
    """Write crops (N, C, H, W) as float TIFFs in a layout (one directory per label); returns the cells."""
    import tifffile

    root = Path(root)
    protein, markers, _ = LAYOUTS[layout]
    counters: dict[str, int] = defaultdict(int)
    for image, label in zip(images, labels, strict=True):
        counters[label] += 1
        n = counters[label]
        directory = root / str(label)
        directory.mkdir(parents=True, exist_ok=True)
        stem = f"{label}_{1 + n % 2}_rfp_{n}" if layout == "yeast" else f"1_A1_{1 + n % 2}_{n}"
        suffixes = [protein] + [alternatives[-1] for alternatives in markers]
        for channel, suffix in zip(image, suffixes, strict=False):
            tifffile.imwrite(directory / f"{stem}{suffix}.tif", np.asarray(channel, np.float32))
    return index_cells(root, layout)
