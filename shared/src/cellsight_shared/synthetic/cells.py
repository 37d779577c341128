"""Synthetic 2-D fluorescence images of cells with a tagged protein in a chosen compartment.

Each image has three channels: a nuclear stain (DAPI/Hoechst-like), a whole-cell marker
(CellMask/cytoplasm dye-like) and a tagged protein (GFP/mNeonGreen-like) whose pattern follows
one of :data:`LOCALIZATIONS`. The classes mirror compartments of the yeast DeepLoc and human HPA
benchmarks used by paired cell inpainting and by the protein-localisation generators.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

from cellsight_shared.errors import InvalidArgumentError
from cellsight_shared.synthetic._common import (
    check_count,
    check_fraction,
    check_seed,
    check_shape,
    place_centres,
    poisson_gaussian_noise,
    smooth_noise,
    star_radius,
    unit_clip,
)

__all__ = [
    "CELL_CHANNELS",
    "LOCALIZATIONS",
    "CellCrops",
    "SyntheticCells",
    "cell_crops",
    "cells_2d",
]

LOCALIZATIONS: tuple[str, ...] = (
    "nuclear",
    "nucleolar",
    "nuclear_envelope",
    "cytoplasmic",
    "membrane",
    "punctate",
    "mitochondrial",
    "golgi",
)
"""Protein localisation classes, each a distinct real pattern (see :func:`cells_2d`)."""

CELL_CHANNELS: tuple[str, ...] = ("nucleus", "cell", "protein")
"""Channel order of every image made here."""

_PSF_SIGMA = 1.0  # pixels; a 0.2 um pixel under a high-NA objective
_BACKGROUND = 0.04  # camera offset plus out-of-focus haze, in [0, 1] units
_PHOTONS = 400.0  # photo-electrons at intensity 1.0, sets the shot-noise level
_SIGNAL_PEAK = 0.8  # the 99.5th percentile of a channel inside cells is scaled to this


@dataclass(frozen=True, eq=False)
class SyntheticCells:
    """A synthetic multichannel field of cells and its ground truth.

    Attributes
    ----------
    image
        float32 (C, H, W) in [0, 1], channels named by ``channel_names``.
    cell_labels
        int32 (H, W) cell instances 1..N, 0 background. Neighbouring cells may touch.
    nucleus_labels
        int32 (H, W); the nucleus of cell i carries label i. Nuclei never touch.
    protein_mask
        bool (H, W), the compartment the protein occupies before blurring.
    localization
        The protein's localisation class, one of :data:`LOCALIZATIONS`.
    channel_names
        Names of the image channels, :data:`CELL_CHANNELS`.
    """

    image: np.ndarray
    cell_labels: np.ndarray
    nucleus_labels: np.ndarray
    protein_mask: np.ndarray
    localization: str
    channel_names: tuple[str, ...] = CELL_CHANNELS

    def channel(self, name: str) -> np.ndarray:
        """Return the (H, W) channel called ``name``."""
        if name not in self.channel_names:
            raise KeyError(f"no channel {name!r}; channels are {self.channel_names}")
        return self.image[self.channel_names.index(name)]


@dataclass(frozen=True, eq=False)
class CellCrops:
    """Single-cell crops with localisation class labels, for feature and kNN tests.

    Attributes
    ----------
    images
        float32 (N, C, size, size) in [0, 1]; each crop is centred on one cell, neighbours may
        show at the edges.
    labels
        int64 (N,) index into ``class_names``; crops are grouped by class in order.
    class_names
        The localisation class of each label value.
    channel_names
        Names of the image channels, :data:`CELL_CHANNELS`.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    channel_names: tuple[str, ...] = CELL_CHANNELS


