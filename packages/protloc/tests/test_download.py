"""download: an S3-style bucket on 127.0.0.1 is listed, files fetched, resumed and retried."""

from __future__ import annotations

import contextlib
import http.server
import threading
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import tifffile

from cellsight_shared.errors import DownloadError
from protloc.config import DataConfig, DownloadConfig
from protloc.data import load_dataset
from protloc.download import download, list_protein_files

PREFIX = "microscopy/raw/"


class _BucketHandler(http.server.BaseHTTPRequestHandler):
    """Files with Range support and S3 ListObjectsV2 (two keys per page, to test paging)."""

    root: Path
    truncate_first: int | None = None
    served: set[str]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def _send_file(self, path: Path) -> None:
        data = path.read_bytes()
        start = 0
        header = self.headers.get("Range")
        if header and header.startswith("bytes="):
            start = int(header[6:].split("-")[0] or 0)
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.truncate_first is not None and self.path not in self.served:
            self.served.add(self.path)
            body = body[: self.truncate_first]
            self.close_connection = True
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if query.get("list-type") != ["2"]:
            path = self.root / urllib.parse.unquote(url.path.lstrip("/"))
            if not path.is_file():
                self.send_error(404)
                return None
            return self._send_file(path)
        prefix = query["prefix"][0]
        keys = sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())
        keys = [k for k in keys if k.startswith(prefix)]
        start = int(query.get("continuation-token", ["0"])[0])
        page = keys[start : start + 2]
        more = start + 2 < len(keys)
        body = '<?xml version="1.0"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        body += "".join(f"<Contents><Key>{k}</Key></Contents>" for k in page)
        body += f"<IsTruncated>{'true' if more else 'false'}</IsTruncated>"
        if more:
            body += f"<NextContinuationToken>{start + 2}</NextContinuationToken>"
        body += "</ListBucketResult>"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return None


@contextlib.contextmanager
def _bucket(root: Path, truncate_first: int | None = None):
    handler = type("H", (_BucketHandler,), {"root": root, "truncate_first": truncate_first, "served": set()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def bucket_root(tmp_path: Path) -> Path:
    """A miniature OpenCell bucket: 3 FOVs of LMNB1 (proj + stack), 1 of LMNB2 (a prefix trap)."""
    root = tmp_path / "bucket"
    rng = np.random.default_rng(0)
    for gene, ensg, n in (("LMNB1", "ENSG00000113368", 3), ("LMNB12", "ENSG00000000002", 1)):
        folder = root / PREFIX / f"{gene}_{ensg}"
        folder.mkdir(parents=True)
        for i in range(n):
            stem = f"OC-FOV_{gene}_{ensg}_CID000001_FID{i + 1:08d}"
            tifffile.imwrite(
                folder / f"{stem}_proj.tif", rng.integers(100, 4000, (2, 48, 48), dtype=np.uint16)
            )
            tifffile.imwrite(
                folder / f"{stem}_stack.tif", rng.integers(100, 4000, (3, 2, 48, 48), dtype=np.uint16)
            )
    return root


def test_download_lists_pages_resumes_and_writes_a_usable_dataset(bucket_root, tmp_path):
    """Projections of the asked gene only, after truncated first transfers; readable as OpenCell data."""
    with _bucket(bucket_root, truncate_first=500) as url:
        config = DownloadConfig(proteins=["LMNB1"], out=tmp_path / "oc", bucket_url=url, retries=2)
        keys = list_protein_files(config, "LMNB1")
        assert len(keys) == 3 and all(k.endswith("_proj.tif") and "LMNB12" not in k for k in keys)
        out = download(config)
    files = sorted(out.glob("*/*.tif"))
    assert len(files) == 3 and not list(out.rglob("*.part"))
    for f in files:
        src = bucket_root / PREFIX / f.relative_to(out)
        assert f.read_bytes() == src.read_bytes()
    split = load_dataset(
        DataConfig(root=out, image_list=out / "image_list.csv", protein_list=out / "proteins.json")
    )
    assert split.proteins.names == ("LMNB1",) and sum(len(v) for v in split.records.values()) == 3


def test_stacks_and_max_images(bucket_root, tmp_path):
    """include_stacks adds each FOV's z-stack; max_images limits the FOVs."""
    with _bucket(bucket_root) as url:
        config = DownloadConfig(
            proteins=["LMNB1"], out=tmp_path / "oc", bucket_url=url, include_stacks=True, max_images=2
        )
        keys = list_protein_files(config, "LMNB1")
    assert len(keys) == 4 and sum(k.endswith("_stack.tif") for k in keys) == 2


def test_unknown_protein_fails_before_any_transfer(bucket_root, tmp_path):
    """A gene the bucket lacks is an error naming it; nothing is written."""
    with _bucket(bucket_root) as url:
        config = DownloadConfig(proteins=["LMNB1", "NOPE"], out=tmp_path / "oc", bucket_url=url, retries=0)
        with pytest.raises(DownloadError, match="no images for 'NOPE'"):
            download(config)
    assert not (tmp_path / "oc").exists()


def test_unreachable_bucket_is_a_download_error(tmp_path):
    """A closed port gives a DownloadError after the retries."""
    config = DownloadConfig(
        proteins=["LMNB1"], out=tmp_path / "oc", bucket_url="http://127.0.0.1:9", retries=1, timeout=2
    )
    with pytest.raises(DownloadError, match="failed after 2 tries"):
        download(config)
