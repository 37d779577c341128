"""The plan of a prediction: every check, and every region's geometry and outputs (no writes).

:func:`plan_prediction` resolves the checkpoint (file or published model id), builds the
network from it with strict weight checks, validates the data JSON against the zarr metadata
(ROI inside the data and at least one input block, voxel sizes equal to the model's) and
returns a :class:`PredictionPlan`: one :class:`EntryPlan` per region. All coordinates are in
voxels of the data, absolute (world position / voxel size), z/y/x. Output chunks divide the
output block, so every chunk belongs to exactly one block and workers never write one chunk.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from incasem.config.base import FrozenModel
from incasem.config.data import DataConfig, load_data_config, resolve_file
from incasem.config.model import ModelConfig
from incasem.config.predict import PredictConfig
from incasem.errors import ConfigError, DataError
from incasem.registry import PublishedModel, get_model

__all__ = [
    "EntryPlan",
    "PredictionPlan",
    "WorkerJob",
    "check_chunk_shape",
    "default_chunk_shape",
    "output_region",
    "plan_prediction",
]

logger = logging.getLogger(__name__)

RUN_DIR = "run"
"""Folder inside a prediction group with its config, block markers, logs and sacred record."""

Triple = tuple[int, int, int]


class EntryPlan(FrozenModel):
    """Geometry and outputs of one data-JSON region (everything a worker needs, as JSON)."""

    name: str
    """Entry name in the data JSON."""
    raw_store: str
    """Input zarr container."""
    raw_dataset: str
    """Raw dataset inside it."""
    raw_offset: Triple
    """First voxel of the raw dataset."""
    raw_shape: Triple
    """Shape of the raw dataset in voxels."""
    mask_dataset: str | None = None
    """Optional sample mask (same container); segmentation is 0 where it is 0."""
    mask_offset: Triple | None = None
    """First voxel of the mask dataset."""
    roi_offset: Triple
    """The region (data-JSON offset)."""
    roi_shape: Triple
    """The region's shape (data-JSON shape)."""
    output_offset: Triple
    """First voxel of the predicted region (the ROI, less the context rim unless padded)."""
    output_shape: Triple
    """Shape of the predicted region (= shape of every output dataset)."""
    input_shape: Triple
    """Raw block fed to the network."""
    output_block: Triple
    """Output block of the network (= daisy write block)."""
    context: Triple
    """Raw context per side, (input - output) / 2."""
    pad_context: bool
    """Whether blocks may read beyond the ROI (and constant grey beyond the data)."""
    voxel_size: tuple[float, float, float]
    """Voxel size in nm."""
    out_store: str
    """Output zarr container."""
    group: str
    """Prediction group inside ``out_store``."""
    chunk_shape: Triple
    """Chunks of the output datasets (divide ``output_block``)."""
    class_names: tuple[str, ...]
    """Name of each output channel."""
    raw_range: tuple[float, float] | None = None
    """Raw values mapped onto the network's [-1, 1] input (None: uint8 raw, 0..255)."""

    @property
    def num_classes(self) -> int:
        """Output channels of the network."""
        return len(self.class_names)

    @property
    def group_dir(self) -> Path:
        """Folder of the prediction group."""
        return Path(self.out_store) / self.group

    @property
    def run_dir(self) -> Path:
        """Folder with the run's config, block markers and logs."""
        return self.group_dir / RUN_DIR

    @property
    def markers_dir(self) -> Path:
        """One empty file per finished block, named after its first voxel."""
        return self.run_dir / "blocks" / self.name


class WorkerJob(FrozenModel):
    """What a worker process needs to predict the blocks of one entry (stored as JSON)."""

    checkpoint: str
    """Checkpoint file."""
    model: ModelConfig
    """Architecture to build."""
    device: str = "cpu"
    """torch device."""
    threads: int | None = None
    """torch CPU threads (None: leave torch's setting)."""
    channels_last: bool = False
    """Run the network in channels-last memory format."""
    entry: EntryPlan
    """The region and its outputs."""
    checkpoint_sha256: str = Field("", pattern=r"^([0-9a-f]{64})?$")
    """SHA-256 of the checkpoint when the job was planned (workers verify it when set)."""


