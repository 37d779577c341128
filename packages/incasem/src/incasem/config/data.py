"""The data-JSON contract shared by training, validation and prediction (brief section 3.6).

A data JSON maps a free name to one region of one zarr container::

    {"cell_1_er": {"file": "cell_1/cell_1.zarr", "offset": [150, 120, 1295],
                   "shape": [600, 590, 1350], "voxel_size": [5, 5, 5],
                   "raw": "volumes/raw_equalized_0.02", "mask": "volumes/mask",
                   "metric_masks": ["volumes/metric_masks/er"],
                   "labels": {"volumes/labels/er": 1}}}

``offset`` and ``shape`` are in voxels, and the offset is absolute (world offset / voxel size),
not relative to the dataset. :func:`load_data_config` checks the JSON against the zarr metadata
(no voxel is read) before any work starts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field, RootModel, ValidationError, field_validator, model_validator

from incasem.config.base import FrozenModel
from incasem.errors import ConfigError

__all__ = [
    "CONTEXT_VOXELS",
    "DataConfig",
    "DataEntry",
    "DatasetGeometry",
    "load_data_config",
    "resolve_file",
]

#: Voxels of raw context per side that the published U-Net needs ((204 - 110) / 2).
CONTEXT_VOXELS = 47

PositiveTriple = Annotated[list[Annotated[int, Field(gt=0)]], Field(min_length=3, max_length=3)]
IntTriple = Annotated[list[int], Field(min_length=3, max_length=3)]
NmTriple = Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=3, max_length=3)]


class DataEntry(FrozenModel):
    """One region of one zarr container."""

    file: str = Field(min_length=1)
    """Path of the zarr container, relative to the data directory (or absolute)."""
    offset: IntTriple
    """ROI start [z, y, x] in voxels, absolute (world offset in nm / voxel size)."""
    shape: PositiveTriple
    """ROI shape [z, y, x] in voxels."""
    voxel_size: NmTriple
    """Voxel size [z, y, x] in nm; identical across entries and equal to the datasets'."""
    raw: str = Field(min_length=1)
    """Raw dataset, normally the CLAHE-equalised ``volumes/raw_equalized_0.02`` (uint8)."""
    mask: str | None = None
    """Optional sample mask dataset (0 = outside); without it every voxel counts."""
    metric_masks: list[str] = Field(default_factory=list)
    """Exclusion-zone datasets (0 = excluded), combined with AND; without them every voxel counts."""
    labels: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    """Label datasets -> class id (1..K, no gaps); each is binarised before use."""

    @field_validator("labels")
    @classmethod
    def _class_ids_contiguous(cls, labels: dict[str, int]) -> dict[str, int]:
        ids = sorted(set(labels.values()))
        if ids and ids != list(range(1, len(ids) + 1)):
            raise ValueError(
                f"class ids must be 1..K without gaps, got {ids}; renumber the labels to "
                f"{list(range(1, len(ids) + 1))}"
            )
        return labels

    @property
    def num_classes(self) -> int:
        """Number of classes including background (0)."""
        return 1 + (max(self.labels.values()) if self.labels else 0)

    def roi_nm(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The ROI as (offset, shape) in nm."""
        vs = self.voxel_size
        return (
            tuple(o * v for o, v in zip(self.offset, vs, strict=True)),
            tuple(s * v for s, v in zip(self.shape, vs, strict=True)),
        )


class DataConfig(RootModel[dict[str, DataEntry]]):
    """A whole data JSON: entry name -> :class:`DataEntry`."""

    @model_validator(mode="after")
    def _consistent(self) -> DataConfig:
        if not self.root:
            raise ValueError("the data JSON holds no entry; add at least one region")
        sizes = {tuple(e.voxel_size) for e in self.root.values()}
        if len(sizes) > 1:
            listing = ", ".join(f"{n}: {e.voxel_size}" for n, e in self.root.items())
            raise ValueError(
                f"voxel_size differs between entries ({listing}); every entry must use the same "
                "voxel size (resample the data or split the JSON)"
            )
        return self

    @property
    def entries(self) -> dict[str, DataEntry]:
        """Entry name -> entry."""
        return self.root

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        """The common voxel size in nm."""
        first = next(iter(self.root.values()))
        return tuple(first.voxel_size)  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        """Number of classes including background, over all entries."""
        return max(e.num_classes for e in self.root.values())


@dataclass(frozen=True)
class DatasetGeometry:
    """Where a zarr dataset lies, in voxels of its own voxel size."""

    offset: tuple[int, ...]
    shape: tuple[int, ...]
    voxel_size: tuple[float, ...]

    def contains(self, offset: Sequence[int], shape: Sequence[int]) -> bool:
        """True if the voxel box ``offset, shape`` lies inside this dataset."""
        return all(
            o >= b and o + s <= b + n
            for o, s, b, n in zip(offset, shape, self.offset, self.shape, strict=True)
        )


def resolve_file(entry: DataEntry, *, data_dir: Path | None, json_path: Path | None) -> Path:
    """The zarr container of ``entry``: absolute, else below ``data_dir``, else beside the JSON."""
    path = Path(entry.file).expanduser()
    if path.is_absolute():
        return path
    if data_dir is not None:
        return Path(data_dir).expanduser() / path
    if json_path is not None:
        return json_path.parent / path
    return path


def _describe(json_path: Path | None, name: str, field: str) -> str:
    where = f"{json_path}" if json_path is not None else "data config"
    return f"{where}, entry {name!r}, field {field!r}"


def _geometry(store: Path, dataset: str, *, where: str) -> DatasetGeometry:
    from cellsight_shared.errors import CellsightSharedError
    from cellsight_shared.io import open_zarr, zarr_geometry

    try:
        array = open_zarr(store, dataset)
        offset_nm, resolution = zarr_geometry(store, dataset)
    except CellsightSharedError as err:
        raise ConfigError(f"{where}: {err}") from err
    from incasem.dataset_status import require_complete

    # a dataset an incasem command left half-written reads 0 where its blocks never ran
    require_complete(store, dataset, where=where)
    spatial = array.shape[-3:]
    if array.ndim < 3 or len(resolution) != 3:
        raise ConfigError(
            f"{where}: {store / dataset} has shape {array.shape} and resolution {resolution}; "
            "expected a 3-D (z, y, x) dataset with a 3-element resolution attribute"
        )
    voxel_offset = []
    for o, r in zip(offset_nm, resolution, strict=True):
        if not math.isclose(o / r, round(o / r), abs_tol=1e-6):
            raise ConfigError(
                f"{where}: {store / dataset} has offset {list(offset_nm)} nm, not a multiple of its "
                f"resolution {list(resolution)} nm; fix the dataset's 'offset' attribute"
            )
        voxel_offset.append(round(o / r))
    return DatasetGeometry(tuple(voxel_offset), tuple(int(s) for s in spatial), tuple(resolution))


def _check_entry(
    name: str,
    entry: DataEntry,
    *,
    store: Path,
    json_path: Path | None,
    context: int,
    min_shape: Sequence[int] | None,
    require_labels: bool,
) -> None:
    if not store.exists():
        raise ConfigError(
            f"{_describe(json_path, name, 'file')}: zarr container {store} does not exist; fix "
            "'file' (it is relative to the data directory, or to the JSON file's folder)"
        )
    if require_labels and not entry.labels:
        raise ConfigError(
            f"{_describe(json_path, name, 'labels')}: training and validation need labels; add "
            '"labels": {"volumes/labels/<organelle>": 1}'
        )
    if min_shape is not None:
        small = [s < m for s, m in zip(entry.shape, min_shape, strict=True)]
        if any(small):
            raise ConfigError(
                f"{_describe(json_path, name, 'shape')}: the ROI shape {entry.shape} is smaller than "
                f"the network's block {list(min_shape)} voxels; enlarge the ROI to at least "
                f"{list(min_shape)}"
            )
    datasets = [("raw", entry.raw)]
    if entry.mask:
        datasets.append(("mask", entry.mask))
    datasets += [("metric_masks", d) for d in entry.metric_masks]
    datasets += [("labels", d) for d in entry.labels]
    for field, dataset in datasets:
        where = _describe(json_path, name, field)
        geometry = _geometry(store, dataset, where=where)
        if not all(math.isclose(a, b) for a, b in zip(geometry.voxel_size, entry.voxel_size, strict=True)):
            raise ConfigError(
                f"{where}: {store / dataset} has voxel size {list(geometry.voxel_size)} nm but the "
                f"entry's voxel_size is {entry.voxel_size} nm; set voxel_size to "
                f"{list(geometry.voxel_size)} (and convert offset/shape) or resample the data"
            )
        if not geometry.contains(entry.offset, entry.shape):
            end = [o + s for o, s in zip(geometry.offset, geometry.shape, strict=True)]
            raise ConfigError(
                f"{_describe(json_path, name, 'offset/shape')}: the ROI offset {entry.offset}, "
                f"shape {entry.shape} (voxels) is not inside {dataset!r}, which spans voxels "
                f"{list(geometry.offset)} to {end}; offsets are absolute, in voxels, so move or "
                "shrink the ROI"
            )
        if field == "raw" and context > 0:
            grown_offset = [o - context for o in entry.offset]
            grown_shape = [s + 2 * context for s in entry.shape]
            if not geometry.contains(grown_offset, grown_shape):
                raise ConfigError(
                    f"{_describe(json_path, name, 'offset/shape')}: the network needs {context} "
                    f"voxels of raw context around the ROI, but {dataset!r} spans voxels "
                    f"{list(geometry.offset)} + {list(geometry.shape)} and the ROI "
                    f"{entry.offset} + {entry.shape} comes closer to its border; shrink the ROI "
                    f"by {context} voxels at the border"
                )


def load_data_config(
    path: Path | str,
    *,
    data_dir: Path | str | None = None,
    context: int = CONTEXT_VOXELS,
    min_shape: Sequence[int] | None = None,
    require_labels: bool = False,
    check_zarr: bool = True,
) -> DataConfig:
    """Read and validate a data JSON; with ``check_zarr`` also against the zarr metadata.

    Checks, in order: valid JSON; every field (class ids 1..K, 3-element coordinates); one voxel
    size for all entries; then per entry: the container and every dataset exist, their voxel sizes
    equal the entry's, the ROI lies inside each dataset, ``context`` voxels of raw lie around it,
    and the ROI is at least ``min_shape``. Raises :class:`ConfigError` naming the file, the entry,
    the field and the fix. Only metadata is read.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"data JSON {path} does not exist; pass the path of a data JSON")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        hint = " (a trailing comma?)" if "double quotes" in err.msg or "Expecting value" in err.msg else ""
        raise ConfigError(
            f"data JSON {path} is not valid JSON at line {err.lineno}, column {err.colno}: "
            f"{err.msg}{hint}; fix the file"
        ) from err
    try:
        config = DataConfig.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(f"entry {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"data JSON {path}: {problems}") from err
    if check_zarr:
        for name, entry in config.entries.items():
            store = resolve_file(entry, data_dir=Path(data_dir) if data_dir else None, json_path=path)
            _check_entry(
                name,
                entry,
                store=store,
                json_path=path,
                context=context,
                min_shape=min_shape,
                require_labels=require_labels,
            )
    return config
