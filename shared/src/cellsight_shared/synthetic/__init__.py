"""Deterministic synthetic microscopy data for tests, demos and benchmarks.

Three generators, each seeded (``np.random.default_rng(seed)``, no global state) so the same
arguments give bit-identical arrays, and each fast at its default size:

- :func:`cells_2d` (and :func:`cell_crops`): fluorescence fields of cells with a nuclear stain,
  a whole-cell stain and a tagged protein in one of :data:`LOCALIZATIONS`, with instance labels;
- :func:`zstack`: transmitted-light (phase-contrast) z-stacks with fluorescence targets, the
  in silico labeling data shape;
- :func:`em_volume` (and :func:`write_em_volume_zarr`): FIB-SEM-like volumes with organelle
  labels, written in the incasem zarr layout.

Axis order: (channel, row, column) for 2-D images, (plane, row, column) for z-stacks and
(z, y, x) for volumes.
"""

from cellsight_shared.synthetic.cells import (
    CELL_CHANNELS,
    LOCALIZATIONS,
    CellCrops,
    SyntheticCells,
    cell_crops,
    cells_2d,
)
from cellsight_shared.synthetic.em import EM_ORGANELLES, SyntheticEM, em_volume, write_em_volume_zarr
from cellsight_shared.synthetic.zstack import ZSTACK_TARGETS, SyntheticZStack, zstack

__all__ = [
    "CELL_CHANNELS",
    "EM_ORGANELLES",
    "LOCALIZATIONS",
    "ZSTACK_TARGETS",
    "CellCrops",
    "SyntheticCells",
    "SyntheticEM",
    "SyntheticZStack",
    "cell_crops",
    "cells_2d",
    "em_volume",
    "write_em_volume_zarr",
    "zstack",
]
