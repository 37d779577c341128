"""`pairedinpaint demo`: synthetic paired cells -> short training -> features -> kNN accuracy and figures.

Each localisation class of cellsight_shared.synthetic plays one "protein" (one directory, as a
yeast strain): the network never sees the labels, only pairs of cells from the same directory.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from pairedinpaint.config import DataConfig, DemoConfig, ExtractConfig, ModelConfig, TrainConfig
from pairedinpaint.outputs import new_run_dir, write_config

logger = logging.getLogger(__name__)


def make_synthetic_set(
    root: Path, *, classes: tuple[str, ...], per_class: int, size: int, seed: int, layout: str = "yeast"
) -> None:
    """Write synthetic crops, one dir per class: yeast [protein, cell]; human [protein, nucleus, cell]."""
    from cellsight_shared.synthetic import cell_crops
    from pairedinpaint.data import write_layout

    crops = cell_crops(per_class, size=size, classes=classes, seed=seed)
    channels = [2, 1] if layout == "yeast" else [2, 0, 1]
    write_layout(root, crops.images[:, channels], [crops.class_names[i] for i in crops.labels], layout=layout)


def random_init_features_bn_calibrated(
    model_config: ModelConfig, crops: np.ndarray, layers: tuple[str, ...], *, seed: int = 0
) -> list[np.ndarray]:
    """Features of the random-init network whose BN layers hold the population statistics of ``crops``.

    A stronger random baseline than the bare initialisation (moving mean 0, variance 1, so BN is
    nearly the identity): the same weights as the start of training with ``seed``, every BN layer's
    moving mean and variance set to those of all ``crops`` in one training-mode pass (one batch,
    so for demo-sized sets only). Convolution weights are untouched.
    """
    import keras

    from pairedinpaint.model import build_feature_model, build_pair_model
    from pairedinpaint.predict import features_of

    keras.utils.set_random_seed(seed)  # the initial weights of a training run with this seed
    model = build_pair_model(model_config)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0  # moving statistics := this batch's statistics
    model([crops, crops[..., 1:]], training=True)
    for layer, momentum in zip(norms, momenta, strict=True):
        layer.momentum = momentum
    return features_of(build_feature_model(model, layers), crops)


def run_demo(config: DemoConfig, *, size: int = 32, progress: bool = True) -> dict[str, float]:
    """Run the demo into ``config.out``; returns the kNN accuracies (trained and random init)."""
    from pairedinpaint.data import index_cells, load_crops
    from pairedinpaint.evaluate import knn_scores
    from pairedinpaint.figures import plot_embedding, plot_inpainting
    from pairedinpaint.predict import extract, read_features
    from pairedinpaint.train import train

    out = new_run_dir(config.out)
    write_config(out, config)
    data_root = out / "synthetic_cells"
    make_synthetic_set(
        data_root,
        classes=config.classes,
        per_class=config.cells_per_class,
        size=size,
        seed=config.seed,
        layout=config.layout,
    )
    data = DataConfig(root=data_root, size=size, layout=config.layout)
    n = 2 if config.layout == "yeast" else 3
    model = ModelConfig(size=size, width=config.width, source_channels=n, target_channels=n - 1)
    run = train(
        TrainConfig(
            data=data,
            model=model,
            out=out / "train",
            epochs=config.epochs,
            batch_size=config.batch_size,
            seed=config.seed,
            learning_rate=config.learning_rate,
            tensorboard=False,
        ),
        progress=progress,
    )
    weights = run / "model.weights.h5"
    cells = index_cells(data_root, config.layout)
    crops = load_crops(cells, layout=config.layout, size=size, progress=False)
    layers = ("conv3_1", "conv4_1")
    results = {}
    for name, w in (("trained", weights), ("random_init", None)):
        folder = extract(
            ExtractConfig(data=data, model=model, weights=w, out=out / f"features_{name}", seed=config.seed),
            progress=progress,
        )
        for layer in layers:
            feats, _, labels = read_features(folder, layer)
            results[f"{name}_{layer}"] = knn_scores(feats, np.array(labels), k=11)["accuracy"]
            if name == "trained" and layer == "conv4_1":
                plot_embedding(feats, np.array(labels), out / "embedding_conv4_1.png")
    calibrated = random_init_features_bn_calibrated(model, crops, layers, seed=config.seed)
    labels = np.array([c.label for c in cells])
    for layer, feats in zip(layers, calibrated, strict=True):
        results[f"random_init_bn_calibrated_{layer}"] = knn_scores(feats, labels, k=11)["accuracy"]
    results["chance"] = 1.0 / len(config.classes)
    # inpainting panel: sources and targets from the same directory
    from pairedinpaint.legacy import load_weights
    from pairedinpaint.model import build_pair_model

    pair_model = build_pair_model(model)
    load_weights(pair_model, weights)
    step = config.cells_per_class
    src = np.arange(len(config.classes)) * step
    tgt = src + 1
    pred = pair_model.predict([crops[src], crops[tgt][..., 1:]], verbose=0)
    plot_inpainting(
        crops[src], crops[tgt][..., 1:], crops[tgt][..., :1], np.clip(pred, 0, 1), out / "inpainting.png"
    )
    (out / "results.json").write_text(json.dumps(results, indent=2))
    logger.info("demo kNN accuracy (k=11): %s", results)
    return results
