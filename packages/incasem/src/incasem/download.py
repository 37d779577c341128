"""Download the published checkpoints and FIB-SEM cells from the public ``asem-project`` bucket.

Plain HTTPS against the bucket's S3 REST endpoint (no quilt3, no credentials, no MongoDB): a
``ListObjectsV2`` request lists the files, and each file is fetched with
:func:`cellsight_shared.download.download_file` (HTTP Range resume, atomic rename). Checkpoints
are verified only against a SHA-256 in the registry, and ``models.json`` holds none (none is
published; it could not be obtained here), so they are recorded, not verified; cell files are
checked against their size and,
for single-part uploads, the MD5 the bucket reports as ETag. A mirror can stand in for the bucket
(``--base-url`` or ``$INCASEM_BUCKET_URL``) as long as it answers the same requests.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cellsight_shared.cli import progress
from cellsight_shared.download import download_file, sha256sum
from cellsight_shared.errors import DownloadError
from incasem.errors import ConfigError, DataError
from incasem.registry import PublishedModel, get_model, list_models, load_registry

__all__ = [
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "BucketObject",
    "cell_prefix",
    "download_cell",
    "download_checkpoints",
    "list_bucket",
]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://asem-project.s3.amazonaws.com"
"""HTTPS endpoint of the public bucket ``s3://asem-project``."""
BASE_URL_ENV = "INCASEM_BUCKET_URL"
"""Environment variable naming a mirror of the bucket (used when no base URL is passed)."""

