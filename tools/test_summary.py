"""Print one closing line, `N passed, N failed, N skipped`, from the JUnit XML files of a test run.

`.ci/run` calls it after `make test`, so the log ends with the total over every nox session.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def totals(paths: list[Path]) -> dict[str, int]:
    """Sum tests, failures, errors and skips over JUnit XML files."""
    sums = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for path in paths:
        root = ET.parse(path).getroot()
        suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
        for suite in suites:
            for key in sums:
                sums[key] += int(suite.get(key, 0))
    return sums


def main(argv: list[str] | None = None) -> int:
    """Print the closing line; exit 1 when any test failed or none ran."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", type=Path, nargs="?", default=Path("reports"))
    args = parser.parse_args(argv)
    files = sorted(args.reports.glob("*.xml"))
    sums = totals(files)
    failed = sums["failures"] + sums["errors"]
    passed = sums["tests"] - failed - sums["skipped"]
    for path in files:
        print(f"  {path.stem}: {totals([path])['tests']} tests", file=sys.stderr)
    print(f"{passed} passed, {failed} failed, {sums['skipped']} skipped")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    raise SystemExit(main())
