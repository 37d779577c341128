"""Figures from files that train, predict and evaluate wrote: loss curves, slice overlays.

matplotlib is imported inside the functions (Agg backend), so importing this module is cheap.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["plot_orthogonal_slices", "plot_training_curves"]


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _pyplot():  # noqa: ANN202 - matplotlib's module type
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(log_csv: Path, validation_csv: Path | None, out: Path) -> Path:
    """Training loss (and validation loss and F1 when present) against iteration, as a PNG."""
    plt = _pyplot()
    rows = _read_csv(Path(log_csv))
    val = _read_csv(Path(validation_csv)) if validation_csv is not None else []
    fig, axes = plt.subplots(1, 2 if val else 1, figsize=(10 if val else 5.5, 4), squeeze=False)
    ax = axes[0][0]
    if rows:
        it = np.array([int(r["iteration"]) for r in rows])
        loss = np.array([float(r["loss"]) for r in rows])
        ax.plot(it, loss, lw=0.6, alpha=0.4, color="C0", label="train (per sample)")
        if len(loss) >= 5:
            k = max(2, len(loss) // 20)
            smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
            ax.plot(it[k - 1 :], smooth, color="C0", label=f"train (mean of {k})")
    for name in sorted({r["dataset"] for r in val}):
        sel = [r for r in val if r["dataset"] == name]
        ax.plot(
            [int(r["iteration"]) for r in sel],
            [float(r["loss"]) for r in sel],
            "o-",
            label=f"validation {name}",
        )
    ax.set(xlabel="iteration", ylabel="balanced cross-entropy", title="loss")
    ax.legend(fontsize=8)
    if val:
        ax2 = axes[0][1]
        f1_cols = [c for c in val[0] if c.startswith("f1_class_")]
        for name in sorted({r["dataset"] for r in val}):
            sel = [r for r in val if r["dataset"] == name]
            for col in f1_cols:
                ax2.plot(
                    [int(r["iteration"]) for r in sel],
                    [float(r[col]) for r in sel],
                    "o-",
                    label=f"{name} {col.replace('f1_', '')}",
                )
        ax2.set(xlabel="iteration", ylabel="F1 (p >= 0.5, metric mask)", title="validation F1", ylim=(0, 1))
        ax2.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(out)
    return out


def plot_orthogonal_slices(
    raw: np.ndarray,
    out: Path,
    *,
    prediction: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    centre: Sequence[int] | None = None,
    title: str = "",
) -> Path:
    """Three orthogonal slices (zy, zx, yx through ``centre``) of raw with overlays, as a PNG.

    ``prediction`` (probability or binary) is drawn in red, ``labels`` as a green contour.
    Arrays are (z, y, x) and must share a shape.
    """
    plt = _pyplot()
    centre = tuple(centre) if centre is not None else tuple(s // 2 for s in raw.shape)
    planes = [
        (f"z-y (x = {centre[2]})", lambda a: a[:, :, centre[2]]),
        (f"z-x (y = {centre[1]})", lambda a: a[:, centre[1], :]),
        (f"y-x (z = {centre[0]})", lambda a: a[centre[0]]),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.3))
    for ax, (name, cut) in zip(axes, planes, strict=True):
        ax.imshow(cut(raw), cmap="gray", interpolation="nearest")
        if prediction is not None:
            p = cut(prediction).astype(np.float32)
            overlay = np.zeros((*p.shape, 4), dtype=np.float32)
            overlay[..., 0] = 1.0
            overlay[..., 3] = 0.45 * np.clip(p, 0, 1)
            ax.imshow(overlay, interpolation="nearest")
        if labels is not None and np.any(cut(labels)):
            ax.contour(cut(labels) != 0, levels=[0.5], colors="lime", linewidths=0.8)
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out
