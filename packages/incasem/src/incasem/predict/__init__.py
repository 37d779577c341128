"""Blockwise prediction with daisy: ``predict(config) -> prediction group``.

Steps, all checks before any output exists: resolve the checkpoint (file or published model id),
build the network from it with strict weight checks, validate the data JSON against the zarr
metadata (ROI inside the data and at least one input block, voxel sizes equal to the model's),
plan every region's blocks, claim a fresh ``predict_<n>`` group (or reopen ``resume``), create
the output datasets with block-aligned chunks, and run one daisy task per region inside a sacred
experiment. See :mod:`incasem.predict.blockwise` for workers, resume and clusters.
"""

from __future__ import annotations

import logging
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from incasem.config.data import DataConfig, load_data_config, resolve_file
from incasem.config.model import ModelConfig
from incasem.config.predict import PredictConfig
from incasem.errors import ConfigError, DataError
from incasem.predict.outputs import assign_groups, create_outputs, reopen, set_status
from incasem.predict.plan import (
    EntryPlan,
    WorkerJob,
    block_begins,
    block_window,
    check_chunk_shape,
    claim_prediction_groups,
    default_chunk_shape,
    num_blocks,
    output_region,
)
from incasem.registry import PublishedModel, get_model

__all__ = [
    "EntryPlan",
    "PredictionPlan",
    "WorkerJob",
    "block_begins",
    "block_window",
    "plan_prediction",
    "predict",
]

logger = logging.getLogger(__name__)


class PredictionPlan:
    """Everything a prediction run will do, resolved and checked (no output written yet)."""

    def __init__(
        self,
        *,
        config: PredictConfig,
        checkpoint: Path,
        checkpoint_sha256: str,
        model: ModelConfig,
        published: PublishedModel | None,
        train_id: int,
        entries: list[EntryPlan],
    ) -> None:
        self.config = config
        self.checkpoint = checkpoint
        self.checkpoint_sha256 = checkpoint_sha256
        self.model = model
        self.published = published
        self.train_id = train_id
        self.entries = entries

    def fingerprint(self) -> dict[str, Any]:
        """What determines the outputs; a resumed run must match it exactly."""
        return {
            "checkpoint_sha256": self.checkpoint_sha256,
            "model": self.model.model_dump(mode="json"),
            "entries": [e.model_dump(mode="json", exclude={"group", "out_store"}) for e in self.entries],
        }

    def jobs(self) -> list[WorkerJob]:
        """One worker job per entry."""
        in_process = self.config.workers == 0
        threads = self.config.threads_per_worker or (None if in_process else 1)
        return [
            WorkerJob(
                checkpoint=str(self.checkpoint),
                model=self.model,
                device=self.config.device,
                threads=threads,
                entry=entry,
                checkpoint_sha256=self.checkpoint_sha256,
            )
            for entry in self.entries
        ]


def _find_checkpoint(config: PredictConfig, published: PublishedModel | None) -> Path:
    if config.checkpoint is not None:
        return Path(config.checkpoint).expanduser()
    assert published is not None  # guaranteed by PredictConfig's validator
    folder = Path(config.models_dir).expanduser()
    candidates = []
    if published.checkpoint is not None:
        candidates.append(folder / published.checkpoint)
    candidates += sorted(folder.glob(f"model_checkpoint_{published.id}_*.pt"))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no checkpoint of model {published.id} in models_dir {folder}; download it with "
        f"`incasem download {published.id} --out {folder}` or set checkpoint to its path"
    )


