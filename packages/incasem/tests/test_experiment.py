"""sacred run records: file and SQLite observers, MongoDB through mongomock, secrets redacted."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import BaseModel

from incasem.errors import ConfigError, IncasemError
from incasem.experiment import mongo_url_with_password, redact_url, run_experiment


class _Config(BaseModel):
    seed: int = 3
    lr: float = 0.5


def _main(run):
    for step in range(3):
        run.log_scalar("loss", 1.0 / (step + 1), step)
    run.info["answer"] = 42
    return run.id


def test_file_observer_records_config_metrics_and_status(tmp_path):
    run_id = run_experiment("demo", _Config(), _main, run_dir=tmp_path)
    record = tmp_path / "sacred" / str(run_id)
    assert json.loads((record / "config.json").read_text())["lr"] == 0.5
    assert json.loads((record / "metrics.json").read_text())["loss"]["values"] == [1.0, 0.5, 1 / 3]
    assert json.loads((record / "run.json").read_text())["status"] == "COMPLETED"
    assert json.loads((record / "info.json").read_text())["answer"] == 42
    assert run_experiment("demo", _Config(), _main, run_dir=tmp_path) == run_id + 1


def test_sqlite_observer_records_the_run(tmp_path):
    import sqlite3

    run_experiment("demo", _Config(), _main, run_dir=tmp_path, observer="sqlite")
    with sqlite3.connect(tmp_path / "sacred.sqlite") as db:
        assert db.execute("select status from run").fetchone() == ("COMPLETED",)


def test_failures_propagate_and_mark_the_run_failed(tmp_path):
    def broken(run):
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_experiment("demo", _Config(), broken, run_dir=tmp_path)
    run = json.loads((tmp_path / "sacred" / "1" / "run.json").read_text())
    assert run["status"] == "FAILED"


def test_mongo_observer_records_runs_and_metrics_via_mongomock(tmp_path):
    import mongomock
    import mongomock.gridfs
    import pymongo

    mongomock.gridfs.enable_gridfs_integration()
    with mongomock.patch(servers=(("localhost", 27017),)):
        run_experiment(
            "demo",
            _Config(),
            _main,
            run_dir=tmp_path,
            observer="none",
            mongo_url="mongodb://localhost:27017",
            mongo_db="incasem_trainings",
        )
        db = pymongo.MongoClient("mongodb://localhost:27017")["incasem_trainings"]
        run = db.runs.find_one()
        assert run["status"] == "COMPLETED"
        assert run["config"]["lr"] == 0.5 and run["config"]["seed"] == 3
        assert db.metrics.find_one({"name": "loss"})["values"] == [1.0, 0.5, 1 / 3]
    assert not (tmp_path / "sacred").exists()


def test_unreachable_mongo_is_an_error_without_the_password(tmp_path):
    start = time.monotonic()
    with pytest.raises(IncasemError) as info:
        run_experiment(
            "demo",
            _Config(),
            _main,
            run_dir=tmp_path,
            observer="none",
            mongo_url="mongodb://alice:hunter2@127.0.0.1:9/",
            mongo_timeout_ms=300,
        )
    assert "hunter2" not in str(info.value)
    assert "alice:***@127.0.0.1:9" in str(info.value)
    assert time.monotonic() - start < 30


def test_redact_url_hides_only_the_password():
    assert redact_url("mongodb://bob:s3cr%40t@db.example:27017/x?authSource=admin") == (
        "mongodb://bob:***@db.example:27017/x?authSource=admin"
    )
    assert redact_url("mongodb://db.example:27017") == "mongodb://db.example:27017"


def test_password_comes_from_the_environment():
    url = mongo_url_with_password("mongodb://bob@db:27017/", env={"INCASEM_MONGO_PASSWORD": "p@ss"})
    assert url == "mongodb://bob:p%40ss@db:27017/"
    with pytest.raises(ConfigError, match="mongodb://"):
        mongo_url_with_password("http://db:27017")
