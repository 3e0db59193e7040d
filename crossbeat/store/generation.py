"""The data generation: a counter that goes up with every audited change (issue #8).

Vector tile ETags (:mod:`crossbeat.sharing.tiles`) include it, so that a cached tile
is never served after a write. :func:`bump` is called by the audit log whenever it
appends a change event, in the same transaction and after the log's own lock is
taken: writers are already serialised there, so the counter adds no contention, and
readers never wait for it (PostgreSQL reads the last committed value).
"""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from crossbeat.store.schema import data_generation


def bump(conn: Connection) -> None:
    """Add one to the data generation in the caller's transaction."""
    conn.execute(
        update(data_generation)
        .where(data_generation.c.id == 1)
        .values(generation=data_generation.c.generation + 1)
    )


#: Built once: every public read asks (issue #10), so not even the statement is rebuilt;
#: also the fence of the Arrow reader's parallel reads (:mod:`crossbeat.store.arrow`).
CURRENT = select(data_generation.c.generation).where(data_generation.c.id == 1)


def current(conn: Connection) -> int:
    """Return the data generation (0 before the first change)."""
    value = conn.execute(CURRENT).scalar()
    return int(value or 0)