def _zarr_box(store: Path, dataset: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """First voxel and shape of a 3-D dataset (validated by load_data_config already)."""
    from cellsight_shared.io import open_zarr, zarr_geometry

    array = open_zarr(store, dataset)
    if array.ndim != 3:
        raise DataError(f"{store / dataset} has {array.ndim} axes; prediction needs a 3-D (z, y, x) dataset")
    offset_nm, resolution = zarr_geometry(store, dataset)
    z, y, x = (round(o / r) for o, r in zip(offset_nm, resolution, strict=True))
    sz, sy, sx = (int(s) for s in array.shape)
    return (z, y, x), (sz, sy, sx)


def _check_voxel_size(data: DataConfig, expected: Any, source: str) -> None:
    if expected is None:
        return
    if not all(math.isclose(a, float(b)) for a, b in zip(data.voxel_size, expected, strict=True)):
        raise ConfigError(
            f"the data's voxel size is {list(data.voxel_size)} nm but {source} was trained at "
            f"{list(expected)} nm; use a model trained at {list(data.voxel_size)} nm (e.g. the HPF "
            "4 nm models 1675/1669) or resample the data to the model's voxel size"
        )


def plan_prediction(config: PredictConfig) -> PredictionPlan:
    """Resolve and check everything a prediction needs; write nothing.

    Raises ConfigError/CheckpointError/DataError naming the problem and the fix.
    """
    from cellsight_shared.download import sha256sum
    from incasem.checkpoint import build_model_from_checkpoint

    published = get_model(config.model_id) if config.model_id is not None else None
    checkpoint_path = _find_checkpoint(config, published)
    # a published id fixes the architecture: a checkpoint of another network is an error
    arch = published.model if published is not None else None
    network, checkpoint = build_model_from_checkpoint(checkpoint_path, config=arch)
    model = network.config
    del network
    meta = checkpoint.get("incasem", {}) if isinstance(checkpoint.get("incasem"), dict) else {}
    train_id = config.train_id
    if train_id is None and published is not None:
        train_id = published.train_id
    if train_id is None and isinstance(meta.get("run_id"), int):
        train_id = meta["run_id"]
    if train_id is None:
        raise ConfigError(
            f"cannot tell which training run {checkpoint_path} comes from (outputs go to "
            "train_<id>/predict_<n>); set train_id, or model_id for a published model"
        )
    output_block = model.output_shape(config.input_shape)
    context = model.context(config.input_shape)
    min_shape = (1, 1, 1) if config.pad_context else config.input_shape
    data = load_data_config(config.data, data_dir=config.data_dir, context=0, min_shape=min_shape)
    if published is not None:
        _check_voxel_size(data, published.voxel_size, f"model {published.id}")
    else:
        _check_voxel_size(data, meta.get("voxel_size"), f"checkpoint {checkpoint_path}")
    names = published.classes if published is not None else tuple(meta.get("classes") or ())
    if len(names) != model.num_classes:
        names = tuple(f"class_{c}" for c in range(model.num_classes))
    chunk_shape = (
        check_chunk_shape(config.chunk_shape, output_block)
        if config.chunk_shape is not None
        else default_chunk_shape(output_block)
    )
    entries = []
    json_path = Path(config.data)
    data_dir = Path(config.data_dir) if config.data_dir is not None else None
    for name, item in data.entries.items():
        store = resolve_file(item, data_dir=data_dir, json_path=json_path)
        raw_offset, raw_shape = _zarr_box(store, item.raw)
        mask_offset = _zarr_box(store, item.mask)[0] if item.mask else None
        out_offset, out_shape = output_region(item.offset, item.shape, context, pad=config.pad_context)
        if min(out_shape) < 1:
            raise ConfigError(
                f"{config.data}, entry {name!r}, field 'shape': the ROI {item.shape} leaves nothing "
                f"to predict after the {list(context)}-voxel context rim; enlarge it or set "
                "pad_context = true"
            )
        entries.append(
            EntryPlan(
                name=name,
                raw_store=str(store.resolve()),
                raw_dataset=item.raw,
                raw_offset=raw_offset,
                raw_shape=raw_shape,
                mask_dataset=item.mask,
                mask_offset=mask_offset,
                roi_offset=tuple(item.offset),
                roi_shape=tuple(item.shape),
                output_offset=out_offset,
                output_shape=out_shape,
                input_shape=config.input_shape,
                output_block=output_block,
                context=context,
                pad_context=config.pad_context,
                voxel_size=data.voxel_size,
                # absolute, so plan.json and worker settings hold wherever they are read
                out_store=str((Path(config.out).expanduser() if config.out is not None else store).resolve()),
                group="",
                chunk_shape=chunk_shape,
                class_names=tuple(names),
            )
        )
    stores: dict[str, str] = {}
    for entry in entries:
        other = stores.setdefault(str(Path(entry.out_store).resolve()), entry.name)
        if other != entry.name:
            raise ConfigError(
                f"{config.data}: entries {other!r} and {entry.name!r} would write the same "
                f"prediction group in {entry.out_store}; predict them in separate runs (one entry "
                "per data JSON) or give them separate containers"
            )
    return PredictionPlan(
        config=config,
        checkpoint=checkpoint_path,
        checkpoint_sha256=sha256sum(checkpoint_path),
        model=model,
        published=published,
        train_id=train_id,
        entries=entries,
    )


def predict(config: PredictConfig, *, mongo_url: str | None = None) -> Path:
    """Predict every region of ``config.data``; return the (first) prediction group's folder.

    A new run claims ``predict_<n>`` with the next free ``n``; ``config.resume = n`` continues
    run ``n``, skipping finished blocks. Each run is a sacred experiment recorded in
    ``<prediction>/run/sacred`` (and in MongoDB database ``incasem_predictions`` when
    ``mongo_url`` is given).
    """
    from incasem.experiment import run_experiment
    from incasem.predict.blockwise import run_entry
    from incasem.predict.worker import clear_predictors

    plan = plan_prediction(config)
    if config.resume is not None:
        number = config.resume
        reopen(plan, number)
    else:
        stores = [Path(e.out_store) for e in plan.entries]
        number = claim_prediction_groups(stores, plan.train_id)
        assign_groups(plan, number)
        try:
            create_outputs(plan, number)
        except BaseException:
            # the groups were claimed by this run a moment ago and hold nothing else
            for entry in plan.entries:
                shutil.rmtree(entry.group_dir, ignore_errors=True)
            raise
    first = plan.entries[0]
    logger.info(
        "predict_%04d of train_%04d: %d region(s), %d blocks, %s -> %s",
        number,
        plan.train_id,
        len(plan.entries),
        sum(num_blocks(e) for e in plan.entries),
        plan.checkpoint.name,
        first.group_dir,
    )

    def main(run: Any) -> Path:
        run.info["prediction"] = {e.name: str(e.group_dir) for e in plan.entries}
        for job in plan.jobs():
            start = time.perf_counter()
            try:
                result = run_entry(
                    job,
                    workers=config.workers,
                    log_dir=first.run_dir / "daisy_logs",
                    max_retries=config.max_retries,
                    timeout=config.block_timeout,
                    worker_command=config.worker_command,
                    progress=sys.stderr.isatty(),
                )
            finally:
                if config.workers == 0:
                    clear_predictors()
            seconds = time.perf_counter() - start
            voxels = math.prod(job.entry.output_shape)
            run.log_scalar(f"{job.entry.name}.blocks_predicted", result.processed)
            run.log_scalar(f"{job.entry.name}.seconds", seconds)
            if result.processed:
                run.log_scalar(f"{job.entry.name}.voxels_per_second", voxels / seconds)
            set_status(job.entry, "complete")
        return first.group_dir

    return run_experiment(
        config.name,
        config,
        main,
        run_dir=first.run_dir,
        observer=config.observer,
        mongo_url=mongo_url,
        mongo_db="incasem_predictions",
    )
