"""``isl evaluate``: per-label Pearson r (the paper's metric), SSIM and MAE against ground truth.

Reads an ``isl predict`` output; the truth of each predicted region is read from the well itself.
Rows are written per well and channel, plus one ``all`` row per channel pooling every well's
pixels (Pearson r and MAE over the pooled pixels, SSIM averaged over wells).
"""

from __future__ import annotations

import csv
import logging
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from isl.config import EvaluateConfig, save_config
from isl.errors import ConfigError, DataError
from isl.outputs import iter_prediction_wells, read_statistic, read_truth

__all__ = ["METRIC_COLUMNS", "evaluate", "format_markdown_table"]

logger = logging.getLogger(__name__)

METRIC_COLUMNS = ("pearson_r", "ssim", "mae")
#: Files an evaluation writes; an ``out`` holding any of them is not overwritten silently.
_OUTPUTS = ("metrics.csv", "metrics.md", "metrics.json")


def format_markdown_table(rows: list[dict[str, object]]) -> str:
    """A Markdown table of metric rows (well, channel, pixels, pearson_r, ssim, mae)."""
    header = ["well", "channel", "pixels", *METRIC_COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(row["well"]), str(row["channel"]), str(row["pixels"])]
        cells += [_fmt(row[m]) for m in METRIC_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value: object) -> str:
    number = float(value)  # type: ignore[arg-type]
    return "n/a" if math.isnan(number) else f"{number:.4f}"


def evaluate(config: EvaluateConfig) -> dict[str, dict[str, float]]:
    """Compute the metrics, write metrics.csv and metrics.md; return {channel: {metric: value}}."""
    from cellsight_shared.io import atomic_write, write_json
    from cellsight_shared.metrics import mae, pearson_r, ssim

    existing = [config.out / n for n in _OUTPUTS if (config.out / n).exists()]
    if existing and not config.overwrite:
        raise ConfigError(
            f"{config.out} already holds an evaluation ({existing[0].name}); choose another --out "
            "or set overwrite = true in the evaluate config"
        )
    records = list(iter_prediction_wells(config.predictions))
    rows: list[dict[str, object]] = []
    pooled: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    ssims: dict[str, list[float]] = defaultdict(list)
    for record in records:
        channels = [c for c in record.channels if config.channels is None or c in config.channels]
        if config.statistic not in record.statistics:
            raise DataError(
                f"{record.directory}: statistic '{config.statistic}' was not written; predict "
                f"with it in 'statistics' or evaluate one of {list(record.statistics)}"
            )
        truth, masks = read_truth(record, channels)
        for index, channel in enumerate(channels):
            if masks[index] == 0:
                logger.warning("%s: no ground truth for %s; skipped", record.name, channel)
                continue
            prediction = read_statistic(record, channel, config.statistic)
            true = truth[..., index]
            value = ssim(true, prediction, data_range=config.ssim_data_range)
            rows.append(
                {
                    "well": record.name,
                    "channel": channel,
                    "pixels": true.size,
                    "pearson_r": pearson_r(true, prediction),
                    "ssim": value,
                    "mae": mae(true, prediction),
                }
            )
            pooled[channel].append((true.ravel(), prediction.ravel()))
            ssims[channel].append(value)
    if not rows:
        raise DataError(f"nothing to evaluate in {config.predictions}: no predicted channel has ground truth")
    summary: dict[str, dict[str, float]] = {}
    for channel, pairs in pooled.items():
        true = np.concatenate([t for t, _ in pairs])
        pred = np.concatenate([p for _, p in pairs])
        summary[channel] = {
            "pearson_r": pearson_r(true, pred),
            "ssim": float(np.mean(ssims[channel])),
            "mae": mae(true, pred),
        }
        rows.append({"well": "all", "channel": channel, "pixels": true.size, **summary[channel]})

    config.out.mkdir(parents=True, exist_ok=True)
    with atomic_write(config.out / "metrics.csv", overwrite=config.overwrite) as tmp:
        with Path(tmp).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["well", "channel", "pixels", *METRIC_COLUMNS])
            writer.writeheader()
            writer.writerows(rows)
    with atomic_write(config.out / "metrics.md", overwrite=config.overwrite) as tmp:
        title = f"Prediction ({config.statistic}) vs truth, {len(records)} well(s)\n\n"
        Path(tmp).write_text(title + format_markdown_table(rows))
    write_json(config.out / "metrics.json", summary)
    # Evaluating into the prediction folder must not replace predict's own config.json.
    same = config.out.resolve() == Path(config.predictions).resolve()
    save_config(config, config.out, name="evaluate_config.json" if same else "config.json")
    if not same:
        from cellsight_shared.provenance import write_run_info

        write_run_info(config.out, package="isl", config=config.model_dump(mode="json"), seed=None)
    for channel, values in summary.items():
        logger.info("%s: Pearson r %.3f, SSIM %.3f, MAE %.4f", channel, *values.values())
    return summary
