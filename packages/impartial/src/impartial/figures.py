"""Pictures people look at: training curves, probability/entropy/outline overlays, metric bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["overlay_panel", "plot_history"]


def _plt():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:  # noqa: ANN001
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)
    return path


def plot_history(history: dict, path: Path) -> Path:
    """Train and validation losses per epoch (total and parts), cycles shaded."""
    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.5))
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    for ax, part in zip(axes, ("loss", "seg_fore", "seg_back", "rec"), strict=True):
        ax.plot(epochs, history[f"train_{part}"], label="train")
        ax.plot(epochs, history[f"val_{part}"], label="validation")
        ax.set_title(part)
        ax.set_xlabel("epoch")
        cycles = np.asarray(history.get("cycle", []))
        for c in np.unique(cycles)[1::2]:
            e = epochs[cycles == c]
            ax.axvspan(e.min() - 0.5, e.max() + 0.5, color="0.9", zorder=0)
    axes[0].legend()
    fig.suptitle("ImPartial training (grey: alternate checkpoint cycles)")
    out = _save(fig, path)
    plt.close(fig)
    return out


def _outline(labels: np.ndarray) -> np.ndarray:
    from skimage.segmentation import find_boundaries

    return find_boundaries(labels, mode="inner")


def overlay_panel(
    image: np.ndarray,
    prob: np.ndarray,
    entropy: np.ndarray,
    instances: np.ndarray,
    path: Path,
    *,
    title: str = "",
) -> Path:
    """Four panels: image (first channel), probability, entropy, instance outlines on the image."""
    plt = _plt()
    img = image[0] if image.ndim == 3 else image
    lo, hi = np.percentile(img, [1, 99.5])
    img = np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1)
    rgb = np.dstack([img] * 3)
    rgb[_outline(instances)] = (1.0, 0.2, 0.2)
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.3))
    for ax, data, name, cmap in (
        (axes[0], img, "image", "gray"),
        (axes[1], prob, "foreground probability", "magma"),
        (axes[2], entropy, "entropy (where to scribble next)", "viridis"),
    ):
        im = ax.imshow(data, cmap=cmap)
        ax.set_title(name)
        fig.colorbar(im, ax=ax, fraction=0.046)
    axes[3].imshow(rgb)
    axes[3].set_title(f"instances ({int(instances.max())})")
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title)
    out = _save(fig, path)
    plt.close(fig)
    return out
