"""The spatial index of live incidents, and SQL that asks it for a box (issue #8).

Also the secondary indexes a large first load builds after the load (issue #9).

* **SQLite**: an R*Tree, ``incidents_rtree(id, min_lat, max_lat, min_lon, max_lon,
  +incident_id)``, holding one entry per *live* incident (``withdrawn_at IS NULL``) with
  a point; ``id`` is the incident's ``rowid`` (for maintenance), ``incident_id`` its
  ``id`` (what reads join on, so a renumbered ``rowid`` after ``VACUUM`` cannot make a
  read miss a row; :func:`rebuild_rtree` then puts the index right). It is maintained
  **by triggers** on ``incidents`` (:data:`SQLITE_TRIGGERS`): every write path — the
  ingest's inserts and upserts, new versions, field reports, withdrawals, agency removal
  — keeps it in step without calling anything. A large insert (the ingest's parts)
  instead indexes its rows in one statement (:func:`indexed_together`): the per-row
  trigger cost as much as the rest of the insert (issue #9).
* **PostgreSQL**: the partial GiST index ``ix_incidents_live_geom`` on the generated
  PostGIS ``geom`` of live rows.

:func:`in_box_sql` returns the condition a read adds to its exact ``lat``/``lon``
filter: the index only narrows the candidates (its 32-bit floats are rounded outward,
so it never drops a point of the box), the exact comparison on the stored point decides.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import (
    ColumnElement,
    Connection,
    Index,
    and_,
    bindparam,
    column,
    func,
    inspect,
    literal_column,
    select,
    table,
    text,
    update,
)

from crossbeat.store.schema import (
    incident_areas,
    incident_jurisdictions,
    incident_offences,
    incidents,
)

#: The R*Tree (SQLite).
RTREE = "incidents_rtree"

#: SQL creating the R*Tree (SQLite).
SQLITE_CREATE = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {RTREE} USING rtree("
    "id, min_lat, max_lat, min_lon, max_lon, +incident_id)"
)

_LIVE_POINT = "{r}.withdrawn_at IS NULL AND {r}.lat IS NOT NULL AND {r}.lon IS NOT NULL"
_ENTRY = "{r}.rowid, {r}.lat, {r}.lat, {r}.lon, {r}.lon, {r}.id"

#: Triggers keeping the R*Tree in step with every write to ``incidents`` (SQLite).
SQLITE_TRIGGERS: dict[str, str] = {
    "incidents_rtree_insert": (
        "CREATE TRIGGER IF NOT EXISTS incidents_rtree_insert AFTER INSERT ON incidents "
        f"WHEN {_LIVE_POINT.format(r='new')} BEGIN "
        f"INSERT OR REPLACE INTO {RTREE} VALUES ({_ENTRY.format(r='new')}); END"
    ),
    "incidents_rtree_update": (
        "CREATE TRIGGER IF NOT EXISTS incidents_rtree_update "
        "AFTER UPDATE OF lat, lon, withdrawn_at, id ON incidents BEGIN "
        f"DELETE FROM {RTREE} WHERE id = old.rowid; "
        f"INSERT OR REPLACE INTO {RTREE} SELECT {_ENTRY.format(r='new')} "
        f"WHERE {_LIVE_POINT.format(r='new')}; END"
    ),
    "incidents_rtree_delete": (
        "CREATE TRIGGER IF NOT EXISTS incidents_rtree_delete AFTER DELETE ON incidents "
        f"BEGIN DELETE FROM {RTREE} WHERE id = old.rowid; END"
    ),
}

#: The partial GiST index on live rows (PostgreSQL).
PG_CREATE = (
    "CREATE INDEX IF NOT EXISTS ix_incidents_live_geom ON incidents USING gist (geom) "
    "WHERE withdrawn_at IS NULL"
)


def create_spatial_index(conn: Connection) -> None:
    """Create the spatial index of live incidents on this backend and fill it."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(PG_CREATE))
        return
    conn.execute(text(SQLITE_CREATE))
    for sql in SQLITE_TRIGGERS.values():
        conn.execute(text(sql))
    rebuild_rtree(conn)
    refresh_statistics(conn)


