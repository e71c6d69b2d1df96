"""The repository's units depend on each other one way: the program imports none of the tools built around it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNITS = {"infra", "plan", "pipeline", "policy", "localcloud", "tests", "benchmarks"}

# unit (folder, or a single file) -> the units its modules may import
ALLOWED = {
    "__main__.py": {"infra"},
    "infra": {"infra"},
    "plan": {"infra", "plan"},
    "pipeline": {"infra", "pipeline"},
    # The pack runs in its own virtualenv, which has none of this repository (its rules import their sibling module
    # `policies` by file path, not as a package).
    "policy": set(),
    # The local cloud stands in for Alibaba Cloud: like the real one, it knows nothing of the program.
    "localcloud": {"localcloud"},
}


def repo_imports(path: Path) -> dict[str, int]:
    """This repository's units that a Python file imports, each with the line of its first import."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in UNITS:
                found.setdefault(top, node.lineno)
    return found


def _files(unit: str) -> list[Path]:
    path = ROOT / unit
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


@pytest.mark.parametrize("unit", sorted(ALLOWED))
def test_unit_imports_only_what_it_may(unit: str) -> None:
    assert _files(unit), f"{unit} has no Python files: the layout table is out of date"
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {imported}"
        for path in _files(unit)
        for imported, line in repo_imports(path).items()
        if imported not in ALLOWED[unit]
    ]
    assert not wrong, f"{unit} may import only {sorted(ALLOWED[unit]) or 'nothing of this repository'}: {wrong}"


def test_an_import_against_the_direction_is_found(tmp_path: Path) -> None:
    program_file = tmp_path / "network.py"
    program_file.write_text("import os\nimport pulumi\n\nfrom plan.offline import evaluate\nimport pipeline.oss\n")
    assert repo_imports(program_file) == {"plan": 4, "pipeline": 5}


def test_every_top_level_python_unit_is_in_the_table() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages <= set(ALLOWED), f"packages without a rule in ALLOWED: {sorted(packages - set(ALLOWED))}"
