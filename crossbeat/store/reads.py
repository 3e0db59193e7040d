"""Basic reads of stored incidents, for the owner's own tools.

Withdrawn and expunged records are never returned. Reads on behalf of anyone other
than the owning agency's own tooling go through the sharing policy (governance
issue), which builds on these filters.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select

from crossbeat.store import Store
from crossbeat.store.schema import incident_offences, incidents


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


def get_incident(store: Store, agency_id: str, source_id: str) -> dict[str, Any] | None:
    """Return a live incident row with its offences, or None (also when withdrawn)."""
    from crossbeat.model import incident_id

    iid = incident_id(agency_id, source_id)
    with store.connect() as conn:
        row = (
            conn.execute(select(incidents).where((incidents.c.id == iid) & live()))
            .mappings()
            .first()
        )
        if row is None:
            return None
        offs = conn.execute(
            select(incident_offences)
            .where(incident_offences.c.incident_id == iid)
            .order_by(incident_offences.c.seq)
        ).mappings()
        return {**dict(row), "offences": [dict(o) for o in offs]}
