"""Downloads of checkpoints and cells from a miniature bucket served on 127.0.0.1."""

import hashlib
import urllib.parse
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pytest

from cellsight_shared.errors import DownloadError
from cellsight_shared.io import read_zarr, write_zarr
from cellsight_shared.testing import serve_directory
from incasem import download
from incasem.cli import main
from incasem.errors import ConfigError, DataError

CELL_KEY = "datasets/cell_6/cell_6_example.zarr"


def _listing_xml(root: Path, query: dict[str, str], *, max_keys: int = 1000) -> bytes:
    """What S3's ListObjectsV2 answers for the files under ``root`` (keys in byte order)."""
    prefix = query.get("prefix", "")
    delimiter = query.get("delimiter")
    keys = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    keys = [k for k in keys if k.startswith(prefix)]
    contents, prefixes = [], set()
    for key in keys:
        rest = key[len(prefix) :]
        if delimiter and delimiter in rest:
            prefixes.add(prefix + rest.split(delimiter)[0] + delimiter)
        else:
            contents.append(key)
    start = int(query.get("continuation-token", "0"))
    page = contents[start : start + max_keys]
    truncated = start + max_keys < len(contents)
    items = "".join(
        f"<Contents><Key>{escape(k)}</Key><Size>{(root / k).stat().st_size}</Size>"
        f'<ETag>"{hashlib.md5((root / k).read_bytes()).hexdigest()}"</ETag></Contents>'
        for k in page
    )
    common = "".join(f"<CommonPrefixes><Prefix>{p}</Prefix></CommonPrefixes>" for p in sorted(prefixes))
    token = f"<NextContinuationToken>{start + max_keys}</NextContinuationToken>" if truncated else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Prefix>{escape(prefix)}</Prefix><IsTruncated>{str(truncated).lower()}</IsTruncated>"
        f"{token}{items}{common}</ListBucketResult>"
    ).encode()


