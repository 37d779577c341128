"""`impartial finetune`: warm start from a run's best checkpoint with new or extra scribbles.

The building block of the interactive loop: look at the entropy map, add scribbles where it is
high, finetune for a few epochs, predict again.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from impartial.config import FinetuneConfig, TrainConfig
from impartial.data.readers import Sample
from impartial.errors import CheckpointError
from impartial.train.checkpoint import checkpoint_paths, load_checkpoint

__all__ = ["finetune"]

log = logging.getLogger(__name__)


def _best_checkpoint(run: Path) -> Path:
    run = Path(run)
    if run.is_file():
        return run
    paths = checkpoint_paths(run)
    hist = run / "history.json"
    if hist.is_file():
        import torch

        losses = [
            torch.load(p, map_location="cpu", weights_only=True).get("val_loss", float("inf")) for p in paths
        ]
        return paths[min(range(len(paths)), key=losses.__getitem__)]
    return paths[-1]


def finetune(config: FinetuneConfig, *, samples: list[Sample] | None = None) -> Path:
    """Train ``config.epochs`` epochs from the run's best checkpoint into ``config.out``."""
    from impartial.train.loop import train

    start = _best_checkpoint(config.run)
    model_config, _ = load_checkpoint(start)
    run_dir = Path(config.run) if Path(config.run).is_dir() else Path(config.run).parents[1]
    try:
        base = TrainConfig.model_validate_json((run_dir / "config.json").read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(
            f"{run_dir}/config.json is missing or invalid; finetune needs the run's config"
        ) from err
    tc = base.model_copy(
        update={
            "out": config.out,
            "data": config.data,
            "model": model_config,
            "epochs": config.epochs,
            "nsaves": 1,
            "min_epochs_cycle": config.epochs,
            "init_from": start,
            "seed": config.seed,
            "sampler": base.sampler.model_copy(update={"npatches_epoch": config.npatches_epoch}),
        }
    )
    tc = TrainConfig.model_validate(json.loads(tc.model_dump_json()))
    t0 = time.perf_counter()
    out = train(tc, samples=samples)
    log.info("finetune of %d epochs took %.1f s", config.epochs, time.perf_counter() - t0)
    return out
