"""pyproject.toml declares what the code uses, and only that (issue 6)."""

from __future__ import annotations

import ast
import re
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "crossbeat"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
#: Dependencies used without an import of their own, and why.
NOT_IMPORTED = {
    "psycopg": "SQLAlchemy's PostgreSQL driver, loaded from postgresql+psycopg:// URLs",
    "httptools": "uvicorn's HTTP parser, chosen by uvicorn when installed (crossbeat serve)",
    "uvloop": "uvicorn's event loop, chosen by uvicorn when installed (crossbeat serve)",
    "python-multipart": "FastAPI's form parser for multipart uploads (POST /api/v1/uploads)",
    "wordllama": "its embedding files are read without importing it "
    "(crossbeat.taxonomy.narrative_model: the import changes the logging setup)",
}


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9_.\-]+", requirement)
    assert match, requirement
    return match.group(0).lower().replace("_", "-")


def _imported_top_levels() -> set[str]:
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found


def test_every_runtime_dependency_is_used() -> None:
    by_dist: dict[str, set[str]] = {}
    for module, dists in packages_distributions().items():
        for dist in dists:
            by_dist.setdefault(dist.lower().replace("_", "-"), set()).add(module)
    imported = _imported_top_levels()
    project = PYPROJECT["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["postgres"]]
    unused = [
        name
        for name in map(_name, declared)
        if name not in NOT_IMPORTED and not by_dist.get(name, {name.replace("-", "_")}) & imported
    ]
    assert not unused, f"declared but never imported by crossbeat: {unused}"


def test_package_data_names_existing_folders() -> None:
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["crossbeat"]
    for pattern in patterns:
        folder = pattern.rsplit("/", 1)[0] if "/" in pattern else ""
        if folder and "*" not in folder:
            assert (PACKAGE / folder).is_dir(), f"package data {pattern!r}: no folder {folder}"
        assert next(PACKAGE.glob(pattern), None) is not None or pattern.startswith("**/"), pattern


def test_make_test_runs_the_doctests_and_mypy() -> None:
    options = PYPROJECT["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in options["addopts"] and "crossbeat" in options["testpaths"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "$(BIN)/mypy" in lint and "\ntest: install lint" in makefile
    assert PYPROJECT["tool"]["mypy"]["files"] == ["crossbeat"]
