"""Downloads resume, verify checksums, and never leave a partial file under the final name."""

from __future__ import annotations

import hashlib
import io as _io
import tarfile
import zipfile

import pytest

from cellsight_shared.download import download_file, extract_archive, sha256sum
from cellsight_shared.errors import DownloadError
from cellsight_shared.testing import serve_directory


@pytest.fixture
def payload(tmp_path):
    """A 3 MiB file served from a local folder, with its SHA-256."""
    root = tmp_path / "server"
    root.mkdir()
    data = bytes(range(256)) * (3 * 4096)
    (root / "weights.bin").write_bytes(data)
    return root, data, hashlib.sha256(data).hexdigest()


def test_download_verifies_checksum(tmp_path, payload):
    """A plain download arrives whole and matches its checksum."""
    root, data, digest = payload
    with serve_directory(root) as url:
        path = download_file(f"{url}/weights.bin", tmp_path / "out" / "w.bin", sha256=digest, progress=False)
    assert path.read_bytes() == data
    assert sha256sum(path) == digest


def test_interrupted_download_resumes_from_partial_file(tmp_path, payload):
    """The first transfer breaks off; a second call resumes with a Range request and completes."""
    root, data, digest = payload
    dest = tmp_path / "w.bin"
    with serve_directory(root, truncate_first=1_000_000) as url:
        with pytest.raises(DownloadError, match="run the download again"):
            download_file(f"{url}/weights.bin", dest, sha256=digest, progress=False)
        assert not dest.exists()
        assert (tmp_path / "w.bin.part").stat().st_size == 1_000_000
        download_file(f"{url}/weights.bin", dest, sha256=digest, progress=False)
    assert dest.read_bytes() == data
    assert not (tmp_path / "w.bin.part").exists()


def test_checksum_mismatch_removes_the_partial_file(tmp_path, payload):
    """A wrong checksum raises with both digests and leaves nothing behind."""
    root, _, _ = payload
    with serve_directory(root) as url, pytest.raises(DownloadError, match="checksum mismatch"):
        download_file(f"{url}/weights.bin", tmp_path / "w.bin", sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == [root]


def test_existing_file_with_wrong_checksum_is_not_replaced(tmp_path, payload):
    """A user's file that does not match is reported, never overwritten."""
    root, _, digest = payload
    dest = tmp_path / "w.bin"
    dest.write_bytes(b"mine")
    with serve_directory(root) as url, pytest.raises(DownloadError, match="delete it"):
        download_file(f"{url}/weights.bin", dest, sha256=digest, progress=False)
    assert dest.read_bytes() == b"mine"


def test_http_404_and_unreachable_host_are_clear(tmp_path, payload):
    """A missing file reports the HTTP status; a closed port says how to proceed."""
    root, _, _ = payload
    with serve_directory(root) as url, pytest.raises(DownloadError, match="HTTP 404"):
        download_file(f"{url}/nothing.bin", tmp_path / "n.bin", progress=False)
    with pytest.raises(DownloadError, match="cannot reach"):
        download_file("http://127.0.0.1:9/x", tmp_path / "x", progress=False, timeout=2)


def test_extract_zip_and_tar_and_refuse_traversal(tmp_path):
    """Archives extract into a new folder; a member escaping it is refused."""
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("a/b.txt", "hello")
    assert (extract_archive(good, tmp_path / "g") / "a" / "b.txt").read_text() == "hello"
    tar_path = tmp_path / "t.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tf:
        info = tarfile.TarInfo("c.txt")
        info.size = 2
        tf.addfile(info, _io.BytesIO(b"hi"))
    assert (extract_archive(tar_path, tmp_path / "t") / "c.txt").read_text() == "hi"
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escape.txt", "x")
    with pytest.raises(DownloadError, match="outside"):
        extract_archive(evil, tmp_path / "e")
    assert not (tmp_path / "e").exists()
