"""Download of the paper's public data and weights (Zenodo), resumable, checksummed when known.

Records named by the ImPartial documentation: 15220501 (``vectra_2ch_tiff.zip``, the Vectra
whole-cell TIFF + ROI data) and 15220298 (``impartial_vectra2ch.pt``, a v3 model). The v3 model is
a plain state dict of another training code; it is downloaded for reference, not loaded here.
"""

from __future__ import annotations

import logging
from pathlib import Path

from impartial.errors import DataError

__all__ = ["DATASETS", "download"]

log = logging.getLogger(__name__)

ZENODO = "https://zenodo.org/records"
DATASETS: dict[str, dict[str, str | None]] = {
    "vectra_2ch": {"path": "15220501/files/vectra_2ch_tiff.zip", "sha256": None, "extract": "yes"},
    "vectra_2ch_model_v3": {"path": "15220298/files/impartial_vectra2ch.pt", "sha256": None, "extract": None},
}


def download(name: str, dest: Path, *, base_url: str = ZENODO, progress: bool = True) -> Path:
    """Fetch ``name`` into ``dest`` (resuming a partial file); extract archives; return the path."""
    from cellsight_shared.download import download_file, extract_archive

    if name not in DATASETS:
        raise DataError(f"unknown download {name!r}; choose one of {sorted(DATASETS)}")
    entry = DATASETS[name]
    rel = str(entry["path"])
    dest = Path(dest)
    target = dest / Path(rel).name
    path = download_file(f"{base_url.rstrip('/')}/{rel}", target, sha256=entry["sha256"], progress=progress)
    if entry["extract"]:
        folder = dest / name
        if not folder.exists():
            extract_archive(path, folder)
        return folder
    return path
