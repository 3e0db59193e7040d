"""PostgreSQL + PostGIS overrides: PostgreSQL's upsert syntax and connection checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    any_,
    bindparam,
    create_engine,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crossbeat.store.base import Store
from crossbeat.store.bulk import insert_plan


class PostgresStore(Store):
    """The server store: PostgreSQL with PostGIS geometry columns and GiST indexes."""

    dialect = "postgresql"

    #: ``COPY`` in binary format with the columns' stored types (:meth:`bulk_insert`);
    #: False copies in text format (the benchmark's before, docs/benchmarks.md).
    binary_copy = True

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """Create the engine for a ``postgresql+psycopg://`` URL and check it connects."""
        engine = create_engine(url, pool_pre_ping=True)
        with engine.connect():
            pass
        return cls(engine, url)

    def _insert(self, table: Table) -> Any:
        """Return PostgreSQL's ``INSERT`` construct (it has ``ON CONFLICT``)."""
        return pg_insert(table)

    def one_of(self, column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
        """Return ``column = ANY(:values)``: one array parameter, not thousands."""
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))

    def bulk_insert(self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Insert many new rows with ``COPY ... FROM STDIN`` in the caller's transaction.

        Generated columns (the PostGIS ``geom``) are computed by the server as for an
        ``INSERT``. The rows are sent in ``COPY``'s binary format with the columns' types
        given up front (:func:`copy_types`): psycopg then encodes each value without
        looking up its type, three to four times faster on the client than text
        ``COPY``, which was most of the write's time (issue #9). Where row-level
        security applies to the current role, which ``COPY FROM`` refuses, the rows go
        through the generic ``INSERT`` instead.
        """
        if not rows:
            return
        if conn.execute(select(func.row_security_active(table.name))).scalar():
            super().bulk_insert(conn, table, rows)
            return
        plan = insert_plan(conn.dialect, table, tuple(rows[0]))
        raw = conn.connection.driver_connection
        assert raw is not None
        types = copy_types(conn, table, plan.columns) if self.binary_copy else None
        binary = " (FORMAT BINARY)" if types is not None else ""
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY {plan.target} ({plan.column_list}) FROM STDIN{binary}") as copy,
        ):
            if types is not None:
                copy.set_types(types)
            write = copy.write_row
            for row in plan.tuples(rows):
                write(row)


def copy_types(conn: Connection, table: Table, columns: Sequence[str]) -> list[int] | None:
    """Return the type oids of ``columns`` as the database holds them, for a binary ``COPY``.

    Read from the catalog (not from the SQLAlchemy table, which a migration may have
    made differently): binary ``COPY`` needs each value in its column's exact type.
    None when psycopg does not know one of them (a PostGIS geometry) or a column is
    not in the database; the caller then copies in text format.
    """
    found: dict[str, int] = dict(
        conn.execute(
            text(
                "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) "
                "AND attnum > 0 AND NOT attisdropped"
            ),
            {"t": table.name},
        ).all()
    )
    raw = conn.connection.driver_connection
    assert raw is not None
    oids = [found.get(table.c[c].name) for c in columns]
    if not all(oid is not None and raw.adapters.types.get(oid) for oid in oids):
        return None
    return [int(oid) for oid in oids if oid is not None]
