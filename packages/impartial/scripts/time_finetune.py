"""Time one `impartial finetune` round on the Vectra fixture with the paper-size U-Net (base 64).

    python scripts/time_finetune.py ../shared/data/impartial/vectra_2ch --out runs/ft-timing

A short base run (``--base-epochs`` epochs of ``--base-patches`` patches from scribbles generated
with a budget of 80 instances on image0 and image1) provides the checkpoint to warm start from;
the timed round then reads the images again, generates a larger scribble set (budget 160, the
"user added scribbles" step), trains ``--epochs`` epochs of ``--patches`` patches with the base
run's batch size and validation subset, and writes its checkpoint. The wall time of that whole
call is the figure; the per-epoch seconds come from its history.json. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Build the warm-start run, time one finetune round, print the figures as JSON."""
    import torch

    from impartial.config import (
        DataConfig,
        FinetuneConfig,
        ModelConfig,
        SamplerConfig,
        TaskConfig,
        TrainConfig,
    )
    from impartial.train.finetune import finetune
    from impartial.train.loop import train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vectra", type=Path, help="the vectra_2ch fixture folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for both runs (must not exist)")
    parser.add_argument("--base", type=int, default=64, help="U-Net base width (64 = the paper's)")
    parser.add_argument("--epochs", type=int, default=2, help="finetune epochs in the round")
    parser.add_argument("--patches", type=int, default=64, help="training patches per finetune epoch")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--val-patches", type=int, default=32)
    parser.add_argument("--base-epochs", type=int, default=1)
    parser.add_argument("--base-patches", type=int, default=32)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    if args.out.exists():
        parser.error(f"{args.out} exists; choose a new --out")
    data = DataConfig(root=args.vectra, train=["image0", "image1"], scribble_budget=80)
    base_config = TrainConfig(
        out=args.out / "base",
        data=data,
        model=ModelConfig(in_channels=2, tasks=[TaskConfig(rec_channels=[0, 1])], base=args.base),
        sampler=SamplerConfig(npatches_epoch=args.base_patches, val_patches=args.val_patches),
        batch_size=args.batch,
        epochs=args.base_epochs,
        nsaves=1,
        min_epochs_cycle=1,
        tensorboard=False,
    )
    t0 = time.perf_counter()
    run = train(base_config)
    base_s = time.perf_counter() - t0
    extra = DataConfig(root=args.vectra, train=["image0", "image1"], scribble_budget=160)
    config = FinetuneConfig(
        out=args.out / "finetune", run=run, data=extra, epochs=args.epochs, npatches_epoch=args.patches
    )
    t0 = time.perf_counter()
    out = finetune(config)
    round_s = time.perf_counter() - t0
    history = json.loads((out / "history.json").read_text())
    print(
        json.dumps(
            {
                "finetune_round_s": round_s,
                "epoch_s": history["seconds"],
                "settings": {
                    "unet_base": args.base,
                    "depth": 4,
                    "epochs": args.epochs,
                    "patches_per_epoch": args.patches,
                    "patch": 128,
                    "batch": args.batch,
                    "val_patches": args.val_patches,
                    "scribble_budget": 160,
                    "images": ["image0", "image1"],
                    "threads": torch.get_num_threads(),
                    "cpu": platform.processor() or platform.machine(),
                },
                "warm_start_run_s": base_s,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
