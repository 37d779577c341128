"""Test helpers: find the real test data, and serve files over HTTP on 127.0.0.1.

The real data lives outside the repository, in ``$CELLSIGHT_TEST_DATA`` or by default
``../shared/data`` beside the project root. Tests that need it skip with a reason when absent.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["find_repo_root", "require_test_data", "serve_directory", "test_data_dir"]

ENV_VAR = "CELLSIGHT_TEST_DATA"


def find_repo_root(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The cellsight repository root above ``start`` (default: the working directory), if any."""
    here = Path(start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "shared" / "pyproject.toml").is_file() and (candidate / "packages").is_dir():
            return candidate
    return None


def test_data_dir() -> Path | None:
    """The real test-data folder, or None when it is not present on this machine."""
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env)
        return path if path.is_dir() else None
    for start in (Path.cwd(), Path(__file__).parent):
        root = find_repo_root(start)
        if root is not None and (root.parent / "shared" / "data").is_dir():
            return root.parent / "shared" / "data"
    return None


test_data_dir.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def require_test_data(*parts: str) -> Path:
    """Path of a real fixture under the test-data folder; skips the calling test when absent."""
    import pytest

    base = test_data_dir()
    if base is None:
        pytest.skip(f"real test data not found (set {ENV_VAR} or place it at ../shared/data)")
    path = base.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real test data {path} not found")
    return path


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single-range ``Range`` support; optionally cut the first transfer short."""

    truncate_first: int | None = None
    served: set[str]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # keep test output clean

    def send_head(self):  # noqa: ANN201 - stdlib signature
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404, "not found")
            return None
        size = path.stat().st_size
        start, end = 0, size - 1
        header = self.headers.get("Range")
        if header and header.startswith("bytes="):
            first, _, last = header[6:].partition("-")
            start = int(first) if first else 0
            end = int(last) if last else size - 1
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.end_headers()
                return None
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        length = end - start + 1
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        handle = open(path, "rb")  # noqa: SIM115 - closed by copyfile below
        handle.seek(start)
        limit = length
        if self.truncate_first is not None and self.path not in self.served:
            self.served.add(self.path)
            limit = min(length, self.truncate_first)
        self._limit = limit
        return handle

    def copyfile(self, source, outputfile) -> None:  # noqa: ANN001 - stdlib signature
        try:
            outputfile.write(source.read(self._limit))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up; that is what some tests do on purpose
        finally:
            source.close()
        if self._limit is not None:
            self.close_connection = True


@contextlib.contextmanager
def serve_directory(root: str | os.PathLike[str], *, truncate_first: int | None = None) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 (a free port) and yield its base URL, e.g. ``http://127.0.0.1:PORT``.

    With ``truncate_first=N`` the first response for each path stops after N bytes, which lets a
    test exercise the resume of an interrupted download.
    """
    handler = type("Handler", (_RangeHandler,), {"truncate_first": truncate_first, "served": set()})
    factory = functools.partial(handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), factory)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