def drop_spatial_index(conn: Connection) -> None:
    """Drop the spatial index of live incidents (and, on SQLite, its triggers)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("DROP INDEX IF EXISTS ix_incidents_live_geom"))
        return
    for name in SQLITE_TRIGGERS:
        conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
    conn.execute(text(f"DROP TABLE IF EXISTS {RTREE}"))


#: Rows from which an insert indexes its points in one statement rather than by trigger.
SET_INDEX_MIN_ROWS = 100

#: Ids per ``IN`` list when indexing a set of rows (below SQLite's variable limit).
_IDS_PER_STATEMENT = 5_000


@contextmanager
def indexed_together(conn: Connection, ids: Sequence[str]) -> Iterator[None]:
    """Index the points of the incidents ``ids``, inserted inside the block, in one go.

    On SQLite the R*Tree is kept by triggers, one trigger program per inserted row,
    which cost as much as the rest of a wide row's insert (issue #9, docs/benchmarks.md).
    For ``SET_INDEX_MIN_ROWS`` rows or more, the insert trigger is dropped for the block
    and the new rows are indexed afterwards by one ``INSERT ... SELECT``; the trigger is
    then created again. SQLite's DDL is transactional and a writer holds the database's
    only write lock, so no other writer can insert while the trigger is missing, a
    reader never sees it missing, and a rolled-back or killed transaction leaves the
    schema as it was. Updates and deletes inside the block are still kept by their
    triggers. On PostgreSQL (a GiST index) and for small inserts, nothing changes.

    Parameters
    ----------
    conn
        The open write transaction.
    ids
        The ids of the incidents the block inserts.
    """
    if conn.dialect.name != "sqlite" or len(ids) < SET_INDEX_MIN_ROWS:
        yield
        return
    name = "incidents_rtree_insert"
    present = conn.execute(
        text("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = :n"), {"n": name}
    ).first()
    if present is None:  # no spatial index (dropped): nothing to keep
        yield
        return
    conn.execute(text(f"DROP TRIGGER {name}"))
    try:
        yield
        rows = list(ids)
        for i in range(0, len(rows), _IDS_PER_STATEMENT):
            conn.execute(
                text(
                    f"INSERT OR REPLACE INTO {RTREE} SELECT {_ENTRY.format(r='incidents')} "
                    f"FROM incidents WHERE incidents.id IN :ids "
                    f"AND {_LIVE_POINT.format(r='incidents')}"
                ).bindparams(bindparam("ids", expanding=True)),
                {"ids": rows[i : i + _IDS_PER_STATEMENT]},
            )
    finally:
        conn.execute(text(SQLITE_TRIGGERS[name]))


def rebuild_rtree(conn: Connection) -> int:
    """Refill the R*Tree from the live incidents (SQLite; nothing to do on PostgreSQL).

    For a bulk load that ran with the triggers dropped, or after a ``VACUUM`` that
    renumbered rows. Returns the number of entries.
    """
    if conn.dialect.name == "postgresql":
        return 0
    conn.execute(text(f"DELETE FROM {RTREE}"))
    conn.execute(
        text(
            f"INSERT INTO {RTREE} SELECT {_ENTRY.format(r='incidents')} FROM incidents "
            f"WHERE {_LIVE_POINT.format(r='incidents')}"
        )
    )
    return int(conn.execute(text(f"SELECT count(*) FROM {RTREE}")).scalar_one())


def rederive_local_times(conn: Connection, agency_id: str) -> None:
    """Have the next read derive the agency's local times (``occurred_local``) again.

    Called when an agency's time zone changes: clearing the rows' rules key makes
    :func:`crossbeat.sharing.flags.refresh` derive them, with the flags, in the new zone
    before any read serves them.
    """
    conn.execute(
        update(incidents).where(incidents.c.agency_id == agency_id).values(sens_rules=None)
    )


#: Rows written in one go from which PostgreSQL's statistics are refreshed at once
#: (together with a tenth of the table: :func:`refresh_statistics`).
PG_ANALYZE_ROWS = 10_000


def refresh_statistics(conn: Connection, changed: int | None = None) -> None:
    """Refresh the planner's statistics of ``incidents`` after a large write.

    SQLite: without them SQLite guesses that ``agency_id = ?`` selects ten rows and walks
    an owner's index instead of asking the R*Tree for a viewport. A sampled ``ANALYZE``
    (``analysis_limit``) costs little even at millions of rows.

    PostgreSQL: autovacuum analyses a table once a tenth of it has changed, but only
    later, and the reads right after a large load would be planned from the empty or
    small table's statistics (no ``ANALYZE`` ran after a 300,000-row load). ``ANALYZE
    incidents`` (a sample of the table) runs here when ``changed`` (the rows just
    written) is at least :data:`PG_ANALYZE_ROWS` and a tenth of the table, or when
    ``changed`` is None (after a first load's indexes are built). In the caller's
    transaction: the new statistics are seen once it commits.

    Parameters
    ----------
    conn
        A connection in the writing transaction.
    changed
        How many rows were just written or re-derived (None: a large load ended).
    """
    if conn.dialect.name == "postgresql":
        if changed is not None:
            estimate = conn.execute(
                text("SELECT reltuples FROM pg_class WHERE oid = 'incidents'::regclass")
            ).scalar()
            if changed < max(PG_ANALYZE_ROWS, 0.1 * max(float(estimate or 0), 0.0)):
                return
        conn.execute(text("ANALYZE incidents"))
        return
    if conn.dialect.name != "sqlite":
        return
    conn.execute(text("PRAGMA analysis_limit = 1000"))
    conn.execute(text("ANALYZE incidents"))


def in_box_sql(
    dialect: str, min_lon: float, min_lat: float, max_lon: float, max_lat: float
) -> ColumnElement[bool]:
    """Return SQL for "the live incident's point may lie in this box", on the spatial index.

    A superset of the exact test (the caller keeps its ``lat``/``lon`` comparison); true
    only for live rows with a point.
    """
    w, s, e, n = (float(v) for v in (min_lon, min_lat, max_lon, max_lat))
    if dialect == "postgresql":
        envelope = func.ST_MakeEnvelope(w, s, e, n, 4326)
        return and_(
            incidents.c.withdrawn_at.is_(None),
            literal_column("incidents.geom").bool_op("&&")(envelope),
        )
    rt = _RTREE_TABLE.c
    near = select(rt.incident_id).where(
        rt.max_lat >= s, rt.min_lat <= n, rt.max_lon >= w, rt.min_lon <= e
    )
    return incidents.c.id.in_(near)


_RTREE_TABLE = table(
    RTREE,
    *(column(n) for n in ("id", "min_lat", "max_lat", "min_lon", "max_lon", "incident_id")),
)


# -- secondary indexes built after a large first load (issue #9) ---------------------
#
# A new record lands all over the randomly keyed secondary indexes (times, cells, codes),
# so loading years of records into an empty store with them in place costs far more than
# building them once at the end (docs/benchmarks.md, issue #9). The ingest drops them
# before such a load (drop_secondary) and builds them again when it ends, however it
# ends (ensure_secondary); a run killed in between leaves them missing, and the next
# ingest builds them before it writes anything. Only plain secondary indexes are
# deferred: the primary keys and unique constraints that make the upsert idempotent
# stay, and so does every index a read names (KEPT). Without the others, reads are
# slower, never different.

#: Indexes a read names (``INDEXED BY`` in :mod:`crossbeat.sharing.arrays`): never dropped.
#: (Point tiles name the cell indexes only when they exist: :mod:`crossbeat.sharing.tiles`.)
KEPT = frozenset({"ix_incidents_live_arrays"})

_TABLES = (incidents, incident_offences, incident_jurisdictions, incident_areas)


def has_incidents(conn: Connection) -> bool:
    """Return whether any incident is stored (a first load finds none)."""
    return conn.execute(select(incidents.c.id).limit(1)).first() is not None


def deferrable() -> list[Index]:
    """Return the secondary indexes a first load may build afterwards, in a fixed order."""
    found = [
        ix for table in _TABLES for ix in table.indexes if not ix.unique and ix.name not in KEPT
    ]
    return sorted(found, key=lambda ix: str(ix.name))


def missing_secondary(conn: Connection) -> list[Index]:
    """Return the deferrable indexes that do not exist in the database."""
    inspector = inspect(conn)
    present = {
        ix["name"] for table in _TABLES for ix in inspector.get_indexes(table.name) if ix["name"]
    }
    return [ix for ix in deferrable() if ix.name not in present]


def drop_secondary(conn: Connection) -> list[str]:
    """Drop the deferrable indexes that exist; return their names."""
    gone = {ix.name for ix in missing_secondary(conn)}
    dropped: list[str] = []
    for ix in deferrable():
        if ix.name not in gone:
            conn.execute(text(f"DROP INDEX {conn.dialect.identifier_preparer.quote(str(ix.name))}"))
            dropped.append(str(ix.name))
    return dropped


def ensure_secondary(conn: Connection) -> list[str]:
    """Build the deferrable indexes that are missing; return their names.

    After building any, SQLite's planner statistics are refreshed
    (:func:`refresh_statistics`).
    """
    built = missing_secondary(conn)
    for ix in built:
        ix.create(conn)
    if built:
        refresh_statistics(conn)
    return [str(ix.name) for ix in built]


__all__ = [
    "KEPT",
    "PG_ANALYZE_ROWS",
    "RTREE",
    "deferrable",
    "drop_secondary",
    "ensure_secondary",
    "has_incidents",
    "missing_secondary",
    "create_spatial_index",
    "drop_spatial_index",
    "in_box_sql",
    "indexed_together",
    "rebuild_rtree",
    "rederive_local_times",
    "refresh_statistics",
]
