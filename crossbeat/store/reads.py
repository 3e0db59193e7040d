"""The live-record filter every read applies, and a bare count.

Withdrawn and expunged records are never returned. Reads that return records go
through the sharing policy (``crossbeat.sharing.reads``), which builds on :func:`live`;
this module returns no record.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, select

from crossbeat.store import Store
from crossbeat.store.schema import incidents


def live() -> ColumnElement[bool]:
    """Return the filter every read applies: the record is not withdrawn."""
    return incidents.c.withdrawn_at.is_(None)


def count_incidents(store: Store, agency_id: str | None = None) -> int:
    """Return the number of live (not withdrawn) incidents, optionally of one agency."""
    q = select(func.count()).select_from(incidents).where(live())
    if agency_id:
        q = q.where(incidents.c.agency_id == agency_id)
    with store.connect() as conn:
        return int(conn.execute(q).scalar_one())
