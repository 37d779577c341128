"""Reproduce the paper's prediction panels and Pearson tables for one condition.

Needs the published data and checkpoint (``isl download --out isl_data``)::

    python scripts/reproduce.py --data isl_data --condition B --out results/condition_b
    python scripts/reproduce.py --data isl_data --condition E --out results/condition_e_before
    python scripts/reproduce.py --data isl_data --condition E --wells PATH/TO/paper_data/test/...

Condition B and E wells ship in ``data_sample.zip`` (E: B3 is the evaluation well); for A, C and
D point ``--wells`` at wells of the paper data (``gs://in-silico-labeling/paper_data/test``),
whose naming isl reads too. Each run writes ``predictions/<well>/target_error_panel.png`` (the
README's panels: median, truth, error per label), ``metrics/metrics.{csv,md}`` (pixel-wise
Pearson r, SSIM, MAE per label) and ``metrics/pearson_r.png``. The original took about an hour
for a 1500-px crop; ``--crop 1500`` is the README's setting, the default predicts whole wells.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from isl.config import EvaluateConfig, FiguresConfig, PredictConfig
from isl.evaluate import evaluate
from isl.figures import make_figures
from isl.predict import predict

#: Per condition: the labels the paper predicted (repository channel names) and the sample well.
CONDITIONS = {
    "A": (("DAPI_WIDEFIELD", "TUJ1_WIDEFIELD", "ISLET_WIDEFIELD"), None),
    "B": (("DAPI_CONFOCAL", "MAP2_CONFOCAL", "NFH_CONFOCAL"), "data_sample/condition_b_sample"),
    "C": (("DAPI_CONFOCAL", "MAP2_CONFOCAL", "NFH_CONFOCAL"), None),
    "D": (("DAPI_CONFOCAL", "DEAD_CONFOCAL"), None),
    "E": (("DAPI_CONFOCAL", "CELLMASK_CONFOCAL"), "data_sample/condition_e_sample_B3"),
}


def main() -> None:
    """Predict, evaluate and draw one condition."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("isl_data"), help="isl download --out")
    parser.add_argument("--condition", choices=sorted(CONDITIONS), required=True)
    parser.add_argument("--checkpoint", type=Path, help="default: DATA/checkpoints (or an isl run)")
    parser.add_argument("--wells", type=Path, nargs="+", help="default: the data sample's well")
    parser.add_argument("--crop", type=int, help="top-left crop side (the README used 1500)")
    parser.add_argument("--full-panels", action="store_true", help="the 12-box panels")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    channels, sample = CONDITIONS[args.condition]
    wells = tuple(args.wells or ([args.data / sample] if sample else []))
    if not wells:
        parser.error(f"condition {args.condition} is not in the data sample: give --wells")
    predictions = predict(
        PredictConfig(
            checkpoint=args.checkpoint or args.data / "checkpoints",
            wells=wells,
            out=args.out / "predictions",
            crop_size=args.crop,
            channels=channels,
            simplify_panels=not args.full_panels,
        )
    )
    evaluate(EvaluateConfig(predictions=predictions, out=args.out / "metrics"))
    make_figures(FiguresConfig(metrics=args.out / "metrics" / "metrics.csv", out=args.out / "metrics"))
    print((args.out / "metrics" / "metrics.md").read_text())


if __name__ == "__main__":
    main()
