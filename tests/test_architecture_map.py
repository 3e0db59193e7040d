"""docs/architecture.md's package table says what each package imports: check it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "crossbeat"
DOC = ROOT / "docs" / "architecture.md"
#: Entry points that are not packages of the map.
NOT_MAPPED = {"__init__", "__main__"}


def _unit(path: Path) -> str:
    first = path.relative_to(PACKAGE).parts[0]
    return first.removesuffix(".py")


def actual_edges() -> dict[str, set[str]]:
    """Return, for each top-level module or package, the others it imports."""
    units = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.suffix == ".py" or (
        p.is_dir() and (p / "__init__.py").exists())}  # fmt: skip
    edges: dict[str, set[str]] = {u: set() for u in units - NOT_MAPPED}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        src = _unit(path)
        if src in NOT_MAPPED:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                if parts[0] == "crossbeat" and len(parts) > 1 and parts[1] != src:
                    edges[src].add(parts[1])
    return edges


def documented_edges() -> dict[str, set[str]]:
    """Return the package table of docs/architecture.md as unit -> dependencies."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| `crossbeat/([a-z_]+)(?:\.py|/)` \|.*\| ([^|]+) \|$", line)
        if not m:
            continue
        deps = re.sub(r"\([^)]*\)", "", m.group(2)).strip()
        rows[m.group(1)] = (
            set() if deps == "nothing" else {d.strip() for d in deps.split(",") if d.strip()}
        )
    return rows


def test_every_package_has_a_row() -> None:
    assert set(documented_edges()) == set(actual_edges())


def test_depends_on_matches_the_imports() -> None:
    documented, actual = documented_edges(), actual_edges()
    wrong = {
        unit: {"documented": sorted(documented[unit]), "imports": sorted(actual[unit])}
        for unit in actual
        if unit in documented and documented[unit] != actual[unit]
    }
    assert not wrong, f"docs/architecture.md 'depends on' differs from the imports: {wrong}"
