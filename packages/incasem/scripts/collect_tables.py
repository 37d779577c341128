"""Gather the F1 of several ``reproduce_organelle.py`` results into one Markdown table.

    python scripts/collect_tables.py results/*/ > f1_table.md

Rows are cells, columns organelle models; each value is the F1 (Dice) at p >= 0.5 inside mask AND
metric mask, pooled over the labelled region (the paper's measure).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(folders: list[str]) -> int:
    table: dict[str, dict[str, float]] = {}
    models: list[str] = []
    for folder in map(Path, folders):
        data = json.loads((folder / "data.json").read_text())
        metrics = json.loads((folder / "evaluation" / "metrics.json").read_text())
        cell = next(iter(data))
        model = json.loads((folder / "evaluation" / "config.json").read_text())["prediction"]
        model = Path(model).parent.name  # train_<id>
        models += [model] if model not in models else []
        table.setdefault(cell, {})[model] = metrics["f1_class_1"]
    print("| cell | " + " | ".join(models) + " |")
    print("|---|" + "---|" * len(models))
    for cell, row in sorted(table.items()):
        print(f"| {cell} | " + " | ".join(f"{row[m]:.3f}" if m in row else "" for m in models) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