def cells_2d(
    *,
    shape: tuple[int, int] = (128, 128),
    n_cells: int = 8,
    localization: str = "nuclear",
    seed: int = 0,
    cell_radius: float | None = None,
    noise: float = 0.01,
) -> SyntheticCells:
    """Make a fluorescence field of ``n_cells`` cells with the protein in ``localization``.

    Cells are smooth star-convex shapes, clipped to the Voronoi region of their centre so that
    crowded cells share straight borders as confluent cells do; each holds one nucleus with one
    to three nucleoli. Patterns: ``nuclear`` nucleoplasm without nucleoli; ``nucleolar`` the
    nucleoli; ``nuclear_envelope`` a rim at the nuclear border; ``cytoplasmic`` diffuse
    cytoplasm, brighter near the nucleus; ``membrane`` the cell outline; ``punctate`` diffraction-
    limited spots in the cytoplasm (vesicles, peroxisomes); ``mitochondrial`` short curvy tubules,
    densest around the nucleus; ``golgi`` a perinuclear ribbon on one side of the nucleus.

    Image formation: per-cell expression levels vary (log-normal), signals are blurred by a
    Gaussian PSF, scaled, offset by background and autofluorescence, then shot and read noise
    (SD ``noise``) are added and the result clipped to [0, 1].

    Parameters
    ----------
    shape
        (H, W) in pixels, each at least 32.
    n_cells
        Number of cells to place; a field too crowded for all of them gets fewer.
    localization
        One of :data:`LOCALIZATIONS`.
    seed
        Output is bit-identical for the same arguments and seed.
    cell_radius
        Mean cell radius in pixels; default fills about half the field.
    noise
        Read-noise SD in [0, 1] units (0 to 0.5).
    """
    shape = check_shape(shape, ndim=2, minimum=32)
    n_cells = check_count(n_cells, name="n_cells", minimum=1)
    localization = _check_localization(localization)
    seed = check_seed(seed)
    noise = check_fraction(noise, name="noise", high=0.5)
    if cell_radius is None:
        cell_radius = 0.62 * float(np.sqrt(shape[0] * shape[1] / (np.pi * n_cells)))
        cell_radius = min(cell_radius, 0.3 * min(shape))
    elif not 4.0 <= float(cell_radius) <= 0.5 * min(shape):
        raise InvalidArgumentError(
            f"cell_radius must be between 4 and half the shortest side ({0.5 * min(shape)}) pixels, "
            f"got {cell_radius!r}."
        )
    cell_radius = float(cell_radius)

    rng = np.random.default_rng(seed)
    centres = place_centres(rng, shape, n_cells, min_distance=1.8 * cell_radius, margin=0.8 * cell_radius)
    radii = cell_radius * rng.uniform(0.85, 1.15, size=len(centres))
    return _render(rng, shape, centres, radii, localization, noise=noise)


def cell_crops(
    n_per_class: int,
    *,
    size: int = 64,
    classes: Sequence[str] = LOCALIZATIONS,
    seed: int = 0,
    noise: float = 0.01,
) -> CellCrops:
    """Make ``n_per_class`` single-cell crops for each localisation class in ``classes``.

    Each crop is rendered like :func:`cells_2d` with one cell in the centre (radius about 0.3 of
    ``size``) and zero to three neighbours cut by the crop border, as segmentation-based crops of
    real fields look. Crop i of a class depends only on (seed, class, i), so asking for more crops
    keeps the first ones unchanged.
    """
    n_per_class = check_count(n_per_class, name="n_per_class", minimum=1)
    size = check_count(size, name="size", minimum=24)
    classes = tuple(_check_localization(name) for name in classes)
    if not classes or len(set(classes)) != len(classes):
        raise InvalidArgumentError(f"classes must be distinct names from {LOCALIZATIONS}, got {classes!r}.")
    seed = check_seed(seed)
    noise = check_fraction(noise, name="noise", high=0.5)

    images = np.empty((len(classes) * n_per_class, len(CELL_CHANNELS), size, size), np.float32)
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), n_per_class)
    for class_index, name in enumerate(classes):
        class_id = LOCALIZATIONS.index(name)
        for i in range(n_per_class):
            rng = np.random.default_rng((seed, class_id, i))
            radius = size * rng.uniform(0.26, 0.32)
            centre = np.array([size / 2, size / 2]) + rng.uniform(-2, 2, size=2)
            n_neighbours = int(rng.integers(0, 4))
            angles = rng.uniform(0, 2 * np.pi, n_neighbours)
            distance = radius * rng.uniform(1.9, 2.3, n_neighbours)
            neighbours = centre + np.stack([np.sin(angles), np.cos(angles)], axis=1) * distance[:, None]
            centres = np.vstack([centre, neighbours])
            radii = np.concatenate([[radius], radius * rng.uniform(0.85, 1.15, n_neighbours)])
            field = _render(rng, (size, size), centres, radii, name, noise=noise)
            images[class_index * n_per_class + i] = field.image
    return CellCrops(images=images, labels=labels, class_names=classes)


def _check_localization(name: str) -> str:
    if name not in LOCALIZATIONS:
        raise InvalidArgumentError(
            f"unknown localization {name!r}; choose one of {', '.join(LOCALIZATIONS)}."
        )
    return name


