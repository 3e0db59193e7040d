"""SQLite overrides: WAL, foreign keys, and SQLite's upsert syntax."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, create_engine, event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url

from crossbeat.store.base import Store, StoreError


class SQLiteStore(Store):
    """The embedded store: one file, no server, WAL journal."""

    dialect = "sqlite"

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        """Create the engine for a ``sqlite:///`` URL, creating the parent folder."""
        database = make_url(url).database
        if database and database != ":memory:":
            parent = Path(database).expanduser().resolve().parent
            if not parent.is_dir():
                raise StoreError(f"folder {parent} does not exist: create it first")
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Autocommit mode for the pragmas, then SQLAlchemy manages transactions.
            cur = dbapi_conn.cursor()
            if database != ":memory:":
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return cls(engine, url)

    def insert_ignore(self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Insert rows with ``ON CONFLICT DO NOTHING``."""
        if rows:
            conn.execute(sqlite_insert(table).on_conflict_do_nothing(), list(rows))

    def upsert(
        self,
        conn: Connection,
        table: Table,
        rows: Sequence[dict[str, Any]],
        keys: Sequence[str],
        update: Sequence[str],
    ) -> None:
        """Insert rows with ``ON CONFLICT (keys) DO UPDATE``."""
        if not rows:
            return
        stmt = sqlite_insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in update}
        )
        conn.execute(stmt, list(rows))
