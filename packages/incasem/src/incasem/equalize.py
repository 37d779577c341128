"""3-D CLAHE as the published models were trained on it, whole-array and blockwise.

The variant is the N-dimensional CLAHE of funkelab's scikit-image fork that incasem vendored
(brief section 4): the volume is scaled to 14 bits, binned into ``nbins`` bins of width
``1 + 16384 // nbins`` grey levels, reflect-padded by half a kernel, split into cubic contextual
regions of ``kernel_size`` voxels whose histograms are clipped at ``int(clip_limit * k**3)``
counts (excess redistributed iteratively), turned into lookup tables by cumulation, and
interpolated multilinearly between the 2**3 neighbouring regions. The result is
``floor(v / 16383 * 255)`` as uint8.

Two implementations share the histogram clipping: :func:`clahe_reference`, a direct
re-expression that maps every padded voxel as the original did (slow, memory hungry; kept for
parity tests), and :func:`clahe_fast`, which clips only the histograms that exceed the limit
and maps only the voxels asked for (a blockwise write block is an eighth of its read block),
with compact dtypes, region cell by region cell. Both accumulate the eight weighted
lookups in float32 in the same order, so they agree to the grey level.

Blockwise (:func:`equalize`), each 128-voxel write block is equalised from a read block grown by
half a kernel (64 voxels) per side, outside-volume voxels filled with the write block's integer
mean, so the region grid is global and the result equals one whole-volume CLAHE away from the
border, as in ``40_equalize_histogram.py``.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from incasem.errors import ConfigError, DataError

if TYPE_CHECKING:
    from incasem.config.tools import EqualizeConfig

__all__ = ["NR_OF_GREY", "clahe_3d", "clahe_fast", "clahe_reference", "clip_histogram", "equalize"]

logger = logging.getLogger(__name__)

#: Grey levels the volume is rescaled to before binning (14 bits).
NR_OF_GREY = 2**14


def _to_grey14(volume: np.ndarray) -> np.ndarray:
    """Scale to 0..16383 the way the original did: ``img_as_uint``, then the uint16 range."""
    from skimage.util import img_as_uint

    as_uint16 = img_as_uint(volume).astype(np.float64)
    return np.round(as_uint16 / 65535.0 * (NR_OF_GREY - 1)).astype(np.uint16)


def _bin_index(grey: np.ndarray, nbins: int) -> np.ndarray:
    return grey // np.uint16(1 + NR_OF_GREY // nbins)


def _binned(volume: np.ndarray, nbins: int) -> np.ndarray:
    """Histogram bin of every voxel; uint8 volumes go through a 256-entry lookup table."""
    if volume.dtype == np.uint8:
        table = _bin_index(_to_grey14(np.arange(256, dtype=np.uint8)), nbins)
        return table[volume]
    return _bin_index(_to_grey14(volume), nbins)


def _clip_limit_counts(clip_limit: float, kernel: Sequence[int]) -> int:
    n = math.prod(kernel)
    if clip_limit <= 0:  # plain AHE
        return n
    return int(max(clip_limit * n, 1))


def clip_histogram(hist: np.ndarray, limit: int) -> np.ndarray:
    """Clip one histogram at ``limit`` counts and redistribute the excess (Zuiderveld's scheme).

    First every bin gets ``excess // nbins``; bins pushed into ``[limit - increment, limit)`` are
    set to the limit; the remaining excess is spread one count at a time with a stride of
    ``(bins below the limit) // excess``, restarting at each bin offset, until none is left or
    no bin can take more. Returns a new int64 array.
    """
    hist = np.asarray(hist, dtype=np.int64).copy()
    above = hist > limit
    excess = int(hist[above].sum()) - int(above.sum()) * limit
    hist[above] = limit

    increment = excess // hist.size
    upper = limit - increment
    low = hist < upper
    excess -= int(low.sum()) * increment
    hist[low] += increment

    near = (hist >= upper) & (hist < limit)
    excess += int(hist[near].sum()) - int(near.sum()) * limit
    hist[near] = limit

    while excess > 0:
        before = excess
        for start in range(hist.size):
            room = hist < limit
            stride = max(1, int(np.count_nonzero(room)) // excess)
            take = room[start::stride]
            view = hist[start::stride]
            view[take] += 1
            excess -= int(np.count_nonzero(take))
            if excess <= 0:
                break
        if excess == before:
            break
    return hist


def _lookup_tables(hist: np.ndarray, n_voxels: int) -> np.ndarray:
    """Cumulative histograms scaled to 0..16383 and truncated, one row per region."""
    tables = np.cumsum(hist, axis=-1).astype(np.float64)
    tables *= (NR_OF_GREY - 1) / n_voxels
    np.clip(tables, None, NR_OF_GREY - 1, out=tables)
    return tables.astype(np.int64)


def _padding(shape: Sequence[int], kernel: Sequence[int]) -> list[tuple[int, int]]:
    # Half a kernel before; after, up to a multiple of the kernel plus half a kernel (rounded up).
    return [(k // 2, (k - s % k) % k + math.ceil(k / 2)) for s, k in zip(shape, kernel, strict=True)]


def _as_kernel(kernel_size: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    kernel = (kernel_size,) * ndim if isinstance(kernel_size, int) else tuple(kernel_size)
    if len(kernel) != ndim or any(int(k) < 1 for k in kernel):
        raise ConfigError(f"kernel_size must be a positive int or {ndim} ints, got {kernel_size}")
    return tuple(int(k) for k in kernel)


def _to_uint8(grey14: np.ndarray) -> np.ndarray:
    return (grey14 / float(NR_OF_GREY - 1) * 255).astype(np.uint8)


def _check_volume(volume: np.ndarray, nbins: int) -> np.ndarray:
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise DataError(f"CLAHE needs a 3-D (z, y, x) volume, got shape {volume.shape}")
    if volume.size == 0:
        raise DataError("CLAHE got an empty volume")
    if not 2 <= nbins <= NR_OF_GREY:
        raise ConfigError(f"nbins must be in 2..{NR_OF_GREY}, got {nbins}")
    return volume


def clahe_reference(
    volume: np.ndarray,
    *,
    kernel_size: int | Sequence[int] = 128,
    clip_limit: float = 0.02,
    nbins: int = 256,
) -> np.ndarray:
    """Equalise ``volume`` (z, y, x) exactly as the original whole-array CLAHE; uint8 result.

    Every voxel of the padded volume is mapped through the eight neighbouring tables, as in the
    original; expect about 100 bytes of memory per padded voxel. Use for parity checks.
    """
    volume = _check_volume(volume, nbins)
    kernel = _as_kernel(kernel_size, 3)
    pads = _padding(volume.shape, kernel)
    binned = _bin_index(np.pad(_to_grey14(volume), pads, mode="reflect"), nbins).astype(np.int64)

    # Regions start half a kernel into the padded volume, i.e. at the volume's first voxel.
    n_regions = [s // k - 1 for s, k in zip(binned.shape, kernel, strict=True)]
    hists = np.empty((*n_regions, nbins), dtype=np.int64)
    limit = _clip_limit_counts(clip_limit, kernel)
    for index in np.ndindex(*n_regions):
        region = tuple(
            slice(k // 2 + i * k, k // 2 + (i + 1) * k) for i, k in zip(index, kernel, strict=True)
        )
        counts = np.bincount(binned[region].ravel(), minlength=nbins)
        hists[index] = clip_histogram(counts, limit)
    tables = _lookup_tables(hists, math.prod(kernel))
    # Repeat the outermost tables so every processing cell has eight neighbours.
    tables = np.pad(tables, [(1, 1)] * 3 + [(0, 0)], mode="edge")

    result = np.zeros(binned.shape, dtype=np.float32)
    n_cells = [s // k for s, k in zip(binned.shape, kernel, strict=True)]
    fractions = [np.arange(k) / k for k in kernel]
    for cell in np.ndindex(*n_cells):
        where = tuple(slice(c * k, (c + 1) * k) for c, k in zip(cell, kernel, strict=True))
        bins = binned[where]
        acc = np.zeros(bins.shape, dtype=np.float32)
        for corner in np.ndindex(2, 2, 2):
            table = tables[cell[0] + corner[0], cell[1] + corner[1], cell[2] + corner[2]]
            w = [fractions[d] if corner[d] else 1 - fractions[d] for d in range(3)]
            # x weight times y weight, then times z weight, as the original multiplied them.
            weight = (w[2][None, None, :] * w[1][None, :, None]) * w[0][:, None, None]
            acc += (table[bins] * weight).astype(np.float32)
        result[where] = acc
    inner = tuple(slice(b, s - a) for (b, a), s in zip(pads, binned.shape, strict=True))
    return _to_uint8(result[inner].astype(np.uint16))


def _region_tables(binned: np.ndarray, kernel: Sequence[int], nbins: int, clip_limit: float) -> np.ndarray:
    """Clipped lookup tables of every region of a padded, binned volume: (rz, ry, rx, nbins)."""
    n_regions = [s // k - 1 for s, k in zip(binned.shape, kernel, strict=True)]
    hists = np.empty((*n_regions, nbins), dtype=np.int64)
    for index in np.ndindex(*n_regions):
        # one bincount per region on a view: no per-voxel id arrays
        view = binned[
            tuple(slice(k // 2 + i * k, k // 2 + (i + 1) * k) for i, k in zip(index, kernel, strict=True))
        ]
        hists[index] = np.bincount(view.ravel(), minlength=nbins)
    hists = hists.reshape(-1, nbins)
    limit = _clip_limit_counts(clip_limit, kernel)
    for r in np.flatnonzero((hists > limit).any(axis=1)):
        hists[r] = clip_histogram(hists[r], limit)
    tables = _lookup_tables(hists, math.prod(kernel)).reshape(*n_regions, nbins)
    return np.pad(tables, [(1, 1)] * 3 + [(0, 0)], mode="edge")


def clahe_fast(
    volume: np.ndarray,
    *,
    kernel_size: int | Sequence[int] = 128,
    clip_limit: float = 0.02,
    nbins: int = 256,
    region: tuple[slice, ...] | None = None,
) -> np.ndarray:
    """Equalise ``volume`` like :func:`clahe_reference`, vectorised; uint8 result.

    With ``region`` (slices into ``volume``), only those voxels are mapped, which is what the
    blockwise equalisation needs: the histograms still come from the whole ``volume``.
    """
    volume = _check_volume(volume, nbins)
    kernel = _as_kernel(kernel_size, 3)
    pads = _padding(volume.shape, kernel)
    # binning is voxel-wise, so it commutes with the reflect padding: bin first, pad the bins
    binned = np.pad(_binned(volume, nbins), pads, mode="reflect")
    tables = _region_tables(binned, kernel, nbins, clip_limit)
    region = region or tuple(slice(0, s) for s in volume.shape)
    starts = [r.indices(s)[0] for r, s in zip(region, volume.shape, strict=True)]
    stops = [r.indices(s)[1] for r, s in zip(region, volume.shape, strict=True)]

    out = np.empty([b - a for a, b in zip(starts, stops, strict=True)], dtype=np.uint8)
    # Padded coordinate p lies in processing cell p // k at fraction (p % k) / k; iterate cells.
    cell_ranges = []
    for a, b, (before, _), k in zip(starts, stops, pads, kernel, strict=True):
        first, last = (a + before) // k, (b - 1 + before) // k
        cell_ranges.append(range(first, last + 1))
    for cell in np.ndindex(*[len(r) for r in cell_ranges]):
        c = [cell_ranges[d][cell[d]] for d in range(3)]
        lo = [max(starts[d], c[d] * kernel[d] - pads[d][0]) for d in range(3)]
        hi = [min(stops[d], (c[d] + 1) * kernel[d] - pads[d][0]) for d in range(3)]
        bins = binned[tuple(slice(lo[d] + pads[d][0], hi[d] + pads[d][0]) for d in range(3))]
        frac = [(np.arange(lo[d], hi[d]) + pads[d][0] - c[d] * kernel[d]) / kernel[d] for d in range(3)]
        acc = np.zeros(bins.shape, dtype=np.float32)
        for corner in np.ndindex(2, 2, 2):
            table = tables[c[0] + corner[0], c[1] + corner[1], c[2] + corner[2]]
            w = [frac[d] if corner[d] else 1 - frac[d] for d in range(3)]
            weight = (w[2][None, None, :] * w[1][None, :, None]) * w[0][:, None, None]
            acc += (table[bins] * weight).astype(np.float32)
        out[tuple(slice(lo[d] - starts[d], hi[d] - starts[d]) for d in range(3))] = _to_uint8(
            acc.astype(np.uint16)
        )
    return out


def clahe_3d(
    volume: np.ndarray,
    *,
    kernel_size: int | Sequence[int] = 128,
    clip_limit: float = 0.02,
    nbins: int = 256,
    method: Literal["fast", "reference"] = "fast",
) -> np.ndarray:
    """Equalise a whole (z, y, x) volume with the training CLAHE; ``method`` picks the path."""
    if method == "reference":
        return clahe_reference(volume, kernel_size=kernel_size, clip_limit=clip_limit, nbins=nbins)
    if method == "fast":
        return clahe_fast(volume, kernel_size=kernel_size, clip_limit=clip_limit, nbins=nbins)
    raise ConfigError(f"method must be 'fast' or 'reference', got {method!r}")


def equalize_block(
    block: object,
    *,
    store: str,
    dataset: str,
    out_dataset: str,
    kernel_size: int,
    clip_limit: float,
    nbins: int,
    method: str,
) -> None:
    """Equalise one daisy block: read with context, fill outside with the write block's mean."""
    from funlib.geometry import Roi

    from cellsight_shared.io import open_zarr
    from incasem.volume_blocks import block_slices

    source = open_zarr(store, dataset)
    read_roi, write_roi = block.read_roi, block.write_roi  # type: ignore[attr-defined]
    write = np.asarray(source[block_slices(write_roi)])
    inside = read_roi.intersect(Roi((0, 0, 0), source.shape))
    fill = int(write.mean()) if write.size else 0
    data = np.full(tuple(read_roi.shape), fill, dtype=source.dtype)
    data[block_slices(inside, read_roi.begin)] = source[block_slices(inside)]
    centre = block_slices(write_roi, read_roi.begin)
    if method == "reference":
        result = clahe_reference(data, kernel_size=kernel_size, clip_limit=clip_limit, nbins=nbins)
        result = result[centre]
    else:
        result = clahe_fast(data, kernel_size=kernel_size, clip_limit=clip_limit, nbins=nbins, region=centre)
    target = open_zarr(store, out_dataset, mode="r+")
    target[block_slices(write_roi)] = result.astype(target.dtype)


def _check_equalize_input(source: object, name: str) -> None:
    """Refuse raw the 14-bit scaling cannot take, before the output exists (reads float raw)."""
    from incasem.raw import scan_values

    dtype = np.dtype(source.dtype)  # type: ignore[attr-defined]
    if dtype.kind not in "uif" or dtype == np.bool_:
        raise DataError(f"{name} has dtype {dtype}; CLAHE needs integer or float grey values")
    if dtype.kind == "f":
        low, high, bad = scan_values(source)
        if bad:
            raise DataError(
                f"{name} holds {bad} NaN or infinite voxels; CLAHE needs finite grey values. Fill "
                "them (e.g. with the volume's mean) or convert the raw to uint8 before equalising"
            )
        if low < 0 or high > 1:
            raise DataError(
                f"{name} is {dtype} with values {low:g}..{high:g}; float raw must lie in [0, 1]. "
                "Rescale it to [0, 1] or convert it to uint8/uint16 first"
            )
    if dtype != np.uint8:
        logger.warning("%s is %s, not uint8; the published models were trained on uint8 raw", name, dtype)


def equalize(config: EqualizeConfig, *, progress: bool | None = None) -> Path:
    """Equalise ``config.dataset`` of ``config.zarr`` blockwise into ``config.out_dataset``.

    The output is uint8 with the input's geometry attributes and chunks of one write block. It
    follows :mod:`incasem.dataset_status`: ``running`` until the last block is written, resumed
    by a rerun with the same settings. ``progress``: block progress bar (None: on a terminal).
    Returns the output dataset path.
    """
    from cellsight_shared.errors import CellsightSharedError
    from cellsight_shared.io import create_zarr, open_zarr, zarr_geometry
    from incasem.dataset_status import MARKERS_DIR, finish_output, prepare_output
    from incasem.volume_blocks import run_volume_blocks

    try:
        source = open_zarr(config.zarr, config.dataset)
        offset, resolution = zarr_geometry(config.zarr, config.dataset)
    except CellsightSharedError as err:
        raise DataError(str(err)) from err
    if source.ndim != 3:
        raise DataError(f"{config.zarr / config.dataset}: expected a 3-D volume, got {source.shape}")
    _check_equalize_input(source, str(config.zarr / config.dataset))
    block = (config.block_size,) * 3
    clahe = {"kernel_size": config.kernel_size, "clip_limit": config.clip_limit, "nbins": config.nbins}
    settings = {
        "dataset": config.dataset,
        "shape": list(source.shape),
        "block_size": config.block_size,
        **clahe,
    }

    def create(attrs: dict) -> None:
        try:
            create_zarr(
                config.zarr,
                config.out_dataset,
                shape=source.shape,
                dtype=np.uint8,
                chunks=block,
                offset=offset,
                resolution=resolution,
                attrs={"clahe": clahe, **attrs},
            )
        except CellsightSharedError as err:
            raise DataError(str(err)) from err

    prepare_output(
        config.zarr,
        config.out_dataset,
        command="equalize",
        settings=settings,
        overwrite=config.overwrite,
        create=create,
    )
    process = functools.partial(
        equalize_block,
        store=str(config.zarr),
        dataset=config.dataset,
        out_dataset=config.out_dataset,
        kernel_size=config.kernel_size,
        clip_limit=config.clip_limit,
        nbins=config.nbins,
        method=config.method,
    )
    logger.info(
        "equalizing %s/%s (%s voxels) in %d-voxel blocks with %d worker(s)",
        config.zarr,
        config.dataset,
        "x".join(map(str, source.shape)),
        config.block_size,
        config.workers,
    )
    total = run_volume_blocks(
        f"equalize-{Path(config.zarr).name}-{config.out_dataset}".replace("/", "_"),
        process,
        shape=source.shape,
        block_shape=block,
        markers=Path(config.zarr) / config.out_dataset / MARKERS_DIR,
        context=(config.kernel_size + 1) // 2,
        workers=config.workers,
        progress=progress,
        desc="equalize",
    )
    finish_output(config.zarr, config.out_dataset, total_blocks=total)
    return Path(config.zarr) / config.out_dataset
