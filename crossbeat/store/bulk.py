"""Fast multi-row inserts for the ingest: prepared statements bound with tuples.

``conn.execute(table.insert(), rows)`` spends most of its time in SQLAlchemy's
per-row parameter handling. An :class:`InsertPlan` does that work once per table
and column list: it holds the plain ``INSERT`` text for the dialect and the bind
processors of the columns that have one (UTC timestamps, booleans, JSON), and turns
row dicts into tuples the driver binds directly. The stored values are exactly
those of the ordinary insert, because the columns' own processors convert them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Dialect, Table

_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


@dataclass(frozen=True)
class InsertPlan:
    """How to insert rows with a given column list into one table."""

    table: Table
    columns: tuple[str, ...]
    #: The ``INSERT`` statement with positional placeholders (None: the driver's
    #: paramstyle is not supported here, use the ordinary insert).
    sql: str | None
    #: ``(position, processor)`` for each column whose type converts bound values.
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]
    #: The quoted table name and column list, e.g. for ``COPY``.
    target: str
    column_list: str

    def tuples(self, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """Return the rows as tuples of bound values, in :attr:`columns` order.

        Raises
        ------
        KeyError
            When a row lacks one of the columns of the first row.
        """
        getter = itemgetter(*self.columns)
        if len(self.columns) == 1:
            values: list[tuple[Any, ...]] = [(getter(r),) for r in rows]
        else:
            values = [getter(r) for r in rows]
        if not self.processors:
            return values
        procs = [(i, _last_value_memo(p)) for i, p in self.processors]
        out: list[tuple[Any, ...]] = []
        append = out.append
        for v in values:
            row = list(v)
            for i, p in procs:
                row[i] = p(row[i])
            append(tuple(row))
        return out


def _last_value_memo(proc: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap a processor so a run of the same timestamp object is converted once.

    Every row of a chunk carries the same ``created_at``/``updated_at`` object.
    Only datetimes (immutable) are remembered.
    """
    last: list[Any] = [None, None]

    def process(value: Any) -> Any:
        if value is last[0] and value is not None:
            return last[1]
        out = proc(value)
        if isinstance(value, datetime):
            last[0], last[1] = value, out
        return out

    return process


@functools.lru_cache(maxsize=256)
def insert_plan(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> InsertPlan:
    """Return the (cached) :class:`InsertPlan` for a table, column list and dialect.

    Parameters
    ----------
    dialect
        The connection's dialect (``conn.dialect``).
    table
        The table rows are inserted into.
    columns
        The keys of the rows, in the order of the first row.
    """
    processors: list[tuple[int, Callable[[Any], Any]]] = []
    for i, name in enumerate(columns):
        col = table.c[name]
        proc = col.type.dialect_impl(dialect).bind_processor(dialect)
        if proc is not None:
            processors.append((i, proc))
    prep = dialect.identifier_preparer
    target = prep.format_table(table)
    names = ", ".join(prep.quote(table.c[c].name) for c in columns)
    mark = _PLACEHOLDERS.get(dialect.paramstyle)
    sql = None
    if mark is not None:
        sql = f"INSERT INTO {target} ({names}) VALUES ({', '.join([mark] * len(columns))})"
    return InsertPlan(table, tuple(columns), sql, tuple(processors), target, names)