def default_chunk_shape(output_block: Sequence[int]) -> Triple:
    """Half the output block where it is even (55^3 for 110^3, as the original), else the block."""
    z, y, x = (b // 2 if b % 2 == 0 else b for b in output_block)
    return (z, y, x)


def check_chunk_shape(chunk_shape: Sequence[int], output_block: Sequence[int]) -> Triple:
    """Return ``chunk_shape`` if it divides the output block, else raise ConfigError."""
    if any(b % c for c, b in zip(chunk_shape, output_block, strict=True)):
        raise ConfigError(
            f"chunk_shape {list(chunk_shape)} must divide the output block {list(output_block)} so "
            "that no two workers write one chunk; use a divisor such as "
            f"{list(default_chunk_shape(output_block))}"
        )
    z, y, x = (int(c) for c in chunk_shape)
    return (z, y, x)


def output_region(
    roi_offset: Sequence[int], roi_shape: Sequence[int], context: Sequence[int], *, pad: bool
) -> tuple[Triple, Triple]:
    """The predicted region of an ROI: the ROI itself when padded, else the ROI less the rim."""
    if pad:
        o, s = tuple(roi_offset), tuple(roi_shape)
    else:
        o = tuple(a + c for a, c in zip(roi_offset, context, strict=True))
        s = tuple(a - 2 * c for a, c in zip(roi_shape, context, strict=True))
    return (o[0], o[1], o[2]), (s[0], s[1], s[2])


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
            # only when set, so runs planned before the option existed still resume
            **({"channels_last": True} if self.config.channels_last else {}),
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
                channels_last=self.config.channels_last,
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


def _check_raw(entry: EntryPlan, config: PredictConfig, name: str) -> None:
    """Apply the raw rules of :mod:`incasem.raw` to the voxels the blocks of ``entry`` will read."""
    from cellsight_shared.io import open_zarr
    from incasem.raw import check_prediction_raw

    if entry.pad_context:
        lo = [o - c for o, c in zip(entry.output_offset, entry.context, strict=True)]
        ends = zip(entry.output_offset, entry.output_shape, entry.context, strict=True)
        hi = [o + s + c for o, s, c in ends]
    else:
        lo = list(entry.roi_offset)
        hi = [o + s for o, s in zip(entry.roi_offset, entry.roi_shape, strict=True)]
    check_prediction_raw(
        open_zarr(entry.raw_store, entry.raw_dataset),
        name=f"{Path(entry.raw_store) / entry.raw_dataset} ({config.data}, entry {name!r})",
        raw_range=config.raw_range,
        begin=[a - o for a, o in zip(lo, entry.raw_offset, strict=True)],
        end=[b - o for b, o in zip(hi, entry.raw_offset, strict=True)],
    )


def plan_prediction(config: PredictConfig) -> PredictionPlan:
    """Resolve and check everything a prediction needs; write nothing.

    Raises ConfigError/CheckpointError/DataError naming the problem and the fix.
    """
    from cellsight_shared.download import sha256sum
    from incasem.checkpoint import build_model_from_checkpoint
    from incasem.device import resolve_device

    # the machine before the files: a missing GPU must not read as a damaged checkpoint
    resolve_device(config.device)
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
    several = len(data.entries) > 1
    for name, item in data.entries.items():
        store = resolve_file(item, data_dir=data_dir, json_path=json_path)
        if config.out is None:
            out_store = store
        elif several:
            # one container per region under `out`, named after its data-JSON entry
            out_store = Path(config.out).expanduser() / f"{name}.zarr"
        else:
            out_store = Path(config.out).expanduser()
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
                out_store=str(out_store.resolve()),
                group="",
                chunk_shape=chunk_shape,
                class_names=tuple(names),
                raw_range=config.raw_range,
            )
        )
        _check_raw(entries[-1], config, name)
    stores: dict[str, str] = {}
    for entry in entries:
        other = stores.setdefault(str(Path(entry.out_store).resolve()), entry.name)
        if other != entry.name:
            raise ConfigError(
                f"{config.data}: entries {other!r} and {entry.name!r} would write the same "
                f"prediction group in {entry.out_store}; set out (--out DIR) to write each region to "
                "its own container DIR/<entry>.zarr, or predict them in separate runs"
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
