"""`download-hpa`: the HPA composite images of every protein in a list, politely and resumably.

For each Ensembl id the ``<base_url>/<ENSG>.xml`` entry is read; the ``imageUrl`` elements inside
``subAssay type="human"`` whose text contains ``blue`` (the blue_red_green composites) are saved
to ``<out>/<GENE>/<basename>``. Few concurrent requests, retries with exponential backoff, a
progress bar; files already present are skipped, so a rerun resumes. Ids are validated first.
"""

from __future__ import annotations

import csv
import logging
import re
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pairedinpaint.config import DownloadHpaConfig
from pairedinpaint.errors import DownloadError

logger = logging.getLogger(__name__)
ENSEMBL_GENE = re.compile(r"^ENSG\d{11}$")


def read_protein_list(path: Path) -> list[tuple[str, str]]:
    """(Ensembl id, gene symbol) rows of a ``Gene<TAB>Gene name`` list; unknown ids refused up front."""
    path = Path(path)
    if not path.is_file():
        raise DownloadError(f"protein list {path} does not exist")
    with path.open(newline="") as handle:
        rows = [r for r in csv.reader(handle, delimiter="\t") if r and any(x.strip() for x in r)]
    if rows and rows[0][0].strip().lower() == "gene":
        rows = rows[1:]
    bad = [(i + 2, r[0]) for i, r in enumerate(rows) if len(r) < 2 or not ENSEMBL_GENE.match(r[0].strip())]
    if bad:
        raise DownloadError(
            f"{path}: {len(bad)} rows are not '<Ensembl gene id ENSG + 11 digits><TAB><gene name>', e.g. "
            f"(line, id) {bad[:5]}; fix or remove them before downloading"
        )
    if not rows:
        raise DownloadError(f"{path} lists no proteins")
    return [(r[0].strip(), r[1].strip().replace(".", "-")) for r in rows]


def _get(url: str, *, retries: int, backoff: float, timeout: float) -> bytes:
    """GET with retries (exponential backoff) on network errors and 5xx/429; 404 is not retried."""
    for attempt in range(retries + 1):
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "cellsight-pairedinpaint/1"})
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only
                return response.read()
        except urllib.error.HTTPError as err:
            if err.code not in (429, 500, 502, 503, 504) or attempt == retries:
                raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            if attempt == retries:
                raise DownloadError(f"{url}: {err}; check the network and run again (it resumes)") from err
        time.sleep(backoff * 2**attempt)
    raise DownloadError(f"{url}: gave up")  # pragma: no cover - loop always returns or raises


def image_urls(xml: bytes) -> list[str]:
    """The composite image URLs (text containing 'blue') of the human sub-assays of an HPA entry."""
    root = ET.fromstring(xml)  # noqa: S314 - the HPA's own XML; no entities are resolved by ElementTree
    urls = []
    for sub in root.iter("subAssay"):
        if sub.get("type") != "human":
            continue
        urls += [e.text.strip() for e in sub.iter("imageUrl") if e.text and "blue" in e.text]
    return urls


def _save(url: str, dest: Path, config: DownloadHpaConfig) -> bool:
    if dest.exists():
        return False
    data = _get(url, retries=config.retries, backoff=config.backoff, timeout=config.timeout)
    tmp = dest.with_name(dest.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(dest)
    return True


def download_hpa(config: DownloadHpaConfig, *, progress: bool = True) -> dict[str, object]:
    """Download every listed protein's composites; returns counts and the failures (also failures.tsv)."""
    from cellsight_shared.cli import progress as bar

    proteins = read_protein_list(config.protein_list)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    base = config.base_url.rstrip("/")
    failures: list[tuple[str, str]] = []
    jobs: list[tuple[str, Path]] = []
    with ThreadPoolExecutor(config.workers) as pool:

        def entry(item: tuple[str, str]) -> tuple[str, str, list[str] | str]:
            ensg, gene = item
            try:
                xml = _get(
                    f"{base}/{ensg}.xml",
                    retries=config.retries,
                    backoff=config.backoff,
                    timeout=config.timeout,
                )
                return ensg, gene, image_urls(xml)
            except (DownloadError, ET.ParseError) as err:
                return ensg, gene, str(err)

        for ensg, gene, result in bar(
            pool.map(entry, proteins), total=len(proteins), desc="HPA entries", disable=not progress
        ):
            if isinstance(result, str):
                failures.append((ensg, result))
                continue
            (out / gene).mkdir(exist_ok=True)
            jobs += [(url, out / gene / url.rsplit("/", 1)[-1]) for url in result]

        def fetch(job: tuple[str, Path]) -> tuple[str, bool | str]:
            try:
                return job[0], _save(job[0], job[1], config)
            except DownloadError as err:
                return job[0], str(err)

        new = 0
        for url, result in bar(
            pool.map(fetch, jobs), total=len(jobs), desc="HPA images", disable=not progress
        ):
            if isinstance(result, str):
                failures.append((url, result))
            else:
                new += int(result)
    if failures:
        (out / "failures.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in failures))
        logger.warning(
            "%d downloads failed (listed in %s); rerun to retry them", len(failures), out / "failures.tsv"
        )
    logger.info("%d images listed, %d downloaded now, %d already present", len(jobs), new, len(jobs) - new)
    return {"proteins": len(proteins), "images": len(jobs), "downloaded": new, "failures": failures}
