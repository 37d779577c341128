"""Time the parts of a training step (issue 13's network by default) and print them as JSON.

    python scripts/profile_training.py [--well ../shared/data/isl/condition_b_sample]

The step rate is given as a fraction of the same process's float32 matmul rate; see
docs/training_profile.md for what the parts mean and the numbers measured so far.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from isl.config import DataConfig, ModelConfig, TrainConfig
from isl.data import find_wells
from isl.train.profile import profile_training


def main() -> None:
    """Profile base depth 16, 13 z-values, 3 targets, 314-px patches, batch 4."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--well", type=Path, help="a well to time the input pipeline on (13 planes)")
    parser.add_argument("--steps", type=int, default=3, help="timed repeats of each part")
    args = parser.parse_args()
    model = ModelConfig(
        num_z_values=13, target_channels=("DAPI_CONFOCAL", "NFH_CONFOCAL", "MAP2_CONFOCAL"), base_depth=16
    )
    wells = config = None
    if args.well is not None:
        data = DataConfig(
            patch_size=314, crop_size=314, patch_stride=314, crops_per_visit=4, derived_channels={}
        )
        config = TrainConfig(wells=(args.well,), out=Path("unused"), model=model, data=data, batch_size=4)
        wells = find_wells([args.well])
    result = profile_training(
        model, patch_size=314, batch_size=4, steps=args.steps, wells=wells, train_config=config
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
