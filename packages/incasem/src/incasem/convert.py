"""TIFF sequences <-> zarr datasets, and 8-bit TIFF export for viewing.

``convert`` reads a folder of TIFF sections sorted by the section NUMBER in the file name (the
original sorted by name, so ``s_10.tif`` came before ``s_9.tif``), or a multi-page TIFF, and
writes a zarr v2 dataset with ``offset``/``resolution`` in nm, one daisy block per z-slab of
chunks. A ``.zarr`` input is written back as ``section_<z:04d>.tif`` files.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from incasem.errors import ConfigError, DataError

if TYPE_CHECKING:
    from incasem.config.tools import ConvertConfig, ExportTiffConfig

__all__ = ["convert", "export_tiff", "list_sections", "to_uint8_for_viewing"]

logger = logging.getLogger(__name__)

_TIFF_SUFFIXES = (".tif", ".tiff")


def list_sections(folder: Path, pattern: str = r"(\d+)") -> list[Path]:
    """TIFF files of ``folder`` in section order (numeric), checking numbering is gap-free.

    ``pattern`` is searched in each file name; its group 1 (or whole match) is the number. When
    it matches several times, the last match counts (``cell2_section_0007.tif`` -> 7).
    """
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise ConfigError(f"pattern {pattern!r} is not a valid regular expression: {err}") from err
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _TIFF_SUFFIXES]
    if not files:
        raise DataError(f"{folder} holds no .tif/.tiff files; point convert at the TIFF folder")
    numbered: dict[int, Path] = {}
    for path in files:
        matches = list(regex.finditer(path.name))
        if not matches:
            raise DataError(
                f"{path.name} has no section number matching {pattern!r}; rename it or pass "
                "--pattern with a group around the number"
            )
        last = matches[-1]
        text = last.group(1) if last.groups() else last.group(0)
        try:
            number = int(text)
        except ValueError as err:
            raise ConfigError(f"pattern {pattern!r} matched {text!r} in {path.name}, not a number") from err
        if number in numbered:
            raise DataError(f"{numbered[number].name} and {path.name} both are section {number}")
        numbered[number] = path
    numbers = sorted(numbered)
    missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise DataError(
            f"{folder}: sections {shown} are missing between {numbers[0]} and {numbers[-1]}; a "
            "gap would shift every later section in z. Add the missing files or convert the "
            "contiguous parts separately"
        )
    return [numbered[n] for n in numbers]


def _read_section(path: str) -> np.ndarray:
    import tifffile

    try:
        return np.asarray(tifffile.imread(path))
    except Exception as err:  # tifffile raises several types for damaged files
        raise DataError(f"{path} is not a readable TIFF ({type(err).__name__}: {err})") from err


def _cast(array: np.ndarray, dtype: np.dtype, *, invert: bool, source: str) -> np.ndarray:
    if invert:
        if array.dtype != np.uint8 and int(array.max(initial=0)) > 255:
            raise DataError(f"{source}: --invert needs 8-bit data, found values up to {array.max()}")
        array = 255 - array.astype(np.int32)
    if np.issubdtype(dtype, np.integer) and array.size:
        info = np.iinfo(dtype)
        low, high = array.min(), array.max()
        if low < info.min or high > info.max:
            raise DataError(f"{source}: values {low}..{high} do not fit {dtype}; choose a wider --dtype")
    return array.astype(dtype, copy=False)


def convert_block(
    block: object, *, files: list[str], store: str, dataset: str, dtype: str, invert: bool
) -> None:
    """Write the z-slab of one daisy block from its TIFF sections."""
    from cellsight_shared.io import open_zarr

    roi = block.write_roi  # type: ignore[attr-defined]
    z0, y0, x0 = roi.begin
    z1, y1, x1 = roi.end
    target = open_zarr(store, dataset, mode="r+")
    slab = np.stack([_read_section(files[z])[y0:y1, x0:x1] for z in range(z0, z1)])
    target[z0:z1, y0:y1, x0:x1] = _cast(slab, np.dtype(dtype), invert=invert, source=files[z0])


def _tiffs_to_zarr(config: ConvertConfig, progress: bool | None) -> Path:
    from cellsight_shared.errors import CellsightSharedError
    from cellsight_shared.io import atomic_write, create_zarr
    from incasem.dataset_status import MARKERS_DIR, finish_output, prepare_output
    from incasem.volume_blocks import run_volume_blocks

    if config.input.is_dir():
        files = list_sections(config.input, config.pattern)
        first = _read_section(str(files[0]))
        if first.ndim != 2:
            raise DataError(f"{files[0]} is not a single 2-D section (shape {first.shape})")
        shape = (len(files), *first.shape)
        dtype = np.dtype(config.dtype or first.dtype)
        for path in files[1:]:
            import tifffile

            try:
                with tifffile.TiffFile(path) as tif:
                    found = tuple(tif.series[0].shape)
            except Exception as err:  # tifffile raises several types for damaged files
                raise DataError(
                    f"{path} is not a readable TIFF ({type(err).__name__}: {err}); replace the "
                    "damaged section (or remove it and renumber) before converting"
                ) from err
            if found != first.shape:
                raise DataError(
                    f"{path.name} has shape {found}, but {files[0].name} has {first.shape}; all "
                    "sections must have the same size"
                )
        stack = None
    else:
        stack = _read_section(str(config.input))
        if stack.ndim != 3:
            raise DataError(f"{config.input} is not a 3-D stack (shape {stack.shape})")
        files, shape, dtype = [], stack.shape, np.dtype(config.dtype or stack.dtype)
    for o, r in zip(config.offset, config.resolution, strict=True):
        if abs(o / r - round(o / r)) > 1e-6:
            raise ConfigError(
                f"offset {list(config.offset)} nm is not a multiple of the resolution "
                f"{list(config.resolution)} nm; gunpowder needs voxel-aligned offsets"
            )
    store = Path(config.output)
    dataset_path = store / config.dataset
    chunks = tuple(min(c, s) for c, s in zip(config.chunks, shape, strict=True))
    if stack is not None:
        # cast before anything is created: a value that does not fit is an input error
        stack = _cast(stack, dtype, invert=config.invert, source=str(config.input))
    settings = {
        "input": str(Path(config.input).resolve()),
        "sections": len(files) or None,
        "shape": list(shape),
        "dtype": dtype.str,
        "invert": config.invert,
        "chunks": list(chunks),
        "offset": list(config.offset),
        "resolution": list(config.resolution),
    }
    # A new container is built under a temporary name so a failed run leaves nothing behind;
    # datasets added to an existing container are written in place, block by block, under the
    # completeness contract of incasem.dataset_status (status `running`, markers, resume).
    new_store = not store.exists()
    context = atomic_write(store) if new_store else contextlib.nullcontext(store)
    with context as target_store:

        def create(attrs: dict) -> None:
            try:
                create_zarr(
                    target_store,
                    config.dataset,
                    shape=shape,
                    dtype=dtype,
                    chunks=chunks,
                    offset=config.offset,
                    resolution=config.resolution,
                    attrs=attrs,
                )
            except CellsightSharedError as err:
                raise DataError(str(err)) from err

        prepare_output(
            target_store,
            config.dataset,
            command="convert",
            settings=settings,
            overwrite=config.overwrite,
            create=create,
            name_option="--dataset",
        )
        total = 0
        if stack is not None:
            from cellsight_shared.io import open_zarr

            open_zarr(target_store, config.dataset, mode="r+")[...] = stack
        else:
            process = functools.partial(
                convert_block,
                files=[str(f) for f in files],
                store=str(target_store),
                dataset=config.dataset,
                dtype=dtype.str,
                invert=config.invert,
            )
            total = run_volume_blocks(
                f"convert-{store.name}-{config.dataset}".replace("/", "_"),
                process,
                shape=shape,
                block_shape=(chunks[0], shape[1], shape[2]),
                markers=Path(target_store) / config.dataset / MARKERS_DIR,
                workers=config.workers,
                progress=progress,
                desc="convert",
            )
        finish_output(target_store, config.dataset, total_blocks=total)
    logger.info("wrote %s/%s %s %s", store, config.dataset, shape, dtype)
    return dataset_path


def _zarr_to_tiffs(config: ConvertConfig) -> Path:
    from cellsight_shared.errors import CellsightSharedError
    from cellsight_shared.io import atomic_write, open_zarr

    try:
        source = open_zarr(config.input, config.dataset)
    except CellsightSharedError as err:
        raise DataError(str(err)) from err
    if source.ndim != 3:
        raise DataError(f"{config.input / config.dataset}: expected a 3-D volume, got {source.shape}")
    dtype = np.dtype(config.dtype or source.dtype)
    try:
        with atomic_write(config.output, overwrite=config.overwrite) as tmp:
            tmp.mkdir(parents=True)
            _write_sections(
                source, tmp, lambda a: _cast(a, dtype, invert=config.invert, source=str(config.input))
            )
    except CellsightSharedError as err:
        raise DataError(str(err)) from err
    return config.output


def _write_sections(source: object, folder: Path, transform: object) -> None:
    import tifffile

    chunk_z = source.chunks[0]  # type: ignore[attr-defined]
    depth = source.shape[0]  # type: ignore[attr-defined]
    width = max(4, len(str(depth - 1)))
    for z0 in range(0, depth, chunk_z):
        slab = np.asarray(source[z0 : z0 + chunk_z])  # type: ignore[index]
        slab = transform(slab)  # type: ignore[operator]
        for i, section in enumerate(slab):
            tifffile.imwrite(folder / f"section_{z0 + i:0{width}d}.tif", section, compression="zlib")


def convert(config: ConvertConfig, *, progress: bool | None = None) -> Path:
    """Convert TIFF sections (or a stack) into a zarr dataset, or a zarr dataset into TIFFs.

    The direction follows the input: a ``.zarr`` directory (with ``.zgroup``/``.zarray``) is
    read, anything else is TIFF. ``progress``: block progress bar (None: on a terminal). Returns
    the written dataset or folder.
    """
    source = Path(config.input)
    if not source.exists():
        raise DataError(f"input {source} does not exist; check the path")
    is_zarr = source.is_dir() and (
        (source / ".zgroup").exists() or (source / ".zarray").exists() or source.suffix == ".zarr"
    )
    return _zarr_to_tiffs(config) if is_zarr else _tiffs_to_zarr(config, progress)


def to_uint8_for_viewing(array: np.ndarray, *, name: str = "array") -> np.ndarray:
    """8-bit version of a dataset for TIFF viewers, with the original export rules.

    uint8 stays; bool and 32/64-bit integer labels become ``(x != 0) * 255``; other integers
    must be <= 255; floats must be probabilities in [0, 1] and are scaled by 255 and rounded.
    """
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool or (array.dtype.kind in "ui" and array.dtype.itemsize >= 4):
        return (array != 0).astype(np.uint8) * 255
    if array.dtype.kind in "ui":
        if array.size and (array.min() < 0 or array.max() > 255):
            raise DataError(f"{name}: integer values {array.min()}..{array.max()} exceed 0..255")
        return array.astype(np.uint8)
    if array.dtype.kind == "f":
        if array.size and (np.nanmin(array) < 0 or np.nanmax(array) > 1):
            raise DataError(
                f"{name}: float values {np.nanmin(array)}..{np.nanmax(array)} are not probabilities in [0, 1]"
            )
        return np.round(np.nan_to_num(array) * 255).astype(np.uint8)
    raise DataError(f"{name}: cannot export dtype {array.dtype} as 8-bit TIFF")


def export_tiff(config: ExportTiffConfig) -> list[Path]:
    """Write each dataset as ``out/<dataset with / as _>/section_<z>.tif`` (8-bit); return the folders."""
    from cellsight_shared.errors import CellsightSharedError
    from cellsight_shared.io import atomic_write, ensure_absent, open_zarr

    sources = {}
    for dataset in config.datasets:
        try:
            sources[dataset] = open_zarr(config.zarr, dataset)
        except CellsightSharedError as err:
            raise DataError(str(err)) from err
        if sources[dataset].ndim != 3:
            raise DataError(f"{dataset}: expected a 3-D volume, got {sources[dataset].shape}")
    targets = {d: config.out / d.strip("/").replace("/", "_") for d in config.datasets}
    for target in targets.values():  # check all before writing any
        try:
            ensure_absent(target, overwrite=config.overwrite)
        except CellsightSharedError as err:
            raise DataError(str(err)) from err
    config.out.mkdir(parents=True, exist_ok=True)
    for dataset, source in sources.items():
        with atomic_write(targets[dataset], overwrite=config.overwrite) as tmp:
            tmp.mkdir()
            _write_sections(source, tmp, functools.partial(to_uint8_for_viewing, name=dataset))
        logger.info("exported %s to %s", dataset, targets[dataset])
    return list(targets.values())
