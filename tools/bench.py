"""Collect every package's benchmark results into one Markdown table (BENCHMARKS.md).

Each package's `<name> bench --out bench_results/<name>` writes `bench.json`:

    {"package": "isl",
     "figures": [{"name": "full-image inference", "value": 12.3, "unit": "MPix/s",
                  "target": ">= 50x naive", "met": true, "note": "..."}],
     "details": {...}}

Files without a "figures" list contribute their numeric top-level entries. Run through
`make bench`, which runs every package's benchmark first (nox -s bench bench_table).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path


def machine_description() -> str:
    """CPU model, core count and memory of this machine, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(x.split()[1])
            for x in Path("/proc/meminfo").read_text().splitlines()
            if x.startswith("MemTotal")
        )
        memory = f"{mem_kb / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = "unknown memory"
    gpu = "no GPU"
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            gpu = out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {memory}, {gpu}, Python {platform.python_version()}"


def rows_from(result: dict, package: str) -> list[list[str]]:
    """Table rows (package, figure, value, unit, target, met, note) for one bench.json."""
    figures = result.get("figures")
    if figures is None:
        figures = [
            {"name": k, "value": v, "unit": "", "target": "", "met": None}
            for k, v in result.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        ]
    rows = []
    for fig in figures:
        value = fig.get("value")
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        met = fig.get("met")
        rows.append(
            [
                package,
                str(fig.get("name", "")),
                text,
                str(fig.get("unit", "")),
                str(fig.get("target", "") or ""),
                "" if met is None else ("yes" if met else "**no**"),
                str(fig.get("note", "") or ""),
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Write the benchmark table; returns 1 when no results were found."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("bench_results"))
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)
    files = sorted(args.results.glob("*/bench.json"))
    if not files:
        print(f"no bench.json under {args.results}/; run `make bench`")
        return 1
    header = ["package", "figure", "value", "unit", "target", "met", "note"]
    lines = [
        "# Benchmarks",
        "",
        f"Measured {dt.date.today().isoformat()} on {machine_description()}.",
        "Regenerate with `make bench`; each package's raw results are in bench_results/<package>/bench.json.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for path in files:
        result = json.loads(path.read_text())
        for row in rows_from(result, result.get("package", path.parent.name)):
            lines.append("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |")
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out} ({len(files)} packages)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
