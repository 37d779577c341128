"""Configuration of ``isl download``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from isl.config.base import IslConfigModel

__all__ = ["CHECKPOINT_URL", "DATA_SAMPLE_URL", "DownloadConfig"]

#: The published data sample (2 GB; condition_b_sample, condition_e_sample_B2/B3).
DATA_SAMPLE_URL = "https://storage.googleapis.com/in-silico-labeling/data_sample.zip"
#: The published TF1 checkpoint trained on Conditions A-D.
CHECKPOINT_URL = "https://storage.googleapis.com/in-silico-labeling/checkpoints.zip"


class DownloadConfig(IslConfigModel):
    """Download (with resume and checksum) and extract the paper's data sample and checkpoint."""

    out: Path = Path("isl_data")
    """Destination: archives and their extracted folders land here."""
    what: Literal["data", "checkpoint", "all"] = "all"
    """Which archives to fetch."""
    data_url: str = DATA_SAMPLE_URL
    checkpoint_url: str = CHECKPOINT_URL
    data_sha256: str | None = None
    """Expected SHA-256 of data_sample.zip (the authors published none; set it to pin a copy)."""
    checkpoint_sha256: str | None = None
    """Expected SHA-256 of checkpoints.zip."""
    extract: bool = True
    """Unpack the archives after download (the zip files are kept for resumable re-checks)."""
    timeout: float = 60.0
    """Network timeout in seconds."""
