"""Run the blocks of one entry with daisy 2: a Task with a check function, N worker processes.

daisy tiles a total ROI (in voxels) with read/write blocks: the write block is the network's
output block, the read block adds the context on every side. ``check_function`` looks for the
block's marker file, which a worker writes only after all the block's chunks are on disk, so a
rerun (``resume``) skips finished blocks; the output is then identical to an uninterrupted run,
because each block's result depends on its own raw window only.

Worker processes are started by daisy (``python -m daisy._subprocess_worker``, the block function
pickled by reference), or, with ``worker_command``, by a command such as ``srun ...`` that runs
``python -m incasem.predict.worker settings.json`` on a cluster node. daisy's per-worker logs go
to ``<prediction>/run/daisy_logs`` instead of ``./daisy_logs``.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import subprocess
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from incasem.errors import DataError
from incasem.predict.blocks import finished_blocks, marker_name, num_blocks
from incasem.predict.plan import WorkerJob

__all__ = ["BlockRunResult", "run_entry"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BlockRunResult:
    """What a daisy run did: blocks in total, predicted now, and skipped as already finished."""

    total: int
    processed: int
    skipped: int


def _is_finished(markers_dir: str, block: Any) -> bool:
    """Daisy check function: the block's marker exists."""
    return os.path.exists(os.path.join(markers_dir, marker_name(block.write_roi.begin)))


def _process(job: WorkerJob, block: Any) -> None:
    """Serial mode: predict one block in this process."""
    # imported here so the scheduler process needs no torch unless it predicts itself
    from incasem.predict.worker import process_block

    process_block(job, block)


def _worker(job: WorkerJob) -> None:
    """Worker-process mode: daisy runs this in each worker; it loops over blocks itself."""
    from incasem.predict.worker import run_worker

    run_worker(job)


def _command_worker(command: list[str], settings: str, *, context: Any) -> None:
    """Daisy spawn function that starts one worker with ``command`` (e.g. an ``srun`` prefix)."""
    env = dict(os.environ)
    env["DAISY_CONTEXT"] = context.to_env()
    argv = [*command, sys.executable, "-m", "incasem.predict.worker", settings]
    result = subprocess.run(argv, env=env, check=False)  # noqa: S603 - the user's own command
    if result.returncode != 0:
        raise RuntimeError(f"worker command {argv} exited with code {result.returncode}")


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no error message"


def run_entry(
    job: WorkerJob,
    *,
    workers: int,
    log_dir: Path,
    max_retries: int = 1,
    timeout: float = 3600.0,
    worker_command: Sequence[str] | None = None,
    progress: bool = False,
) -> BlockRunResult:
    """Predict every unfinished block of ``job.entry``; raise DataError if any block failed.

    ``workers=0`` runs the blocks in this process (daisy's serial mode).
    """
    import daisy
    from daisy import logging as daisy_logging
    from funlib.geometry import Roi

    entry = job.entry
    context = entry.context
    grid = [math.ceil(s / b) * b for s, b in zip(entry.output_shape, entry.output_block, strict=True)]
    # whole blocks cover the region; a worker clips its writes to the region itself
    total_roi = Roi(
        tuple(o - c for o, c in zip(entry.output_offset, context, strict=True)),
        tuple(g + 2 * c for g, c in zip(grid, context, strict=True)),
    )
    read_roi = Roi((0, 0, 0), entry.input_shape)
    write_roi = Roi(context, entry.output_block)
    total = num_blocks(entry)
    done_before = len(finished_blocks(entry))
    entry.markers_dir.mkdir(parents=True, exist_ok=True)

    if worker_command is not None:
        settings = entry.run_dir / f"worker_{entry.name}.json"
        settings.write_text(job.model_dump_json(indent=2), encoding="utf-8")
        process: Any = functools.partial(_command_worker, list(worker_command), str(settings))
    elif workers == 0:
        process = functools.partial(_process, job)
    else:
        process = functools.partial(_worker, job)
    task_id = f"incasem_{Path(entry.out_store).stem}_{entry.group.replace('/', '_')}_{entry.name}"
    previous_log_dir = daisy_logging.get_log_basedir()
    daisy_logging.set_log_basedir(log_dir)
    try:
        with warnings.catch_warnings():
            # daisy suggests its own done markers instead; ours live beside the output and are
            # written only after the block's data, which is the stronger guarantee
            warnings.filterwarnings("ignore", message=r"Task\(check_function", category=UserWarning)
            task = daisy.Task(
                task_id,
                total_roi=total_roi,
                read_roi=read_roi,
                write_roi=write_roi,
                process_function=process,
                check_function=functools.partial(_is_finished, str(entry.markers_dir)),
                read_write_conflict=False,
                fit="valid",
                max_workers=max(1, workers),
                max_retries=max_retries,
                timeout=timeout,
            )
        states = daisy.run_blockwise(
            [task],
            multiprocessing=workers > 0,
            progress=progress,
            summary=False,
            block_tracking=False,
            return_states=True,
        )
    finally:
        daisy_logging.set_log_basedir(previous_log_dir)
    state = states[task_id]
    done_now = len(finished_blocks(entry))
    if done_now < total:
        error = state.first_worker_error or state.last_worker_error
        raise DataError(
            f"{entry.name}: {total - done_now} of {total} blocks were not predicted; first error: "
            f"{_last_line(error)}; worker logs are in {log_dir}"
        )
    logger.info(
        "%s: %d blocks (%d predicted now, %d already done)",
        entry.name,
        total,
        total - done_before,
        done_before,
    )
    return BlockRunResult(total, total - done_before, done_before)
