"""Import rules: no method package imports another; the shared library imports no framework."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import FRAMEWORKS, PACKAGES, ROOT

SHARED_SRC = ROOT / "shared" / "src" / "cellsight_shared"
METHOD_NAMES = ("isl", "pairedinpaint", "impartial", "incasem", "protloc")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) for every import statement in a file, including nested ones."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_shared_library_imports_no_framework_and_no_method_package():
    """cellsight_shared stays framework-free so every package can depend on it."""
    offences = []
    for path in SHARED_SRC.rglob("*.py"):
        for line, module in imported_modules(path):
            if module.split(".")[0] in FRAMEWORKS + METHOD_NAMES:
                offences.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert offences == []


@pytest.mark.parametrize("package", PACKAGES)
def test_method_package_imports_no_sibling_and_no_private_shared_name(package):
    """A method package imports cellsight_shared's public modules and itself, never a sibling."""
    offences = []
    for path in (ROOT / "packages" / package).rglob("*.py"):
        if ".nox" in path.parts:
            continue
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            if top in METHOD_NAMES and top != package:
                offences.append(f"{path.relative_to(ROOT)}:{line} imports sibling {module}")
            if top == "cellsight_shared" and any(p.startswith("_") for p in module.split(".")[1:]):
                offences.append(f"{path.relative_to(ROOT)}:{line} imports private {module}")
    assert offences == []