_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_CELL_NAME = re.compile(r"^(cell_\d+)(_[A-Za-z0-9]+)*$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class BucketObject:
    """One file of the bucket: its key, size in bytes and ETag (quotes stripped)."""

    key: str
    size: int
    etag: str

    @property
    def md5(self) -> str | None:
        """The MD5 hex digest when the ETag is one (single-part uploads), else None."""
        return self.etag if re.fullmatch(r"[0-9a-f]{32}", self.etag) else None


def _base_url(base_url: str | None) -> str:
    return (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def _url(base: str, key: str) -> str:
    return f"{base}/{urllib.parse.quote(key, safe='/')}"


def _get(url: str, *, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http/https)
            return response.read()
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(
            f"could not list the bucket at {url} ({err}); check the network, or pass a mirror with "
            f"--base-url / ${BASE_URL_ENV}"
        ) from err


def list_bucket(
    prefix: str, *, base_url: str | None = None, delimiter: str | None = None, timeout: float = 60.0
) -> tuple[list[BucketObject], list[str]]:
    """List the bucket under ``prefix``: ``(objects, common prefixes)``, following pagination.

    Keys are filtered by ``prefix`` on this side too, so a static mirror that ignores the query
    string still works.
    """
    base = _base_url(base_url)
    objects: list[BucketObject] = []
    prefixes: list[str] = []
    token: str | None = None
    while True:
        query = {"list-type": "2", "prefix": prefix}
        if delimiter:
            query["delimiter"] = delimiter
        if token:
            query["continuation-token"] = token
        url = f"{base}/?{urllib.parse.urlencode(query)}"
        try:
            root = ET.fromstring(_get(url, timeout=timeout))
        except ET.ParseError as err:
            raise DownloadError(
                f"{url} did not answer with an S3 bucket listing ({err}); is the base URL a bucket endpoint?"
            ) from err
        for item in root.iter(f"{_S3_NS}Contents"):
            key = item.findtext(f"{_S3_NS}Key") or ""
            if key.startswith(prefix) and not key.endswith("/"):
                objects.append(
                    BucketObject(
                        key=key,
                        size=int(item.findtext(f"{_S3_NS}Size") or 0),
                        etag=(item.findtext(f"{_S3_NS}ETag") or "").strip('"'),
                    )
                )
        for item in root.iter(f"{_S3_NS}CommonPrefixes"):
            text = item.findtext(f"{_S3_NS}Prefix")
            if text and text.startswith(prefix):
                prefixes.append(text)
        truncated = (root.findtext(f"{_S3_NS}IsTruncated") or "false").lower() == "true"
        token = root.findtext(f"{_S3_NS}NextContinuationToken")
        if not truncated or not token:
            break
    unique = {o.key: o for o in objects}
    return list(unique.values()), sorted(set(prefixes))


# ---------------------------------------------------------------------------- checkpoints


def _checkpoint_name(model: PublishedModel, base: str) -> str:
    if model.checkpoint is not None:
        return model.checkpoint
    # the original repository does not record these names: ask the bucket
    prefix = f"{load_registry().checkpoint_prefix}model_checkpoint_{model.id}_"
    objects, _ = list_bucket(prefix, base_url=base)
    names = sorted(o.key.rsplit("/", 1)[-1] for o in objects if o.key.endswith(".pt"))
    if len(names) != 1:
        raise DownloadError(
            f"expected one checkpoint named {prefix}*.pt in the bucket at {base} for model "
            f"{model.id}, found {names or 'none'}; download it by hand and pass it as a checkpoint"
        )
    return names[0]


def _record_checksum(out: Path, name: str, digest: str) -> None:
    """Keep ``SHA256SUMS`` beside the checkpoints (one ``<digest>  <name>`` line per file)."""
    sums = out / "SHA256SUMS"
    lines = {}
    if sums.is_file():
        for line in sums.read_text(encoding="utf-8").splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2:
                lines[parts[1].strip()] = parts[0]
    lines[name] = digest
    text = "".join(f"{d}  {n}\n" for n, d in sorted(lines.items()))
    tmp = sums.with_name(".SHA256SUMS.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, sums)


def download_checkpoints(
    model_ids: Sequence[str | int] | None = None,
    *,
    out: str | os.PathLike[str],
    base_url: str | None = None,
) -> list[Path]:
    """Fetch the published checkpoints ``model_ids`` (default: all) into ``out``.

    An interrupted download resumes; a complete file is not fetched again. A file is verified
    only when the registry holds its SHA-256, which for the published models it does not (none
    is published): the log says so, and each file's SHA-256 is recorded in ``out/SHA256SUMS``.
    """
    models = [get_model(m) for m in model_ids] if model_ids else list_models()
    base = _base_url(base_url)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for model in models:
        name = _checkpoint_name(model, base)
        if not _SAFE_NAME.match(name):
            raise DownloadError(f"refusing the unsafe checkpoint file name {name!r} from {base}")
        dest = out / name
        url = _url(base, load_registry().checkpoint_prefix + name)
        if dest.is_file() and model.sha256 is None:
            logger.info("model %s: %s is already downloaded", model.id, dest)
        else:
            logger.info("model %s (%s, %s): %s", model.id, model.organelle, model.preparation, url)
            download_file(url, dest, sha256=model.sha256, resume=True, progress=True)
        digest = sha256sum(dest)
        if model.sha256 is None:
            logger.warning(
                "model %s: %s is NOT verified: no SHA-256 of the published checkpoints is known (the "
                "original project publishes none, and none could be obtained when this registry was "
                "written); its SHA-256 %s is recorded in %s so later changes are detected",
                model.id,
                name,
                digest,
                out / "SHA256SUMS",
            )
        else:
            logger.info("model %s: %s verified against the registry's SHA-256 %s", model.id, name, digest)
        _record_checksum(out, name, digest)
        paths.append(dest)
    return paths


# ---------------------------------------------------------------------------- cells


def cell_prefix(cell: str) -> tuple[str, str]:
    """Bucket key prefix and zarr name of a cell.

    ``cell_6_example`` -> ``("datasets/cell_6/cell_6_example.zarr/", "cell_6_example.zarr")``.
    """
    name = cell.strip().removesuffix(".zarr").strip("/")
    match = _CELL_NAME.match(name)
    if match is None:
        raise ConfigError(
            f"cell name {cell!r} is not of the form cell_<n> or cell_<n>_<suffix> (e.g. cell_6, "
            "cell_6_example); list the bucket's datasets/ folder for the available cells"
        )
    return f"datasets/{match.group(1)}/{name}.zarr/", f"{name}.zarr"


def _wanted(relative: str, datasets: Sequence[str] | None) -> bool:
    if not datasets:
        return True
    name = relative.rsplit("/", 1)[-1]
    if name in (".zgroup", ".zattrs"):
        # group metadata of the root and of every parent group of a requested dataset
        parent = relative.rsplit("/", 1)[0] if "/" in relative else ""
        return any(d.strip("/").startswith(parent) for d in datasets)
    return any(relative.startswith(d.strip("/") + "/") for d in datasets)


def _verify(path: Path, obj: BucketObject) -> str | None:
    """Why ``path`` is not a complete copy of ``obj`` (None if it is)."""
    size = path.stat().st_size
    if size != obj.size:
        return f"{size} bytes instead of {obj.size}"
    if obj.md5 is not None:
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != obj.md5:
            return f"MD5 {digest.hexdigest()} instead of {obj.md5}"
    return None


def download_cell(
    cell: str,
    *,
    out: str | os.PathLike[str],
    base_url: str | None = None,
    datasets: Sequence[str] | None = None,
) -> Path:
    """Fetch the zarr container of ``cell`` (e.g. ``cell_6``) into ``out``; return its path.

    ``datasets`` restricts the download to some datasets (``volumes/raw_equalized_0.02``,
    ``volumes/labels/er``); cells are tens of GB. A fresh download goes to ``<name>.zarr.part``
    and is renamed when every file has arrived and been verified, so an interrupted run leaves no
    half container under the final name; rerunning resumes it. Run again with more ``datasets``
    to add them to a finished download.
    """
    prefix, zarr_name = cell_prefix(cell)
    base = _base_url(base_url)
    objects, _ = list_bucket(prefix, base_url=base)
    if not objects:
        _, available = list_bucket("datasets/", base_url=base, delimiter="/")
        names = [p.removeprefix("datasets/").strip("/") for p in available]
        raise DataError(
            f"the bucket at {base} has no files under {prefix}; available cell folders: "
            f"{', '.join(names) if names else 'none listed'}"
        )
    selected = [o for o in objects if _wanted(o.key[len(prefix) :], datasets)]
    if datasets and not any(not o.key.endswith((".zgroup", ".zattrs")) for o in selected):
        raise DataError(
            f"{cell} has none of the datasets {list(datasets)} in the bucket at {base}; check "
            "the dataset paths (e.g. volumes/raw_equalized_0.02, volumes/labels/er)"
        )
    out = Path(out)
    final = out / zarr_name
    target = final if final.exists() else out / f"{zarr_name}.part"
    target.mkdir(parents=True, exist_ok=True)
    total = sum(o.size for o in selected)
    logger.info("%s: %d files, %.1f MB -> %s", cell, len(selected), total / 1e6, final)
    with progress(total=total, desc=cell, unit="B") as bar:
        for obj in selected:
            relative = obj.key[len(prefix) :]
            if any(part in ("", ".", "..") for part in relative.split("/")):
                raise DownloadError(f"refusing the unsafe key {obj.key!r} from {base}")
            dest = target / relative
            if not (dest.is_file() and _verify(dest, obj) is None):
                dest.parent.mkdir(parents=True, exist_ok=True)
                download_file(_url(base, obj.key), dest, resume=True, progress=False)
                problem = _verify(dest, obj)
                if problem is not None:
                    dest.unlink()
                    raise DownloadError(
                        f"{_url(base, obj.key)} arrived damaged ({problem}); run the command again "
                        "to fetch it anew"
                    )
            bar.update(obj.size)
    if target != final:
        os.replace(target, final)
    return final


def remove_partial(out: str | os.PathLike[str], cell: str) -> None:
    """Delete an interrupted download of ``cell`` under ``out`` (the ``.zarr.part`` folder)."""
    _, zarr_name = cell_prefix(cell)
    shutil.rmtree(Path(out) / f"{zarr_name}.part", ignore_errors=True)
