"""One way to read incidents: only the sharing policy reads them; only the write path writes.

Every route, export, analysis, report and stream must read incidents through
``crossbeat.sharing`` (``reads``, ``streams``, ``preview``, ``coverage``), which applies
the sharing policy and writes the audit log (issues #3 and #6). This test walks the
syntax tree of every other module and fails on any reference to the incident tables:
importing them from the schema, reaching them as ``schema.<table>`` or
``metadata.tables[...]``, naming them in SQL text, or importing
``crossbeat.store.reads`` (removed: its unaudited reads live in ``tests/read_support.py``).

The only other modules allowed to touch the tables are the write path, listed one by
one in :data:`WRITE_PATH`; :func:`test_the_allow_list_holds_only_the_write_path` checks
that each of them is in a write-path package, still touches the tables, and writes.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "crossbeat"

#: The policy choke point: the one read path, which audits every read.
POLICY = "sharing/"
#: The write path: every other module that may touch the incident tables, with why.
WRITE_PATH = {
    "store/schema.py": "defines the incident tables",
    "store/migrations/": "creates and changes the tables (Alembic)",
    "ingest/writes.py": "stores chunks: new records, versions, withdrawals, expunges",
    "store/tags.py": "re-tags incidents with the jurisdictions that contain them",
    "store/areas.py": "tags incidents with the areas of a layer that contain them",
    "store/spatial.py": "keeps the spatial index of live incidents (R*Tree triggers, GiST), "
    "the box condition the sharing reads add, and clears derived local times",
    "vault/tables.py": "indexes the sealed personal-data rows by key",
    "vault/sealed.py": "re-seals personal-data rows under a new key (rotation)",
}
#: The packages the write path may live in.
WRITE_PACKAGES = ("store/", "ingest/", "vault/")
ALLOWED = (POLICY, *WRITE_PATH)
TABLES = {
    "incidents",
    "incident_personal",
    "incident_offences",
    "incident_jurisdictions",
    "incident_areas",
    "incident_versions",
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


def _docstrings(tree: ast.AST) -> set[int]:
    """Return the ids of the docstring nodes (prose may say "stored into incidents")."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def problems(path: Path, rel: str) -> list[str]:
    """Return every reference to the incident tables in a module (``rel``: its name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    prose = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "crossbeat.store.schema":
            found += [f"imports {a.name}" for a in node.names if a.name in TABLES or a.name == "*"]
        if isinstance(node, ast.ImportFrom) and node.module == "crossbeat.store.reads":
            found.append(f"imports {sorted(a.name for a in node.names)} from crossbeat.store.reads")
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
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
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
        "use crossbeat.sharing.reads (read_incidents, aggregate, read_detail, LiveStream); "
        "a test that must see stored rows as they are uses tests/read_support.py"
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


#: Calls that write rows or define tables: an allowed module must make at least one.
_WRITES = {"insert", "update", "delete", "upsert", "Table", "Index", "seal_fields"}


def _writes(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = getattr(func, "value", None)
            if name in _WRITES or (isinstance(owner, ast.Name) and owner.id == "op"):
                return True
    return False


def _allowed_files(entry: str) -> list[Path]:
    path = PACKAGE / entry
    return sorted(path.rglob("*.py")) if entry.endswith("/") else [path]


@pytest.mark.parametrize("entry", sorted(WRITE_PATH))
def test_the_allow_list_holds_only_the_write_path(entry: str) -> None:
    assert entry.startswith(WRITE_PACKAGES), f"{entry} is not in a write-path package"
    files = _allowed_files(entry)
    assert files and all(f.is_file() for f in files), f"{entry} does not exist"
    touching = [f for f in files if problems(f, str(f.relative_to(PACKAGE)))]
    assert touching, f"{entry} no longer touches the incident tables: remove it from WRITE_PATH"
    for f in touching:
        rel = f.relative_to(PACKAGE)
        assert _writes(ast.parse(f.read_text(encoding="utf-8"))), (
            f"{rel} touches the incident tables but writes nothing: it is a read, so it "
            "belongs in crossbeat.sharing (audited), not in the write path"
        )


def test_the_allow_list_is_small_and_names_modules() -> None:
    # Whole packages are not allowed (they once were: sharing/, store/, ingest/, vault/,
    # taxonomy/coverage.py and agencies.py); each module is named with why.
    assert len(WRITE_PATH) <= 8
    assert all(e.endswith(".py") or e == "store/migrations/" for e in WRITE_PATH)
    assert not any(e.startswith(("taxonomy/", "agencies.py", "demo/", "api/")) for e in ALLOWED)


def test_the_write_check_tells_a_read_from_a_write() -> None:
    read = ast.parse("from crossbeat.store.schema import incidents\nq = select(incidents)\n")
    write = ast.parse("from crossbeat.store.schema import incidents\nq = update(incidents)\n")
    assert not _writes(read) and _writes(write)
