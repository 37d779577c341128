"""Resumable, checksummed downloads with progress, and safe archive extraction.

A download goes to ``<dest>.part`` and is renamed onto ``dest`` only after its checksum matched,
so an interrupted run leaves no file under the final name, and the next run resumes the partial
file with an HTTP Range request.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from cellsight_shared.errors import DownloadError
from cellsight_shared.io.atomic import atomic_write

__all__ = ["download_file", "extract_archive", "sha256sum"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


def sha256sum(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _open(url: str, start: int, timeout: float):  # noqa: ANN202 - urllib's response type
    request = urllib.request.Request(url, headers={"User-Agent": "cellsight-download/1"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) URLs only, checked


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    resume: bool = True,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest``, resuming a partial download and verifying ``sha256``.

    An existing ``dest`` with the right checksum (or any existing ``dest`` when no checksum is
    given) is kept and returned without a request. One with a wrong checksum raises, since
    replacing a user's file silently is never right.
    """
    if not url.startswith(("http://", "https://")):
        raise DownloadError(f"{url!r} is not an http(s) URL")
    dest = Path(dest)
    if dest.exists():
        if sha256 is None or sha256sum(dest) == sha256:
            logger.info("%s already present; not downloading again", dest)
            return dest
        raise DownloadError(
            f"{dest} exists but its SHA-256 does not match the expected {sha256}; "
            "delete it (it may be from another version) and run the download again."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if (resume and part.exists()) else 0
    try:
        response = _open(url, start, timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start:  # the partial file is already complete
            response = None
        else:
            raise DownloadError(f"downloading {url} failed: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        raise DownloadError(
            f"cannot reach {url} ({err}); check the network connection or the URL, then run again "
            "(a partial download resumes)."
        ) from err
    if response is not None:
        with response:
            if start and response.status != 206:
                logger.info("server ignored the resume request for %s; starting over", url)
                start = 0
            length = response.headers.get("Content-Length")
            total = start + int(length) if length is not None else None
            _stream(response, part, start=start, total=total, desc=dest.name, show=progress, url=url)
    if sha256 is not None:
        actual = sha256sum(part)
        if actual != sha256:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"checksum mismatch for {url}: expected SHA-256 {sha256}, got {actual}. The partial "
                "file was removed; run the download again, and report it if it persists."
            )
    os.replace(part, dest)
    logger.info("downloaded %s -> %s", url, dest)
    return dest


def _stream(response, part: Path, *, start: int, total: int | None, desc: str, show: bool, url: str) -> None:  # noqa: ANN001
    from cellsight_shared.cli import progress as progress_bar

    mode = "ab" if start else "wb"
    received = start
    with (
        open(part, mode) as handle,
        progress_bar(
            total=total, desc=desc, unit="B", unit_scale=True, initial=start, disable=None if show else True
        ) as bar,
    ):
        while True:
            try:
                block = response.read(_CHUNK)
            except (OSError, TimeoutError) as err:
                raise DownloadError(
                    f"the transfer of {url} broke off after {received} bytes ({err}); run the download "
                    "again to resume it."
                ) from err
            if not block:
                break
            handle.write(block)
            received += len(block)
            bar.update(len(block))
    if total is not None and received < total:
        raise DownloadError(
            f"the transfer of {url} ended after {received} of {total} bytes; run the download again "
            "to resume it."
        )


def _check_member(dest: Path, name: str, archive: Path) -> None:
    target = (dest / name).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise DownloadError(
            f"{archive} holds {name!r}, which would land outside {dest}; refusing to extract."
        )


def extract_archive(
    archive: str | os.PathLike[str], dest: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Extract a zip or tar archive into the new folder ``dest``, refusing path traversal."""
    archive = Path(archive)
    dest = Path(dest)
    with atomic_write(dest, overwrite=overwrite) as tmp:
        tmp.mkdir(parents=True)
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    _check_member(tmp, name, archive)
                zf.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    _check_member(tmp, member.name, archive)
                    if member.issym() or member.islnk():
                        raise DownloadError(f"{archive} holds a link {member.name!r}; refusing to extract.")
                tf.extractall(tmp, filter="data")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DownloadError(f"{archive} is neither a zip nor a tar archive; is the download complete?")
    return dest
