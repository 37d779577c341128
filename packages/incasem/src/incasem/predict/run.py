"""Run a prediction: ``predict(config) -> prediction group``.

The way of a prediction, top to bottom: :func:`~incasem.predict.plan.plan_prediction` checks
everything and writes nothing; :mod:`incasem.predict.outputs` claims a fresh ``predict_<n>``
group (or reopens ``resume``) and creates the output datasets; :mod:`incasem.predict.scheduler`
runs one daisy task per region, whose workers (:mod:`incasem.predict.worker`) predict the
blocks; the group's status turns ``complete`` when its last block is written.
"""

from __future__ import annotations

import logging
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from incasem.config.predict import PredictConfig
from incasem.errors import IncasemError
from incasem.predict.blocks import num_blocks
from incasem.predict.outputs import assign_groups, claim_prediction_groups, create_outputs, reopen, set_status
from incasem.predict.plan import EntryPlan, PredictionPlan, plan_prediction

__all__ = ["predict", "resume_advice"]

logger = logging.getLogger(__name__)


def predict(config: PredictConfig, *, mongo_url: str | None = None) -> Path:
    """Predict every region of ``config.data``; return the (first) prediction group's folder.

    A new run claims ``predict_<n>`` with the next free ``n``; ``config.resume = n`` continues
    run ``n``, skipping finished blocks. Each run is a sacred experiment recorded in
    ``<prediction>/run/sacred`` (and in MongoDB database ``incasem_predictions`` when
    ``mongo_url`` is given).
    """
    from incasem.experiment import run_experiment
    from incasem.predict.scheduler import run_entry
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

    try:
        return run_experiment(
            config.name,
            config,
            main,
            run_dir=first.run_dir,
            observer=config.observer,
            mongo_url=mongo_url,
            mongo_db="incasem_predictions",
        )
    except IncasemError as err:
        raise type(err)(f"{err}. {resume_advice(plan, number)}") from err


def resume_advice(plan: PredictionPlan, number: int) -> str:
    """How to continue or remove an unfinished ``predict_<number>`` (for error messages)."""
    unfinished = [str(e.group_dir) for e in plan.entries if _status(e) != "complete"]
    if not unfinished:
        return f"predict_{number:04d} is complete"
    return (
        f"predict_{number:04d} is kept with status 'running' in {', '.join(unfinished)}: fix the "
        f"cause and continue it with `incasem predict --config <the same TOML> --resume {number}` "
        f"(finished blocks are kept), or delete it with `rm -r {' '.join(unfinished)}`"
    )


def _status(entry: EntryPlan) -> str | None:
    from incasem.dataset_status import dataset_status

    info = dataset_status(entry.out_store, entry.group)
    return None if info is None else info.get("status")
