"""Reading the quarantine on someone's behalf: audited like every other read (issue #3).

Quarantined rows keep their raw source values (names, addresses) and the reasons they
were refused. :func:`crossbeat.ingest.quarantine.list_quarantine` unseals them for the
ingest's own use (retry); anything that *shows* them to a person — the ``crossbeat
quarantine list`` command, a future web page — calls :func:`read_quarantine`, which
writes the read to the audit log, so that each agency's auditors see who looked at its
quarantined rows.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from crossbeat.audit import Action, AuditEvent, append_many
from crossbeat.auth.roles import Action as RoleAction
from crossbeat.auth.roles import Actor, authorize
from crossbeat.ingest.fixes import FixError, fix_quarantine, open_feeds
from crossbeat.ingest.profile import Profile, parse_profile
from crossbeat.ingest.quarantine import (
    QuarantineEntry,
    RetrySummary,
    dismiss_quarantine,
    list_quarantine,
    retry_quarantine,
)
from crossbeat.sharing.reads import AUDIT_IDS_PER_EVENT
from crossbeat.store import Store

__all__ = [
    "FixError",
    "LOCAL_OPERATOR",
    "dismiss_for",
    "feeds_for",
    "fix_for",
    "read_quarantine",
    "retry_for",
]

#: The actor of a read by the local operator (the ``crossbeat`` command), as for
#: every other change or read made from the command line.
LOCAL_OPERATOR = "system"


def read_quarantine(
    store: Store,
    *,
    agency_id: str | None = None,
    status: str | None = "open",
    source_file: str | None = None,
    limit: int | None = 100,
    offset: int = 0,
    by: Actor | None = None,
) -> list[QuarantineEntry]:
    """Return quarantined rows with their raw values, and audit the read.

    Without ``by`` the read is the local operator's (who has direct database access
    and the KEK): the events' actor is ``system``. With ``by`` (a signed-in user, the
    admin page) the read is that user's and limited to an agency they may review
    (``agency_id``, default their own; ``quarantine.review``: agency admins of it,
    platform admins).

    Parameters
    ----------
    store
        A store opened with a KEK (the raw records are sealed).
    agency_id
        Only this agency's rows.
    status
        ``open`` (default), ``resolved``, ``dismissed``, or None for all.
    source_file
        Only rows of this file.
    limit, offset
        Paging.

    Returns
    -------
    list[QuarantineEntry]
        The entries, oldest file and row first, returned only once the audit events
        are committed: one ``read`` event (resource ``quarantine``) per owner agency
        of the rows returned, with their count and entry ids, so that the read appears
        in that agency's access log; rows of no known agency get an event without
        owner. A read that returned nothing is still recorded (count 0).

    Raises
    ------
    KeyConfigError
        When the store was opened without a KEK, or with another KEK than the data's.
    DecryptionError
        When a stored raw record was altered or moved.
    PermissionDenied
        ``by`` may not review that agency's quarantine.
    """
    if by is not None:
        agency_id = agency_id or by.agency_id
        authorize(by, RoleAction.REVIEW_QUARANTINE, agency_id)
    entries = list_quarantine(
        store,
        agency_id=agency_id,
        status=status,
        source_file=source_file,
        limit=limit,
        offset=offset,
    )
    filters = {
        "agency": agency_id,
        "status": status,
        "source_file": source_file,
        "limit": limit,
        "offset": offset,
    }
    actor = by.user_id if by is not None else LOCAL_OPERATOR
    append_many(store, _events(entries, agency_id, filters, actor))
    return entries


def dismiss_for(
    store: Store, by: Actor, ids: list[int], reason: str, *, agency_id: str | None = None
) -> int:
    """Dismiss open quarantined rows of an agency ``by`` may review; return how many.

    The rows are kept, marked dismissed with the reason, in one audited change
    (:func:`crossbeat.ingest.quarantine.dismiss_quarantine`). Ids of rows that are not
    that agency's, or not open, change nothing.

    Raises
    ------
    PermissionDenied
        ``by`` may not review that agency's quarantine.
    ValueError
        The reason is blank.
    """
    agency = agency_id or by.agency_id
    authorize(by, RoleAction.REVIEW_QUARANTINE, agency)
    if not ids:
        return 0  # nothing asked, nothing changed: no audit event
    return dismiss_quarantine(store, agency, ids, reason=reason, by=by)


def fix_for(
    store: Store,
    by: Actor,
    entry_id: int,
    changes: dict[str, str | None],
    reason: str,
    *,
    agency_id: str | None = None,
) -> QuarantineEntry:
    """Edit raw values of an open row of an agency ``by`` may review (one audited change).

    The row stays open: retry it (:func:`retry_for`) to store it. See
    :func:`crossbeat.ingest.fixes.fix_quarantine`.

    Raises
    ------
    PermissionDenied
        ``by`` may not review that agency's quarantine.
    FixError
        The fix cannot be made (unknown row or field, not open, no change).
    """
    agency = agency_id or by.agency_id
    authorize(by, RoleAction.REVIEW_QUARANTINE, agency)
    return fix_quarantine(store, agency, entry_id, changes, reason=reason, by=by)


def feeds_for(
    store: Store, by: Actor, ids: list[int], *, agency_id: str | None = None
) -> list[str]:
    """Return the feeds (profile names) of the open rows among ``ids`` of an agency ``by``
    may review; nothing is unsealed, so nothing is read on anyone's behalf.

    Raises
    ------
    PermissionDenied
        ``by`` may not review that agency's quarantine.
    """
    agency = agency_id or by.agency_id
    authorize(by, RoleAction.REVIEW_QUARANTINE, agency)
    return open_feeds(store, agency, ids)


def retry_for(
    store: Store,
    by: Actor,
    profile: Profile | str,
    ids: list[int],
    *,
    agency_id: str | None = None,
    accept_timezone: bool = False,
) -> RetrySummary:
    """Retry open rows of an agency ``by`` may review with the feed's profile.

    Rows that now read are stored as an ingest stores them (each group with its
    ``ingest`` audit event, operation ``quarantine_retry``) and resolved; the others stay
    open with their new reasons. See :func:`crossbeat.ingest.quarantine.retry_quarantine`.

    Raises
    ------
    PermissionDenied
        ``by`` may not review that agency's quarantine.
    ValueError
        The profile is invalid (:class:`~crossbeat.ingest.profile.ProfileError`, given
        as TOML text), its time zone differs from the agency's, or it is another agency's.
    """
    agency = agency_id or by.agency_id
    authorize(by, RoleAction.REVIEW_QUARANTINE, agency)
    if isinstance(profile, str):
        profile = parse_profile(profile, source="<retry>")
    if profile.agency not in (None, agency):
        raise ValueError(f"profile {profile.name!r} is for {profile.agency}, not {agency}")
    if not ids:
        return RetrySummary()
    return retry_quarantine(
        store, profile, agency_id=agency, ids=ids, by=by, accept_timezone=accept_timezone
    )


def _events(
    entries: list[QuarantineEntry],
    agency_id: str | None,
    filters: dict[str, Any],
    actor: str = LOCAL_OPERATOR,
) -> list[AuditEvent]:
    """Return the read's events: per owner agency, at most AUDIT_IDS_PER_EVENT ids each."""
    asked = {k: v for k, v in filters.items() if v is not None}
    by_owner: dict[str | None, list[int]] = defaultdict(list)
    for e in entries:
        by_owner[e.agency_id].append(e.id)
    if not by_owner:
        by_owner[agency_id] = []
    events = []
    for owner, ids in sorted(by_owner.items(), key=lambda item: item[0] or ""):
        for k in range(0, max(len(ids), 1), AUDIT_IDS_PER_EVENT):
            chunk = ids[k : k + AUDIT_IDS_PER_EVENT]
            events.append(
                AuditEvent(
                    action=Action.READ,
                    actor=actor,
                    resource_type="quarantine",
                    owner_agencies=(owner,) if owner else (),
                    record_count=len(chunk),
                    details={"request": asked, "quarantine_ids": chunk},
                )
            )
    return events
