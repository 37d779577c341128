"""Synthetic FIB-SEM-like volumes of a cell with organelles, and their incasem-style zarr layout.

Contrast follows heavy-metal-stained, chemically fixed cells as incasem shows them (membranes
dark, resin light): grey granular cytoplasm, mitochondria with a dark double membrane, dark
matrix and light cristae, endoplasmic reticulum as thin curved membrane sheets, a Golgi stack of
parallel cisternae, clear and dense-core vesicles (unlabelled distractors), and a nucleus cap
with peripheral heterochromatin. Sizes are in voxels and scaled down about four-fold from 5 nm
reality so that a small network sees whole organelles in a 96^3 volume.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from cellsight_shared.errors import InvalidArgumentError
from cellsight_shared.synthetic._common import (
    check_count,
    check_seed,
    check_shape,
    random_rotation,
    smooth_noise,
)

__all__ = ["EM_ORGANELLES", "SyntheticEM", "em_volume", "write_em_volume_zarr"]

EM_ORGANELLES: tuple[str, ...] = ("mito", "er", "golgi", "nucleus")
"""Label names, as in incasem's ``volumes/labels/<organelle>`` datasets."""

# Grey levels (uint8) of each structure before blur and noise.
_RESIN, _CYTOPLASM, _PLASMA_MEMBRANE = 205.0, 150.0, 80.0
_NUCLEOPLASM, _HETEROCHROMATIN, _ENVELOPE = 138.0, 92.0, 72.0
_MITO_MEMBRANE, _MITO_MATRIX, _CRISTAE = 62.0, 95.0, 135.0
_ER_MEMBRANE, _ER_LUMEN = 78.0, 122.0
_VESICLE_MEMBRANE, _VESICLE_CLEAR, _VESICLE_DENSE = 75.0, 185.0, 98.0
_BLUR_SIGMA, _NOISE_SD = 0.8, 11.0


@dataclass(frozen=True, eq=False)
class SyntheticEM:
    """A synthetic EM volume (z, y, x) and its ground truth.

    Attributes
    ----------
    raw
        uint8 (Z, Y, X) intensities.
    labels
        organelle name -> uint8 (Z, Y, X) binary mask (0/1) for every name in
        :data:`EM_ORGANELLES`; the masks do not overlap (an absent organelle is all zero).
    cell_mask
        uint8 (Z, Y, X), 1 inside the cell (cytoplasm and nucleus), 0 in the resin.
    """

    raw: np.ndarray
    labels: dict[str, np.ndarray]
    cell_mask: np.ndarray


