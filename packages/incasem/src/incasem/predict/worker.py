"""The per-block work of a prediction, and the worker entry point for clusters.

A worker process loads the network once (cached per process) and then, per block: reads the
raw window, normalises it like the original (uint8 / 255 * 2 - 1), runs the network, takes the
softmax over channels and the argmax (times the mask), writes its part of every output dataset
and finally an empty marker file, so a rerun skips the block. Writes are whole zarr chunks that
only this block owns, each renamed into place by zarr, so a killed worker leaves no torn chunk.

On a cluster run ``python -m incasem.predict.worker <settings.json>`` (daisy passes the scheduler
address in ``$DAISY_CONTEXT``); see :func:`main`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cellsight_shared.cli import add_verbosity_arguments, run_cli
from incasem.errors import CheckpointError, DataError, IncasemError
from incasem.predict.blocks import block_window, marker_name
from incasem.predict.plan import EntryPlan, WorkerJob
from incasem.raw import normalize_raw

__all__ = ["BlockPredictor", "main", "process_block", "run_worker"]

logger = logging.getLogger(__name__)

PAD_VALUE = 0.5
"""Grey value in [0, 1] used beyond the data (the training pipeline pads raw with 0.5 too)."""

_PREDICTORS: dict[tuple[str, str, bool], BlockPredictor] = {}


def _open(store: str, dataset: str, mode: str = "r") -> Any:
    import zarr

    try:
        return zarr.open_array(store=str(Path(store) / dataset), mode=mode)
    except Exception as err:
        raise DataError(
            f"{Path(store) / dataset} could not be opened ({type(err).__name__}: {err}); check that "
            "the dataset exists and its .zarray is intact"
        ) from err


def _damaged_chunk(array: Any, slices: Sequence[slice]) -> str:
    """Name the first chunk file within ``slices`` that cannot be decoded (for error messages)."""
    ranges = [range(s.start // c, -(-s.stop // c)) for s, c in zip(slices, array.chunks, strict=True)]
    for index in product(*ranges):
        sel = tuple(
            slice(i * c, min((i + 1) * c, n))
            for i, c, n in zip(index, array.chunks, array.shape, strict=True)
        )
        try:
            array[sel]
        except Exception:
            separator = getattr(array, "_dimension_separator", None) or "."
            return f"chunk file {separator.join(map(str, index))}"
    return "a chunk"


def read_box(
    store: str,
    dataset: str,
    *,
    dataset_offset: Sequence[int],
    begin: Sequence[int],
    shape: Sequence[int],
    fill: float | int,
    dtype: Any = None,
) -> np.ndarray:
    """Read the voxel box ``begin, shape`` of a dataset; voxels outside it get ``fill``."""
    array = _open(store, dataset)
    spatial = array.shape[-3:]
    out = np.full(tuple(shape), fill, dtype=dtype or array.dtype)
    src, dst = [], []
    for axis in range(3):
        lo = max(begin[axis], dataset_offset[axis])
        hi = min(begin[axis] + shape[axis], dataset_offset[axis] + spatial[axis])
        if hi <= lo:
            return out
        src.append(slice(lo - dataset_offset[axis], hi - dataset_offset[axis]))
        dst.append(slice(lo - begin[axis], hi - begin[axis]))
    try:
        out[tuple(dst)] = array[tuple(src)]
    except Exception as err:
        chunk = _damaged_chunk(array, src)
        raise DataError(
            f"{Path(store) / dataset}: {chunk} could not be decoded ({type(err).__name__}: {err}); "
            "the dataset is damaged: re-download or re-convert it, then resume the prediction"
        ) from err
    return out


class BlockPredictor:
    """A network on a device, ready to predict blocks of one or more entries."""

    def __init__(self, job: WorkerJob) -> None:
        from incasem.checkpoint import build_model_from_checkpoint

        if job.threads is not None:
            torch.set_num_threads(job.threads)
        if job.checkpoint_sha256:
            from cellsight_shared.download import sha256sum

            if sha256sum(job.checkpoint) != job.checkpoint_sha256:
                raise CheckpointError(
                    f"checkpoint {job.checkpoint} changed since the prediction was planned; restore "
                    "it, or start a new prediction instead of resuming"
                )
        self.device = torch.device(job.device)
        self.model, _ = build_model_from_checkpoint(
            job.checkpoint, config=job.model, map_location=self.device
        )
        self.memory_format = torch.channels_last_3d if job.channels_last else torch.contiguous_format
        self.model = self.model.to(memory_format=self.memory_format)

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        """Softmax probabilities ``(classes, z, y, x)`` for one normalised raw block."""
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(raw, dtype=np.float32))[None, None]
            logits = self.model(x.to(self.device).contiguous(memory_format=self.memory_format))
            return torch.softmax(logits, dim=1)[0].float().cpu().numpy()

    def predict_block(self, entry: EntryPlan, write_begin: Sequence[int]) -> None:
        """Predict and write the block whose output starts at ``write_begin``; mark it done."""
        read_begin, begin, end = block_window(entry, write_begin)
        raw = read_box(
            entry.raw_store,
            entry.raw_dataset,
            dataset_offset=entry.raw_offset,
            begin=read_begin,
            shape=entry.input_shape,
            fill=0,
            dtype=None,
        )
        inside = _inside_mask(entry, read_begin)
        try:
            normalized = normalize_raw(raw, entry.raw_range)
        except DataError as err:
            where = f"{Path(entry.raw_store) / entry.raw_dataset}, block at {list(read_begin)}"
            raise DataError(f"{where}: {err}") from err
        if inside is not None:
            normalized[~inside] = PAD_VALUE * 2.0 - 1.0
        probs = self.probabilities(normalized)
        # the network's output starts `context` voxels into the read window
        out_begin = [r + c for r, c in zip(read_begin, entry.context, strict=True)]
        crop = tuple(slice(b - o, e - o) for b, e, o in zip(begin, end, out_begin, strict=True))
        probs = probs[(slice(None), *crop)]
        segmentation = np.argmax(probs, axis=0).astype(np.uint32)
        if entry.mask_dataset is not None:
            mask = read_box(
                entry.raw_store,
                entry.mask_dataset,
                dataset_offset=entry.mask_offset or entry.raw_offset,
                begin=begin,
                shape=[e - b for b, e in zip(begin, end, strict=True)],
                fill=0,
            )
            segmentation *= (mask != 0).astype(np.uint32)
        target = tuple(slice(b - o, e - o) for b, e, o in zip(begin, end, entry.output_offset, strict=True))
        group = Path(entry.out_store) / entry.group
        for c in range(entry.num_classes):
            _open(str(group), f"prob_maps/class_{c}", mode="r+")[target] = probs[c]
        _open(str(group), "segmentation", mode="r+")[target] = segmentation
        entry.markers_dir.mkdir(parents=True, exist_ok=True)
        (entry.markers_dir / marker_name(begin)).touch()


def _inside_mask(entry: EntryPlan, read_begin: Sequence[int]) -> np.ndarray | None:
    """Where the read window lies inside the raw dataset (None when it lies wholly inside)."""
    lo = [max(0, o - r) for o, r in zip(entry.raw_offset, read_begin, strict=True)]
    hi = [
        min(i, o + s - r)
        for i, o, s, r in zip(entry.input_shape, entry.raw_offset, entry.raw_shape, read_begin, strict=True)
    ]
    if all(a == 0 for a in lo) and all(b == i for b, i in zip(hi, entry.input_shape, strict=True)):
        return None
    inside = np.zeros(entry.input_shape, dtype=bool)
    if all(b > a for a, b in zip(lo, hi, strict=True)):
        inside[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = True
    return inside


def predictor_for(job: WorkerJob) -> BlockPredictor:
    """The predictor of this process for ``job``'s checkpoint and device (loaded once)."""
    key = (job.checkpoint, job.device, job.channels_last)
    if key not in _PREDICTORS:
        _PREDICTORS[key] = BlockPredictor(job)
    return _PREDICTORS[key]


