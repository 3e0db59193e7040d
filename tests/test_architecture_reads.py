"""One way to read incidents: only the sharing package (and the store's own writers) may.

Every route, export, analysis and stream must read incidents through
``crossbeat.sharing.reads``, which applies the sharing policy and writes the audit log
(issue #3). This test walks the syntax tree of every module outside the packages that
own the incident tables and fails on any reference to those tables: importing them from
the schema, reaching them as ``schema.<table>`` or ``metadata.tables[...]``, naming them
in SQL text, or importing the unfiltered helpers of ``crossbeat.store.reads``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "crossbeat"

#: Packages and modules that own, write or govern the incident tables.
ALLOWED = (
    "sharing/",
    "store/",
    "ingest/",
    "vault/",
    "taxonomy/coverage.py",
    "agencies.py",
)
TABLES = {
    "incidents",
    "incident_personal",
    "incident_offences",
    "incident_jurisdictions",
    "incident_areas",
    "incident_versions",
}
#: Imports of ``crossbeat.store.reads`` that never show records to anyone, with why.
STORE_READS_EXCEPTIONS = {
    # Whether a demo database is already built (a count, shown to the operator only).
    "demo/build.py": {"count_incidents"},
}
_SQL = re.compile(
    r"\b(from|join|into|update|table|truncate)\s+\"?(" + "|".join(sorted(TABLES)) + r")\b",
    re.IGNORECASE,
)


def _modules() -> list[Path]:
    return [
        p
        for p in sorted(PACKAGE.rglob("*.py"))
        if not str(p.relative_to(PACKAGE)).startswith(ALLOWED)
    ]


def problems(path: Path, rel: str) -> list[str]:
    """Return every reference to the incident tables in a module (``rel``: its name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "crossbeat.store.schema":
            found += [f"imports {a.name}" for a in node.names if a.name in TABLES or a.name == "*"]
        if isinstance(node, ast.ImportFrom) and node.module == "crossbeat.store.reads":
            names = {a.name for a in node.names}
            extra = names - STORE_READS_EXCEPTIONS.get(rel, set())
            if extra:
                found.append(f"imports {sorted(extra)} from crossbeat.store.reads")
        if isinstance(node, ast.Import):
            found += [f"imports {a.name}" for a in node.names if a.name == "crossbeat.store.reads"]
        if isinstance(node, ast.Attribute) and node.attr in TABLES:
            found.append(f"uses .{node.attr} (line {node.lineno})")
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and node.slice.value in TABLES
        ):
            found.append(f"looks up table {node.slice.value!r} (line {node.lineno})")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _SQL.search(node.value):
                found.append(f"names an incident table in SQL text (line {node.lineno})")
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Table":
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and first.value in TABLES:
                found.append(f"reflects table {first.value!r} (line {node.lineno})")
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_reads_incidents_only_through_the_sharing_policy(path: Path) -> None:
    assert problems(path, str(path.relative_to(PACKAGE))) == [], (
        f"{path.relative_to(PACKAGE)} reads incidents around the sharing policy; "
        "use crossbeat.sharing.reads (read_incidents, aggregate, read_detail, LiveStream)"
    )


def test_the_check_catches_each_way_around_the_policy(tmp_path: Path) -> None:
    bad = tmp_path / "probe.py"
    bad.write_text(
        "from crossbeat.store.schema import incidents\n"
        "from crossbeat.store import schema\n"
        "from crossbeat.store.reads import get_incident\n"
        "x = schema.incident_personal\n"
        "y = schema.metadata.tables['incident_offences']\n"
        "z = 'SELECT * FROM incidents WHERE 1=1'\n",
        encoding="utf-8",
    )
    found = problems(bad, "api/routes/probe.py")
    assert len(found) == 5, found
