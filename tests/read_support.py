"""Unaudited reads of stored incidents and their personal data, for tests only.

The library has no way to read an incident or decrypt its personal data around the
sharing policy: every read on behalf of anyone goes through ``crossbeat.sharing.reads``,
which applies the agreements and writes the audit log. Tests still need to look at
what the ingest stored, exactly as stored, so these helpers live here, outside the
package (``tests/test_architecture_reads.py`` keeps them out of it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from crossbeat.model import PersonalData, incident_id
from crossbeat.sharing.policy import live
from crossbeat.store import Store
from crossbeat.store.schema import incident_offences, incident_personal, incidents
from crossbeat.vault.errors import PersonalDataNotFoundError, PurposeRequiredError
from crossbeat.vault.keys import require_vault
from crossbeat.vault.personal import decode_personal


def get_incident(store: Store, agency_id: str, source_id: str) -> dict[str, Any] | None:
    """Return a live incident row with its offences, or None (also when withdrawn)."""
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


def count_incidents(store: Store, agency_id: str | None = None) -> int:
    """Return the number of live (not withdrawn) incidents, optionally of one agency."""
    q = select(func.count()).select_from(incidents).where(live())
    if agency_id:
        q = q.where(incidents.c.agency_id == agency_id)
    with store.connect() as conn:
        return int(conn.execute(q).scalar_one())


def read_personal_many(
    store: Store, incident_ids: Sequence[str], *, purpose: str
) -> dict[str, PersonalData]:
    """Decrypt the personal data of live incidents (unknown and withdrawn ones left out).

    A purpose is still required, so a test cannot read personal data by accident.
    """
    if not isinstance(purpose, str) or not purpose.strip():
        raise PurposeRequiredError("reading personal data requires a stated purpose")
    vault = require_vault(store)
    ids = sorted(set(incident_ids))
    if not ids:
        return {}
    q = (
        select(incidents.c.id.label("live_id"), incident_personal)
        .select_from(
            incidents.outerjoin(
                incident_personal, incident_personal.c.incident_id == incidents.c.id
            )
        )
        .where(incidents.c.id.in_(ids) & live())
    )
    out: dict[str, PersonalData] = {}
    with store.connect() as conn:
        for row in conn.execute(q):
            if row.incident_id is None:
                out[row.live_id] = PersonalData()
            else:
                out[row.live_id] = decode_personal(vault, conn, row)
    return out


def read_personal(store: Store, incident: str, *, purpose: str) -> PersonalData:
    """Decrypt the personal data of one live incident (``PersonalDataNotFoundError`` if none)."""
    found = read_personal_many(store, [incident], purpose=purpose)
    if incident not in found:
        raise PersonalDataNotFoundError(
            f"no live incident {incident}: it is unknown, withdrawn or expunged"
        )
    return found[incident]
