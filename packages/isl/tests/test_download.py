"""``isl download`` against a local HTTP server serving miniature archives (never the internet)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from cellsight_shared.download import sha256sum
from cellsight_shared.errors import DownloadError
from cellsight_shared.testing import serve_directory
from isl.cli import main
from isl.config import DownloadConfig
from isl.config.download import CHECKPOINT_URL, DATA_SAMPLE_URL
from isl.download import download


def _archives(root: Path) -> dict[str, str]:
    """data_sample.zip and checkpoints.zip laid out like the published ones, in miniature."""
    root.mkdir()
    with zipfile.ZipFile(root / "data_sample.zip", "w") as archive:
        for well in ("condition_b_sample", "condition_e_sample_B2"):
            for z in range(3):
                name = f"data_sample/{well}/lab-X,z_depth-{z},channel-PHASE_CONTRAST,is_mask-false.png"
                archive.writestr(name, bytes(range(256)) * (40 + z))
    with zipfile.ZipFile(root / "checkpoints.zip", "w") as archive:
        archive.writestr("checkpoints/checkpoint", 'model_checkpoint_path: "model.ckpt-984658"\n')
        archive.writestr("checkpoints/model.ckpt-984658.index", b"\x00" * 500)
    return {name: sha256sum(root / name) for name in ("data_sample.zip", "checkpoints.zip")}


def test_default_urls_are_the_authors_public_bucket() -> None:
    """The published archives, as linked from the original README."""
    assert DATA_SAMPLE_URL == "https://storage.googleapis.com/in-silico-labeling/data_sample.zip"
    assert CHECKPOINT_URL == "https://storage.googleapis.com/in-silico-labeling/checkpoints.zip"


def test_download_fetches_verifies_and_unpacks_both_archives(tmp_path: Path) -> None:
    """Both zips arrive with their checksums and unpack to data_sample/ and checkpoints/."""
    sums = _archives(tmp_path / "server")
    with serve_directory(tmp_path / "server") as url:
        config = DownloadConfig(
            out=tmp_path / "out",
            data_url=f"{url}/data_sample.zip",
            checkpoint_url=f"{url}/checkpoints.zip",
            data_sha256=sums["data_sample.zip"],
            checkpoint_sha256=sums["checkpoints.zip"],
        )
        paths = download(config)
        again = download(config)  # already there: nothing is replaced
    out = tmp_path / "out"
    assert paths == again == [out / "data_sample", out / "checkpoints"]
    assert len(list((out / "data_sample" / "condition_b_sample").iterdir())) == 3
    assert (out / "checkpoints" / "checkpoint").is_file()
    assert sha256sum(out / "data_sample.zip") == sums["data_sample.zip"]


def test_interrupted_download_resumes(tmp_path: Path) -> None:
    """The first response breaks off after 1000 bytes; the CLI run resumes and completes."""
    sums = _archives(tmp_path / "server")
    with serve_directory(tmp_path / "server", truncate_first=1000) as url:
        config = tmp_path / "download.toml"
        config.write_text(f'data_url = "{url}/data_sample.zip"\ndata_sha256 = "{sums["data_sample.zip"]}"\n')
        out = tmp_path / "out"
        first = main(["-q", "download", "--config", str(config), "--what", "data", "--out", str(out)])
        assert first == 1  # the broken transfer is an expected, explained failure
        partial = out / "data_sample.zip.part"
        assert partial.is_file() and partial.stat().st_size == 1000
        second = main(["-q", "download", "--config", str(config), "--what", "data", "--out", str(out)])
    assert second == 0
    assert sha256sum(out / "data_sample.zip") == sums["data_sample.zip"]
    assert (out / "data_sample" / "condition_e_sample_B2").is_dir()


def test_checksum_mismatch_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    """A wrong SHA-256 raises DownloadError naming the URL; no archive under the final name."""
    _archives(tmp_path / "server")
    with serve_directory(tmp_path / "server") as url:
        config = DownloadConfig(
            out=tmp_path / "out",
            what="checkpoint",
            checkpoint_url=f"{url}/checkpoints.zip",
            checkpoint_sha256="0" * 64,
        )
        with pytest.raises(DownloadError, match="checksum mismatch"):
            download(config)
    assert not (tmp_path / "out" / "checkpoints.zip").exists()
    assert not (tmp_path / "out" / "checkpoints").exists()
