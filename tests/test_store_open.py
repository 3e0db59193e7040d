"""``open_store``: the one way the CLI, the API and the tests open a store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from crossbeat.store import StoreError, open_store
from crossbeat.store.base import close_all


def test_create_false_never_creates_a_database(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(StoreError, match=f"no database at {missing}"):
        open_store(f"sqlite:///{missing}", create=False)
    assert list(tmp_path.iterdir()) == []


def test_create_false_opens_an_existing_database_without_migrating(db_url: str) -> None:
    made = open_store(db_url)
    again = open_store(db_url, create=False)
    assert again.current_revision() == made.head_revision()


def test_create_false_refuses_a_database_behind_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    open_store(f"sqlite:///{path}")
    close_all()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    with pytest.raises(StoreError, match="crossbeat db upgrade"):
        open_store(f"sqlite:///{path}", create=False)
    close_all()


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    for create in (True, False):
        with pytest.raises(StoreError, match="not a CrossBeat database"):
            open_store(f"sqlite:///{path}", create=create)
        close_all()
    assert path.read_text(encoding="utf-8") == "a,b\n1,2\n"
