"""What a governed read checks before it plans, in one statement (issue #8).

Every governed read used to ask the database, one statement each, for: the data
generation (:mod:`crossbeat.sharing.plan_inputs`), the registered crosswalk folders (the
key of the sensitivity rules, :func:`crossbeat.sharing.flags.current_rules`), the
jurisdictions' count and newest id and time (the anchor cache,
:func:`crossbeat.sharing.reads.anchor_index`) and whether any area layer exists (area
tags, :func:`crossbeat.sharing.pages.area_tags`). On PostgreSQL each is a round trip,
and on a loaded machine every round trip waits for a core. :func:`read_stamp` reads
them all in one statement, in the read's own transaction, before anything else of
the read; each consumer uses them exactly as it used its own query's answer, so what
a read sees is unchanged: the generation is still read before the plan inputs, the
crosswalk folders before the stale-flag probe, and the probe before any incident.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, exists, func, literal_column, select

from crossbeat.store import generation
from crossbeat.store.schema import area_layers, crosswalk_sources, jurisdictions


@dataclass(frozen=True)
class ReadStamp:
    """The store's state a read plans from, read in one statement."""

    #: The data generation (0 before the first change).
    generation: int
    #: Whether the read's transaction has written anything (then it keeps nothing).
    wrote: bool
    #: The registered crosswalk folders: ``(scheme, folder)`` pairs, sorted.
    sources: tuple[tuple[str, str], ...]
    #: The jurisdictions' count, newest id and newest creation time (the anchor cache key).
    jurisdictions: tuple[Any, ...]
    #: Whether any area layer is registered.
    layers: bool
    #: Which of :data:`CELL_INDEXES` exist (SQLite: a first load drops secondary indexes
    #: until it ends, and a read names an index with ``INDEXED BY`` only if it exists;
    #: PostgreSQL: empty, its planner chooses).
    cell_indexes: frozenset[str] = frozenset()


#: The owner's live cell indexes (``agency_id``, cell, what a rule tests) by cell column:
#: a point tile's records chosen by a list of cells are read on them
#: (:func:`crossbeat.sharing.tiles._cell_index`).
CELL_INDEXES = {"h3_9": "ix_incidents_live_agency_h3_9", "h3_7": "ix_incidents_live_agency_h3_7"}


#: The jurisdictions' cache key (count, newest id, newest creation time): the anchor
#: index over their polygons is kept under it (:func:`crossbeat.sharing.reads.anchor_index`).
_JURISDICTIONS_KEY = (
    select(func.count()).select_from(jurisdictions).scalar_subquery(),
    select(func.max(jurisdictions.c.id)).scalar_subquery(),
    select(func.max(jurisdictions.c.created_at)).scalar_subquery(),
)
_JURISDICTIONS = select(*_JURISDICTIONS_KEY)


def jurisdictions_key(conn: Connection) -> tuple[Any, ...]:
    """Return the jurisdictions' cache key alone (what :func:`read_stamp` reads with the rest).

    For the callers that need only the anchor index; a governed read takes the key from
    its :class:`ReadStamp`.
    """
    return tuple(conn.execute(_JURISDICTIONS).one())


def _statement(postgres: bool) -> Any:
    s = crosswalk_sources.c
    if postgres:
        pairs = func.json_agg(func.json_build_array(s.scheme, s.folder))
        wrote: Any = literal_column("txid_current_if_assigned() IS NOT NULL")
    else:
        pairs = func.json_group_array(func.json_array(s.scheme, s.folder))
        wrote = literal_column("0")  # pysqlite says it itself (below)
    if postgres:
        present: Any = literal_column("NULL")
    else:
        names = ", ".join(f"'{n}'" for n in sorted(CELL_INDEXES.values()))
        present = literal_column(
            "(SELECT group_concat(name, ',') FROM sqlite_master "
            f"WHERE type = 'index' AND name IN ({names}))"
        )
    return select(
        generation.CURRENT.scalar_subquery(),
        wrote,
        select(pairs).scalar_subquery(),
        *_JURISDICTIONS_KEY,
        exists(select(area_layers.c.id)),
        present,
    )


#: Built once per dialect kind: every governed read runs one.
_STATEMENTS = {True: _statement(True), False: _statement(False)}


def read_stamp(conn: Connection) -> ReadStamp:
    """Return the store's state a read plans from, in one statement.

    Parameters
    ----------
    conn
        The read's connection, in its transaction.

    Returns
    -------
    ReadStamp
        The generation, whether this transaction wrote, the crosswalk folders, the
        jurisdictions' cache key, whether an area layer exists and, on SQLite, which
        cell indexes exist.
    """
    postgres = conn.dialect.name == "postgresql"
    wrote = False
    if not postgres:
        # pysqlite opens a transaction only before the first write (SQLAlchemy's
        # default), so an open one means this transaction has written.
        raw = conn.connection.driver_connection
        wrote = bool(getattr(raw, "in_transaction", True))
    gen, pg_wrote, pairs, n, last, changed, layers, present = conn.execute(
        _STATEMENTS[postgres]
    ).one()
    if postgres:
        wrote = bool(pg_wrote)
    if isinstance(pairs, str | bytes):
        pairs = json.loads(pairs)
    sources = tuple(sorted((str(scheme), str(folder)) for scheme, folder in pairs or ()))
    indexes = frozenset(present.split(",")) if present else frozenset()
    return ReadStamp(int(gen or 0), wrote, sources, (n, last, changed), bool(layers), indexes)


__all__ = ["CELL_INDEXES", "ReadStamp", "jurisdictions_key", "read_stamp"]
