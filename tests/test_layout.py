"""Every package has the files and metadata the conventions (../shared/CONVENTIONS.md) name."""

from __future__ import annotations

from conftest import PACKAGES, ROOT, dist_name, project_table

REQUIRED_FILES = ("pyproject.toml", "README.md", "CHANGELOG.md", "tests")
REQUIRED_MODULES = ("__init__", "__main__", "cli", "config", "errors")


def test_repository_has_the_design_card_layout():
    """The top level holds what the design card lists."""
    for name in (
        "packages",
        "shared",
        "tools",
        "tests",
        "Makefile",
        "README.md",
        "pyproject.toml",
        "noxfile.py",
    ):
        assert (ROOT / name).exists(), name
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_package_has_required_files(package):
    """pyproject, README, CHANGELOG, tests/, src/<name>/ with py.typed and the core modules."""
    pkg = ROOT / "packages" / package
    for name in REQUIRED_FILES:
        assert (pkg / name).exists(), f"packages/{package} lacks {name}"
    src = pkg / "src" / package
    assert (src / "py.typed").exists()
    for module in REQUIRED_MODULES:
        assert (src / f"{module}.py").exists() or (src / module / "__init__.py").exists(), (
            f"packages/{package}/src/{package} lacks {module}.py"
        )
    assert list((pkg / "tests").glob("test_*.py")), f"packages/{package}/tests has no tests"


def test_package_metadata_names_its_console_script_and_shared_dependency(package):
    """The console script is the package name and the shared library comes from the repository."""
    project = project_table(ROOT / "packages" / package)
    assert project["name"] == package
    assert project["scripts"][package] == f"{package}.cli:main"
    shared = [d for d in project["dependencies"] if dist_name(d) == "cellsight-shared"]
    assert shared == ["cellsight-shared @ {root:parent:parent:uri}/shared"]
    assert "test" in project.get("optional-dependencies", {})


def test_no_package_pins_a_torch_other_than_the_ci_one():
    """Torch is never pinned to another version (that would pull CUDA wheels); CI pins 2.13.0."""
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text()
    for package in PACKAGES:
        for dep in project_table(ROOT / "packages" / package)["dependencies"]:
            if dist_name(dep) == "torch":
                assert "==" not in dep or "2.13.0" in dep, dep
