"""SQLite overrides: WAL, foreign keys, and SQLite's upsert syntax."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, create_engine, event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine import make_url
from sqlalchemy.sql.expression import FromClause

from crossbeat.store.base import Store, StoreError


def _private(db: Path) -> None:
    """Create the database file readable by its owner only (0600), or make it so.

    SQLite gives the ``-wal`` and ``-shm`` files the permissions of the database file,
    so a database created 0600 keeps its journal private too; an existing database (and
    its journal files) readable by others is tightened when this process owns it.
    """
    if not db.exists():
        try:
            os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass  # created meanwhile by another process
        except OSError as exc:
            raise StoreError(f"cannot create the database {db}: {exc.strerror}") from exc
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        try:
            if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
                os.chmod(path, 0o600)
        except OSError:
            pass  # absent, or not ours to change


class _Compiler(SQLiteCompiler):
    """SQLite's statement compiler, with table hints (``INDEXED BY``) rendered.

    SQLAlchemy writes the text of ``Select.with_hint(table, text, "sqlite")`` only for
    dialects whose compiler says how, and its SQLite compiler does not: the hint was
    silently left out. The reads that name an index (:mod:`crossbeat.sharing.tiles`,
    :mod:`crossbeat.sharing.arrays`) need it written after the table name.
    """

    def get_from_hint_text(self, table: FromClause, text: str | None) -> str | None:
        """Return the hint as written (``INDEXED BY <index>``), placed after the table."""
        return text


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
            _private(Path(database).expanduser().resolve())
        engine = create_engine(url, connect_args={"timeout": 30})
        engine.dialect.statement_compiler = _Compiler

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

    #: Page cache of a connection while it ingests, in KiB. New records land all over
    #: the randomly keyed indexes (incident ids, times, cells); with SQLite's default
    #: 2 MiB cache their pages are read again and again and spilled to the WAL before
    #: each commit. Used only up to what the database needs, and released afterwards.
    BULK_CACHE_KIB = 64 * 1024

    @contextmanager
    def bulk_writes(self, conn: Connection) -> Iterator[None]:
        """Give the connection a large page cache for the ingest, then the usual one back."""
        raw = conn.connection.driver_connection
        assert raw is not None
        before = raw.execute("PRAGMA cache_size").fetchone()[0]
        raw.execute(f"PRAGMA cache_size=-{self.BULK_CACHE_KIB}")
        try:
            yield
        finally:
            raw.execute(f"PRAGMA cache_size={int(before)}")

    def _insert(self, table: Table) -> Any:
        """Return SQLite's ``INSERT`` construct (it has ``ON CONFLICT``)."""
        return sqlite_insert(table)