def _render(
    rng: np.random.Generator,
    shape: tuple[int, int],
    centres: np.ndarray,
    radii: np.ndarray,
    localization: str,
    *,
    noise: float,
) -> SyntheticCells:
    """Draw cells at ``centres`` (row, col) with mean ``radii`` and form the noisy image."""
    n = len(centres)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)

    # Cells: star-convex outlines, each clipped to its Voronoi region.
    dist2 = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
    owner = np.argmin(dist2, axis=0)
    amplitude = rng.uniform(0.0, 1.0, size=(n, 3)) * np.array([0.15, 0.06, 0.03])
    phase = rng.uniform(0, 2 * np.pi, size=(n, 3))
    dy, dx = yy - centres[owner, 0], xx - centres[owner, 1]
    outline = star_radius(np.arctan2(dy, dx), radii[owner], amplitude[owner], phase[owner])
    cell_labels = np.where(np.hypot(dy, dx) < outline, owner + 1, 0).astype(np.int32)
    edge = find_boundaries(cell_labels, mode="inner")
    edge_distance = np.where(cell_labels > 0, ndi.distance_transform_edt(~edge), 0.0)

    # Nuclei: smaller smooth ellipses near the cell centre, kept 2 px inside the cell.
    n_centres = centres + rng.uniform(-0.12, 0.12, size=(n, 2)) * radii[:, None]
    n_radii = radii * rng.uniform(0.45, 0.55, size=n)
    n_amplitude = rng.uniform(0.0, 1.0, size=(n, 2)) * np.array([0.12, 0.03])
    n_phase = rng.uniform(0, 2 * np.pi, size=(n, 2))
    ndy, ndx = yy - n_centres[owner, 0], xx - n_centres[owner, 1]
    n_outline = star_radius(np.arctan2(ndy, ndx), n_radii[owner], n_amplitude[owner], n_phase[owner])
    nucleus = (np.hypot(ndy, ndx) < n_outline) & (edge_distance >= 2) & (cell_labels > 0)
    nucleus_labels = np.where(nucleus, cell_labels, 0).astype(np.int32)
    inside_nucleus = ndi.distance_transform_edt(nucleus)
    outside_nucleus = ndi.distance_transform_edt(~nucleus)
    cytoplasm = (cell_labels > 0) & ~nucleus

    # Nucleoli: one to three dense bodies per nucleus.
    nucleoli = np.zeros(shape, dtype=bool)
    for k in range(n):
        for _ in range(int(rng.integers(1, 4))):
            angle, reach = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.45) * n_radii[k]
            cy = n_centres[k, 0] + reach * np.sin(angle)
            cx = n_centres[k, 1] + reach * np.cos(angle)
            size = max(1.3, n_radii[k] * rng.uniform(0.14, 0.22))
            nucleoli |= (yy - cy) ** 2 + (xx - cx) ** 2 < size**2
    nucleoli &= inside_nucleus >= 1.5

    chromatin = smooth_noise(rng, shape, 1.2)
    texture = smooth_noise(rng, shape, 2.0)
    level = {name: np.concatenate([[0.0], rng.lognormal(0.0, 0.25, n)]) for name in CELL_CHANNELS}

    nucleus_signal = nucleus * (0.8 + 0.15 * np.clip(chromatin, -2, 2)) * np.where(nucleoli, 0.45, 1.0)
    thickness = np.clip(edge_distance / (0.4 * radii[owner]), 0.0, 1.0)
    cell_signal = (cell_labels > 0) * (0.55 + 0.3 * thickness + 0.08 * texture)
    cell_signal *= np.where(nucleus, 0.8, 1.0)
    protein_signal, protein_mask = _protein_pattern(
        localization,
        rng,
        shape=shape,
        nucleus=nucleus,
        nucleoli=nucleoli,
        cytoplasm=cytoplasm,
        edge_distance=edge_distance,
        inside_nucleus=inside_nucleus,
        outside_nucleus=outside_nucleus,
        cell_radius=radii[owner],
        nucleus_angle=np.arctan2(ndy, ndx),
        owner=owner,
        texture=texture,
        chromatin=chromatin,
    )

    signals = {
        "nucleus": nucleus_signal * level["nucleus"][nucleus_labels],
        "cell": cell_signal * level["cell"][cell_labels],
        "protein": protein_signal * level["protein"][cell_labels],
    }
    autofluorescence = ndi.gaussian_filter((cell_labels > 0).astype(np.float32), 2.0)
    image = np.empty((len(CELL_CHANNELS), *shape), dtype=np.float32)
    for c, name in enumerate(CELL_CHANNELS):
        blurred = ndi.gaussian_filter(signals[name].astype(np.float32), _PSF_SIGMA)
        inside = blurred[cell_labels > 0]
        peak = float(np.percentile(inside, 99.5)) if inside.size else 1.0
        channel = _SIGNAL_PEAK * blurred / max(peak, 1e-6) + _BACKGROUND + 0.03 * autofluorescence
        image[c] = unit_clip(poisson_gaussian_noise(rng, channel, photons=_PHOTONS, read_noise=noise))
    return SyntheticCells(
        image=image,
        cell_labels=cell_labels,
        nucleus_labels=nucleus_labels,
        protein_mask=protein_mask,
        localization=localization,
    )


