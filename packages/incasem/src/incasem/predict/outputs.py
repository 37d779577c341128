"""Output groups of a prediction: claiming a number, creating them, recording status, resuming."""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from incasem.errors import ConfigError, DataError

if TYPE_CHECKING:
    from incasem.predict.plan import EntryPlan, PredictionPlan

__all__ = [
    "PLAN_FILE",
    "PREDICTIONS_ROOT",
    "assign_groups",
    "claim_prediction_groups",
    "create_outputs",
    "group_path",
    "reopen",
    "set_status",
    "train_group_path",
]

PREDICTIONS_ROOT = "volumes/predictions"
"""Group that holds every ``train_<id>/predict_<n>`` prediction of a container."""
_PREDICT_GROUP = re.compile(r"^predict_(\d+)$")

PLAN_FILE = "plan.json"
"""Record in ``<group>/run`` of what a run predicts; resuming compares against it."""


def train_group_path(train_id: int) -> str:
    """``volumes/predictions/train_<id:04d>``."""
    return f"{PREDICTIONS_ROOT}/train_{train_id:04d}"


def group_path(train_id: int, number: int) -> str:
    """``volumes/predictions/train_<id:04d>/predict_<n:04d>``."""
    return f"{train_group_path(train_id)}/predict_{number:04d}"


def _existing_numbers(store: Path, train_id: int) -> list[int]:
    folder = store / train_group_path(train_id)
    if not folder.is_dir():
        return []
    return [int(m.group(1)) for p in folder.iterdir() if (m := _PREDICT_GROUP.match(p.name))]


def claim_prediction_groups(stores: Sequence[Path], train_id: int) -> int:
    """Create an empty ``predict_<n>`` group in every store, for the lowest ``n`` free in all.

    ``os.mkdir`` is atomic, so two runs started at once never share a number; nothing existing
    is touched.
    """
    number = 1 + max((n for s in stores for n in _existing_numbers(s, train_id)), default=0)
    for _attempt in range(1000):
        created: list[Path] = []
        try:
            for store in stores:
                folder = store / group_path(train_id, number)
                folder.parent.mkdir(parents=True, exist_ok=True)
                os.mkdir(folder)
                created.append(folder)
        except FileExistsError:
            for folder in created:
                folder.rmdir()
            number += 1
            continue
        except OSError as err:
            for folder in created:
                folder.rmdir()
            if err.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                raise DataError(
                    f"cannot create a prediction in {store} ({err.strerror}); set `out` to a "
                    "writable zarr container"
                ) from err
            raise
        for folder in created:
            (folder / ".zgroup").write_text(json.dumps({"zarr_format": 2}) + "\n")
        return number
    raise DataError(f"could not claim a free predict_<n> group in {list(map(str, stores))}")


def assign_groups(plan: PredictionPlan, number: int) -> None:
    """Point every entry of ``plan`` at group ``predict_<number>``."""
    group = group_path(plan.train_id, number)
    plan.entries = [e.model_copy(update={"group": group}) for e in plan.entries]


def create_outputs(plan: PredictionPlan, number: int) -> None:
    """Create the empty output datasets and the run record of every entry."""
    from cellsight_shared.io import create_zarr, write_json
    from cellsight_shared.provenance import write_run_info
    from incasem.config.base import write_config

    for entry in plan.entries:
        nm_offset = [o * v for o, v in zip(entry.output_offset, entry.voxel_size, strict=True)]
        common = {
            "shape": entry.output_shape,
            "chunks": entry.chunk_shape,
            "offset": nm_offset,
            "resolution": entry.voxel_size,
            "fill_value": 0,
        }
        for c in range(entry.num_classes):
            create_zarr(
                entry.out_store,
                f"{entry.group}/prob_maps/class_{c}",
                dtype="float32",
                attrs={"class_name": entry.class_names[c]},
                **common,
            )
        create_zarr(entry.out_store, f"{entry.group}/segmentation", dtype="uint32", **common)
        entry.run_dir.mkdir(parents=True, exist_ok=True)
        write_config(entry.run_dir, plan.config)
        write_json(
            entry.run_dir / PLAN_FILE,
            {
                "number": number,
                "train_id": plan.train_id,
                "checkpoint": str(plan.checkpoint),
                "model_id": plan.published.id if plan.published is not None else None,
                "fingerprint": plan.fingerprint(),
                "entries": {e.name: {"store": e.out_store, "group": e.group} for e in plan.entries},
            },
        )
        write_run_info(
            entry.run_dir,
            package="incasem",
            config=plan.config.model_dump(mode="json"),
            seed=None,
            extra={"checkpoint_sha256": plan.checkpoint_sha256, "train_id": plan.train_id},
        )
        set_status(entry, "running", number=number, command="predict", plan=plan)


def set_status(entry: EntryPlan, status: str, **extra: Any) -> None:
    """Record ``status`` (running/complete) and the run's provenance in the group's attributes."""
    import zarr

    group = zarr.open_group(str(entry.group_dir), mode="r+")
    info = dict(group.attrs.get("incasem", {}))
    info["status"] = status
    if "plan" in extra:
        plan: PredictionPlan = extra.pop("plan")
        info.update(
            {
                "checkpoint": str(plan.checkpoint),
                "checkpoint_sha256": plan.checkpoint_sha256,
                "model_id": plan.published.id if plan.published is not None else None,
                "train_id": plan.train_id,
                "entry": entry.name,
                "roi_offset": list(entry.roi_offset),
                "roi_shape": list(entry.roi_shape),
                "pad_context": entry.pad_context,
                "classes": list(entry.class_names),
            }
        )
    info.update(extra)
    group.attrs["incasem"] = info


def reopen(plan: PredictionPlan, number: int) -> None:
    """Point ``plan`` at the existing run ``number``; refuse if it was made with other settings."""
    from cellsight_shared.io import read_json

    assign_groups(plan, number)
    for entry in plan.entries:
        record = entry.run_dir / PLAN_FILE
        if not record.is_file():
            raise ConfigError(
                f"resume = {number}: {entry.group_dir} holds no prediction run to continue "
                f"({record} is missing); leave resume unset to start a new prediction"
            )
        stored = read_json(record).get("fingerprint", {})
        current = plan.fingerprint()
        changed = sorted(k for k in current if stored.get(k) != current[k])
        if changed:
            raise ConfigError(
                f"resume = {number}: the run in {entry.group_dir} was made with different "
                f"{', '.join(changed)}; resuming would mix two predictions. Restore the original "
                "settings, or leave resume unset to start a new prediction"
            )
