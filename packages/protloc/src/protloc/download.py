"""``protloc download``: selected proteins' fields of view from the public OpenCell bucket.

The bucket (``czb-opencell``, us-west-2, anonymous, CC BY-SA 4.0) is listed with S3's
ListObjectsV2 over plain HTTPS, so no AWS client is needed. Each file goes through
:func:`cellsight_shared.download.download_file` (a ``.part`` file resumed with HTTP Range
requests, renamed when complete) and is retried with back-off. The result is the OpenCell layout
plus ``image_list.csv`` and ``proteins.json``, ready for ``data.layout = "opencell"``.
"""

from __future__ import annotations

import csv
import logging
import re
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

from cellsight_shared.errors import DownloadError
from protloc.config import DownloadConfig

__all__ = ["download", "list_protein_files"]

logger = logging.getLogger(__name__)

_FOLDER = re.compile(r"^(?P<gene>[^/]+?)_(?P<ensg>ENSG\d+)$")


def _list(config: DownloadConfig, prefix: str) -> list[str]:
    keys: list[str] = []
    token: str | None = None
    while True:
        query = {"list-type": "2", "prefix": prefix}
        if token:
            query["continuation-token"] = token
        url = f"{config.bucket_url.rstrip('/')}/?{urllib.parse.urlencode(query)}"
        body = _get_with_retries(url, config)
        try:
            root = ET.fromstring(body)  # noqa: S314 - S3's listing XML, no entities expanded by ET
        except ET.ParseError as err:
            raise DownloadError(
                f"the bucket listing at {url} is not XML ({err}); is bucket_url right?"
            ) from err
        ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
        keys += [e.text or "" for e in root.iter(f"{ns}Key")]
        truncated = (root.findtext(f"{ns}IsTruncated") or "false").lower() == "true"
        token = root.findtext(f"{ns}NextContinuationToken")
        if not truncated or not token:
            return keys


def _get_with_retries(url: str, config: DownloadConfig) -> bytes:
    for attempt in range(config.retries + 1):
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "protloc-download/1"})
            with urllib.request.urlopen(request, timeout=config.timeout) as response:  # noqa: S310 - http(s) only
                return response.read()
        except OSError as err:
            if attempt == config.retries:
                raise DownloadError(f"listing {url} failed after {attempt + 1} tries ({err})") from err
            time.sleep(min(2.0**attempt, 30.0) * 0.5)
    raise AssertionError("unreachable")


def list_protein_files(config: DownloadConfig, protein: str) -> list[str]:
    """Bucket keys of one protein's FOVs (projections, plus stacks when asked), sorted."""
    gene = protein.split("_ENSG")[0]
    keys = _list(config, f"{config.prefix}{gene}_")
    kinds = ("_proj.tif", "_stack.tif") if config.include_stacks else ("_proj.tif",)
    chosen = []
    for key in keys:
        folder = key[len(config.prefix) :].split("/")[0]
        match = _FOLDER.match(folder)
        if match is None or match["gene"] != gene or ("_ENSG" in protein and folder != protein):
            continue
        if key.endswith(kinds):
            chosen.append(key)
    chosen.sort()
    if config.max_images is not None:
        projections = [k for k in chosen if k.endswith("_proj.tif")][: config.max_images]
        stems = {k[: -len("_proj.tif")] for k in projections}
        chosen = [k for k in chosen if k.rsplit("_", 1)[0] in stems]
    if not chosen:
        raise DownloadError(
            f"the OpenCell bucket has no images for {protein!r} under {config.prefix}; check the gene name "
            "(OpenCell folders are <GENE>_<ENSG...>)"
        )
    return chosen


def download(config: DownloadConfig) -> Path:
    """Download every selected protein; returns the output folder (existing files are kept)."""
    from cellsight_shared.download import download_file
    from cellsight_shared.io import write_json

    out = config.out
    plan = {p: list_protein_files(config, p) for p in config.proteins}  # fail before any transfer
    rows, folders = [], []
    for keys in plan.values():
        for key in keys:
            relative = key[len(config.prefix) :]
            dest = out / relative
            url = f"{config.bucket_url.rstrip('/')}/{urllib.parse.quote(key)}"
            for attempt in range(config.retries + 1):
                try:
                    download_file(url, dest, timeout=config.timeout)
                    break
                except DownloadError as err:
                    if attempt == config.retries:
                        raise
                    logger.warning("%s (try %d of %d); retrying", err, attempt + 1, config.retries + 1)
                    time.sleep(min(2.0**attempt, 30.0) * 0.5)
            if key.endswith("_proj.tif"):
                rows.append({"filename": relative, "protein": relative.split("/")[0].split("_ENSG")[0]})
        folders.append(keys[0][len(config.prefix) :].split("/")[0])
    tmp = out / ".image_list.csv.tmp"
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["filename", "protein"])
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out / "image_list.csv")
    write_json(out / "proteins.json", sorted({r["protein"] for r in rows}), overwrite=True)
    logger.info("%d projections of %d proteins in %s", len(rows), len(folders), out)
    return out
