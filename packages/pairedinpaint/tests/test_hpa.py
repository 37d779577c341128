"""HPA pipeline: download against a local server, segment-and-crop on a synthetic composite, filter."""

import functools
import http.server
import threading

import numpy as np
import pytest
from PIL import Image

from pairedinpaint.config import CropConfig, DownloadHpaConfig, FilterConfig
from pairedinpaint.errors import DownloadError

GENE_A, GENE_B = "ENSG00000000003", "ENSG00000000005"


@pytest.fixture()
def hpa_server(tmp_path):
    """A miniature HPA on 127.0.0.1: two XML entries (one with two composites) and their JPEGs."""
    site = tmp_path / "site"
    (site / "images").mkdir(parents=True)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    )
    base = f"http://127.0.0.1:{server.server_address[1]}"
    rng = np.random.default_rng(0)
    entries = {GENE_A: ["1_A1_1", "1_A1_2"], GENE_B: ["2_B3_1"]}
    for gene, stems in entries.items():
        urls = "".join(f"<imageUrl>{base}/images/{s}_blue_red_green.jpg</imageUrl>" for s in stems)
        xml = (
            f'<proteinAtlas><entry><antibody><tissueExpression><subAssay type="human">{urls}'
            f"<imageUrl>{base}/images/{stems[0]}_red.jpg</imageUrl></subAssay></tissueExpression>"
            f'<subAssay type="mouse"><imageUrl>{base}/images/m_blue.jpg</imageUrl></subAssay>'
            "</antibody></entry></proteinAtlas>"
        )
        (site / f"{gene}.xml").write_text(xml)
        for s in stems:
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
                site / "images" / f"{s}_blue_red_green.jpg"
            )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()


def _protein_list(path, rows):
    path.write_text("Gene\tGene name\n" + "".join(f"{a}\t{b}\n" for a, b in rows))
    return path


def test_download_fetches_human_composites_and_resumes(tmp_path, hpa_server):
    from pairedinpaint.hpa.download import download_hpa

    plist = _protein_list(tmp_path / "proteins.txt", [(GENE_A, "TSPAN6"), (GENE_B, "TNMD")])
    config = DownloadHpaConfig(
        protein_list=plist, out=tmp_path / "hpa", base_url=hpa_server, workers=2, backoff=0
    )
    first = download_hpa(config, progress=False)
    assert (first["images"], first["downloaded"], first["failures"]) == (3, 3, [])
    assert sorted(p.name for p in (tmp_path / "hpa" / "TSPAN6").iterdir()) == [
        "1_A1_1_blue_red_green.jpg",
        "1_A1_2_blue_red_green.jpg",
    ]
    again = download_hpa(config, progress=False)
    assert (again["images"], again["downloaded"]) == (3, 0)


def test_ids_missing_on_the_server_are_reported_not_fatal(tmp_path, hpa_server):
    from pairedinpaint.hpa.download import download_hpa

    plist = _protein_list(tmp_path / "p.txt", [(GENE_A, "TSPAN6"), ("ENSG00000999999", "NONE")])
    result = download_hpa(
        DownloadHpaConfig(protein_list=plist, out=tmp_path / "o", base_url=hpa_server, retries=0),
        progress=False,
    )
    assert result["downloaded"] == 2
    assert result["failures"][0][0] == "ENSG00000999999" and "404" in result["failures"][0][1]
    assert "ENSG00000999999" in (tmp_path / "o" / "failures.tsv").read_text()


def test_malformed_ids_are_refused_before_any_request(tmp_path):
    from pairedinpaint.hpa.download import download_hpa

    plist = _protein_list(tmp_path / "p.txt", [(GENE_A, "TSPAN6"), ("TP53", "TP53")])
    config = DownloadHpaConfig(protein_list=plist, out=tmp_path / "o", base_url="http://127.0.0.1:9")
    with pytest.raises(DownloadError, match=r"\(line, id\) \[\(3, 'TP53'\)\]"):
        download_hpa(config, progress=False)
    assert not (tmp_path / "o").exists()


def _composite(path, centres, size=512):
    """An RGB composite with bright round nuclei in blue at ``centres`` (full-resolution px)."""
    yy, xx = np.mgrid[:size, :size]
    image = np.zeros((size, size, 3), np.uint8)
    for cy, cx in centres:
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 < 40**2
        image[disk, 2] = 220
        image[disk, 1] = 120
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < 70**2, 0] = 90
    Image.fromarray(image).save(path, quality=95)


def test_segment_and_crop_finds_nuclei_crops_128_and_resumes(tmp_path):
    from pairedinpaint.hpa.crop import segment_and_crop

    gene = tmp_path / "images" / "TSPAN6"
    gene.mkdir(parents=True)
    # 1024 px -> 256 px at 1/4: nuclei at (512, 512) and (300, 700) fit a 128-px crop, the one at
    # (60, 60) touches the border and is cleared.
    _composite(gene / "1_A1_1_blue_red_green.jpg", [(512, 512), (300, 700), (10, 10)], size=1024)
    config = CropConfig(images=tmp_path / "images", out=tmp_path / "cells")
    assert segment_and_crop(config, progress=False) == 2
    folder = tmp_path / "cells" / "TSPAN6_1_A1"
    import tifffile

    blue = sorted(folder.glob("*_blue.tif"))
    assert len(blue) == 2 and all(len(list(folder.glob(p.name.replace("_blue", "_*")))) == 3 for p in blue)
    crop = tifffile.imread(blue[0])
    assert crop.shape == (128, 128) and crop.dtype == np.float32
    assert crop[64, 64] > 0.7 and crop[0, 0] < 0.1
    assert segment_and_crop(config, progress=False) == 0  # rerun skips finished images


def test_filter_keeps_directories_with_enough_cells(tmp_path):
    from pairedinpaint.data import write_layout
    from pairedinpaint.hpa.filter import filter_directories

    write_layout(tmp_path / "d", np.random.rand(9, 3, 64, 64), ["A"] * 6 + ["B"] * 3, layout="human")
    kept, removed = filter_directories(FilterConfig(data=tmp_path / "d", out=tmp_path / "f", layout="human"))
    assert (kept, removed) == (["A"], ["B"])
    assert (tmp_path / "f" / "A").is_symlink() and not (tmp_path / "f" / "B").exists()
    assert (tmp_path / "d" / "B").is_dir()  # the input is never touched
