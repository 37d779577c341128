"""Scribbles from ground-truth instance labels and the validation square (v2 label generation).

``scribbles_from_labels`` picks random 32x32 boxes until the instance budget is spent; every
instance touching a box contributes its skeleton (plus, with ``disk_scribble``, a ring about 3 px
inside its outline) as foreground and the skeleton of its 4-px surround as background. A box on
no instance contributes the skeleton of the background sampling field inside it. The budget is
decremented once per instance, so it can overshoot by the instances of the last box.

Differences from the original, on purpose: the box's column limit uses the image width (the
original used the height, wrong for non-square images); an exhausted sampling field ends the loop
instead of crashing; randomness comes from a ``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage import morphology

from impartial.errors import DataError

__all__ = ["ScribbleResult", "scribbles_for_images", "scribbles_from_labels", "validation_square"]


@dataclass(frozen=True)
class ScribbleResult:
    """Scribbles (2, H, W) uint8 = [foreground, background], instances used, instances present."""

    scribble: np.ndarray
    n_used: int
    n_labels: int


def _erode(mask: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    return morphology.erosion(mask.astype(np.uint8), footprint=footprint) > 0


def _dilate(mask: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    return morphology.dilation(mask.astype(np.uint8), footprint=footprint) > 0


def _skel(mask: np.ndarray) -> np.ndarray:
    return morphology.skeletonize(mask.astype(bool))


def scribbles_from_labels(
    labels: np.ndarray,
    max_labels: int,
    *,
    rng: np.random.Generator,
    fov_box: tuple[int, int] = (32, 32),
    disk_scribble: bool = False,
    sample_back: bool = False,
) -> ScribbleResult:
    """Generate [foreground, background] scribbles from an (H, W) instance label image."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise DataError(f"label image must be 2-D (H, W), got shape {labels.shape}")
    fg_mask = labels > 0
    bg_mask = ~fg_mask
    ids = np.unique(labels[fg_mask])
    budget = int(min(max_labels, ids.size))
    start = budget
    cand = _skel(fg_mask) & fg_mask
    if disk_scribble:
        inner = _erode(fg_mask, morphology.disk(3))
        ring = inner & ~_erode(inner, morphology.disk(1))
        cand = (cand | ring) & fg_mask
    band = _dilate(fg_mask, morphology.disk(4))
    field = _skel(bg_mask & band) | _dilate(_skel(~band), morphology.disk(4))
    remaining = labels.copy()
    fg = np.zeros(labels.shape, dtype=bool)
    bg = np.zeros(labels.shape, dtype=bool)
    h, w = labels.shape
    disk4 = morphology.disk(4)
    while budget > 0:
        pool = field if sample_back and field.any() else remaining > 0
        ys, xs = np.nonzero(pool)
        if ys.size == 0:
            break
        k = int(rng.integers(0, ys.size))
        y0 = max(0, ys[k] - fov_box[0] // 2)
        y1 = min(y0 + fov_box[0], h)
        x0 = max(0, xs[k] - fov_box[1] // 2)
        x1 = min(x0 + fov_box[1], w)
        box = np.zeros(labels.shape, dtype=bool)
        box[y0:y1, x0:x1] = True
        active = np.unique(remaining[box])
        active = active[active > 0]
        if active.size:
            for lab in active:
                inst = remaining == lab
                fg |= inst & cand
                # a crop around the instance and the box (6 px covers the disk and the border)
                iy, ix = np.nonzero(inst)
                cy0, cy1 = max(0, min(iy.min(), y0) - 6), min(h, max(iy.max() + 1, y1) + 6)
                cx0, cx1 = max(0, min(ix.min(), x0) - 6), min(w, max(ix.max() + 1, x1) + 6)
                crop = (slice(cy0, cy1), slice(cx0, cx1))
                surround = (_dilate(inst[crop], disk4) | box[crop]) & bg_mask[crop]
                bg[crop] |= _skel(surround) & bg_mask[crop]
                budget -= 1
                remaining[inst] = 0
                field &= ~inst
        elif (field & box).any():
            bg |= _skel(box & bg_mask & field) & bg_mask
        field &= ~box
    scribble = np.stack([fg, bg]).astype(np.uint8)
    return ScribbleResult(scribble, start - budget, int(ids.size))


def scribbles_for_images(
    label_images: list[np.ndarray],
    total_budget: int,
    *,
    rng: np.random.Generator,
    disk_scribble: bool = True,
    sample_back: bool = False,
) -> list[ScribbleResult]:
    """Split ``total_budget`` over images in ascending instance count (>= 2 each), in input order."""
    counts = [np.unique(np.asarray(lab)[np.asarray(lab) > 0]).size for lab in label_images]
    order = np.argsort(counts, kind="stable")
    left = int(total_budget)
    results: dict[int, ScribbleResult] = {}
    for pos, i in enumerate(order):
        n_i = max(2, int(left / (len(label_images) - pos)))
        res = scribbles_from_labels(
            label_images[i], n_i, rng=rng, disk_scribble=disk_scribble, sample_back=sample_back
        )
        left -= res.n_used
        results[int(i)] = res
    return [results[i] for i in range(len(label_images))]


def validation_square(scribble: np.ndarray, *, val_perc: float = 0.4, rng: np.random.Generator) -> np.ndarray:
    """A (H, W) uint8 mask of a square 40 % of each side, centred near scribbles (v2 val_mask).

    The centre is drawn with probability proportional to the scribble union convolved with a 5x5
    box, restricted to centres where the whole square fits.
    """
    scribble = np.asarray(scribble)
    h, w = scribble.shape[-2:]
    hy, hx = int(h * val_perc / 2), int(w * val_perc / 2)
    if hy < 1 or hx < 1:
        raise DataError(f"image {h}x{w} is too small for a validation square of {val_perc:.0%} of each side")
    union = (scribble.reshape(-1, h, w) > 0).any(axis=0).astype(np.float64)
    weight = ndimage.convolve(union, np.ones((5, 5)), mode="constant", cval=0.0)
    inner = np.zeros_like(weight)
    inner[hy : h - hy + 1, hx : w - hx + 1] = 1
    weight *= inner
    if weight.sum() <= 0:
        weight = inner
    flat = weight.ravel() / weight.sum()
    centre = int(rng.choice(flat.size, p=flat))
    cy, cx = divmod(centre, w)
    mask = np.zeros((h, w), dtype=np.uint8)
    mask[cy - hy : cy + hy, cx - hx : cx + hx] = 1
    return mask
