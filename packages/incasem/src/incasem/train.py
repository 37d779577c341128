"""Training and fine-tuning: gunpowder batches, masked balanced cross-entropy, Adam, checkpoints.

One iteration = one sample (batch size 1, as the original): the pipeline of ``pipeline.py``
delivers a block, the U-Net predicts logits, the loss is ``sum(CE * mask * scaling) /
sum(scaling)`` with the per-batch class-balancing scalings, and Adam (lr 3e-5, weight decay
3e-5) steps. ``model_checkpoint_<i>`` (the original dict format) is written at iteration 0,
every ``save_every`` iterations and at the end; a rerun resumes from the latest one. Batch ``i``
is drawn with a seed derived from the config seed and ``i`` alone, so (without PreCache
workers) a resumed run produces the same batches, and weights, as one that never stopped.
"""

from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from incasem.checkpoint import (
    checkpoint_iteration,
    latest_checkpoint,
    load_checkpoint,
    load_model_weights,
    save_checkpoint,
)
from incasem.config.base import write_config
from incasem.config.data import DataConfig, load_data_config, resolve_file
from incasem.config.train import TrainConfig
from incasem.data import class_names, read_region
from incasem.device import resolve_device
from incasem.errors import CheckpointError, ConfigError, DataError
from incasem.experiment import ExperimentRun, run_experiment
from incasem.model import build_model

__all__ = ["batch_seed", "finetune", "masked_balanced_loss", "resolve_device", "train"]

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LOG_CSV = "log.csv"
VALIDATION_CSV = "validation.csv"


def batch_seed(seed: int, iteration: int) -> int:
    """The gunpowder request seed of ``iteration``: depends on the run seed and ``iteration`` only."""
    return (seed * 1_000_003 + iteration * 7919) % 2**32


def masked_balanced_loss(
    logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, scalings: torch.Tensor
) -> torch.Tensor:
    """``sum(CE * mask * scalings) / sum(scalings)``: the original's scaled cross-entropy.

    Class weights are [1, ..., 1]; the balancing lives in ``scalings``. An all-zero scaling
    (nothing to learn from in this block) gives a zero loss that still has a graph.
    """
    ce = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    weighted = ce * mask * scalings
    total = scalings.sum()
    if total <= 0:
        return weighted.sum() * 0.0
    return weighted.sum() / total


def _read_error(err: BaseException) -> BaseException | None:
    """The zarr/numcodecs decoding error inside a gunpowder exception chain, if any."""
    current: BaseException | None = err
    for _ in range(50):
        if current is None:
            return None
        module = type(current).__module__.split(".")[0]
        text = str(current).lower()
        if module in ("numcodecs", "zarr", "zlib") or "decompress" in text or "blosc" in text:
            return current
        current = current.__cause__ or current.__context__
    return None


class _Batches:
    """The training pipeline, built once; read errors become DataError naming the data JSON."""

    def __init__(self, config: TrainConfig, data: DataConfig) -> None:
        import gunpowder as gp

        from incasem.pipeline import ArrayKeys, build_train_pipeline

        self.gp = gp
        self.config = config
        self.keys = ArrayKeys.create()
        self.voxel_size = data.voxel_size
        self.pipeline = build_train_pipeline(config, data, self.keys, json_path=config.data)
        self._build: Any = None

    def _wrap(self, err: Exception) -> Exception:
        cause = _read_error(err)
        if cause is None:
            return err
        return DataError(
            f"reading training data of {self.config.data} failed: a zarr chunk could not be "
            f"decoded ({type(cause).__name__}: {cause}); the store is damaged: rewrite the "
            "dataset (incasem convert / equalize) or drop the entry"
        )

    def __enter__(self) -> _Batches:
        self._build = self.gp.build(self.pipeline)
        try:
            self._build.__enter__()
        except Exception as err:
            wrapped = self._wrap(err)
            if wrapped is err:
                raise
            raise wrapped from err
        return self

    def __exit__(self, *exc: object) -> None:
        self._build.__exit__(*exc)

    def get(self, iteration: int) -> Any:
        from incasem.pipeline import build_train_request

        request = build_train_request(
            self.config, self.keys, self.voxel_size, seed=batch_seed(self.config.seed, iteration)
        )
        try:
            return self.pipeline.request_batch(request)
        except Exception as err:
            wrapped = self._wrap(err)
            if wrapped is err:
                raise
            raise wrapped from err


def _truncate_csv(path: Path, last_iteration: int) -> None:
    """Drop rows logged after ``last_iteration`` (written before a crash, then redone)."""
    if not path.exists():
        return
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= last_iteration]
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        csv.writer(f).writerows(kept)
    tmp.replace(path)


