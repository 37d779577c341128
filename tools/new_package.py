"""Create a new method package under packages/ from tools/package_template/.

    python tools/new_package.py protloc --framework torch --description "Protein localisation ..."

The result has every file the conventions name and a CLI that answers --version; the root
contract tests and nox pick it up without further edits.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = Path(__file__).resolve().parent / "package_template"
FRAMEWORK_DEPS = {
    "torch": ['"torch>=2.2"'],
    "tensorflow": ['"tensorflow>=2.16"'],
    "keras": ['"keras>=3"', '"tensorflow>=2.16"'],
    "none": [],
}


def render(text: str, values: dict[str, str]) -> str:
    """Replace every {{key}} in ``text``."""
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def create_package(name: str, *, framework: str, description: str, root: Path = ROOT) -> Path:
    """Write packages/<name> from the template and return its folder; refuses to overwrite."""
    if not name.isidentifier() or name != name.lower():
        raise ValueError(f"package name must be a lower-case Python identifier, got {name!r}")
    if framework not in FRAMEWORK_DEPS:
        raise ValueError(f"framework must be one of {sorted(FRAMEWORK_DEPS)}, got {framework!r}")
    dest = root / "packages" / name
    if dest.exists():
        raise FileExistsError(f"{dest} already exists; choose another name")
    values = {
        "name": name,
        "Name": name.capitalize(),
        "description": description,
        "framework_deps": "".join(f"    {d},\n" for d in FRAMEWORK_DEPS[framework]),
    }
    for source in sorted(TEMPLATE.rglob("*.tmpl")):
        relative = source.relative_to(TEMPLATE).with_suffix("")
        target = dest / Path(*[name if part == "NAME" else part for part in relative.parts])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(source.read_text(), values))
    (dest / "scripts").mkdir(exist_ok=True)
    return dest


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Create a new cellsight method package.")
    parser.add_argument("name")
    parser.add_argument("--framework", choices=sorted(FRAMEWORK_DEPS), required=True)
    parser.add_argument("--description", required=True)
    args = parser.parse_args(argv)
    dest = create_package(args.name, framework=args.framework, description=args.description)
    print(f"created {dest.relative_to(ROOT)}; next: fill in config.py, the modules and their tests")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
