"""Synthetic OpenCell-layout datasets: the protein's identity decides its pattern.

Each protein is a localisation class of :func:`cellsight_shared.synthetic.cells_2d` (nuclear,
cytoplasmic, membrane, punctate, ...). Fields are written as OpenCell ``*_proj.tif`` files,
(2, H, W) uint16 with the nucleus in channel 0 and the protein in channel 1, at camera-like
counts (offset 100), so the real reader, splitter and normaliser are what the demo and tests use.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["DEMO_PROTEINS", "synthetic_field", "write_synthetic_opencell"]

DEMO_PROTEINS: dict[str, str] = {
    "NUCA": "nuclear",
    "CYTA": "cytoplasmic",
    "MEMA": "membrane",
    "PUNA": "punctate",
}
"""Made-up gene names and the pattern each one's protein follows."""


def synthetic_field(localization: str, *, size: int, seed: int, n_cells: int | None = None):  # noqa: ANN201
    """One synthetic field (cellsight_shared's SyntheticCells) of ``size`` x ``size`` pixels."""
    from cellsight_shared.synthetic import cells_2d

    cells = n_cells if n_cells is not None else max(2, round(size * size / 1400))
    return cells_2d(shape=(size, size), n_cells=cells, localization=localization, seed=seed)


def write_synthetic_opencell(
    root: str | Path,
    *,
    proteins: Mapping[str, str] = DEMO_PROTEINS,
    images_per_protein: int = 8,
    size: int = 96,
    seed: int = 0,
) -> Path:
    """Write a small OpenCell-layout dataset under ``root`` (which must not exist); returns it."""
    import tifffile

    from cellsight_shared.io import atomic_write

    root = Path(root)
    with atomic_write(root) as tmp:
        for k, (gene, localization) in enumerate(proteins.items()):
            ensg = f"ENSG{90000000000 + k:011d}"
            folder = tmp / f"{gene}_{ensg}"
            folder.mkdir(parents=True)
            for j in range(images_per_protein):
                field = synthetic_field(localization, size=size, seed=seed * 100_000 + 1000 * k + j)
                counts = np.round(100 + 3000 * field.image[[0, 2]]).astype(np.uint16)
                name = f"OC-FOV_{gene}_{ensg}_CID{k + 1:06d}_FID{j + 1:08d}_proj.tif"
                tifffile.imwrite(folder / name, counts)
    return root
