"""Pictures: training curves, and the original's result grids (ground truth | generated | nucleus).

Only matplotlib (Agg) and numpy; reads what train/evaluate wrote or takes arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["plot_losses", "result_grid"]


def _pyplot():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:  # noqa: ANN001
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)
    return path


def plot_losses(history: Sequence[dict[str, float]], path: str | Path) -> Path:
    """Every loss in ``history`` (one dict per epoch) against the epoch, log scale, as a PNG."""
    plt = _pyplot()
    keys = [k for k in history[0] if k not in ("epoch", "lr")]
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    for k in keys:
        values = [h.get(k, np.nan) for h in history]
        ax.plot(epochs, values, label=k, marker="." if len(epochs) < 30 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if all(h.get(k, 1) > 0 for h in history for k in keys):
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = _save(fig, Path(path))
    plt.close(fig)
    return out


def _display(image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, [0.5, 99.5])
    return np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1)


def result_grid(
    rows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    title: str = "",
    row_labels: Sequence[str] | None = None,
) -> Path:
    """One row per image: ground truth | generated | nucleus, each contrast-stretched on its own."""
    plt = _pyplot()
    n = len(rows)
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.6 * n), squeeze=False)
    for i, (truth, generated, nucleus) in enumerate(rows):
        for j, (image, name) in enumerate(
            ((truth, "ground truth"), (generated, "generated"), (nucleus, "nucleus"))
        ):
            ax = axes[i, j]
            ax.imshow(_display(np.asarray(image, dtype=np.float32)), cmap="gray" if j == 2 else "magma")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name)
        if row_labels is not None:
            axes[i, 0].set_ylabel(row_labels[i], fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = _save(fig, Path(path))
    plt.close(fig)
    return out
