"""The house: where each part of incasem lives, so the way of a prediction reads top to bottom."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import incasem

SRC = Path(incasem.__file__).parent


def test_predict_init_holds_public_names_only():
    tree = ast.parse((SRC / "predict" / "__init__.py").read_text(encoding="utf-8"))
    defined = [
        n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
    ]
    assert defined == []
    predict = importlib.import_module("incasem.predict")
    assert set(predict.__all__) == {
        "EntryPlan",
        "PredictionPlan",
        "WorkerJob",
        "block_begins",
        "block_window",
        "plan_prediction",
        "predict",
    }


def test_the_plan_lives_in_plan_py_and_the_run_in_its_own_module():
    from incasem.predict import PredictionPlan, plan_prediction, predict

    assert PredictionPlan.__module__ == "incasem.predict.plan"
    assert plan_prediction.__module__ == "incasem.predict.plan"
    assert predict.__module__ == "incasem.predict.run"


def test_the_two_daisy_runners_are_named_for_what_they_do():
    assert importlib.util.find_spec("incasem.blockwise") is None
    assert importlib.util.find_spec("incasem.predict.blockwise") is None
    from incasem.predict.scheduler import run_entry
    from incasem.volume_blocks import run_volume_blocks

    assert callable(run_entry) and callable(run_volume_blocks)