def em_volume(
    *,
    shape: tuple[int, int, int] = (96, 96, 96),
    seed: int = 0,
    n_mito: int = 10,
    n_er: int = 10,
    n_golgi: int = 1,
    n_vesicles: int = 40,
    nucleus: bool = True,
) -> SyntheticEM:
    """Make a FIB-SEM-like volume of part of a cell with labelled organelles.

    Objects: ``n_mito`` mitochondria (randomly oriented ellipsoids, 10-16 voxels across and up to
    40 long, with a dark membrane shell, dark matrix and light cristae lamellae across the long
    axis); ``n_er`` ER sheets (curved, ragged-edged membrane pairs about 4 voxels thick, cut
    where they would cross another organelle); ``n_golgi`` Golgi stacks of four or five
    parallel curved cisternae; ``n_vesicles`` unlabelled vesicles (radius 2-4.5, a third of them
    dense-cored, which look like small mitochondrial cross-sections); a nucleus cap entering from
    one face when ``nucleus``; and resin outside a curved plasma membrane on another face.
    Objects that find no free room are skipped, so crowded volumes hold fewer. The image is
    blurred (SD 0.8 voxel), given Gaussian noise (SD 11 grey levels), faint FIB-SEM curtaining
    stripes and slice-to-slice brightness jitter, then rounded to uint8.

    Parameters
    ----------
    shape
        (Z, Y, X) in voxels, each at least 32.
    seed
        Output is bit-identical for the same arguments and seed.
    n_mito, n_er, n_golgi, n_vesicles
        How many of each object to try to place (each >= 0).
    nucleus
        Whether a nucleus cap enters the volume.
    """
    shape = check_shape(shape, ndim=3, minimum=32)
    seed = check_seed(seed)
    n_mito = check_count(n_mito, name="n_mito")
    n_er = check_count(n_er, name="n_er")
    n_golgi = check_count(n_golgi, name="n_golgi")
    n_vesicles = check_count(n_vesicles, name="n_vesicles")
    if not isinstance(nucleus, bool):
        raise InvalidArgumentError(f"nucleus must be True or False, got {nucleus!r}.")
    rng = np.random.default_rng(seed)
    grid = np.indices(shape, dtype=np.float32)
    size = np.array(shape, dtype=np.float32)

    faces = rng.permutation(6)  # face = axis * 2 + side; the nucleus and the resin take two
    image = np.full(shape, _CYTOPLASM, dtype=np.float32)
    image += 8.0 * smooth_noise(rng, shape, 1.5)
    ribosomes = ndi.gaussian_filter((rng.random(shape) < 0.02).astype(np.float32), 0.6)
    image -= 120.0 * ribosomes

    # Resin beyond a gently curved plasma membrane near one face.
    axis, side = divmod(int(faces[0]), 2)
    depth = rng.uniform(0.1, 0.18) * size[axis]
    height = grid[axis] if side == 0 else size[axis] - 1 - grid[axis]
    surface = height - depth + 4.0 * smooth_noise(rng, shape, 12.0)
    exterior = surface < 0
    image[exterior] = _RESIN + 3.0 * smooth_noise(rng, shape, 1.0)[exterior]
    image[np.abs(surface) < 1.0] = _PLASMA_MEMBRANE
    keepout = surface < 3.0  # no organelle within 3 voxels of the plasma membrane

    labels = {name: np.zeros(shape, dtype=np.uint8) for name in EM_ORGANELLES}
    if nucleus:
        keepout |= _draw_nucleus(rng, grid, size, int(faces[1]), image, labels["nucleus"], exterior)

    for _ in range(n_mito):
        _place(rng, shape, keepout, _mitochondrion, image, labels["mito"])
    for _ in range(n_golgi):
        _place(rng, shape, keepout, _golgi_stack, image, labels["golgi"])
    for _ in range(n_vesicles):
        _place(rng, shape, keepout, _vesicle, image, None)
    for _ in range(n_er):
        _place(rng, shape, keepout, _er_sheet, image, labels["er"], overlap_ok=True)

    image = ndi.gaussian_filter(image, _BLUR_SIGMA)
    image += _NOISE_SD * rng.standard_normal(shape, dtype=np.float32)
    # Curtaining: streaks along the milling direction (y), varying across x and slowly over z.
    stripes = ndi.gaussian_filter(rng.standard_normal((shape[0], shape[2])), (8.0, 1.0))
    image += 5.0 * stripes[:, None, :] / max(float(stripes.std()), 1e-6)
    image += rng.normal(0.0, 2.0, size=shape[0])[:, None, None]
    raw = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return SyntheticEM(raw=raw, labels=labels, cell_mask=(~exterior).astype(np.uint8))


def write_em_volume_zarr(
    path: str | os.PathLike[str],
    em: SyntheticEM,
    *,
    resolution: Sequence[float] = (5, 5, 5),
    offset: Sequence[float] = (0, 0, 0),
    overwrite: bool = False,
) -> Path:
    """Write ``em`` as an incasem-style zarr container and return its path.

    Datasets (zarr format 2, attributes ``offset`` and ``resolution`` in nm, z/y/x):
    ``volumes/raw`` (uint8), ``volumes/labels/<organelle>`` (uint8 0/1, one per
    :data:`EM_ORGANELLES`) and ``volumes/mask`` (uint8 0/255, the cell, as incasem's
    ``20_create_mask.py`` stores it). ``offset`` is the world position of the first voxel in nm
    and must be a multiple of ``resolution``. The container is written under a temporary name
    and renamed, and an existing ``path`` is only replaced when ``overwrite`` is true.
    """
    from cellsight_shared.io import atomic_write, write_zarr

    resolution = _check_world_vector(resolution, name="resolution", positive=True)
    offset = _check_world_vector(offset, name="offset", positive=False)
    remainder = [o % r for o, r in zip(offset, resolution, strict=True)]
    if any(abs(value) > 1e-9 for value in remainder):
        raise InvalidArgumentError(
            f"offset {offset} (nm) must be a multiple of resolution {resolution} (nm) on every axis, "
            "as gunpowder requires; multiply a voxel offset by the resolution."
        )
    chunks = tuple(min(128, s) for s in em.raw.shape)
    datasets = {"volumes/raw": em.raw, "volumes/mask": (em.cell_mask > 0).astype(np.uint8) * 255}
    datasets.update({f"volumes/labels/{name}": mask for name, mask in em.labels.items()})
    target = Path(path)
    with atomic_write(target, overwrite=overwrite) as tmp:
        for dataset, array in datasets.items():
            write_zarr(tmp, dataset, array, offset=offset, resolution=resolution, chunks=chunks)
    return target


