"""Audit events for data changes: who changed what, how many records, in which batch.

Every library function that changes stored data — ingest, withdrawal and expunge,
quarantine retry and dismissal, agencies and their boundaries, key rotation and
re-wrap — appends one of these events **inside the transaction of the change**, so
that the change and its event commit or roll back together. The agency whose data
changed is the event's owner, so the change appears in that agency's access log
(:func:`crossbeat.audit.events_for_owner`).

``by`` follows the convention of the management functions: a signed-in user (any
object with ``user_id`` and ``agency_id``, e.g. :class:`crossbeat.auth.roles.Actor`),
or None for the local operator running the ``crossbeat`` command, recorded as
``system``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection

from crossbeat.audit.events import Action, AuditEvent, as_action
from crossbeat.audit.log import append

if TYPE_CHECKING:
    from crossbeat.store import Store

#: The actor recorded for a change made by the local operator (the command line).
LOCAL_OPERATOR = "system"

#: At most this many record ids are listed in one change event; a larger change is
#: recorded with its count (and its batch) only.
MAX_LISTED_IDS = 1000


class Principal(Protocol):
    """Who made a change: a signed-in user acting through the API or a library call."""

    @property
    def user_id(self) -> str:
        """The user's id."""
        ...

    @property
    def agency_id(self) -> str:
        """The agency the user works for."""
        ...


def change_event(
    action: Action | str,
    by: Principal | None,
    *,
    resource_type: str,
    owners: Iterable[str | None],
    details: Mapping[str, Any],
    record_ids: Iterable[str] = (),
    record_count: int | None = None,
    purpose: str | None = None,
) -> AuditEvent:
    """Build the audit event of a data change.

    Parameters
    ----------
    action
        What kind of change (``ingest``, ``withdraw``, ``expunge``, ``change``,
        ``key_rotation``).
    by
        The signed-in user, or None for the local operator (actor ``system``).
    resource_type
        What was changed: ``incident``, ``quarantine``, ``agency``, ``jurisdiction``,
        ``data_key``, ...
    owners
        The agencies whose data changed (None entries, e.g. a quarantined row of no
        known agency, are left out).
    details
        What happened: the operation, counts, batch id, file, profile, reason.
    record_ids
        The records changed; listed when there are at most :data:`MAX_LISTED_IDS`,
        otherwise only counted.
    record_count
        How many records changed, when the ids are not listed (default: the number
        of ids).
    purpose
        The stated reason or legal basis, if any (e.g. a withdrawal's reason).

    Returns
    -------
    AuditEvent
        The event, ready for :func:`crossbeat.audit.append`.
    """
    ids = tuple(record_ids)
    count = len(ids) if record_count is None else record_count
    if len(ids) > MAX_LISTED_IDS:
        ids = ()
    return AuditEvent(
        action=as_action(action),
        actor=by.user_id if by is not None else LOCAL_OPERATOR,
        actor_agency=by.agency_id if by is not None else None,
        purpose=purpose,
        resource_type=resource_type,
        owner_agencies=tuple(sorted({o for o in owners if o})),
        record_ids=ids,
        record_count=count,
        details=dict(details),
    )


def record_change(
    store: Store,
    conn: Connection,
    action: Action | str,
    by: Principal | None,
    **fields: Any,
) -> AuditEvent:
    """Append a change event (:func:`change_event`) inside the caller's transaction.

    Parameters
    ----------
    store
        The store holding the log.
    conn
        The open transaction that makes the change.
    action, by, fields
        As for :func:`change_event`.

    Returns
    -------
    AuditEvent
        The stored event.
    """
    return append(store, change_event(action, by, **fields), conn=conn)
