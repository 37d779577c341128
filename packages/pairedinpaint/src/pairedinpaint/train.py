"""train(config) -> run folder: the paper's recipe (MSE, Adam(1e-4, 0.5, 1e-8)), resumable.

The run folder holds ``checkpoint.keras`` (weights and optimizer state, rewritten atomically
after every epoch), ``history.json``, ``model.weights.h5`` at the end, ``loss_curve.png``,
TensorBoard logs and ``config.json``. Pretrained weights given as ``init_weights`` are only read.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import keras
import numpy as np

from pairedinpaint.config import TrainConfig
from pairedinpaint.data import PairSampler, assemble, channel_count, index_cells, load_crops, pair_groups
from pairedinpaint.errors import CheckpointError, ConfigError
from pairedinpaint.legacy import load_weights
from pairedinpaint.model import build_pair_model
from pairedinpaint.outputs import new_run_dir, write_config

logger = logging.getLogger(__name__)


class PairBatches(keras.utils.PyDataset):
    """Batches ({x_in, y_rfp}, y_gfp) drawn by a PairSampler from preloaded crops."""

    def __init__(self, crops: np.ndarray, sampler: PairSampler, *, steps: int, epoch: int = 0) -> None:
        super().__init__()
        self.crops, self.sampler, self.steps, self.epoch = crops, sampler, steps, epoch

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int):  # noqa: ANN204 - Keras' PyDataset protocol
        x, y_rfp, y_gfp = assemble(self.crops, *self.sampler.batch(self.epoch, index))
        return {"x_in": x, "y_rfp": y_rfp}, y_gfp

    def on_epoch_end(self) -> None:
        self.epoch += 1


class _Checkpoint(keras.callbacks.Callback):
    """After every epoch: checkpoint.keras and history.json, each written to a temporary name first."""

    def __init__(self, run: Path, history: list[float], batches: PairBatches) -> None:
        super().__init__()
        self.run, self.history, self.batches = run, history, batches

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.history.append(float((logs or {}).get("loss", np.nan)))
        tmp = self.run / "checkpoint.tmp.keras"
        self.model.save(tmp)
        os.replace(tmp, self.run / "checkpoint.keras")
        state = {"epochs_done": epoch + 1, "loss": self.history}
        (self.run / "history.tmp.json").write_text(json.dumps(state))
        os.replace(self.run / "history.tmp.json", self.run / "history.json")
        self.batches.epoch = epoch + 1  # the sampler's epoch follows Keras' even across resumes


def _check_model_channels(config: TrainConfig) -> None:
    n = channel_count(config.data.layout)
    if (config.model.source_channels, config.model.target_channels) != (n, n - 1):
        raise ConfigError(
            f"the {config.data.layout} layout has {n} channels per cell, so model.source_channels must be "
            f"{n} "
            f"and model.target_channels {n - 1}; got {config.model.source_channels} and "
            f"{config.model.target_channels}"
        )
    if config.model.size != config.data.size:
        raise ConfigError(f"model.size ({config.model.size}) must equal data.size ({config.data.size})")


def train(config: TrainConfig, *, resume: bool = False, progress: bool = True) -> Path:
    """Train the pair model; with ``resume`` continue the run in ``config.out`` where it stopped."""
    _check_model_channels(config)
    out = Path(config.out)
    if config.init_weights is not None:
        init = Path(config.init_weights).resolve()
        if out.resolve() in init.parents or init == out.resolve():
            raise ConfigError(
                f"init_weights {init} lies inside the run folder {out}; pretrained weights are read only"
            )
    cells = index_cells(config.data.root, config.data.layout)
    groups = pair_groups(cells, pair_with=config.data.pair_with, singletons=config.data.singletons)
    crops = load_crops(cells, layout=config.data.layout, size=config.data.size, progress=progress)
    keras.utils.set_random_seed(config.seed)
    if resume:
        if not (out / "checkpoint.keras").is_file():
            raise CheckpointError(f"{out} has no checkpoint.keras to resume from; start a new run instead")
        model = keras.saving.load_model(out / "checkpoint.keras", safe_mode=True)
        history = json.loads((out / "history.json").read_text())["loss"]
    else:
        new_run_dir(out)
        write_config(out, config, n_cells=len(cells))
        model = build_pair_model(config.model)
        if config.init_weights is not None:
            load_weights(model, config.init_weights)
        model.compile(
            optimizer=keras.optimizers.Adam(
                config.learning_rate, beta_1=config.beta_1, beta_2=config.beta_2, epsilon=config.epsilon
            ),
            loss="mean_squared_error",
        )
        history = []
    start = len(history)
    if start >= config.epochs:
        logger.info("%s already finished %d epochs", out, start)
        return out
    sampler = PairSampler(groups, batch_size=config.batch_size, seed=config.seed, augment=config.augment)
    steps = config.steps_per_epoch or len(sampler)
    batches = PairBatches(crops, sampler, steps=steps, epoch=start)
    callbacks: list = [_Checkpoint(out, history, batches)]
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out / "tensorboard"), write_graph=False))
    logger.info(
        "training on %d cells in %d groups, epochs %d-%d, %d steps each",
        len(cells),
        len(groups),
        start + 1,
        config.epochs,
        steps,
    )
    model.fit(
        batches, epochs=config.epochs, initial_epoch=start, callbacks=callbacks, verbose=1 if progress else 0
    )
    tmp = out / "model.tmp.weights.h5"
    model.save_weights(tmp)
    os.replace(tmp, out / "model.weights.h5")
    from pairedinpaint.figures import plot_loss_curve

    plot_loss_curve(history, out / "loss_curve.png")
    return out