def _check_world_vector(values: Sequence[float], *, name: str, positive: bool) -> tuple[float, ...]:
    try:
        vector = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        vector = ()
    if len(vector) != 3 or not all(np.isfinite(vector)) or (positive and min(vector) <= 0):
        kind = "positive numbers" if positive else "numbers"
        raise InvalidArgumentError(f"{name} must be 3 {kind} in nm (z, y, x), got {values!r}.")
    return tuple(int(v) if v.is_integer() else v for v in vector)


def _draw_nucleus(
    rng: np.random.Generator,
    grid: np.ndarray,
    size: np.ndarray,
    face: int,
    image: np.ndarray,
    label: np.ndarray,
    exterior: np.ndarray,
) -> np.ndarray:
    """Paint a nucleus cap entering from ``face``; return its keep-out zone (nucleus + 3 voxels)."""
    axis, side = divmod(face, 2)
    radius = 0.6 * float(size.mean())
    centre = size / 2 + rng.uniform(-0.15, 0.15, 3) * size
    cap = rng.uniform(0.22, 0.32) * size[axis]  # how deep the cap reaches into the volume
    centre[axis] = cap - radius if side == 0 else size[axis] - 1 - cap + radius
    distance = np.sqrt(sum((grid[i] - centre[i]) ** 2 for i in range(3)))
    signed = distance - radius + 3.0 * smooth_noise(rng, image.shape, 10.0)
    inside = (signed < 0) & ~exterior
    depth = -signed
    chromatin = smooth_noise(rng, image.shape, 2.0)
    heterochromatin = inside & (chromatin > 0.9 - 0.25 * np.clip(6.0 - depth, 0.0, 6.0))
    image[inside] = _NUCLEOPLASM + 6.0 * chromatin[inside]
    image[heterochromatin] = _HETEROCHROMATIN
    # Double nuclear envelope: two dark membranes with a light perinuclear space between.
    image[inside & (depth < 3.0)] = _ENVELOPE
    image[inside & (depth >= 1.0) & (depth < 2.0)] = _CYTOPLASM
    label[inside] = 1
    return signed < 3.0


def _place(
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    keepout: np.ndarray,
    draw,
    image: np.ndarray,
    label: np.ndarray | None,
    *,
    overlap_ok: bool = False,
    tries: int = 30,
) -> bool:
    """Try up to ``tries`` random positions for one object made by ``draw``; paint the first that fits.

    ``draw(rng)`` returns ``(half_size, paint)`` where ``paint(coords)`` maps local voxel offsets
    (3, ...) to ``(values, object_mask, label_mask)``. An object must not touch ``keepout``
    unless ``overlap_ok``, in which case it is clipped to the free space instead. Painted objects
    (grown by two voxels) join ``keepout``.
    """
    half, paint = draw(rng)
    box = np.arange(-half, half + 1, dtype=np.float32)
    coords = np.stack(np.meshgrid(box, box, box, indexing="ij"))
    values, body, labelled = paint(coords)
    for _ in range(tries):
        centre = rng.integers(0, shape)
        lo = centre - half
        region = tuple(slice(max(0, lo[i]), min(shape[i], lo[i] + 2 * half + 1)) for i in range(3))
        local = tuple(slice(r.start - lo[i], r.stop - lo[i]) for i, r in enumerate(region))
        blocked = keepout[region]
        if overlap_ok:
            free = body[local] & ~blocked
            if free.sum() < 0.5 * body[local].sum() or not free.any():
                continue
        else:
            if (body[local] & blocked).any() or body[local].sum() < 0.3 * body.sum():
                continue
            free = body[local]
        image[region][free] = values[local][free]
        if label is not None:
            label[region][free & labelled[local]] = 1
        if not overlap_ok:
            keepout[region] |= ndi.binary_dilation(free, iterations=2)
        return True
    return False