def _protein_pattern(
    localization: str,
    rng: np.random.Generator,
    *,
    shape: tuple[int, int],
    nucleus: np.ndarray,
    nucleoli: np.ndarray,
    cytoplasm: np.ndarray,
    edge_distance: np.ndarray,
    inside_nucleus: np.ndarray,
    outside_nucleus: np.ndarray,
    cell_radius: np.ndarray,
    nucleus_angle: np.ndarray,
    owner: np.ndarray,
    texture: np.ndarray,
    chromatin: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the unblurred protein signal and the compartment mask for ``localization``."""
    # Interior cytoplasm: at least one pixel away from the plasma membrane and the nucleus.
    deep_cytoplasm = cytoplasm & (edge_distance >= 1) & (outside_nucleus >= 1)
    if localization == "nuclear":
        mask = nucleus & ~nucleoli
        signal = mask * (0.85 + 0.1 * np.clip(chromatin, -2, 2)) + nucleoli * 0.25
    elif localization == "nucleolar":
        mask = nucleoli
        signal = mask * 1.0 + (nucleus & ~nucleoli) * 0.08
    elif localization == "nuclear_envelope":
        mask = (nucleus & (inside_nucleus < 1.5)) | (~nucleus & (outside_nucleus <= 1.0) & cytoplasm)
        signal = mask * 1.0
    elif localization == "cytoplasmic":
        mask = cytoplasm
        perinuclear = np.exp(-outside_nucleus / (0.5 * cell_radius))
        signal = mask * (0.55 + 0.45 * perinuclear) * (1.0 + 0.12 * texture) + nucleus * 0.12
    elif localization == "membrane":
        mask = (edge_distance < 1.5) & (cytoplasm | nucleus)
        signal = mask * np.where(edge_distance < 0.5, 1.0, 0.6)
    elif localization == "punctate":
        candidates = np.flatnonzero(deep_cytoplasm)
        n_spots = rng.poisson(candidates.size / 28.0) if candidates.size else 0
        points = np.zeros(shape, dtype=np.float32)
        if n_spots:
            chosen = rng.choice(candidates, size=n_spots, replace=False)
            points.flat[chosen] = rng.uniform(0.6, 1.0, size=n_spots)
        cross = ndi.generate_binary_structure(2, 1)
        signal = ndi.grey_dilation(points, footprint=cross)
        mask = signal > 0
    elif localization == "mitochondrial":
        # Tubules: the zero level set of a smooth random field traces curvy lines; dividing by the
        # gradient turns |field| into a distance, so the tubules have an even width.
        field = smooth_noise(rng, shape, 2.0)
        gradient = np.hypot(*np.gradient(field))
        lines = np.abs(field) / np.maximum(gradient, 1e-6) < 0.75
        gate = smooth_noise(rng, shape, 3.0)
        relative = outside_nucleus / cell_radius
        mask = lines & deep_cytoplasm & (gate > -0.6 + 1.6 * relative)
        signal = mask * (0.8 + 0.2 * rng.uniform(size=shape))
    elif localization == "golgi":
        facing = rng.uniform(0, 2 * np.pi, size=int(owner.max()) + 1)[owner]
        turn = np.angle(np.exp(1j * (nucleus_angle - facing)))
        crescent = deep_cytoplasm & (outside_nucleus <= 0.35 * cell_radius) & (np.abs(turn) < 0.9)
        mask = crescent & (smooth_noise(rng, shape, 1.2) > -0.2)
        signal = mask * 1.0
    else:  # pragma: no cover - guarded by _check_localization
        raise InvalidArgumentError(localization)
    return signal.astype(np.float32), mask
