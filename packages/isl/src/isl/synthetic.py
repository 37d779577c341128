"""Synthetic wells in the original PNG naming, from :func:`cellsight_shared.synthetic.zstack`.

Used by ``isl demo`` and the tests: the files go through exactly the reader real data uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from isl.data.naming import MAXPROJECT, ImageKey, format_image_name

__all__ = ["SYNTHETIC_TARGETS", "write_synthetic_well", "write_synthetic_wells"]

#: Which synthetic fluorescence becomes which channel of the original naming.
SYNTHETIC_TARGETS: dict[str, str] = {
    "nuclei": "DAPI_CONFOCAL",
    "cell": "CELLMASK_CONFOCAL",
    "neurite": "MAP2_CONFOCAL",
}


def _to_uint16(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * 65535.0).astype(np.uint16)


def write_synthetic_well(
    directory: str | Path,
    *,
    shape: tuple[int, int] = (384, 384),
    n_planes: int = 5,
    n_cells: int | None = None,
    seed: int = 0,
    modality: str = "PHASE_CONTRAST",
    well: str = "A1",
) -> Path:
    """Write one synthetic well (z-planes + DAPI/CELLMASK/MAP2 projections) as 16-bit PNGs."""
    from cellsight_shared.io import write_png
    from cellsight_shared.synthetic import zstack

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if n_cells is None:  # about the density of the real Condition B sample
        n_cells = max(4, int(shape[0] * shape[1] / 6000))
    stack = zstack(shape=shape, n_planes=n_planes, n_cells=n_cells, seed=seed)
    for z, plane in enumerate(stack.planes):
        name = format_image_name(ImageKey(z, modality), well=well)
        write_png(directory / name, _to_uint16(plane))
    for source, channel in SYNTHETIC_TARGETS.items():
        name = format_image_name(ImageKey(MAXPROJECT, channel), well=well)
        write_png(directory / name, _to_uint16(stack.targets[source]))
    return directory


def write_synthetic_wells(
    root: str | Path,
    count: int,
    *,
    shape: tuple[int, int] = (384, 384),
    n_planes: int = 5,
    n_cells: int | None = None,
    seed: int = 0,
    prefix: str = "well",
) -> list[Path]:
    """Write ``count`` wells ``<root>/<prefix>_<i>`` with seeds ``seed + i``."""
    root = Path(root)
    return [
        write_synthetic_well(
            root / f"{prefix}_{i}",
            shape=shape,
            n_planes=n_planes,
            n_cells=n_cells,
            seed=seed + i,
            well=f"A{i + 1}",
        )
        for i in range(count)
    ]
