"""The real download code against a miniature copy served on 127.0.0.1 (resume included)."""

import zipfile

import pytest

from impartial.download import DATASETS, download
from impartial.errors import DataError


def test_download_and_extract_with_resume(tmp_path):
    """An interrupted first response is resumed; the zip is extracted next to it."""
    from cellsight_shared.testing import serve_directory

    served = tmp_path / "served"
    archive = served / DATASETS["vectra_2ch"]["path"]
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("image0.tif", b"x" * 5000)
        zf.writestr("labels/final/image0.zip", b"y" * 100)
    from cellsight_shared.errors import DownloadError

    with serve_directory(served, truncate_first=1000) as url:
        with pytest.raises(DownloadError, match="resume"):
            download("vectra_2ch", tmp_path / "dest", base_url=url, progress=False)
        assert (tmp_path / "dest" / "vectra_2ch_tiff.zip.part").stat().st_size == 1000
        folder = download("vectra_2ch", tmp_path / "dest", base_url=url, progress=False)
    assert (folder / "image0.tif").read_bytes() == b"x" * 5000
    assert (folder / "labels" / "final" / "image0.zip").is_file()


def test_unknown_name_is_refused(tmp_path):
    """A name outside the registry is a clear error listing the choices."""
    with pytest.raises(DataError, match="vectra_2ch"):
        download("nope", tmp_path)
