"""Reproduce one organelle's F1 table and prediction figure from a published model and a cell.

    python scripts/reproduce_organelle.py --model-id 1841 --cell cell_6 --out results/er_cell_6

Steps: download the checkpoint and the cell's equalised raw, labels and mask (resumable), build
the metric mask with the registry's recommended exclusion zone, write a data JSON for the
labelled region (the label dataset's extent, shrunk so that 47 voxels of raw context exist),
predict blockwise, evaluate (precision/recall/F1/IoU over a threshold sweep, inside mask AND
metric mask) and draw orthogonal slices with the prediction overlaid. Every step is the package
API; rerunning skips downloads and finished prediction blocks (``--resume``).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-id", required=True, help="published model id (1847, 1837, ...)")
    parser.add_argument("--cell", required=True, help="cell folder in the bucket, e.g. cell_6")
    parser.add_argument("--out", type=Path, required=True, help="results folder")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="where cells go")
    parser.add_argument("--models-dir", type=Path, default=Path("models/pretrained_checkpoints"))
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--resume", type=int, help="prediction number to resume")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    from cellsight_shared.io import open_zarr, zarr_geometry
    from incasem.config.evaluate import EvaluateConfig
    from incasem.config.predict import PredictConfig
    from incasem.config.tools import MetricMaskConfig
    from incasem.data import read_dataset_box
    from incasem.download import download_cell, download_checkpoints
    from incasem.evaluate import evaluate
    from incasem.figures import plot_orthogonal_slices
    from incasem.metric_mask import metric_mask
    from incasem.predict import predict
    from incasem.registry import get_model

    model = get_model(args.model_id)
    labels = f"volumes/labels/{model.label}"
    raw = "volumes/raw_equalized_0.02"
    download_checkpoints([model.id], out=args.models_dir, base_url=None)
    store = download_cell(args.cell, out=args.data_dir, datasets=[raw, labels, "volumes/mask"])
    inwards, outwards = model.metric_mask_voxels
    metric = f"volumes/metric_masks/{model.label}_{inwards}_{outwards}"
    if not (store / metric).exists():
        metric_mask(
            MetricMaskConfig(
                zarr=store,
                labels=labels,
                out_dataset=metric,
                inwards=inwards,
                outwards=outwards,
                workers=args.workers,
            )
        )

    # The labelled region is the label dataset's extent; keep 47 voxels of raw around it.
    voxel = zarr_geometry(store, labels)[1]
    label_offset = [round(o / v) for o, v in zip(zarr_geometry(store, labels)[0], voxel)]
    raw_offset = [round(o / v) for o, v in zip(zarr_geometry(store, raw)[0], voxel)]
    raw_shape = open_zarr(store, raw).shape
    begin = [max(lo, r + 47) for lo, r in zip(label_offset, raw_offset)]
    end = [
        min(lo + n, r + s - 47)
        for lo, n, r, s in zip(label_offset, open_zarr(store, labels).shape, raw_offset, raw_shape)
    ]
    entry = {
        "file": str(store.resolve()),
        "offset": begin,
        "shape": [e - b for b, e in zip(begin, end)],
        "voxel_size": list(voxel),
        "raw": raw,
        "mask": "volumes/mask",
        "metric_masks": [metric],
        "labels": {labels: 1},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / "data.json"
    data.write_text(json.dumps({args.cell: entry}, indent=2))

    group = predict(
        PredictConfig(
            data=data,
            model_id=model.id,
            models_dir=args.models_dir,
            out=args.out / "predictions.zarr",
            pad_context=True,
            workers=args.workers,
            device=args.device,
            resume=args.resume,
        )
    )
    metrics = evaluate(EvaluateConfig(data=data, prediction=group, out=args.out / "evaluation"))

    parts = group.parts
    container, dataset = Path(*parts[: parts.index("volumes")]), "/".join(parts[parts.index("volumes") :])
    centre_box = [min(s, 256) for s in entry["shape"]]
    offset = [b + (s - c) // 2 for b, s, c in zip(begin, entry["shape"], centre_box)]
    plot_orthogonal_slices(
        read_dataset_box(store, raw, offset, centre_box),
        args.out / "prediction_slices.png",
        prediction=read_dataset_box(container, f"{dataset}/prob_maps/class_1", offset, centre_box),
        labels=read_dataset_box(store, labels, offset, centre_box),
        title=f"{model.organelle} ({model.id}) on {args.cell}: F1 {metrics['f1_class_1']:.3f}",
    )
    print((args.out / "evaluation" / "metrics.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
