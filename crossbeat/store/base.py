"""Opening a store and the SQL shared by both dialects.

One generic :class:`Store` holds every query; :mod:`crossbeat.store.sqlite` and
:mod:`crossbeat.store.postgres` override only what differs between the dialects
(connection set-up, upsert syntax, spatial extras). The dialect is chosen by the
database URL: ``sqlite:///path.db`` or ``postgresql://user@host/db``.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import ColumnElement, Connection, Engine, Table, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError

from crossbeat.clock import Clock, SystemClock
from crossbeat.store import schema
from crossbeat.store.bulk import insert_plan

if TYPE_CHECKING:
    from crossbeat.vault.kek import Kek
    from crossbeat.vault.keys import Vault

_MIGRATIONS = Path(__file__).with_name("migrations")


class StoreError(RuntimeError):
    """The store cannot be opened or used; the message names the next step."""


class Store:
    """A CrossBeat database: an engine plus the queries shared by all dialects."""

    dialect: ClassVar[str] = "generic"

    def __init__(self, engine: Engine, url: str, clock: Clock | None = None) -> None:
        self.engine = engine
        self.url = url
        self.clock: Clock = clock or SystemClock()
        #: Encrypts and decrypts personal data (None: opened without a KEK, so personal
        #: data can be neither written nor read).
        self.vault: Vault | None = None

    def with_vault(self, vault: Vault) -> Store:
        """Return a store sharing this one's engine whose personal data uses ``vault``."""
        keyed = copy.copy(self)
        keyed.vault = vault
        return keyed

    # -- connections -----------------------------------------------------------------
    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """Open a transaction; commit on success, roll back on error."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """Open a connection for reads."""
        with self.engine.connect() as conn:
            yield conn

    # -- migrations ------------------------------------------------------------------
    def upgrade(self, revision: str = "heads") -> None:
        """Bring the schema up to ``revision`` with the Alembic migrations."""
        from alembic import command

        with self.engine.begin() as conn:
            command.upgrade(self._alembic_config(conn), revision)

    def current_revision(self) -> str | None:
        """Return the schema revision(s) the database is at (None if never migrated)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            heads = MigrationContext.configure(conn).get_current_heads()
        return ",".join(sorted(heads)) or None

    def head_revision(self) -> str:
        """Return the newest migration(s) shipped with this version of CrossBeat."""
        return _shipped_heads()

    def _alembic_config(self, conn: Connection | None) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.attributes["connection"] = conn
        return cfg

    def check_schema(self) -> None:
        """Raise :class:`StoreError` unless the schema is at the newest revision."""
        current = self.current_revision()
        if current != self.head_revision():
            raise StoreError(
                f"the database at {self.safe_url} is at schema revision {current or 'none'}, "
                f"this CrossBeat needs {self.head_revision()}: run `crossbeat db upgrade "
                f"--db {self.safe_url}`"
            )

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden."""
        return make_url(self.url).render_as_string(hide_password=True)

    # -- dialect hooks ---------------------------------------------------------------
    def _insert(self, table: Table) -> Any:
        """Return the dialect's ``INSERT`` construct with ``ON CONFLICT`` support."""
        raise NotImplementedError

    def insert_ignore(self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Insert rows, skipping those that collide with an existing unique key."""
        if rows:
            conn.execute(self._insert(table).on_conflict_do_nothing(), list(rows))

    def upsert(
        self,
        conn: Connection,
        table: Table,
        rows: Sequence[dict[str, Any]],
        keys: Sequence[str],
        update: Sequence[str],
    ) -> None:
        """Insert rows; where ``keys`` collide, overwrite the ``update`` columns."""
        if not rows:
            return
        stmt = self._insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in update}
        )
        conn.execute(stmt, list(rows))

    def one_of(self, column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
        """Return the condition "``column`` is one of ``values``" for thousands of values.

        Generic: ``column IN (...)``. PostgreSQL binds the values as one array.
        """
        return column.in_(values)

    @contextmanager
    def bulk_writes(self, conn: Connection) -> Iterator[None]:
        """Tune a connection for an ingest's long run of large transactions, then restore it.

        Generic: nothing to tune. SQLite enlarges the connection's page cache.
        """
        yield

    def bulk_insert(self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Insert many new rows at once, as ``conn.execute(table.insert(), rows)`` would.

        The ingest's hot path: one plain ``INSERT`` bound with tuples and run by the
        driver's ``executemany``, skipping SQLAlchemy's per-row parameter handling.
        Values still go through each column type's own bind processor, so what is
        stored is exactly what the ordinary insert stores. Every row must have the
        keys of the first. PostgreSQL overrides this with ``COPY``.

        Parameters
        ----------
        conn
            A connection inside the caller's transaction.
        table
            The table to insert into.
        rows
            The rows, as dicts of column name to Python value.
        """
        if not rows:
            return
        plan = insert_plan(conn.dialect, table, tuple(rows[0]))
        if plan.sql is None:
            conn.execute(table.insert(), list(rows))
            return
        conn.exec_driver_sql(plan.sql, plan.tuples(rows))

    # -- small shared queries ----------------------------------------------------------
    def table_names(self) -> list[str]:
        """Return the names of the tables in the database."""
        return inspect(self.engine).get_table_names()

    def now(self) -> datetime:
        """Return the current time (UTC) from the store's clock."""
        return self.clock.now()

    def agency_exists(self, agency_id: str) -> bool:
        """Return whether an agency with this id is registered."""
        with self.connect() as conn:
            row = conn.execute(
                select(schema.agencies.c.id).where(schema.agencies.c.id == agency_id)
            ).first()
        return row is not None

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


@functools.cache
def _shipped_heads() -> str:
    """Read the migration scripts once per process (they do not change while it runs)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return ",".join(sorted(ScriptDirectory.from_config(cfg).get_heads()))


_CACHE: dict[str, Store] = {}
_KEYED: dict[tuple[str, str], Store] = {}
_LOCK = threading.Lock()


def open_store(
    url: str, *, upgrade: bool = True, kek: Kek | None = None, create: bool = True
) -> Store:
    """Open (and by default create or migrate) the store at a database URL.

    The one way to open a store: the command line, the web API and the tests all
    call it.

    Parameters
    ----------
    url
        ``sqlite:///path/to/file.db`` (created if missing) or
        ``postgresql://user@host:port/dbname`` (needs the ``postgres`` extra and the
        PostGIS extension available on the server). A bare file path is taken as a
        SQLite file.
    upgrade
        Run pending migrations. With ``False`` the schema is checked instead and a
        :class:`StoreError` names the upgrade command when it is behind.
    kek
        The key-encryption key from the configuration
        (:func:`crossbeat.vault.kek.resolve_kek`). Without it personal data can be
        neither written nor read (it is never stored unencrypted).
    create
        With ``False``, only open an existing CrossBeat database, to read it: a missing
        SQLite file is an error (none is created) and nothing is migrated (as with
        ``upgrade=False``).

    Returns
    -------
    Store
        The same object for the same URL and KEK within one process. Stores of one
        URL share one cached engine, whatever their KEK.

    Raises
    ------
    StoreError
        The URL is not a database URL, the database is missing (``create=False``),
        unreachable, not a CrossBeat database, or its schema is behind.
    """
    url = normalise_url(url)
    if not create:
        _require_existing(url)
        upgrade = False
    with _LOCK:
        store = _CACHE.get(url)
        if store is None:
            store = _create(url)
            _CACHE[url] = store
    try:
        if upgrade:
            store.upgrade()
        else:
            store.check_schema()
    except DatabaseError as exc:
        raise StoreError(
            f"cannot open {store.safe_url}: {getattr(exc, 'orig', None) or exc}: it is not a "
            "CrossBeat database (give the URL of one, e.g. sqlite:///crossbeat.db)"
        ) from exc
    if kek is None:
        return store
    from crossbeat.vault.keys import Vault

    with _LOCK:
        keyed = _KEYED.get((url, kek.id))
        if keyed is None:
            keyed = _KEYED[(url, kek.id)] = store.with_vault(Vault(kek))
    return keyed


def close_all() -> None:
    """Dispose every cached store (tests and forked workers use this)."""
    with _LOCK:
        for store in _CACHE.values():
            store.dispose()
        _CACHE.clear()
        _KEYED.clear()


def _require_existing(url: str) -> None:
    """Raise :class:`StoreError` when ``url`` names a SQLite file that does not exist."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"not a database URL: {url!r} (try sqlite:///crossbeat.db)") from exc
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database and database != ":memory:":
        path = Path(database).expanduser()
        if not path.is_file():
            raise StoreError(
                f"no database at {path}: it is only read here and none is created; check the path"
            )


def normalise_url(url: str) -> str:
    """Turn a bare path into a SQLite URL and the PostgreSQL scheme into psycopg's."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser()}"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _create(url: str) -> Store:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"not a database URL: {url!r} (try sqlite:///crossbeat.db)") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        from crossbeat.store.sqlite import SQLiteStore

        return SQLiteStore.from_url(url)
    if backend == "postgresql":
        try:
            from crossbeat.store.postgres import PostgresStore
        except ImportError as exc:  # pragma: no cover - depends on installed extras
            raise StoreError(
                "PostgreSQL support needs the postgres extra: pip install 'crossbeat[postgres]'"
            ) from exc
        try:
            return PostgresStore.from_url(url)
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            raise StoreError(
                "PostgreSQL support needs psycopg: pip install 'crossbeat[postgres]'"
            ) from exc
        except OperationalError as exc:
            raise StoreError(f"cannot connect to {parsed.render_as_string()}: {exc.orig}") from exc
    raise StoreError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