def _mitochondrion(rng: np.random.Generator):
    axes = np.array([rng.uniform(10, 20), rng.uniform(5, 8), rng.uniform(5, 8)], dtype=np.float32)
    rotation = random_rotation(rng).astype(np.float32)
    period, phase = rng.uniform(4.0, 5.5), rng.uniform(0, 2 * np.pi)
    half = int(np.ceil(axes.max())) + 1

    def paint(coords: np.ndarray):
        local = np.tensordot(rotation, coords, axes=1)
        rho = np.sqrt(sum((local[i] / axes[i]) ** 2 for i in range(3)))
        rho_in = np.sqrt(sum((local[i] / (axes[i] - 1.8)) ** 2 for i in range(3)))
        transverse = np.sqrt((local[1] / axes[1]) ** 2 + (local[2] / axes[2]) ** 2)
        wobble = 0.8 * np.sin(local[1] / 2.5 + phase)
        cristae = (np.abs(np.sin(np.pi * local[0] / period + phase + wobble)) < 0.35) & (transverse < 0.8)
        body = rho <= 1.0
        values = np.where(rho_in > 1.0, _MITO_MEMBRANE, np.where(cristae, _CRISTAE, _MITO_MATRIX))
        return values.astype(np.float32), body, body

    return half, paint


def _vesicle(rng: np.random.Generator):
    radius = rng.uniform(2.0, 4.5)
    lumen = _VESICLE_DENSE if rng.random() < 1 / 3 else _VESICLE_CLEAR
    half = int(np.ceil(radius)) + 1

    def paint(coords: np.ndarray):
        distance = np.sqrt((coords**2).sum(axis=0))
        body = distance <= radius
        values = np.where(distance > radius - 1.0, _VESICLE_MEMBRANE, lumen).astype(np.float32)
        return values, body, body

    return half, paint


def _sheet(coords: np.ndarray, rotation: np.ndarray, curvature: np.ndarray, ripple: np.ndarray):
    """Height above a curved, rippled surface and in-plane radius/angle in a sheet's own frame."""
    n, u, v = np.tensordot(rotation, coords, axes=1)
    height = n - curvature[0] * u**2 - curvature[1] * v**2 - ripple[0] * np.sin(u / ripple[1] + ripple[2])
    return height, np.hypot(u, v), np.arctan2(v, u)


def _er_sheet(rng: np.random.Generator):
    extent = rng.uniform(12, 22)
    rotation = random_rotation(rng).astype(np.float32)
    curvature = rng.uniform(-0.025, 0.025, 2)
    ripple = np.array([rng.uniform(0.5, 2.0), rng.uniform(3.0, 6.0), rng.uniform(0, 2 * np.pi)])
    edge = rng.uniform(0, 2 * np.pi, 2)
    reach = extent * 1.23  # the ragged edge reaches 15 % + 8 % beyond ``extent``
    half = int(np.ceil(np.hypot(reach, np.abs(curvature).max() * reach**2 + ripple[0] + 2.0)))

    def paint(coords: np.ndarray):
        height, radius, angle = _sheet(coords, rotation, curvature, ripple)
        limit = extent * (1.0 + 0.15 * np.sin(3 * angle + edge[0]) + 0.08 * np.sin(5 * angle + edge[1]))
        body = (np.abs(height) <= 2.0) & (radius <= limit)
        values = np.where(np.abs(height) >= 1.0, _ER_MEMBRANE, _ER_LUMEN).astype(np.float32)
        return values, body, body

    return half, paint


def _golgi_stack(rng: np.random.Generator):
    n_cisternae = int(rng.integers(4, 6))
    spacing = 4.5
    extent = rng.uniform(9, 13)
    rotation = random_rotation(rng).astype(np.float32)
    curvature = np.full(2, rng.uniform(0.02, 0.04))
    ripple = np.array([0.3, 5.0, rng.uniform(0, 2 * np.pi)])
    thickness = n_cisternae * spacing / 2 + curvature[0] * extent**2 + ripple[0] + 2.0
    half = int(np.ceil(np.hypot(extent, thickness)))

    def paint(coords: np.ndarray):
        height, radius, _ = _sheet(coords, rotation, curvature, ripple)
        body = np.zeros(coords.shape[1:], dtype=bool)
        membrane = np.zeros_like(body)
        for i in range(n_cisternae):
            offset = (i - (n_cisternae - 1) / 2) * spacing
            reach = extent * (1.0 - 0.08 * abs(i - (n_cisternae - 1) / 2))
            cisterna = (np.abs(height - offset) <= 1.5) & (radius <= reach)
            body |= cisterna
            membrane |= cisterna & (np.abs(height - offset) >= 0.7)
        values = np.where(membrane, _ER_MEMBRANE, _ER_LUMEN - 15.0).astype(np.float32)
        return values, body, body

    return half, paint
