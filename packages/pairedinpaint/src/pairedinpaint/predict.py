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


class FeatureWriter:
    """Streams per-layer features to npy memory maps, legacy text files and per-label running sums."""

    def __init__(
        self,
        folder: Path,
        layers: tuple[str, ...],
        dims: list[int],
        *,
        n_cells: int,
        labels: list[str],
        legacy_text: bool = True,
    ) -> None:
        self.folder, self.layers, self.labels = Path(folder), layers, labels
        self.arrays = [
            np.lib.format.open_memmap(
                self.folder / f"features_{layer}.npy", mode="w+", dtype=np.float32, shape=(n_cells, d)
            )
            for layer, d in zip(layers, dims, strict=True)
        ]
        self.texts = (
            [(self.folder / f"features_{layer}.txt").open("w") for layer in layers] if legacy_text else []
        )
        self.row_of = {label: i for i, label in enumerate(labels)}
        self.sums = [np.zeros((len(labels), d)) for d in dims]
        self.counts = np.zeros(len(labels))
        self.start = 0

    def write(self, names: list[str], labels: list[str], outs: list[np.ndarray]) -> None:
        """Append one batch: names and labels of its cells and the per-layer features."""
        ids = np.array([self.row_of[label] for label in labels])
        np.add.at(self.counts, ids, 1)
        for j, feats in enumerate(outs):
            self.arrays[j][self.start : self.start + len(feats)] = feats
            np.add.at(self.sums[j], ids, feats)
            if self.texts:  # the original layout: name, tab-separated values, a trailing tab
                self.texts[j].writelines(
                    n + "\t" + "\t".join(map(str, f)) + "\t\n" for n, f in zip(names, feats, strict=True)
                )
        self.start += len(names)

    def close(self) -> None:
        """Flush the arrays, close the text files and write protein_means_<layer>.tsv."""
        for handle in self.texts:
            handle.close()
        for array in self.arrays:
            array.flush()
        self.arrays = []
        for layer, total in zip(self.layers, self.sums, strict=True):
            means = total / np.maximum(self.counts, 1)[:, None]
            with (self.folder / f"protein_means_{layer}.tsv").open("w") as handle:
                handle.writelines(
                    label + "\t" + "\t".join(f"{v:.6g}" for v in row) + "\n"
                    for label, row in zip(self.labels, means, strict=True)
                )


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
    writer = FeatureWriter(
        tmp,
        config.layers,
        dims,
        n_cells=len(cells),
        labels=sorted({c.label for c in cells}),
        legacy_text=config.legacy_text,
    )
    batches = iter_batches(
        cells, layout=config.data.layout, size=config.data.size, batch_size=config.batch_size
    )
    start = 0
    try:
        n_batches = -(-len(cells) // config.batch_size)
        for outs in bar(
            run_batches(extractor, batches), total=n_batches, desc="features", disable=not progress
        ):
            rows = cells[start : start + len(outs[0])]
            writer.write([c.name for c in rows], [c.label for c in rows], outs)
            start += len(rows)
    finally:
        writer.close()
    with (tmp / "cells.csv").open("w", newline="") as handle:
        table = csv.writer(handle)
        table.writerow(["row", "name", "label", "field"])
        table.writerows([i, c.name, c.label, c.field] for i, c in enumerate(cells))
    write_config(tmp, config, n_cells=len(cells), dims=dict(zip(config.layers, dims, strict=True)))
    return finish_dir(tmp, config.out)


def read_features(folder: str | Path, layer: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Read ``features_<layer>.npy`` and cells.csv: (features, names, labels); no pickle."""
    folder = Path(folder)
    feats = np.load(folder / f"features_{layer}.npy", allow_pickle=False)
    with (folder / "cells.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return feats, [r["name"] for r in rows], [r["label"] for r in rows]
