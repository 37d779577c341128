"""Blockwise prediction with daisy: ``predict(config) -> prediction group``.

Read in this order: :mod:`~incasem.predict.plan` (every check, nothing written),
:mod:`~incasem.predict.outputs` (the ``predict_<n>`` groups and their status),
:mod:`~incasem.predict.run` (the run), :mod:`~incasem.predict.scheduler` (daisy),
:mod:`~incasem.predict.worker` (one block) and :mod:`~incasem.predict.blocks` (block geometry).
"""

from incasem.predict.blocks import block_begins, block_window
from incasem.predict.plan import EntryPlan, PredictionPlan, WorkerJob, plan_prediction
from incasem.predict.run import predict

__all__ = [
    "EntryPlan",
    "PredictionPlan",
    "WorkerJob",
    "block_begins",
    "block_window",
    "plan_prediction",
    "predict",
]
