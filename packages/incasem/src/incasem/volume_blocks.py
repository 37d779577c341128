"""The daisy runner of the data tools (equalize, convert, metric-mask): one function per block.

daisy starts one OS process per worker and pickles the block function into it, so ``process``
must be a top-level function or a ``functools.partial`` of one. One worker runs serially in this
process (no sockets, no subprocess), which is what tests and small volumes use.

On a cluster, daisy's workers are started by the process function itself: pass a function of no
arguments that submits ``python -m daisy._subprocess_worker``-style jobs (``srun``/``bsub``) and
daisy hands each the scheduler address through ``DAISY_CONTEXT``; see daisy's README.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from incasem.errors import DataError, IncasemError

__all__ = ["block_slices", "count_blocks", "run_volume_blocks"]

logger = logging.getLogger(__name__)

_RESUME = "Finished blocks are kept: rerun the same command to resume"


def block_slices(roi: Any, origin: Sequence[int] = (0, 0, 0)) -> tuple[slice, ...]:
    """Index slices of a funlib ``Roi`` (in voxels) into an array whose first voxel is ``origin``."""
    return tuple(slice(b - o, e - o) for b, e, o in zip(roi.begin, roi.end, origin, strict=True))


def _marker(block: Any) -> str:
    return "_".join(str(int(v)) for v in block.write_roi.begin)


def _is_done(markers: str, block: Any) -> bool:
    """Daisy check function: the block's marker exists."""
    return os.path.exists(os.path.join(markers, _marker(block)))


def _process_and_mark(process: Callable[[Any], None], markers: str, block: Any) -> None:
    """Run ``process(block)``, then record the block as done (only after its data is written)."""
    process(block)
    Path(markers, _marker(block)).touch()


def _error_line(text: str | None) -> str:
    """The message of the exception at the end of a worker's traceback, without its class."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return "no error message"
    last = lines[-1]
    head, sep, rest = last.partition(": ")
    return rest if sep and " " not in head else last


def count_blocks(shape: Sequence[int], block_shape: Sequence[int]) -> int:
    """How many write blocks tile a volume of ``shape``."""
    return math.prod(-(-int(s) // int(min(b, s))) for s, b in zip(shape, block_shape, strict=True))


def _watch(markers: Path, total: int, desc: str, force: bool | None, stop: threading.Event) -> None:
    """Show a block progress bar fed by the marker files (works for worker processes too)."""
    from cellsight_shared.cli import progress as progress_bar

    kwargs = {"disable": False} if force else {}
    with progress_bar(total=total, desc=desc, unit="block", **kwargs) as bar:
        while True:
            finished = stop.wait(0.2)
            done = sum(1 for _ in os.scandir(markers)) if markers.is_dir() else 0
            if done > bar.n:
                bar.update(done - bar.n)
            if finished:
                return


def run_volume_blocks(
    task_id: str,
    process: Callable[[Any], None],
    *,
    shape: Sequence[int],
    block_shape: Sequence[int],
    markers: Path,
    context: Sequence[int] | int = 0,
    workers: int = 1,
    progress: bool | None = None,
    desc: str | None = None,
) -> int:
    """Call ``process(block)`` for every block of a volume of ``shape`` voxels not yet done.

    ``block.write_roi`` tiles ``[0, shape)`` (blocks at the far border are shrunk);
    ``block.read_roi`` is the write ROI grown by ``context`` voxels per side, so it may reach
    outside the volume: the process function decides how to fill that. After a block's data is
    written, an empty file named after its first voxel is put in ``markers``; blocks with a marker
    are skipped, which makes a rerun resume. ``progress``: a block progress bar on stderr (None:
    only on a terminal). Returns the number of blocks; raises :class:`DataError` with the first
    worker error if any block fails.
    """
    import daisy
    from daisy import logging as daisy_logging
    from funlib.geometry import Coordinate, Roi

    ndim = len(shape)
    ctx = Coordinate((context,) * ndim if isinstance(context, int) else tuple(context))
    block = Coordinate(tuple(int(min(b, s)) for b, s in zip(block_shape, shape, strict=True)))
    total = Roi((0,) * ndim, tuple(int(s) for s in shape)).grow(ctx, ctx)
    read_roi = Roi((0,) * ndim, block + ctx * 2)
    write_roi = Roi(ctx, block)
    n_blocks = count_blocks(shape, block_shape)
    markers = Path(markers)
    markers.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    watcher = None
    if progress is not False:
        watcher = threading.Thread(
            target=_watch, args=(markers, n_blocks, desc or task_id, progress, stop), daemon=True
        )
        watcher.start()
    previous_dir = daisy_logging.get_log_basedir()
    with tempfile.TemporaryDirectory(prefix="incasem-daisy-") as log_dir:
        # daisy writes worker logs below the current directory by default; keep users' folders clean.
        daisy_logging.set_log_basedir(Path(log_dir))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                # daisy suggests its own done markers; ours are written after the block's data
                warnings.filterwarnings("ignore", message=r"Task\(check_function", category=UserWarning)
                task = daisy.Task(
                    task_id,
                    total_roi=total,
                    read_roi=read_roi,
                    write_roi=write_roi,
                    process_function=functools.partial(_process_and_mark, process, str(markers)),
                    check_function=functools.partial(_is_done, str(markers)),
                    read_write_conflict=False,
                    fit="shrink",
                    max_workers=max(1, workers),
                    max_retries=0,
                )
            try:
                states = daisy.run_blockwise(
                    [task],
                    multiprocessing=workers > 1,
                    progress=False,
                    summary=False,
                    block_tracking=False,
                    return_states=True,
                )
            except IncasemError as err:  # serial mode raises the block's own error
                raise type(err)(f"{err}. {_RESUME}") from err
        finally:
            daisy_logging.set_log_basedir(previous_dir)
            stop.set()
            if watcher is not None:
                watcher.join()
    state = states[task_id]
    logger.debug("%s: %d of %d blocks done", task_id, state.completed_count, state.total_block_count)
    if state.completed_count != state.total_block_count:
        error = state.first_worker_error or state.last_worker_error
        raise DataError(
            f"{state.failed_count + state.orphaned_count} of {state.total_block_count} blocks "
            f"failed; first error: {_error_line(error)}. {_RESUME}"
        )
    return n_blocks