def clear_predictors() -> None:
    """Drop the cached networks of this process."""
    _PREDICTORS.clear()


def process_block(job: WorkerJob, block: Any) -> None:
    """Daisy process function: predict the block whose write ROI begins at ``block.write_roi``."""
    predictor_for(job).predict_block(job.entry, tuple(block.write_roi.begin))


def run_worker(job: WorkerJob) -> None:
    """Worker loop: take blocks from the daisy scheduler in ``$DAISY_CONTEXT`` until none are left.

    A block that fails with an :class:`~incasem.errors.IncasemError` (bad data, a damaged
    chunk) is reported failed to daisy, which retries it up to ``max_retries`` times, and the
    worker carries on with the next block: restarting a process (and reloading torch and the
    network) would not help with a damaged chunk. Any other exception ends the worker.
    """
    import daisy

    from incasem.errors import IncasemError

    if job.threads is None:
        torch.set_num_threads(1)
    client = daisy.Client()
    while True:
        try:
            with client.acquire_block() as block:
                if block is None:
                    return
                process_block(job, block)
        except IncasemError as err:
            logger.error("block failed: %s", err)


def _run_from_settings(args: argparse.Namespace) -> None:
    run_worker(WorkerJob.model_validate_json(Path(args.settings).read_text(encoding="utf-8")))


def main(argv: Sequence[str] | None = None) -> int:
    """Cluster worker: ``python -m incasem.predict.worker <settings.json>``.

    Connects to the daisy scheduler named in ``$DAISY_CONTEXT`` and predicts blocks until the
    scheduler has none left. Exit codes as every cellsight command: 0, 1 (expected error), 2 (usage).
    """
    parser = argparse.ArgumentParser(
        prog="python -m incasem.predict.worker",
        description="Predict blocks handed out by a running `incasem predict` (daisy scheduler).",
    )
    parser.add_argument("settings", type=Path, help="the settings.json that incasem predict wrote")
    add_verbosity_arguments(parser)
    parser.set_defaults(handler=_run_from_settings)
    return run_cli(parser, argv, expected_errors=(IncasemError, OSError))


if __name__ == "__main__":  # pragma: no cover - run by worker processes
    sys.exit(main())
