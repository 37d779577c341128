"""The daisy runner of the data tools (equalize, convert, metric-mask): one function per block.

daisy starts one OS process per worker and pickles the block function into it, so ``process``
must be a top-level function or a ``functools.partial`` of one. One worker runs serially in this
process (no sockets, no subprocess), which is what tests and small volumes use.

On a cluster, daisy's workers are started by the process function itself: pass a function of no
arguments that submits ``python -m daisy._subprocess_worker``-style jobs (``srun``/``bsub``) and
daisy hands each the scheduler address through ``DAISY_CONTEXT``; see daisy's README.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from incasem.errors import DataError

__all__ = ["block_slices", "run_volume_blocks"]

logger = logging.getLogger(__name__)


def block_slices(roi: Any, origin: Sequence[int] = (0, 0, 0)) -> tuple[slice, ...]:
    """Index slices of a funlib ``Roi`` (in voxels) into an array whose first voxel is ``origin``."""
    return tuple(slice(b - o, e - o) for b, e, o in zip(roi.begin, roi.end, origin, strict=True))


def run_volume_blocks(
    task_id: str,
    process: Callable[[Any], None],
    *,
    shape: Sequence[int],
    block_shape: Sequence[int],
    context: Sequence[int] | int = 0,
    workers: int = 1,
) -> None:
    """Call ``process(block)`` for every block of a volume of ``shape`` voxels.

    ``block.write_roi`` tiles ``[0, shape)`` (blocks at the far border are shrunk);
    ``block.read_roi`` is the write ROI grown by ``context`` voxels per side, so it may reach
    outside the volume: the process function decides how to fill that. Raises
    :class:`DataError` with the first worker error if any block fails.
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
    previous_dir = daisy_logging.get_log_basedir()
    with tempfile.TemporaryDirectory(prefix="incasem-daisy-") as log_dir:
        # daisy writes worker logs below the current directory by default; keep users' folders clean.
        daisy_logging.set_log_basedir(Path(log_dir))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                task = daisy.Task(
                    task_id,
                    total_roi=total,
                    read_roi=read_roi,
                    write_roi=write_roi,
                    process_function=process,
                    read_write_conflict=False,
                    fit="shrink",
                    max_workers=max(1, workers),
                    max_retries=0,
                )
            states = daisy.run_blockwise(
                [task],
                multiprocessing=workers > 1,
                progress=False,
                summary=False,
                block_tracking=False,
                return_states=True,
            )
        finally:
            daisy_logging.set_log_basedir(previous_dir)
    state = states[task_id]
    logger.debug("%s: %d of %d blocks done", task_id, state.completed_count, state.total_block_count)
    if state.completed_count != state.total_block_count:
        error = state.first_worker_error or state.last_worker_error or "no error message"
        raise DataError(
            f"{task_id}: {state.failed_count + state.orphaned_count} of "
            f"{state.total_block_count} blocks failed; first error: {error.strip()}"
        )
