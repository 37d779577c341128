"""Training with the checkpoint-ensemble schedule of v2, resumable, optionally data-parallel.

Per epoch one pass over the cycle's training patches (blind spots redrawn each batch), then the
loss on a fixed validation subset (no blind spots: the reconstruction term over every pixel, as
the original). A cycle keeps its best-validation checkpoint; it ends when the validation loss
has not improved by 0.1 % for ``patience`` epochs (twice that in the first cycle) and it ran at
least ``min_epochs_cycle`` epochs. Then the training patches are redrawn and a fresh Adam starts,
until ``nsaves`` cycles or ``epochs`` epochs. ``state.pt`` after every epoch makes a resumed run
continue exactly where it stopped.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import torch

from impartial.config import TrainConfig
from impartial.data.readers import Sample, check_scribbles, load_dataset
from impartial.errors import ConfigError, DataError
from impartial.model import build_model
from impartial.train.blindspot import apply_blind_spots, draw_blind_spots
from impartial.train.checkpoint import load_checkpoint, save_checkpoint
from impartial.train.losses import impartial_loss
from impartial.train.sampler import PatchSampler

__all__ = ["train"]

log = logging.getLogger(__name__)
_PARTS = ("loss", "seg_fore", "seg_back", "rec", "reg")


def _dist() -> tuple[int, int]:
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _reducer(world: int, device: torch.device):  # noqa: ANN202
    if world == 1:
        return lambda t: t
    import torch.distributed as dist

    def reduce(t: torch.Tensor) -> torch.Tensor:
        t = t.detach().clone().to(device)
        dist.all_reduce(t)
        return t

    return reduce


def _adam(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _open_run(config: TrainConfig, resume: bool, rank: int = 0) -> Path:
    out = Path(config.out)
    if rank != 0:  # rank 0 checks and creates the folder; the others only follow it
        return out
    if resume:
        if not (out / "state.pt").is_file():
            raise DataError(f"{out} has no state.pt to resume from; start a new run instead")
        saved = TrainConfig.model_validate_json((out / "config.json").read_text())
        if saved.model_dump(exclude={"epochs"}) != config.model_dump(exclude={"epochs"}):
            raise ConfigError(
                f"{out}/config.json differs from this config (only epochs may change on resume)"
            )
        return out
    if out.exists():
        raise DataError(
            f"run folder {out} already exists; choose a new --out or pass --resume to continue it"
        )
    return out


def train(
    config: TrainConfig,
    *,
    samples: list[Sample] | None = None,
    resume: bool = False,
    stop_after: int | None = None,
) -> Path:
    """Train (or resume) a run into ``config.out`` and return that folder.

    ``samples`` bypasses reading ``config.data`` (demo, tests); ``stop_after`` ends this call after
    that many epochs in total, as an interruption would (for resume tests).
    """
    from cellsight_shared.cli import progress
    from cellsight_shared.io import write_json
    from cellsight_shared.provenance import write_run_info

    rank, world = _dist()
    mc = config.model
    if samples is None:
        samples = load_dataset(
            config.data, n_scribble_channels=mc.n_scribble_channels, in_channels=mc.in_channels
        )
    for s in samples:
        if s.image.shape[0] != mc.in_channels:
            raise DataError(f"{s.name}: {s.image.shape[0]} channels, model.in_channels is {mc.in_channels}")
    check_scribbles(samples, mc.n_scribble_channels)
    train_samples = [s for s in samples if s.group == "train"]
    if config.batch_size % world:
        raise ConfigError(f"batch_size {config.batch_size} must divide evenly over {world} processes")
    out = _open_run(config, resume, rank)
    device = torch.device(config.device)
    sampler = PatchSampler(train_samples, config.sampler)
    try:
        val_sampler = PatchSampler(train_samples, config.sampler, validation=True)
    except DataError:
        log.warning("no validation squares: validating on training-area patches")
        val_sampler = sampler
    val_rows = val_sampler.draw(config.sampler.val_patches, torch.Generator().manual_seed(config.seed + 7))
    val_rows = val_rows[: config.sampler.val_patches]

    torch.manual_seed(config.seed)
    model = build_model(mc).to(device)
    if config.init_from is not None:
        _, state = load_checkpoint(config.init_from, expect=mc)
        model.load_state_dict(state)
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)
    optim = _adam(model, config)
    gen = torch.Generator().manual_seed(config.seed)
    st = {
        "epoch": 0,
        "cycle": 0,
        "in_cycle": 0,
        "best": math.inf,
        "counter": 0,
        "global_best": math.inf,
        "best_cycle": 0,
    }
    history: dict[str, list] = {f"{p}_{s}": [] for p in ("train", "val") for s in _PARTS}
    history.update(cycle=[], seconds=[], patches_per_s=[])
    rows = None
    if resume:
        blob = torch.load(out / "state.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(blob["model"])
        optim.load_state_dict(blob["optim"])
        gen.set_state(blob["gen"])
        torch.set_rng_state(blob["torch_rng"])
        rows = blob["rows"]
        st = json.loads(blob["state"])
        history = json.loads(blob["history"])
    else:
        rows = sampler.draw(config.sampler.npatches_epoch, gen)
        if rank == 0:
            out.mkdir(parents=True)
            write_json(out / "config.json", json.loads(config.model_dump_json()))
            write_run_info(
                out, package="impartial", config=json.loads(config.model_dump_json()), seed=config.seed
            )
    reduce = _reducer(world, device)
    writer = _tensorboard(out, config) if rank == 0 else None
    last = config.epochs if stop_after is None else min(config.epochs, stop_after)
    bar = progress(
        total=last, initial=st["epoch"], desc="epochs", unit="epoch", disable=None if rank == 0 else True
    )
    done = False
    while st["epoch"] < last and not done:
        t0 = time.perf_counter()
        net.train()
        sums = dict.fromkeys(_PARTS, 0.0)
        order = rows[torch.randperm(len(rows), generator=gen)]
        n_batches = 0
        for b0 in range(0, len(order), config.batch_size):
            chunk = order[b0 : b0 + config.batch_size]
            target, scr = sampler.batch(chunk, gen, flips=config.sampler.flips)
            draw = draw_blind_spots(
                tuple(target.shape),
                ratio=config.sampler.blind_ratio,
                window=config.sampler.blind_window,
                generator=gen,
            )
            inp, mask = apply_blind_spots(target, draw)
            if world > 1:
                n = len(chunk)
                if n % world:
                    continue  # a ragged last batch cannot be split evenly; skipped by every rank alike
                sl = slice(rank * n // world, (rank + 1) * n // world)
                inp, target, scr, mask = inp[sl], target[sl], scr[sl], mask[sl]
            inp, target, scr, mask = (t.to(device) for t in (inp, target, scr, mask))
            parts = impartial_loss(net(inp), target, scr, mask, mc, config.loss, reduce=reduce)
            optim.zero_grad(set_to_none=True)
            (parts["loss"] * world).backward()
            if config.gradclip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.gradclip)
            optim.step()
            for k in _PARTS:
                sums[k] += float(parts[k].detach())
            n_batches += 1
        val = _validate(net, val_sampler, val_rows, config, device)
        seconds = time.perf_counter() - t0
        for k in _PARTS:
            history[f"train_{k}"].append(sums[k] / max(n_batches, 1))
            history[f"val_{k}"].append(val[k])
        history["cycle"].append(st["cycle"])
        history["seconds"].append(seconds)
        history["patches_per_s"].append(len(rows) / seconds)
        st["epoch"] += 1
        st["in_cycle"] += 1
        v = val["loss"]
        if not math.isfinite(v):
            raise DataError(
                f"validation loss became {v} at epoch {st['epoch']}; check the inputs for extreme values"
            )
        if v < config.improvement * st["best"]:
            st["best"], st["counter"] = v, 0
            if rank == 0:
                save_checkpoint(
                    out / "checkpoints" / f"cycle{st['cycle']}.pt",
                    model,
                    mc,
                    cycle=st["cycle"],
                    epoch=st["epoch"],
                    val_loss=v,
                )
        else:
            st["counter"] += 1
        if v < st["global_best"]:
            st["global_best"], st["best_cycle"] = v, st["cycle"]
        patience = config.patience * (2 if st["cycle"] == 0 else 1)
        if st["counter"] > patience and st["in_cycle"] >= config.min_epochs_cycle:
            if st["cycle"] + 1 >= config.nsaves:
                done = True
            else:
                st["cycle"] += 1
                st.update(in_cycle=0, best=math.inf, counter=0)
                rows = sampler.draw(config.sampler.npatches_epoch, gen)
                optim = _adam(model, config)
        if writer is not None:
            for k in _PARTS:
                writer.add_scalar(f"train/{k}", history[f"train_{k}"][-1], st["epoch"])
                writer.add_scalar(f"val/{k}", val[k], st["epoch"])
        if rank == 0:
            _save_state(out, model, optim, gen, rows, st, history)
            write_json(out / "history.json", history)
        bar.update(1)
        bar.set_postfix(loss=f"{history['train_loss'][-1]:.4f}", val=f"{v:.4f}", cycle=st["cycle"])
        log.info(
            "epoch %d cycle %d train %.4f val %.4f (%.1f s)",
            st["epoch"],
            st["cycle"],
            history["train_loss"][-1],
            v,
            seconds,
        )
    bar.close()
    if writer is not None:
        writer.close()
    if rank == 0:
        from impartial.figures import plot_history

        plot_history(history, out / "loss_curve.png")
    return out


def _validate(
    net: torch.nn.Module, sampler: PatchSampler, rows: torch.Tensor, config: TrainConfig, device: torch.device
) -> dict[str, float]:
    """Loss on the fixed validation patches, MC passes averaged; rec over all pixels (v2 quirk)."""
    sums = dict.fromkeys(_PARTS, 0.0)
    n = 0
    mc = config.model
    with torch.no_grad():
        for b0 in range(0, len(rows), config.batch_size):
            target, scr = sampler.batch(rows[b0 : b0 + config.batch_size], None, flips=False)
            target, scr = target.to(device), scr.to(device)
            mask = torch.zeros_like(target)
            passes = config.sampler.val_mc_passes
            if passes > 1:
                outs = torch.stack([net(target) for _ in range(passes)])
                parts = impartial_loss(outs[0], target, scr, mask, mc, config.loss, mc_outputs=outs)
            else:
                parts = impartial_loss(net(target), target, scr, mask, mc, config.loss)
            w = len(target)
            for k in _PARTS:
                sums[k] += float(parts[k]) * w
            n += w
    return {k: v / n for k, v in sums.items()}


def _save_state(out, model, optim, gen, rows, st, history) -> None:  # noqa: ANN001
    tmp = out / ".state.pt.tmp"
    torch.save(
        {
            "model": model.state_dict(),
            "optim": optim.state_dict(),
            "gen": gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "rows": rows,
            "state": json.dumps(st),
            "history": json.dumps(history),
        },
        tmp,
    )
    tmp.replace(out / "state.pt")


def _tensorboard(out: Path, config: TrainConfig):  # noqa: ANN202
    if not config.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info(
            "tensorboard is not installed; skipping TensorBoard logs (pip install impartial[tensorboard])"
        )
        return None
    return SummaryWriter(log_dir=str(out / "tensorboard"))
