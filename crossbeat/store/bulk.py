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
from operator import itemgetter
from typing import Any

from sqlalchemy import Dialect, LargeBinary, Table

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
        if not self.processors or not values:
            return values
        # Column by column: one list comprehension per converted column is much
        # cheaper than rebuilding every row's tuple around a few converted values.
        columns: list[Sequence[Any]] = list(zip(*values, strict=True))
        for i, proc in self.processors:
            columns[i] = _convert(proc, columns[i])
        return list(zip(*columns, strict=True))


def _sqlite_blob(value: Any) -> Any:
    """Bind a binary value for SQLite's driver as SQLAlchemy's ``LargeBinary`` does."""
    return None if value is None else memoryview(value)


def _convert(proc: Callable[[Any], Any], values: Sequence[Any]) -> Sequence[Any]:
    """Return ``[proc(v) for v in values]``, converting repeated values once.

    Every row of a chunk carries the same ``created_at``/``updated_at`` object, and
    flags are only ever True or False. SQLite's driver stores ``bytes`` as a BLOB
    exactly as the ``memoryview`` SQLAlchemy wraps them in: a column of bytes (or
    NULLs) is bound as it is; anything else still goes through the wrapper, which
    refuses text.
    """
    if proc is _sqlite_blob and all(type(v) is bytes or v is None for v in values):
        return values
    first = values[0]
    if all(v is first for v in values):
        return (proc(first),) * len(values)
    if type(first) is bool and all(type(v) is bool for v in values):
        known = {False: proc(False), True: proc(True)}
        return [known[v] for v in values]
    return [proc(v) for v in values]


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
        if proc is not None and dialect.name == "sqlite" and isinstance(col.type, LargeBinary):
            proc = _sqlite_blob  # the same binding, recognised by _convert
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
