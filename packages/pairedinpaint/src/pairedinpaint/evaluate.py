"""The paper's benchmark: leave-one-out kNN (k=11, z-scored) accuracy of features on labelled cells.

Labelled sets: the DeepLoc/Chong yeast hdf5 files (read with h5py; SPINDLEPOLE merged into
SPINDLE, DEAD and GHOST left out by default) or any folder-labelled set in the yeast or human
layout (label = sub-directory). Scores the trained network's five layers, the same network at
random initialisation and the mahotas hand-crafted baseline; writes results.csv and results.md.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from pairedinpaint.config import BenchmarkConfig
from pairedinpaint.errors import DataError
from pairedinpaint.outputs import finish_dir, partial_dir, write_config
from pairedinpaint.preprocess import minmax

logger = logging.getLogger(__name__)
MERGE = {"SPINDLEPOLE": "SPINDLE"}


def knn_scores(features: np.ndarray, labels: np.ndarray, *, k: int = 11) -> dict[str, float]:
    """Overall and mean per-class leave-one-out kNN accuracy on z-scored features."""
    from cellsight_shared.metrics import knn_accuracy

    result = knn_accuracy(np.nan_to_num(features), np.asarray(labels), k=k, standardize=True)
    return {"accuracy": result.accuracy, "mean_class_accuracy": result.mean_class_accuracy}


def read_deeploc(
    paths: tuple[Path, ...], *, exclude: tuple[str, ...] = ("DEAD", "GHOST")
) -> tuple[np.ndarray, np.ndarray]:
    """Crops (N, 64, 64, 2) [GFP, RFP] min-max normalised and labels from DeepLoc hdf5 files."""
    import h5py

    crops, labels = [], []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"DeepLoc file {path} does not exist; unpack DeepLoc_full_datasets.zip first")
        with h5py.File(path, "r") as f:
            missing = [k for k in ("data1", "Index1", "Index1_columns") if k not in f]
            if missing:
                raise DataError(f"{path} lacks datasets {missing}; expected a DeepLoc Chong_*_set.hdf5")
            data = np.asarray(f["data1"], dtype=np.float32)
            if data.ndim != 2 or data.shape[1] != 2 * 64 * 64:
                raise DataError(
                    f"{path}: data1 has shape {data.shape}; expected (N, 8192) = 2 x 64 x 64 per cell"
                )
            names = [c.decode() if isinstance(c, bytes) else str(c) for c in f["Index1_columns"][()]]
            onehot = np.asarray(f["Index1"])
        classes = np.array([MERGE.get(n.upper(), n.upper()) for n in names])[onehot.argmax(axis=1)]
        keep = ~np.isin(classes, [e.upper() for e in exclude])
        images = data[keep].reshape(-1, 2, 64, 64)
        crops.append(np.stack([[minmax(ch) for ch in cell] for cell in images]).transpose(0, 2, 3, 1))
        labels.append(classes[keep])
    return np.concatenate(crops).astype(np.float32), np.concatenate(labels)


def read_folder(root: Path, *, layout: str, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Crops and labels (sub-directory names) of a folder-labelled set."""
    from pairedinpaint.data import index_cells, load_crops

    cells = index_cells(root, layout)
    return load_crops(cells, layout=layout, size=size, progress=False), np.array([c.label for c in cells])


def score_sets(crops: np.ndarray, labels: np.ndarray, *, config: BenchmarkConfig) -> list[dict[str, object]]:
    """Rows (method, layer, accuracy, mean_class_accuracy, n) for every requested feature set."""
    from pairedinpaint.predict import feature_extractor, features_of

    rows = []
    runs = []
    if config.weights is not None:
        runs.append(("trained", config.weights))
    if config.random_init or config.weights is None:
        runs.append(("random_init", None))
    for method, weights in runs:
        extractor = feature_extractor(config.model, weights, config.layers, seed=config.seed)
        feats = features_of(extractor, crops, batch_size=config.batch_size)
        for layer, f in zip(config.layers, feats, strict=True):
            rows.append(
                {"method": method, "layer": layer, **knn_scores(f, labels, k=config.k), "n": len(labels)}
            )
    if config.handcrafted:
        from pairedinpaint.handcrafted import handcrafted_features

        scores = knn_scores(handcrafted_features(crops), labels, k=config.k)
        rows.append({"method": "mahotas_haralick_zernike", "layer": "-", **scores, "n": len(labels)})
    return rows


def write_results(folder: Path, rows: list[dict[str, object]]) -> None:
    """results.csv and a Markdown table results.md."""
    with (folder / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| method | layer | accuracy | mean class accuracy | cells |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['method']} | {r['layer']} | {r['accuracy']:.3f} | {r['mean_class_accuracy']:.3f} | {r['n']} |"
        for r in rows
    ]
    (folder / "results.md").write_text("\n".join(lines) + "\n")


def benchmark(config: BenchmarkConfig) -> Path:
    """Score every feature set on the labelled set; returns the output folder."""
    if config.deeploc:
        crops, labels = read_deeploc(config.deeploc, exclude=config.exclude)
    else:
        crops, labels = read_folder(config.folder, layout=config.layout, size=config.model.size)
    if crops.shape[-1] != config.model.source_channels:
        raise DataError(
            f"the labelled set has {crops.shape[-1]} channels; set model.source_channels to match"
        )
    if len(labels) <= config.k:
        raise DataError(f"{len(labels)} labelled cells is too few for k={config.k} nearest neighbours")
    tmp = partial_dir(config.out)
    rows = score_sets(crops, labels, config=config)
    write_results(tmp, rows)
    write_config(tmp, config, n_cells=len(labels), classes=sorted(set(labels.tolist())))
    for row in rows:
        logger.info(
            "%s %s: accuracy %.3f, mean class accuracy %.3f",
            row["method"],
            row["layer"],
            row["accuracy"],
            row["mean_class_accuracy"],
        )
    return finish_dir(tmp, config.out)
