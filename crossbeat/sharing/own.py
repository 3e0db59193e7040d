"""An agency's own incidents, read by the local operator through the policy (audited).

The ``crossbeat incidents`` commands let the person running CrossBeat for an agency see
what is stored for it — for instance to find the source id of a record to withdraw —
without reading the tables directly. Every call goes through
:func:`crossbeat.sharing.reads.read_incidents` as an analyst of that agency, so the
records are exactly what the agency's own analysts see (no personal data) and each read
is an audit event in the agency's access log, with the local operator (``system``) as
actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crossbeat.auth.roles import Role
from crossbeat.model import incident_id
from crossbeat.sharing.reads import read_incidents
from crossbeat.sharing.request import ReadRequest, Viewer
from crossbeat.store import Store

#: The audit actor of reads made from the command line (as for quarantine reads).
LOCAL_OPERATOR = "system"


def operator_viewer(agency_id: str) -> Viewer:
    """Return the viewer of the local operator acting for ``agency_id`` (an analyst)."""
    return Viewer.user(LOCAL_OPERATOR, agency_id, [Role.ANALYST])


@dataclass(frozen=True)
class IncidentPage:
    """One page of an agency's incidents and the cursor of the next page."""

    records: list[dict[str, Any]]
    next_after: str | None


def list_own_incidents(
    store: Store,
    agency_id: str,
    *,
    limit: int = 20,
    after: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    offences: frozenset[str] | None = None,
) -> IncidentPage:
    """Return one page of ``agency_id``'s live incidents as its analysts see them, audited.

    Parameters
    ----------
    store
        The store.
    agency_id
        The agency whose incidents to list.
    limit, after
        Page size and the ``next_after`` cursor of the previous page (incident id order).
    since, until
        Only incidents that occurred in ``[since, until)`` (aware datetimes).
    offences
        Offence tokens (``all``, categories, ``part1``, NIBRS codes).

    Returns
    -------
    IncidentPage
        The records (each with the agency's ``source_id``) and the next page's cursor.

    Raises
    ------
    crossbeat.sharing.request.RequestError
        For a malformed filter (the message lists every problem).
    """
    request = ReadRequest(
        agencies=frozenset({agency_id}),
        since=since,
        until=until,
        offences=offences,
        limit=limit,
        after=after,
    )
    result = read_incidents(store, operator_viewer(agency_id), request)
    return IncidentPage(result.records, result.next_after)


def show_own_incident(store: Store, agency_id: str, ident: str) -> dict[str, Any] | None:
    """Return one of ``agency_id``'s incidents by its source id or incident id, audited.

    Parameters
    ----------
    ident
        The agency's source id (what ``withdraw`` takes) or CrossBeat's incident id.

    Returns
    -------
    dict or None
        The record as the agency's analysts see it, or None when the agency has no live
        record with that id.
    """
    ids = frozenset({ident, incident_id(agency_id, ident)})
    request = ReadRequest(agencies=frozenset({agency_id}), ids=ids, limit=2)
    records = read_incidents(store, operator_viewer(agency_id), request).records
    by_source = [r for r in records if r.get("source_id") == ident]
    found = by_source or records
    return found[0] if found else None
