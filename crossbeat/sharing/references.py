"""Incidents referenced by something else (a bulletin), checked and read through the policy.

A bulletin names incidents as its sender sees them (the sender's own ids, or public
ids) and is read by other agencies, each of which must see the references as its own
policy allows. :func:`resolve_references` checks the sender's ids with an audited
read and returns the stored ids to keep; :func:`read_references` reads stored ids back
for any viewer, also audited.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import or_, select

from crossbeat.sharing.reads import read_incidents
from crossbeat.sharing.request import CallsFilter, ReadRequest, Viewer
from crossbeat.store import Store
from crossbeat.store.schema import incidents


def resolve_references(store: Store, viewer: Viewer, ids: Sequence[str]) -> dict[str, str]:
    """Return, for each of ``ids`` the viewer may see, the stored id (an audited read).

    Ids the viewer may not see (or that do not exist) are left out, alike.
    """
    if not ids:
        return {}
    request = ReadRequest(ids=frozenset(ids), calls=CallsFilter.INCLUDE)
    seen = {r["id"] for r in read_incidents(store, viewer, request).records}
    c = incidents.c
    with store.connect() as conn:
        rows = conn.execute(
            select(c.id, c.public_id, c.agency_id).where(
                or_(c.id.in_(list(ids)), c.public_id.in_(list(ids)))
            )
        ).all()
    out = {}
    for r in rows:
        shown = r.id if r.agency_id == viewer.agency_id else r.public_id
        if shown in seen:
            out[shown] = r.id
    return out


def read_references(store: Store, viewer: Viewer, stored: Iterable[str]) -> list[dict[str, Any]]:
    """Return the stored incidents as the viewer may see them (an audited read)."""
    stored = list(stored)
    if not stored:
        return []
    c = incidents.c
    with store.connect() as conn:
        rows = conn.execute(select(c.id, c.public_id, c.agency_id).where(c.id.in_(stored))).all()
    shown = frozenset(r.id if r.agency_id == viewer.agency_id else r.public_id for r in rows)
    if not shown:
        return []
    request = ReadRequest(ids=shown, calls=CallsFilter.INCLUDE)
    return read_incidents(store, viewer, request).records
