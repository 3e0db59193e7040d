"""Layering: core packages never import the web layer or the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "crossbeat"
CORE = [
    "model.py",
    "clock.py",
    "agencies.py",
    "taxonomy",
    "geo",
    "ingest",
    "store",
    "auth",
    "audit",
    "sharing",
    "vault",
]
FORBIDDEN = (
    "crossbeat.api",
    "crossbeat.web",
    "crossbeat.cli",
    "click",
    "fastapi",
    "starlette",
    "jinja2",
)


def _modules() -> list[Path]:
    files: list[Path] = []
    for entry in CORE:
        path = PACKAGE / entry
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(sorted(path.rglob("*.py")))
    return files


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_module_does_not_import_adapters(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"
