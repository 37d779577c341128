"""Features of every cell in one batched, streaming pass through all five conv layers.

Outputs (in a ``.partial`` folder renamed at the end): ``features_<layer>.npy`` (float32, written
through a memory map), ``cells.csv`` (row, name, label, field), the original text layout
``features_<layer>.txt`` (``name<TAB>f1<TAB>...<TAB>fD<TAB>`` per line) and per-protein means
``protein_means_<layer>.tsv``. Memory is one batch plus the model, whatever the number of cells.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from pairedinpaint.config import ExtractConfig, ModelConfig
from pairedinpaint.data import channel_count, check_crops, index_cells, iter_batches
from pairedinpaint.errors import ConfigError
from pairedinpaint.outputs import finish_dir, partial_dir, write_config

logger = logging.getLogger(__name__)


def feature_extractor(
    model_config: ModelConfig, weights: Path | None, layers: tuple[str, ...], *, seed: int = 0
):  # noqa: ANN201
    """Build the pair model, load ``weights`` (random init when None) and return its feature model."""
    import keras

    from pairedinpaint.legacy import load_weights
    from pairedinpaint.model import build_feature_model, build_pair_model

    keras.utils.set_random_seed(seed)  # random init = the start of a training run with this seed
    model = build_pair_model(model_config)
    if weights is None:
        logger.warning("no weights given: features of the randomly initialised network (a baseline)")
    else:
        load_weights(model, weights)
    return build_feature_model(model, layers)


def run_batches(extractor, batches: Iterable[np.ndarray]) -> Iterator[list[np.ndarray]]:  # noqa: ANN001
    """Yield the per-layer features (list of (B, D) arrays) of each batch, inference mode."""
    for batch in batches:
        outs = extractor(batch, training=False)
        outs = outs if isinstance(outs, list | tuple) else [outs]
        yield [np.asarray(o, dtype=np.float32) for o in outs]


def features_of(extractor, crops: np.ndarray, *, batch_size: int = 256) -> list[np.ndarray]:  # noqa: ANN001
    """Per-layer features of an in-memory array of crops (N, H, W, C)."""
    chunks = list(
        run_batches(extractor, (crops[i : i + batch_size] for i in range(0, len(crops), batch_size)))
    )
    return [np.concatenate([c[j] for c in chunks]) for j in range(len(chunks[0]))]


def extract(config: ExtractConfig, *, progress: bool = True) -> Path:
    """Write the features of every cell under ``config.data.root``; returns the output folder."""
    from cellsight_shared.cli import progress as bar

    n = channel_count(config.data.layout)
    if config.model.source_channels != n:
        raise ConfigError(
            f"the {config.data.layout} layout has {n} channels; set model.source_channels = {n}"
        )
    cells = index_cells(config.data.root, config.data.layout)
    check_crops(cells, layout=config.data.layout, size=config.data.size)
    extractor = feature_extractor(config.model, config.weights, config.layers, seed=config.seed)
    tmp = partial_dir(config.out)
    dims = [int(o.shape[-1]) for o in extractor.outputs]
    arrays = [
        np.lib.format.open_memmap(
            tmp / f"features_{layer}.npy", mode="w+", dtype=np.float32, shape=(len(cells), d)
        )
        for layer, d in zip(config.layers, dims, strict=True)
    ]
    texts = (
        [(tmp / f"features_{layer}.txt").open("w") for layer in config.layers] if config.legacy_text else []
    )
    labels = sorted({c.label for c in cells})
    sums = [np.zeros((len(labels), d)) for d in dims]
    counts = np.zeros(len(labels))
    label_row = {label: i for i, label in enumerate(labels)}
    batches = iter_batches(
        cells, layout=config.data.layout, size=config.data.size, batch_size=config.batch_size
    )
    start = 0
    try:
        for outs in bar(
            run_batches(extractor, batches),
            total=-(-len(cells) // config.batch_size),
            desc="features",
            disable=not progress,
        ):
            rows = cells[start : start + len(outs[0])]
            ids = np.array([label_row[c.label] for c in rows])
            np.add.at(counts, ids, 1)
            for j, feats in enumerate(outs):
                arrays[j][start : start + len(feats)] = feats
                np.add.at(sums[j], ids, feats)
                if texts:
                    texts[j].writelines(
                        c.name + "\t" + "\t".join(str(v) for v in f) + "\t\n"
                        for c, f in zip(rows, feats, strict=True)
                    )
            start += len(outs[0])
    finally:
        for handle in texts:
            handle.close()
    for array in arrays:
        array.flush()
    del arrays
    with (tmp / "cells.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "name", "label", "field"])
        writer.writerows([i, c.name, c.label, c.field] for i, c in enumerate(cells))
    for layer, total in zip(config.layers, sums, strict=True):
        means = total / np.maximum(counts, 1)[:, None]
        with (tmp / f"protein_means_{layer}.tsv").open("w") as handle:
            handle.writelines(
                label + "\t" + "\t".join(f"{v:.6g}" for v in row) + "\n"
                for label, row in zip(labels, means, strict=True)
            )
    write_config(tmp, config, n_cells=len(cells), dims=dict(zip(config.layers, dims, strict=True)))
    return finish_dir(tmp, config.out)


def read_features(folder: str | Path, layer: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Read ``features_<layer>.npy`` and cells.csv: (features, names, labels); no pickle."""
    folder = Path(folder)
    feats = np.load(folder / f"features_{layer}.npy", allow_pickle=False)
    with (folder / "cells.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return feats, [r["name"] for r in rows], [r["label"] for r in rows]
