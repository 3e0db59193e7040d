"""Fixing a quarantined row by hand: edit the offending raw value, then retry (issue #12).

A row quarantined for a typo in the source (a date of 30 February, a swapped
coordinate) is mended by editing its raw value in the quarantine review, then retried
with the feed's profile (:func:`crossbeat.ingest.quarantine.retry_quarantine`): the
row is normalised, checked and stored as an ingest would, or stays with its new
reasons. The edited record is sealed again under the owner's data key; the audit event
names the fields edited, never their values (raw values hold names and addresses).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select, update

from crossbeat.audit.changes import Principal, record_change
from crossbeat.audit.events import Action
from crossbeat.ingest.quarantine import QuarantineEntry
from crossbeat.store import Store
from crossbeat.store.schema import quarantine
from crossbeat.vault.keys import require_vault
from crossbeat.vault.quarantine import open_raw, owner_of, seal_raw

#: The longest value a hand fix may set (a raw CSV field is rarely longer).
MAX_VALUE = 2000


class FixError(ValueError):
    """A fix that cannot be made (unknown row or field, row not open); nothing changed.

    ``unknown`` is true when the row is not one of the agency's quarantined rows.
    """

    def __init__(self, message: str, *, unknown: bool = False) -> None:
        super().__init__(message)
        self.unknown = unknown


def fix_quarantine(
    store: Store,
    agency_id: str,
    entry_id: int,
    changes: Mapping[str, str | None],
    *,
    reason: str,
    by: Principal | None = None,
) -> QuarantineEntry:
    """Edit raw values of an open quarantined row of ``agency_id``, audited; return it.

    Parameters
    ----------
    store
        A store opened with a KEK (the raw records are sealed).
    agency_id
        The row's agency.
    entry_id
        The quarantine entry.
    changes
        Field name (one of the row's own fields) to its new value (None: empty).
    reason
        Why (kept in the audit event and in the row's reasons).
    by
        Who fixes: a signed-in user, or None for the local operator.

    Returns
    -------
    QuarantineEntry
        The row with its new raw values, still open: retry it to store it.

    Raises
    ------
    FixError
        Unknown row, not the agency's, not open, no change, a field the row does not
        have, a value too long, or a blank reason.
    """
    if not reason.strip():
        raise FixError("fixing a quarantined row needs a reason")
    if not changes:
        raise FixError("name at least one field to change")
    vault = require_vault(store, "quarantined rows")
    with store.begin() as conn:
        row = conn.execute(
            select(quarantine).where(
                (quarantine.c.id == entry_id) & (quarantine.c.agency_id == agency_id)
            )
        ).one_or_none()
        if row is None:
            raise FixError(f"no quarantined row {entry_id} of {agency_id}", unknown=True)
        if row.status != "open":
            raise FixError(f"quarantined row {entry_id} is {row.status}, not open")
        raw = open_raw(vault, conn, row)
        problems = [
            f"{name}: the row has no such field (it has {', '.join(_fields(raw))})"
            for name in changes
            if name not in raw or name.startswith("_")
        ]
        problems += [
            f"{name}: at most {MAX_VALUE} characters"
            for name, value in changes.items()
            if value is not None and len(value) > MAX_VALUE
        ]
        if problems:
            raise FixError("; ".join(problems))
        edited = sorted(n for n, v in changes.items() if raw.get(n) != v)
        if not edited:
            raise FixError("the new values are those the row already has")
        fixed = {**raw, **{n: changes[n] for n in edited}}
        key = vault.active_key(store, conn, owner_of(row.agency_id))
        note = f"fixed by hand: {', '.join(edited)} ({reason.strip()})"
        conn.execute(
            update(quarantine)
            .where(quarantine.c.id == entry_id)
            .values(
                **seal_raw(key, row.file_hash, row.row_number, fixed),
                reasons=[*row.reasons, note],
            )
        )
        record_change(
            store,
            conn,
            Action.CHANGE,
            by,
            resource_type="quarantine",
            owners=[agency_id],
            record_count=1,
            purpose=reason.strip(),
            details={"operation": "quarantine_fix", "quarantine_ids": [entry_id], "fields": edited},
        )
    return QuarantineEntry(
        id=row.id,
        agency_id=row.agency_id,
        source_file=row.source_file,
        row_number=row.row_number,
        reasons=[*row.reasons, note],
        raw=fixed,
        status=row.status,
        profile_name=row.profile_name,
        created_at=row.created_at,
    )


def open_feeds(store: Store, agency_id: str, ids: list[int]) -> list[str]:
    """Return the profile names (feeds) of the open quarantined rows among ``ids``."""
    q = quarantine.c
    with store.connect() as conn:
        names = conn.execute(
            select(q.profile_name)
            .where((q.agency_id == agency_id) & q.id.in_(ids) & (q.status == "open"))
            .distinct()
        ).scalars()
        return sorted(str(n) for n in names)


def _fields(raw: Mapping[str, object]) -> list[str]:
    return sorted(k for k in raw if not k.startswith("_"))
