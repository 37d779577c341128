"""Synthetic transmitted-light z-stacks of neuron-like cells with paired fluorescence targets.

This is the data shape of in silico labeling: a stack of phase-contrast planes at several focal
depths as input and fluorescence images (nuclear stain, whole-cell stain, neurite stain) as
targets. The cells are pure phase objects plus a little absorption, imaged through a simple
physical model, so each target is predictable from the stack only through the optics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from cellsight_shared.synthetic._common import (
    check_count,
    check_fraction,
    check_seed,
    check_shape,
    place_centres,
    smooth_noise,
    star_radius,
    unit_clip,
)

__all__ = ["ZSTACK_TARGETS", "SyntheticZStack", "zstack"]

ZSTACK_TARGETS: tuple[str, ...] = ("nuclei", "cell", "neurite")
"""Names of the fluorescence targets: DAPI-like nuclei, CellMask-like cells, MAP2/NFH-like neurites."""

# Per-plane standardisation measured on the ISL phase-contrast fixture (mean 0.50, SD 0.11), and
# the fluorescence background level there (about 0.2 on a [0, 1] scale).
_PLANE_MEAN, _PLANE_SD = 0.5, 0.11
_TARGET_BACKGROUND, _TARGET_PEAK = 0.2, 0.75


@dataclass(frozen=True, eq=False)
class SyntheticZStack:
    """A synthetic transmitted-light z-stack, its fluorescence targets and ground truth.

    Attributes
    ----------
    planes
        float32 (Z, H, W) in [0, 1], phase-contrast-like planes from below to above focus.
    targets
        name -> float32 (H, W) in [0, 1] for every name in :data:`ZSTACK_TARGETS`; background
        sits near 0.2 as in the ISL data.
    cell_labels
        int32 (H, W) soma instances 1..N (0 background); somata never touch.
    nucleus_labels
        int32 (H, W); the nucleus of soma i carries label i.
    neurite_mask
        bool (H, W), the thin processes.
    defocus
        float32 (Z,), each plane's defocus in units of the half stack depth (-1 .. 1, 0 in focus).
    """

    planes: np.ndarray
    targets: dict[str, np.ndarray]
    cell_labels: np.ndarray
    nucleus_labels: np.ndarray
    neurite_mask: np.ndarray
    defocus: np.ndarray


def zstack(
    *,
    shape: tuple[int, int] = (256, 256),
    n_planes: int = 13,
    n_cells: int = 10,
    seed: int = 0,
    noise: float = 0.02,
) -> SyntheticZStack:
    """Make a phase-contrast z-stack of ``n_cells`` neuron-like cells and their fluorescence.

    Model: somata are domes of optical thickness with a denser, thicker nucleus (a second, sharper
    dome with nucleoli) and granular cytoplasm; one to three tapering neurites leave each soma,
    and a few unlabelled debris particles float around. The phase map ``phi`` is imaged at
    defocus ``z`` as ``1 - a * PC(phi) - z * b * LoG(phi) - c * absorption``: ``PC`` is the
    phase-contrast response (object minus its blurred surround, which gives the dark cell with a
    bright halo), the Laplacian term is the transport-of-intensity defocus contrast, and every
    term is blurred by a Gaussian that widens with ``|z|``. Illumination is slightly uneven,
    Gaussian noise of SD ``noise`` is added, and each plane is standardised to mean 0.5 and SD
    0.11 (the ISL statistics) then clipped to [0, 1]. The nucleus' extra phase and sharper edge
    give it its own signature in the planes, so a small network can predict the nuclear target.

    Parameters
    ----------
    shape
        (H, W) in pixels, each at least 64.
    n_planes
        Number of focal planes (ISL uses 13), at least 1.
    n_cells
        Number of somata; a field too crowded for all of them gets fewer.
    seed
        Output is bit-identical for the same arguments and seed.
    noise
        SD of the camera noise relative to the unit background (0 to 0.5).
    """
    shape = check_shape(shape, ndim=2, minimum=64)
    n_planes = check_count(n_planes, name="n_planes", minimum=1)
    n_cells = check_count(n_cells, name="n_cells", minimum=1)
    seed = check_seed(seed)
    noise = check_fraction(noise, name="noise", high=0.5)
    rng = np.random.default_rng(seed)

    radius = min(14.0, 0.12 * min(shape))
    centres = place_centres(rng, shape, n_cells, min_distance=3.0 * radius, margin=1.2 * radius)
    n = len(centres)
    radii = radius * rng.uniform(0.8, 1.2, size=n)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)

    # Somata: star-convex domes (thickness profile of a cap, sqrt(1 - r^2)).
    dist2 = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
    owner = np.argmin(dist2, axis=0)
    dy, dx = yy - centres[owner, 0], xx - centres[owner, 1]
    outline = star_radius(
        np.arctan2(dy, dx),
        radii[owner],
        (rng.uniform(0, 1, (n, 3)) * [0.18, 0.08, 0.04])[owner],
        rng.uniform(0, 2 * np.pi, (n, 3))[owner],
    )
    soma_height = rng.uniform(0.8, 1.2, size=n)[owner]
    soma_dome = np.sqrt(np.clip(1.0 - (np.hypot(dy, dx) / outline) ** 2, 0.0, None))
    soma = soma_dome > 0
    cell_labels = np.where(soma, owner + 1, 0).astype(np.int32)

    # Nuclei: a smaller dome, off-centre, well inside the soma.
    n_centres = centres + rng.uniform(-0.15, 0.15, size=(n, 2)) * radii[:, None]
    n_radii = radii * rng.uniform(0.5, 0.6, size=n)
    ndy, ndx = yy - n_centres[owner, 0], xx - n_centres[owner, 1]
    n_outline = star_radius(
        np.arctan2(ndy, ndx),
        n_radii[owner],
        (rng.uniform(0, 1, (n, 2)) * [0.1, 0.03])[owner],
        rng.uniform(0, 2 * np.pi, (n, 2))[owner],
    )
    nucleus_dome = np.sqrt(np.clip(1.0 - (np.hypot(ndy, ndx) / n_outline) ** 2, 0.0, None))
    nucleus_dome *= soma_dome > 0.3
    nucleus = nucleus_dome > 0
    nucleus_labels = np.where(nucleus, cell_labels, 0).astype(np.int32)

    nucleoli = _nucleoli(rng, yy, xx, n_centres, n_radii) & (nucleus_dome > 0.5)
    granules = (rng.random(shape) < 0.04) & soma & ~nucleus
    neurite_tube = _neurites(rng, shape, centres, radii)
    neurite_mask = (neurite_tube > 0.3) & ~soma
    debris = _debris(rng, yy, xx, soma | (neurite_tube > 0.05))

    phase = (
        1.0 * soma_height * soma_dome
        + 0.9 * nucleus_dome
        + 0.4 * nucleoli
        + 0.35 * neurite_tube
        + 0.6 * debris
    ).astype(np.float32)
    absorption = (0.8 * nucleoli + 0.5 * ndi.gaussian_filter(granules.astype(np.float32), 0.7)).astype(
        np.float32
    )
    illumination = 1.0 + 0.05 * smooth_noise(rng, shape, min(shape) / 4)

    defocus = np.linspace(-1.0, 1.0, n_planes, dtype=np.float32) if n_planes > 1 else np.zeros(1, np.float32)
    halo = phase - ndi.gaussian_filter(phase, 6.0)
    planes = np.empty((n_planes, *shape), dtype=np.float32)
    for i, z in enumerate(defocus):
        sigma = 0.7 + 2.5 * abs(float(z))
        intensity = (
            1.0
            - 0.45 * ndi.gaussian_filter(halo, sigma)
            - float(z) * 12.0 * ndi.gaussian_laplace(phase, sigma)
            - 0.35 * ndi.gaussian_filter(absorption, sigma)
        )
        intensity = intensity * illumination * (1.0 + 0.02 * float(rng.standard_normal()))
        intensity += noise * rng.standard_normal(shape, dtype=np.float32)
        standardised = (intensity - intensity.mean()) / max(float(intensity.std()), 1e-6)
        planes[i] = unit_clip(_PLANE_MEAN + _PLANE_SD * standardised)

    chromatin = 0.85 + 0.15 * np.clip(smooth_noise(rng, shape, 1.5), -2, 2)
    dna = rng.lognormal(0.0, 0.2, size=n + 1)[nucleus_labels]
    signals = {
        "nuclei": nucleus * chromatin * dna,
        "cell": soma * (0.6 + 0.4 * soma_dome) + 0.8 * neurite_tube,
        "neurite": 1.0 * neurite_tube + 0.35 * soma * (0.5 + 0.5 * soma_dome),
    }
    targets = {}
    for name in ZSTACK_TARGETS:
        blurred = ndi.gaussian_filter(signals[name].astype(np.float32), 1.2)
        peak = max(float(np.percentile(blurred, 99.5)), 1e-6)
        target = _TARGET_BACKGROUND + _TARGET_PEAK * blurred / peak
        target += 0.01 * rng.standard_normal(shape, dtype=np.float32)
        targets[name] = unit_clip(target)
    return SyntheticZStack(
        planes=planes,
        targets=targets,
        cell_labels=cell_labels,
        nucleus_labels=nucleus_labels,
        neurite_mask=neurite_mask,
        defocus=defocus,
    )


def _nucleoli(
    rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, centres: np.ndarray, radii: np.ndarray
) -> np.ndarray:
    """One or two small dense discs per nucleus."""
    mask = np.zeros(yy.shape, dtype=bool)
    for (cy, cx), radius in zip(centres, radii, strict=True):
        for _ in range(int(rng.integers(1, 3))):
            angle, reach = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.4) * radius
            size = max(1.2, 0.2 * radius)
            oy, ox = cy + reach * np.sin(angle), cx + reach * np.cos(angle)
            mask |= (yy - oy) ** 2 + (xx - ox) ** 2 < size**2
    return mask


def _neurites(
    rng: np.random.Generator, shape: tuple[int, int], centres: np.ndarray, radii: np.ndarray
) -> np.ndarray:
    """Tapering processes as a tube profile in [0, 1]: smooth random walks from each soma."""
    tips = np.zeros(shape, dtype=np.float32)
    for (cy, cx), radius in zip(centres, radii, strict=True):
        for _ in range(int(rng.integers(1, 4))):
            length = int(rng.uniform(3.0, 7.0) * radius)
            heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0.0, 0.08, length))
            start = np.array([cy, cx]) + 0.8 * radius * np.array([np.sin(heading[0]), np.cos(heading[0])])
            steps = np.stack([np.sin(heading), np.cos(heading)], axis=1)
            path = start + np.cumsum(steps, axis=0)
            taper = np.linspace(1.0, 0.45, length)
            rows, cols = np.round(path).astype(int).T
            inside = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
            np.maximum.at(tips, (rows[inside], cols[inside]), taper[inside])
    # A Gaussian of SD 0.8 turns the one-pixel path into a tube; 0.5 is its peak on a line.
    return np.clip(ndi.gaussian_filter(tips, 0.8) / 0.5, 0.0, 1.0) if tips.any() else tips


def _debris(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, occupied: np.ndarray) -> np.ndarray:
    """A few small unlabelled phase particles away from the cells."""
    field = np.zeros(yy.shape, dtype=np.float32)
    for _ in range(int(rng.integers(3, 8))):
        cy, cx = rng.uniform(0, yy.shape[0]), rng.uniform(0, yy.shape[1])
        size = rng.uniform(1.5, 3.5)
        field = np.maximum(field, np.clip(1.0 - ((yy - cy) ** 2 + (xx - cx) ** 2) / size**2, 0, None))
    return field * ~occupied
