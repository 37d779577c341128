"""``isl download``: the paper's data sample and checkpoint, resumable and checksummed.

``data_sample.zip`` (2 GB: condition_b_sample, condition_e_sample_B2/B3) and ``checkpoints.zip``
(the TF1 checkpoint trained on Conditions A-D) are fetched from the authors' public bucket into
``out`` and unpacked to ``out/data_sample`` and ``out/checkpoints``. An interrupted download
resumes; an unpacked folder that already exists is left alone.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

from isl.config import DownloadConfig

__all__ = ["download"]

logger = logging.getLogger(__name__)


def _archive_name(url: str) -> str:
    name = Path(urlparse(url).path).name
    return name or "download.zip"


def _unpack(archive: Path, out: Path) -> Path:
    """Extract ``archive`` to ``out/<stem>``; a single top-level folder of that name is flattened."""
    from cellsight_shared.download import extract_archive

    target = out / archive.name.removesuffix(".zip").removesuffix(".tar.gz").removesuffix(".tar")
    if target.exists():
        logger.info("%s already unpacked at %s", archive.name, target)
        return target
    staging = out / f".{target.name}.unpacking"
    if staging.exists():
        shutil.rmtree(staging)
    extract_archive(archive, staging)
    entries = [p for p in staging.iterdir() if p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir() and entries[0].name == target.name:
        os.replace(entries[0], target)
        shutil.rmtree(staging)
    else:
        os.replace(staging, target)
    return target


def download(config: DownloadConfig) -> list[Path]:
    """Download (and unpack) what ``config.what`` asks for; return the resulting paths."""
    from cellsight_shared.download import download_file

    jobs = []
    if config.what in ("data", "all"):
        jobs.append((config.data_url, config.data_sha256))
    if config.what in ("checkpoint", "all"):
        jobs.append((config.checkpoint_url, config.checkpoint_sha256))
    config.out.mkdir(parents=True, exist_ok=True)
    results = []
    for url, sha256 in jobs:
        archive = download_file(url, config.out / _archive_name(url), sha256=sha256, timeout=config.timeout)
        results.append(_unpack(archive, config.out) if config.extract else archive)
    return results
