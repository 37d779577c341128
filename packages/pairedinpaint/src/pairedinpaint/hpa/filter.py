"""`filter`: keep directories with at least ``min_cells`` cells, without touching the input.

The original's two scripts disagree with their README (human: "remove <= 5", code keeps >= 6;
yeast: README "<= 30 removed", code keeps >= 30). The rule here is the code's: keep a directory
when it holds >= min_cells cells (default 6 human, 30 yeast). Kept directories are linked (or
copied) into a new folder and listed in kept.txt / removed.txt; nothing is deleted.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from pairedinpaint.config import FilterConfig
from pairedinpaint.data import LAYOUTS
from pairedinpaint.errors import DataError
from pairedinpaint.outputs import finish_dir, partial_dir

logger = logging.getLogger(__name__)
DEFAULT_MIN_CELLS = {"human": 6, "yeast": 30}


def filter_directories(config: FilterConfig) -> tuple[list[str], list[str]]:
    """(kept, removed) directory names; writes the filtered folder ``config.out``."""
    data = Path(config.data)
    if not data.is_dir():
        raise DataError(f"data folder {data} does not exist")
    minimum = config.min_cells or DEFAULT_MIN_CELLS[config.layout]
    protein = LAYOUTS[config.layout][0]
    kept, removed = [], []
    for directory in sorted(p for p in data.iterdir() if p.is_dir()):
        n = len(list(directory.glob(f"*{protein}.tif")))
        (kept if n >= minimum else removed).append(directory.name)
    tmp = partial_dir(config.out)
    for name in kept:
        if config.copy_files:
            shutil.copytree(data / name, tmp / name)
        else:
            os.symlink((data / name).resolve(), tmp / name, target_is_directory=True)
    (tmp / "kept.txt").write_text("".join(f"{n}\n" for n in kept))
    (tmp / "removed.txt").write_text("".join(f"{n}\n" for n in removed))
    finish_dir(tmp, config.out)
    logger.info("kept %d directories with >= %d cells, left out %d", len(kept), minimum, len(removed))
    return kept, removed
