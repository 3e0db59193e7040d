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
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crossbeat.store.base import Store
from crossbeat.store.bulk import insert_plan


class PostgresStore(Store):
    """The server store: PostgreSQL with PostGIS geometry columns and GiST indexes."""

    dialect = "postgresql"

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
        ``INSERT``. Where row-level security applies to the current role, which
        ``COPY FROM`` refuses, the rows go through the generic ``INSERT`` instead.
        """
        if not rows:
            return
        if conn.execute(select(func.row_security_active(table.name))).scalar():
            super().bulk_insert(conn, table, rows)
            return
        plan = insert_plan(conn.dialect, table, tuple(rows[0]))
        raw = conn.connection.driver_connection
        assert raw is not None
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY {plan.target} ({plan.column_list}) FROM STDIN") as copy,
        ):
            write = copy.write_row
            for row in plan.tuples(rows):
                write(row)
