"""Pictures: training loss curve, inpainting panel, 2-D embedding of features by label."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:  # noqa: ANN001
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    tmp.replace(path)
    return path


def plot_loss_curve(losses: list[float], path: Path) -> Path:
    """Training MSE per epoch."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(np.arange(1, len(losses) + 1), losses, marker="o")
    ax.set(xlabel="epoch", ylabel="MSE", title="paired cell inpainting: training loss")
    ax.grid(alpha=0.3)
    _save(fig, path)
    plt.close(fig)
    return Path(path)


def plot_inpainting(
    x_in: np.ndarray, y_rfp: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, path: Path
) -> Path:
    """One row per pair: source protein, source marker, target marker, predicted and true target protein."""
    plt = _pyplot()
    n = len(x_in)
    titles = ["source protein", "source marker", "target marker", "predicted protein", "true protein"]
    fig, axes = plt.subplots(n, 5, figsize=(10, 2 * n), squeeze=False)
    for i in range(n):
        panels = [x_in[i, ..., 0], x_in[i, ..., 1], y_rfp[i, ..., 0], y_pred[i, ..., 0], y_true[i, ..., 0]]
        for ax, image, title in zip(axes[i], panels, titles, strict=True):
            ax.imshow(image, cmap="magma" if "protein" in title else "gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=9)
    _save(fig, path)
    plt.close(fig)
    return Path(path)


def plot_embedding(
    features: np.ndarray, labels: np.ndarray, path: Path, *, method: str = "pca", seed: int = 0
) -> Path:
    """Scatter of z-scored features in 2-D (PCA or t-SNE from scikit-learn), coloured by label."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    z = StandardScaler().fit_transform(np.nan_to_num(features))
    if method == "tsne":
        xy = TSNE(2, random_state=seed, perplexity=min(30, max(2, len(z) // 4))).fit_transform(z)
    else:
        xy = PCA(2, random_state=seed).fit_transform(z)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for label in sorted(set(labels.tolist())):
        keep = labels == label
        ax.scatter(xy[keep, 0], xy[keep, 1], s=10, label=str(label))
    ax.set(title=f"features ({method.upper()})", xticks=[], yticks=[])
    ax.legend(fontsize=7, markerscale=1.5)
    _save(fig, path)
    plt.close(fig)
    return Path(path)
