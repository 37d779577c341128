"""Provenance records and the test-data locator."""

from __future__ import annotations

import json

from cellsight_shared import testing
from cellsight_shared.provenance import write_run_info


def test_run_info_records_version_config_and_seed(tmp_path):
    """run_info.json holds the package version, the config and the seed."""
    path = write_run_info(tmp_path / "run", package="cellsight-shared", config={"lr": 1e-4}, seed=3)
    info = json.loads(path.read_text())
    assert info["package"] == "cellsight-shared"
    assert info["version"] != "unknown"
    assert info["config"] == {"lr": 1e-4}
    assert info["seed"] == 3
    assert info["created_utc"].endswith("+00:00")


def test_test_data_dir_follows_the_environment_variable(tmp_path, monkeypatch):
    """CELLSIGHT_TEST_DATA wins; a missing folder means no test data."""
    monkeypatch.setenv("CELLSIGHT_TEST_DATA", str(tmp_path))
    assert testing.test_data_dir() == tmp_path
    monkeypatch.setenv("CELLSIGHT_TEST_DATA", str(tmp_path / "absent"))
    assert testing.test_data_dir() is None


def test_find_repo_root_from_a_subfolder(tmp_path):
    """The repository root is found from any folder below it."""
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "pyproject.toml").write_text("")
    (tmp_path / "packages" / "x" / "src").mkdir(parents=True)
    assert testing.find_repo_root(tmp_path / "packages" / "x" / "src") == tmp_path
