"""tools/new_package.py makes a package that meets the layout contract and whose CLI runs."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
from new_package import create_package  # noqa: E402


def test_template_package_has_the_required_layout_and_a_working_cli(tmp_path):
    """The generated package has every required file and `python -m <name> --version` works."""
    (tmp_path / "packages").mkdir()
    dest = create_package("demopkg", framework="torch", description="A test package.", root=tmp_path)
    for name in ("pyproject.toml", "README.md", "CHANGELOG.md", "tests/test_cli.py", "src/demopkg/py.typed"):
        assert (dest / name).exists(), name
    for module in ("__init__", "__main__", "cli", "config", "errors"):
        assert (dest / "src" / "demopkg" / f"{module}.py").exists()
    text = (dest / "pyproject.toml").read_text()
    assert '"torch>=2.2"' in text and "cellsight-shared @ {root:parent:parent:uri}/shared" in text
    env_path = f"{dest / 'src'}:{ROOT / 'shared' / 'src'}"
    result = subprocess.run(
        [sys.executable, "-m", "demopkg", "--version"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path},
    )
    assert result.returncode == 0, result.stderr
    suite = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(dest / "tests")],
        capture_output=True,
        text=True,
        cwd=dest,
        env={"PYTHONPATH": env_path},
    )
    assert suite.returncode == 0, suite.stdout[-2000:]
    assert "3 passed" in suite.stdout
    with pytest.raises(FileExistsError):
        create_package("demopkg", framework="torch", description="again", root=tmp_path)
