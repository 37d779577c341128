"""Train a narrow network on the left three quarters of the real Condition B well, score the rest.

    python scripts/real_sample_learning.py --out results/real_sample [--steps 200] [--seed 0]

The well defaults to ``$CELLSIGHT_TEST_DATA/isl/condition_b_sample`` (``../shared/data`` beside
the repository root when the variable is unset). Only the training columns are written as a
training well, so the held-out quarter's targets never reach the loss. The held-out quarter is
predicted with reflect padding from an input crop that reaches 128 px into the training part.
Pearson r per label of the network's predicted mean (and median) is compared with a binned
training-mean baseline and linear regressions from the z-planes (see :mod:`isl.holdout`).

The output folder must not exist. It receives ``results.json`` (every number, the configuration,
the timings), ``r_per_label.png``, ``target_error_panel.png`` (the held-out quarter: median,
truth, error per label), ``linear_error_panel.png`` (the same for the smoothed linear regression), the
training run (``run/``: checkpoint, ``loss.csv``, ``loss_curve.png``) and the cropped training
well (``train_region/``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from cellsight_shared.cli import configure_logging
from cellsight_shared.testing import test_data_dir
from isl.errors import IslError


def default_well() -> Path | None:
    """The real Condition B sample in the shared test data, if present."""
    base = test_data_dir()
    well = base / "isl" / "condition_b_sample" if base is not None else None
    return well if well is not None and well.is_dir() else None


def main(argv: list[str] | None = None) -> int:
    """Run the check; exit 0 on success, 1 on an expected error (named in one line on stderr)."""
    from isl.holdout import HoldoutConfig

    defaults = HoldoutConfig.model_fields
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--well", type=Path, default=None, help="well folder (default: the shared sample)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (must not exist)")
    parser.add_argument("--seed", type=int, default=defaults["seed"].default)
    parser.add_argument("--steps", type=int, default=defaults["steps"].default)
    parser.add_argument("--batch-size", type=int, default=defaults["batch_size"].default)
    parser.add_argument("--learning-rate", type=float, default=defaults["learning_rate"].default)
    parser.add_argument("--base-depth", type=int, default=defaults["base_depth"].default)
    parser.add_argument("--patch-size", type=int, default=defaults["patch_size"].default)
    parser.add_argument("--holdout-fraction", type=float, default=defaults["holdout_fraction"].default)
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    args = parser.parse_args(argv)
    configure_logging(quiet=int(args.quiet))
    log = logging.getLogger("real_sample_learning")

    well = args.well or default_well()
    if well is None:
        print(
            "error: no --well given and the shared test data has no isl/condition_b_sample; "
            "set CELLSIGHT_TEST_DATA or pass --well",
            file=sys.stderr,
        )
        return 1
    try:
        config = HoldoutConfig(
            well=well,
            out=args.out,
            seed=args.seed,
            steps=args.steps,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            base_depth=args.base_depth,
            patch_size=args.patch_size,
            holdout_fraction=args.holdout_fraction,
        )
        from isl.holdout import run_holdout

        results = run_holdout(config)
    except (IslError, ValueError, OSError) as err:  # pydantic's ValidationError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 1
    for label in results["labels"]:
        scores = results["held_out"][label]
        log.info(
            "%s held-out r: network %.3f (%s), binned mean %.3f, linear %.3f, linear smoothed %.3f",
            label,
            scores[f"network_{results['statistic']}"]["pearson_r"],
            results["statistic"],
            scores["binned_mean"]["pearson_r"],
            scores["linear"]["pearson_r"],
            scores["linear_smoothed"]["pearson_r"],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