def _append_csv(path: Path, header: list[str], row: list[Any]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(header)
        writer.writerow(row)


def _validation_regions(config: TrainConfig) -> dict[str, Any]:
    if config.validation_data is None:
        return {}
    data = load_data_config(
        config.validation_data,
        data_dir=config.data_dir,
        context=config.context[0],
        require_labels=True,
    )
    return {
        name: read_region(
            entry, data_dir=config.data_dir, json_path=config.validation_data, context=config.context
        )
        for name, entry in data.entries.items()
    }


def _check_training_raw(data: DataConfig, json_path: Path, *, data_dir: Path | None) -> None:
    """Refuse raw that is not uint8 before any output: training maps uint8 0..255 onto [-1, 1].

    gunpowder's Normalize divides integer raw by its dtype's maximum and passes float raw as it
    is, so uint16 or float raw would train a network on another input range than the published
    models (and than ``incasem predict`` without ``raw_range``) expect.
    """
    from cellsight_shared.io import open_zarr

    for name, entry in data.entries.items():
        store = resolve_file(entry, data_dir=Path(data_dir) if data_dir else None, json_path=Path(json_path))
        dtype = np.dtype(open_zarr(store, entry.raw).dtype)
        if dtype != np.uint8:
            raise ConfigError(
                f"data JSON {json_path}, entry {name!r}, field 'raw': {store / entry.raw} is {dtype}, "
                "but training takes CLAHE-equalised uint8 raw (as the published models were "
                "trained); run `incasem equalize` on it (it writes uint8) and point 'raw' at the "
                "equalised dataset"
            )


def _check_data(config: TrainConfig) -> DataConfig:
    if len(set(config.context)) != 1:
        raise ConfigError(f"input_shape {config.input_shape} gives unequal context {config.context}")
    data = load_data_config(
        config.data, data_dir=config.data_dir, context=config.context[0], require_labels=True
    )
    if data.num_classes != config.model.num_classes:
        raise ConfigError(
            f"{config.data} has classes 0..{data.num_classes - 1} but model.num_classes is "
            f"{config.model.num_classes}; set model.num_classes = {data.num_classes}"
        )
    _check_training_raw(data, config.data, data_dir=config.data_dir)
    if config.validation_data is not None:
        val = load_data_config(
            config.validation_data,
            data_dir=config.data_dir,
            context=config.context[0],
            require_labels=True,
        )
        _check_training_raw(val, config.validation_data, data_dir=config.data_dir)
        if val.voxel_size != data.voxel_size:
            raise ConfigError(
                f"{config.validation_data} has voxel size {list(val.voxel_size)} but {config.data} "
                f"has {list(data.voxel_size)}; they must agree"
            )
    return data


def _run_id(config: TrainConfig, run: ExperimentRun) -> int:
    if config.run_id is not None:
        return config.run_id
    stored = config.out / "run_id"
    if stored.exists():
        return int(stored.read_text().strip())
    run_id = run.id if isinstance(run.id, int) and run.id > 0 else 1
    stored.write_text(f"{run_id}\n")
    return run_id


def _restore(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    path: Path,
    config: TrainConfig,
    device: torch.device,
) -> int:
    checkpoint = load_checkpoint(path, map_location=device)
    load_model_weights(model, checkpoint)
    if "optimizer_state_dict" in checkpoint:
        try:
            optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
        except (ValueError, KeyError) as err:
            raise CheckpointError(
                f"{path}: its optimizer state does not fit an Adam over this model ({err})"
            ) from err
        # The config's hyper-parameters win over those stored with the state.
        for group in optimizer.param_groups:
            group["lr"], group["weight_decay"] = config.lr, config.weight_decay
    else:
        logger.warning("%s has no optimizer state; Adam starts fresh", path)
    iteration = checkpoint_iteration(path)
    return 0 if iteration is None else iteration


def _train_run(config: TrainConfig, data: DataConfig, run: ExperimentRun) -> Path:
    from torch.utils.tensorboard import SummaryWriter

    from cellsight_shared.cli import progress, seed_everything
    from incasem.validate import predict_region, score_region

    seed_everything(config.seed)
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    out = Path(config.out)
    ckpt_dir = out / CHECKPOINT_DIR
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    model = build_model(config.model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    classes = class_names(list(data.entries.values()))
    metadata = {
        "run_id": _run_id(config, run),
        "voxel_size": list(data.voxel_size),
        "classes": classes,
        "input_shape": list(config.input_shape),
        "output_shape": list(config.output_shape),
    }
    latest = latest_checkpoint(ckpt_dir)
    if latest is not None:
        start = _restore(model, optimizer, latest, config, device)
        logger.info("resuming from %s (iteration %d)", latest, start)
    else:
        start = 0
        save_checkpoint(ckpt_dir / "model_checkpoint_0", model, optimizer, iteration=0, metadata=metadata)
    _truncate_csv(out / LOG_CSV, start)
    _truncate_csv(out / VALIDATION_CSV, start)
    run.info["run_id"] = metadata["run_id"]
    run.info["start_iteration"] = start
    n_params = sum(p.numel() for p in model.parameters())
    run.log_scalar("num_params", n_params, start)
    logger.info(
        "training %s parameters on %s, iterations %d..%d, block %s -> %s",
        f"{n_params:,}",
        device,
        start + 1,
        config.iterations,
        config.input_shape,
        config.output_shape,
    )
    regions = _validation_regions(config)
    num_classes = config.model.num_classes
    log_header = (
        ["iteration", "loss"]
        + [f"f1_class_{c}" for c in range(1, num_classes)]
        + [f"pct_class_{c}" for c in range(num_classes)]
    )
    val_header = ["iteration", "dataset", "loss"] + [f"f1_class_{c}" for c in range(1, num_classes)]
    writer = SummaryWriter(str(out / "tensorboard" / "training"))
    val_writer = SummaryWriter(str(out / "tensorboard" / "validation")) if regions else None
    model.train()
    try:
        with _Batches(config, data) as batches:
            bar = progress(
                range(start + 1, config.iterations + 1),
                desc="train",
                unit="it",
                total=max(0, config.iterations - start),
            )
            for iteration in bar:
                batch = batches.get(iteration)
                keys = batches.keys
                raw = torch.from_numpy(np.ascontiguousarray(batch[keys.raw].data))[None, None]
                labels = torch.from_numpy(np.ascontiguousarray(batch[keys.labels].data))[None]
                mask = torch.from_numpy(batch[keys.mask].data.astype(np.float32))[None]
                scalings = torch.from_numpy(np.ascontiguousarray(batch[keys.loss_scalings].data))[None]
                optimizer.zero_grad(set_to_none=True)
                logits = model(raw.to(device))
                loss = masked_balanced_loss(logits, labels.to(device), mask.to(device), scalings.to(device))
                loss.backward()
                optimizer.step()
                value = float(loss.detach())
                if not np.isfinite(value):
                    raise DataError(
                        f"the training loss became {value} at iteration {iteration}; lower lr "
                        "or check the raw data (uint8, CLAHE-equalised)"
                    )
                last = iteration == config.iterations
                with_metrics = iteration % config.metrics_every == 0 or last
                if with_metrics or iteration % config.log_every == 0:
                    _log_train(
                        run,
                        writer,
                        out / LOG_CSV,
                        log_header,
                        iteration,
                        value,
                        logits if with_metrics else None,
                        batch,
                        keys,
                        num_classes,
                    )
                    bar.set_postfix(loss=f"{value:.4f}")
                if iteration % config.save_every == 0 or iteration == config.iterations:
                    save_checkpoint(
                        ckpt_dir / f"model_checkpoint_{iteration}",
                        model,
                        optimizer,
                        iteration=iteration,
                        metadata=metadata,
                        overwrite=True,
                    )
                    logger.info("iteration %d: loss %.4f, checkpoint saved", iteration, value)
                if regions and (iteration % config.validate_every == 0 or iteration == config.iterations):
                    for name, region in regions.items():
                        probs = predict_region(
                            model,
                            region.raw,
                            input_shape=config.input_shape,
                            output_shape=config.output_shape,
                            device=device,
                        )
                        scores = score_region(
                            probs,
                            region,
                            clipmin=config.balance.clipmin,
                            clipmax=config.balance.clipmax,
                        )
                        _log_validation(
                            run,
                            val_writer,
                            out / VALIDATION_CSV,
                            val_header,
                            iteration,
                            name,
                            scores,
                            num_classes,
                        )
    finally:
        writer.close()
        if val_writer is not None:
            val_writer.close()
    _plot(out)
    return ckpt_dir


def _log_train(
    run: ExperimentRun,
    writer: Any,
    path: Path,
    header: list[str],
    iteration: int,
    loss: float,
    logits: torch.Tensor | None,
    batch: Any,
    keys: Any,
    num_classes: int,
) -> None:
    """Log the loss; with ``logits`` also the batch's F1 at p >= 0.5 and class fractions."""
    writer.add_scalar("loss", loss, iteration)
    run.log_scalar("loss_train", loss, iteration)
    if logits is None:
        blanks = [""] * (len(header) - 2)
        _append_csv(path, header, [iteration, f"{loss:.6f}", *blanks])
        return
    f1, pct = training_metrics(logits, batch, keys, num_classes)
    for c, value in enumerate(f1, start=1):
        writer.add_scalar(f"f1_class_{c}", value, iteration)
        run.log_scalar(f"f1_class_{c}_train", value, iteration)
    for c in range(num_classes):
        writer.add_scalar(f"pct_class_{c}", float(pct[c]), iteration)
    _append_csv(
        path, header, [iteration, f"{loss:.6f}"] + [f"{v:.6f}" for v in f1] + [f"{p:.6f}" for p in pct]
    )


def training_metrics(
    logits: torch.Tensor, batch: Any, keys: Any, num_classes: int
) -> tuple[list[float], np.ndarray]:
    """F1 at p >= 0.5 inside mask AND metric mask per foreground class, and class fractions."""
    from cellsight_shared.metrics import binary_scores

    probs = torch.softmax(logits.detach(), dim=1)[0].cpu().numpy()
    labels = batch[keys.labels].data
    counted = (batch[keys.mask].data != 0) & (batch[keys.metric_mask].data != 0)
    inside = labels[batch[keys.mask].data != 0]
    pct = np.bincount(inside.ravel(), minlength=num_classes) / max(1, inside.size)
    f1 = [binary_scores(labels == c, probs[c] >= 0.5, mask=counted).f1 for c in range(1, num_classes)]
    return f1, pct


def _log_validation(
    run: ExperimentRun,
    writer: Any,
    path: Path,
    header: list[str],
    iteration: int,
    name: str,
    scores: Any,
    num_classes: int,
) -> None:
    writer.add_scalar(f"{name}/loss", scores.loss, iteration)
    run.log_scalar(f"loss_val_{name}", scores.loss, iteration)
    for c in range(1, num_classes):
        writer.add_scalar(f"{name}/f1_class_{c}", scores.f1[c], iteration)
        run.log_scalar(f"f1_class_{c}_validation_{name}", scores.f1[c], iteration)
    logger.info(
        "validation %s at %d: loss %.4f, F1 %s",
        name,
        iteration,
        scores.loss,
        ", ".join(f"{scores.f1[c]:.3f}" for c in range(1, num_classes)),
    )
    _append_csv(
        path,
        header,
        [iteration, name, f"{scores.loss:.6f}"] + [f"{scores.f1[c]:.6f}" for c in range(1, num_classes)],
    )


def _plot(out: Path) -> None:
    from incasem.figures import plot_training_curves

    if (out / LOG_CSV).exists():
        plot_training_curves(out / LOG_CSV, out / VALIDATION_CSV, out / "loss_curve.png")


def train(config: TrainConfig, *, mongo_url: str | None = None) -> Path:
    """Train (or resume) the run in ``config.out``; return its checkpoint directory.

    The data JSONs are checked against the zarr metadata before anything is written. The
    resolved config is written to ``<out>/config.json``; the run is a sacred experiment.
    """
    data = _check_data(config)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    write_config(out, config)
    return run_experiment(
        config.name,
        config,
        lambda run: _train_run(config, data, run),
        run_dir=out,
        observer=config.observer,
        mongo_url=mongo_url,
        mongo_db=config.mongo_db,
    )


def finetune(
    config: TrainConfig,
    *,
    checkpoint: Path | None = None,
    model_id: str | None = None,
    mongo_url: str | None = None,
) -> Path:
    """Continue training from a published (or any) checkpoint, restoring its Adam state.

    The checkpoint is copied to ``<out>/checkpoints/model_checkpoint_0`` (as the original's
    ``--start_from``), so iterations count from 0 and ``config.iterations`` is the number of
    fine-tuning steps. A run directory that already has checkpoints is simply resumed.
    """
    if (checkpoint is None) == (model_id is None):
        raise ConfigError("finetune needs exactly one of --checkpoint or --model-id")
    data = _check_data(config)
    out = Path(config.out)
    ckpt_dir = out / CHECKPOINT_DIR
    if latest_checkpoint(ckpt_dir) is not None:
        logger.warning("%s already has checkpoints; resuming instead of restarting", ckpt_dir)
        return train(config, mongo_url=mongo_url)
    if model_id is not None:
        from incasem.download import download_checkpoints

        checkpoint = download_checkpoints([model_id], out=out / "pretrained", base_url=None)[0]
    assert checkpoint is not None
    # Fail before any work if the checkpoint does not fit the configured network.
    state = load_checkpoint(checkpoint)
    load_model_weights(build_model(config.model), state)
    if "optimizer_state_dict" not in state:
        logger.warning("%s has no optimizer state; Adam will start fresh", checkpoint)
    del data, state
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    target = ckpt_dir / "model_checkpoint_0"
    tmp = ckpt_dir / ".model_checkpoint_0.tmp"
    shutil.copyfile(checkpoint, tmp)
    tmp.replace(target)
    logger.info("fine-tuning from %s", checkpoint)
    return train(config, mongo_url=mongo_url)