@pytest.fixture
def bucket(tmp_path, monkeypatch):
    """A miniature asem-project bucket: 2 checkpoints and a small cell, served over HTTP."""
    root = tmp_path / "bucket"
    checkpoints = root / "models" / "pretrained_checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "model_checkpoint_1847_mito_CF.pt").write_bytes(b"mito weights " * 4000)
    (checkpoints / "model_checkpoint_1675_mito_HPF_4nm.pt").write_bytes(b"hpf weights " * 300)
    rng = np.random.default_rng(0)
    cell = root / CELL_KEY
    for dataset, dtype in (("volumes/raw_equalized_0.02", np.uint8), ("volumes/labels/er", np.uint8)):
        array = rng.integers(0, 255, size=(20, 24, 28)).astype(dtype)
        write_zarr(cell, dataset, array, offset=(100, 0, 0), resolution=(5, 5, 5), chunks=(10, 12, 14))
    calls = []

    def fake_listing(url: str, *, timeout: float) -> bytes:
        # S3 answers listings at the bucket root, which a static file server cannot: build the
        # answer from the same folder the server serves
        calls.append(url)
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        return _listing_xml(root, query, max_keys=3)

    monkeypatch.setattr(download, "_get", fake_listing)
    monkeypatch.delenv(download.BASE_URL_ENV, raising=False)
    with serve_directory(root) as url:
        yield root, url, calls


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_list_bucket_follows_pagination_and_prefixes(bucket):
    """Three keys per page: every key under the prefix is found; delimiters give folders."""
    root, url, calls = bucket
    objects, _ = download.list_bucket(CELL_KEY + "/", base_url=url)
    expected = {k: v for k, v in _files(root).items() if k.startswith(CELL_KEY + "/")}
    assert {o.key for o in objects} == set(expected)
    assert all(o.size == len(expected[o.key]) for o in objects)
    assert all(o.md5 == hashlib.md5(expected[o.key]).hexdigest() for o in objects)
    assert len(calls) == -(-len(expected) // 3)  # one request per page
    _, folders = download.list_bucket("datasets/", base_url=url, delimiter="/")
    assert folders == ["datasets/cell_6/"]


def test_download_checkpoint_with_checksum(bucket, tmp_path, monkeypatch):
    """A published checkpoint arrives intact, verified and recorded in SHA256SUMS."""
    root, url, _ = bucket
    data = (root / "models/pretrained_checkpoints/model_checkpoint_1847_mito_CF.pt").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    real = download.get_model
    monkeypatch.setattr(download, "get_model", lambda i: real(i).model_copy(update={"sha256": digest}))
    out = tmp_path / "models"
    (path,) = download.download_checkpoints(["1847"], out=out, base_url=url)
    assert path == out / "model_checkpoint_1847_mito_CF.pt"
    assert path.read_bytes() == data
    assert (out / "SHA256SUMS").read_text() == f"{digest}  model_checkpoint_1847_mito_CF.pt\n"


def test_without_a_published_checksum_the_log_says_not_verified(bucket, tmp_path, caplog):
    """models.json has no sha256 (none is published): the download must not claim verification."""
    import logging

    from incasem.registry import list_models

    assert all(m.sha256 is None for m in list_models())
    _, url, _ = bucket
    with caplog.at_level(logging.INFO, logger="incasem.download"):
        (path,) = download.download_checkpoints(["1847"], out=tmp_path / "m", base_url=url)
    assert "NOT verified" in caplog.text and "no SHA-256 of the published checkpoints" in caplog.text
    assert " verified against" not in caplog.text
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest in (tmp_path / "m" / "SHA256SUMS").read_text()
    assert "checksums" not in main.__globals__["build_parser"]().format_help()


def test_a_registry_sha256_is_verified_and_logged(bucket, tmp_path, monkeypatch, caplog):
    import logging

    root, url, _ = bucket
    digest = hashlib.sha256(
        (root / "models/pretrained_checkpoints/model_checkpoint_1847_mito_CF.pt").read_bytes()
    )
    real = download.get_model
    update = {"sha256": digest.hexdigest()}
    monkeypatch.setattr(download, "get_model", lambda i: real(i).model_copy(update=update))
    with caplog.at_level(logging.INFO, logger="incasem.download"):
        download.download_checkpoints(["1847"], out=tmp_path / "m", base_url=url)
    assert "verified against the registry's SHA-256" in caplog.text and "NOT verified" not in caplog.text


def test_interrupted_checkpoint_download_resumes(tmp_path, bucket):
    """A transfer cut after 1000 bytes fails clearly; the next run resumes and completes."""
    root, _, _ = bucket
    data = (root / "models/pretrained_checkpoints/model_checkpoint_1847_mito_CF.pt").read_bytes()
    out = tmp_path / "models"
    with serve_directory(root, truncate_first=1000) as url:
        with pytest.raises(DownloadError, match="ended after 1000"):
            download.download_checkpoints(["1847"], out=out, base_url=url)
        assert not (out / "model_checkpoint_1847_mito_CF.pt").exists()
        assert (out / "model_checkpoint_1847_mito_CF.pt.part").stat().st_size == 1000
        (path,) = download.download_checkpoints(["1847"], out=out, base_url=url)
    assert path.read_bytes() == data


def test_wrong_checksum_leaves_no_checkpoint(bucket, tmp_path, monkeypatch):
    """A file whose SHA-256 differs from the registry's is not kept."""
    _, url, _ = bucket
    real = download.get_model
    monkeypatch.setattr(download, "get_model", lambda i: real(i).model_copy(update={"sha256": "0" * 64}))
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download.download_checkpoints(["1847"], out=tmp_path / "m", base_url=url)
    assert not (tmp_path / "m" / "model_checkpoint_1847_mito_CF.pt").exists()


def test_unrecorded_checkpoint_name_is_found_by_listing(bucket, tmp_path):
    """Model 1675's file name is unpublished: the bucket listing finds it."""
    root, url, _ = bucket
    (path,) = download.download_checkpoints(["1675"], out=tmp_path / "m", base_url=url)
    assert path.name == "model_checkpoint_1675_mito_HPF_4nm.pt"
    assert path.read_bytes() == (root / "models/pretrained_checkpoints" / path.name).read_bytes()
    with pytest.raises(DownloadError, match="1669"):
        download.download_checkpoints(["1669"], out=tmp_path / "m", base_url=url)


def test_download_cell_copies_the_zarr_container(bucket, tmp_path):
    """Every file of the cell arrives, and the zarr reads back identically."""
    root, url, _ = bucket
    out = tmp_path / "data"
    path = download.download_cell("cell_6_example", out=out, base_url=url)
    assert path == out / "cell_6_example.zarr"
    assert _files(path) == _files(root / CELL_KEY)
    assert not (out / "cell_6_example.zarr.part").exists()
    np.testing.assert_array_equal(
        read_zarr(path, "volumes/labels/er"), read_zarr(root / CELL_KEY, "volumes/labels/er")
    )
    # a second run finds everything in place and downloads nothing new
    assert download.download_cell("cell_6_example", out=out, base_url=url) == path


def test_download_cell_restricted_to_datasets(bucket, tmp_path):
    """``datasets`` fetches only those arrays (plus the group metadata above them)."""
    _, url, _ = bucket
    path = download.download_cell(
        "cell_6_example", out=tmp_path, base_url=url, datasets=["volumes/raw_equalized_0.02"]
    )
    names = set(_files(path))
    assert "volumes/raw_equalized_0.02/.zarray" in names
    assert ".zgroup" in names and "volumes/.zgroup" in names
    assert not any(n.startswith("volumes/labels") for n in names)
    with pytest.raises(DataError, match="volumes/labels/mito"):
        download.download_cell(
            "cell_6_example", out=tmp_path / "x", base_url=url, datasets=["volumes/labels/mito"]
        )


def test_damaged_cell_file_is_detected_and_resumable(bucket, tmp_path, monkeypatch):
    """A file that differs from the listed MD5 fails the run; no final container appears."""
    root, url, _ = bucket
    chunk = root / CELL_KEY / "volumes/labels/er/0.0.0"
    good = chunk.read_bytes()
    listing = _listing_xml(root, {"prefix": CELL_KEY + "/"})
    monkeypatch.setattr(download, "_get", lambda u, *, timeout: listing)
    chunk.write_bytes(bytes(reversed(good)))  # same size, different content
    out = tmp_path / "data"
    with pytest.raises(DownloadError, match="arrived damaged .*MD5"):
        download.download_cell("cell_6_example", out=out, base_url=url)
    assert not (out / "cell_6_example.zarr").exists()
    assert (out / "cell_6_example.zarr.part").is_dir()
    chunk.write_bytes(good)
    path = download.download_cell("cell_6_example", out=out, base_url=url)
    assert _files(path) == _files(root / CELL_KEY)


def test_unknown_and_unsafe_cell_names(bucket, tmp_path):
    """An absent cell lists the bucket's cells; a path-like name is refused before any request."""
    _, url, calls = bucket
    with pytest.raises(DataError, match="available cell folders: cell_6"):
        download.download_cell("cell_9", out=tmp_path, base_url=url)
    before = len(calls)
    with pytest.raises(ConfigError, match="cell_<n>"):
        download.download_cell("../../etc", out=tmp_path, base_url=url)
    assert len(calls) == before
    assert download.cell_prefix("cell_3") == ("datasets/cell_3/cell_3.zarr/", "cell_3.zarr")


def test_cli_download_writes_checkpoint(bucket, tmp_path, capsys):
    """`incasem download 1847 --out DIR --base-url URL` prints the downloaded path."""
    _, url, _ = bucket
    code = main(["download", "1847", "--out", str(tmp_path / "m"), "--base-url", url])
    assert code == 0
    assert "model_checkpoint_1847_mito_CF.pt" in capsys.readouterr().out
    assert (tmp_path / "m" / "model_checkpoint_1847_mito_CF.pt").is_file()


def test_cli_download_data_with_dataset_filter(bucket, tmp_path, capsys):
    """`incasem download-data cell_6_example --dataset volumes/labels/er` fetches that array only."""
    _, url, _ = bucket
    argv = ["download-data", "cell_6_example", "--out", str(tmp_path), "--base-url", url]
    assert main([*argv, "--dataset", "volumes/labels/er"]) == 0
    path = tmp_path / "cell_6_example.zarr"
    assert str(path) in capsys.readouterr().out
    assert (path / "volumes/labels/er/.zarray").is_file()
    assert not (path / "volumes/raw_equalized_0.02").exists()
