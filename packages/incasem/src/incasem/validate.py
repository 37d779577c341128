"""Validation with the live model: tiled prediction of whole validation regions, loss and F1.

Each region is read into memory with raw context, cut into output-sized tiles (stride = output
block, the last tile snapped to the end, as gunpowder's Scan does), predicted in eval mode, and
scored: the balanced masked cross-entropy over the region, and per class c >= 1 the F1 (Dice) of
``p_c >= 0.5`` against the labels inside mask AND metric mask (brief sections 2.8 and 5).
Regions smaller than an output block are padded with mid-grey raw (0 in [-1, 1]).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from incasem.data import Region

__all__ = ["RegionScores", "balance_weights", "predict_region", "score_region", "tile_starts"]


@dataclass(frozen=True)
class RegionScores:
    """Validation results of one region."""

    loss: float
    f1: dict[int, float]
    precision: dict[int, float]
    recall: dict[int, float]
    iou: dict[int, float]


def tile_starts(size: int, tile: int) -> list[int]:
    """Tile origins covering ``size`` with stride ``tile``; the last one snapped to the end."""
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile + 1, tile))
    if starts[-1] + tile < size:
        starts.append(size - tile)
    return starts


@torch.no_grad()
def predict_region(
    model: torch.nn.Module,
    raw: np.ndarray,
    *,
    input_shape: Sequence[int],
    output_shape: Sequence[int],
    device: torch.device,
) -> np.ndarray:
    """Softmax probabilities (C, z, y, x) for the ROI of ``raw`` (uint8, ROI + context per side)."""
    context = [(i - o) // 2 for i, o in zip(input_shape, output_shape, strict=True)]
    roi = [s - 2 * c for s, c in zip(raw.shape, context, strict=True)]
    # pad so that a region smaller than one output block still gets a full block
    padded_roi = [max(r, o) for r, o in zip(roi, output_shape, strict=True)]
    scaled = raw.astype(np.float32) / 255.0 * 2 - 1
    extra = [(0, p - r) for p, r in zip(padded_roi, roi, strict=True)]
    scaled = np.pad(scaled, extra, mode="constant", constant_values=0.0)
    was_training = model.training
    model.eval()
    probs = None
    for start in itertools.product(
        *(tile_starts(p, o) for p, o in zip(padded_roi, output_shape, strict=True))
    ):
        window = tuple(slice(s, s + i) for s, i in zip(start, input_shape, strict=True))
        x = torch.from_numpy(np.ascontiguousarray(scaled[window]))[None, None].to(device)
        p = torch.softmax(model(x), dim=1)[0].cpu().numpy()
        if probs is None:
            probs = np.zeros((p.shape[0], *padded_roi), dtype=np.float32)
        out = tuple(slice(s, s + o) for s, o in zip(start, output_shape, strict=True))
        probs[(slice(None), *out)] = p
    model.train(was_training)
    assert probs is not None  # at least one tile always exists
    return probs[(slice(None), *(slice(0, r) for r in roi))]


def balance_weights(
    labels: np.ndarray, mask: np.ndarray, num_classes: int, *, clipmin: float, clipmax: float
) -> np.ndarray:
    """Gunpowder BalanceLabels' scaling: mask * 1 / (K * clip(fraction of the voxel's class))."""
    scale = mask.astype(np.float32)
    inside = labels[mask]
    counts = np.bincount(inside.ravel(), minlength=num_classes).astype(np.float64)
    present = counts > 0
    fractions = np.clip(counts / max(1, inside.size), clipmin, clipmax)
    weights = np.where(present, 1.0 / num_classes / fractions, 0.0)
    return scale * weights[labels].astype(np.float32)


def score_region(
    probs: np.ndarray, region: Region, *, clipmin: float = 0.01, clipmax: float = 0.99
) -> RegionScores:
    """Balanced masked cross-entropy and per-class scores at p >= 0.5 inside mask AND metric mask."""
    from cellsight_shared.metrics import binary_scores

    num_classes = probs.shape[0]
    labels = region.labels.astype(np.int64)
    scale = balance_weights(labels, region.mask, num_classes, clipmin=clipmin, clipmax=clipmax)
    picked = np.take_along_axis(probs, labels[None], axis=0)[0]
    ce = -np.log(np.clip(picked, 1e-12, None))
    loss = float((ce * scale).sum() / scale.sum()) if scale.sum() > 0 else 0.0
    counted = region.mask & region.metric_mask
    f1, precision, recall, iou = {}, {}, {}, {}
    for c in range(1, num_classes):
        scores = binary_scores(labels == c, probs[c] >= 0.5, mask=counted)
        f1[c], precision[c], recall[c], iou[c] = (
            scores.f1,
            scores.precision,
            scores.recall,
            scores.iou,
        )
    return RegionScores(loss=loss, f1=f1, precision=precision, recall=recall, iou=iou)
