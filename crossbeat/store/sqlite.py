"""SQLite overrides: WAL, foreign keys, and SQLite's upsert syntax."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Table, create_engine, event
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

    def _insert(self, table: Table) -> Any:
        """Return SQLite's ``INSERT`` construct (it has ``ON CONFLICT``)."""
        return sqlite_insert(table)
