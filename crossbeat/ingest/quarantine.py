"""The quarantine: rows that could not be stored, kept with every reason.

Nothing is ever dropped. A quarantined row keeps its raw values, file, row number and
reasons until it is stored — by re-ingesting the file after a profile or crosswalk
fix (the entry is then resolved automatically) or by :func:`retry_quarantine` with
the fixed profile — or until a person dismisses it. The raw values hold names and
addresses, so they are stored sealed (:mod:`crossbeat.vault.quarantine`) and listing
them needs the store's key-encryption key.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from crossbeat.agencies import jurisdiction_index
from crossbeat.audit.changes import Principal, record_change
from crossbeat.audit.events import Action
from crossbeat.ingest.audited import ChunkTally, record_chunk
from crossbeat.ingest.items import derive
from crossbeat.ingest.pipeline import RowRouter
from crossbeat.ingest.preflight import store_problems
from crossbeat.ingest.profile import Profile, require_settled
from crossbeat.ingest.readers import RawRecord
from crossbeat.store import Store
from crossbeat.store.schema import ingest_batches, quarantine
from crossbeat.store.writes import Counts, write_chunk
from crossbeat.vault.keys import require_vault
from crossbeat.vault.quarantine import open_raw


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """One quarantined source row."""

    id: int
    agency_id: str | None
    source_file: str
    row_number: int
    reasons: list[str]
    raw: dict[str, Any]
    status: str
    profile_name: str
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "id": self.id,
            "agency": self.agency_id,
            "source_file": self.source_file,
            "row_number": self.row_number,
            "reasons": self.reasons,
            "raw": self.raw,
            "status": self.status,
            "profile": self.profile_name,
            "created_at": self.created_at.isoformat(),
        }


def list_quarantine(
    store: Store,
    *,
    agency_id: str | None = None,
    status: str | None = "open",
    source_file: str | None = None,
    limit: int | None = 100,
    offset: int = 0,
) -> list[QuarantineEntry]:
    """Return quarantined rows, oldest file and row first, their raw records decrypted.

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
        The entries.

    Raises
    ------
    KeyConfigError
        When the store was opened without a KEK, or with another KEK than the data's.
    DecryptionError
        When a stored raw record was altered or moved.
    """
    vault = require_vault(store, "quarantined rows")
    q = select(quarantine)
    if agency_id:
        q = q.where(quarantine.c.agency_id == agency_id)
    if status:
        q = q.where(quarantine.c.status == status)
    if source_file:
        q = q.where(quarantine.c.source_file == source_file)
    q = q.order_by(quarantine.c.source_file, quarantine.c.row_number).offset(offset)
    if limit is not None:
        q = q.limit(limit)
    with store.connect() as conn:
        return [
            QuarantineEntry(
                id=r.id,
                agency_id=r.agency_id,
                source_file=r.source_file,
                row_number=r.row_number,
                reasons=list(r.reasons),
                raw=open_raw(vault, conn, r),
                status=r.status,
                profile_name=r.profile_name,
                created_at=r.created_at,
            )
            for r in conn.execute(q)
        ]


def count_quarantine(store: Store, *, agency_id: str | None = None) -> dict[str, int]:
    """Return the number of quarantine entries by status."""
    q = select(quarantine.c.status, func.count()).group_by(quarantine.c.status)
    if agency_id:
        q = q.where(quarantine.c.agency_id == agency_id)
    with store.connect() as conn:
        return {str(s): int(n) for s, n in conn.execute(q).all()}


@dataclass
class RetrySummary:
    """What a quarantine retry did."""

    retried: int = 0
    stored: Counts = field(default_factory=Counts)
    still_quarantined: int = 0
    #: Open entries left alone because another profile (feed) quarantined them, by
    #: that profile's name.
    other_profiles: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "retried": self.retried,
            "still_quarantined": self.still_quarantined,
            "other_profiles": dict(self.other_profiles),
            **{k: v for k, v in self.stored.as_dict().items() if k not in ("rows", "quarantined")},
        }


def retry_quarantine(
    store: Store,
    profile: Profile,
    *,
    agency_id: str | None = None,
    ids: Sequence[int] | None = None,
    source_file: str | None = None,
    by: Principal | None = None,
    accept_timezone: bool = False,
) -> RetrySummary:
    """Re-process open quarantine entries with a (fixed) profile.

    Rows that now normalise are stored exactly as an ingest would store them and
    their entries are resolved; the others stay open with their new reasons. Only
    entries quarantined by a profile of the same name (the same feed) are retried:
    another feed's rows would be misread; they are counted in ``other_profiles``.

    Parameters
    ----------
    agency_id
        Only this agency's entries (for a single-agency profile, entries without an
        agency are retried as this agency's).
    ids, source_file
        Only these entries, or only entries from this file.
    by
        Who retries: a signed-in user, or None for the local operator. Each group of
        rows is written with its ``ingest`` audit event (operation
        ``quarantine_retry``, the retry's batch, the entry ids) in one transaction.
    accept_timezone
        Accept a profile time zone that differs from the agency's registered one.

    Returns
    -------
    RetrySummary
        Counts of stored and still-quarantined rows.

    Raises
    ------
    ProfileError
        When the profile has an unsettled ``TODO`` comment.
    ValueError
        When the profile's time zone differs from an owner agency's registered one
        (without ``accept_timezone``), or the rows' agency is unknown.
    """
    require_settled(profile)
    entries = list_quarantine(store, agency_id=agency_id, source_file=source_file, limit=None)
    if ids is not None:
        wanted = set(ids)
        entries = [e for e in entries if e.id in wanted]
    others = Counter(e.profile_name for e in entries if e.profile_name != profile.name)
    entries = [e for e in entries if e.profile_name == profile.name]
    summary = RetrySummary(retried=len(entries), other_profiles=dict(others))
    if not entries:
        return summary
    groups: dict[tuple[str, str | None], list[QuarantineEntry]] = {}
    for e in entries:
        owner = None if profile.agency_column else (e.agency_id or agency_id or profile.agency)
        if owner is None and not profile.agency_column:
            raise ValueError("say which agency these rows belong to (agency_id)")
        groups.setdefault((e.source_file, owner), []).append(e)
    for owner in sorted({o or "" for _, o in groups}):
        problems = store_problems(store, profile, owner or None, accept_timezone=accept_timezone)
        if problems:
            raise ValueError("; ".join(problems) + " (nothing was retried)")
    index = jurisdiction_index(store)
    batch_id = _retry_batch(store, None if profile.agency_column else agency_id, profile)
    hashes = _file_hashes(store, [e.id for e in entries])
    for (file_name, owner), group in groups.items():
        router = RowRouter(store, profile, owner, file_name, index)
        items = derive([router.item(_record(e), hashes[e.id]) for e in group], index)
        with store.begin() as conn:
            counts = write_chunk(
                store,
                items,
                batch_id=batch_id,
                profile_name=profile.name,
                conn=conn,
                areas=index.areas,
            )
            tally = ChunkTally()
            tally.add(items, counts)
            tally.owners.update(e.agency_id for e in group if e.agency_id)
            source = {"file": file_name, "quarantine_ids": [e.id for e in group]}
            record_chunk(
                store,
                conn,
                by,
                batch_id=batch_id,
                profile=profile,
                source=source,
                tally=tally,
                through_row=None,
                operation="quarantine_retry",
            )
        summary.stored.add(counts)
        summary.still_quarantined += counts.quarantined
    with store.begin() as conn:
        conn.execute(
            update(ingest_batches)
            .where(ingest_batches.c.id == batch_id)
            .values(status="complete", finished_at=store.now())
        )
    return summary


def dismiss_quarantine(
    store: Store,
    agency_id: str,
    ids: Sequence[int],
    *,
    reason: str,
    by: Principal | None = None,
) -> int:
    """Mark entries as dismissed (kept, never deleted); return how many changed.

    The dismissal is written to the audit log in the same transaction: a ``change``
    event (resource ``quarantine``) owned by the agency, with the entry ids dismissed
    and the reason. ``by`` is the signed-in user, or None for the local operator.
    """
    if not reason.strip():
        raise ValueError("dismissing quarantined rows needs a reason")
    now = store.now()
    changed = 0
    with store.begin() as conn:
        rows = conn.execute(
            select(quarantine.c.id, quarantine.c.reasons).where(
                (quarantine.c.agency_id == agency_id)
                & quarantine.c.id.in_(list(ids))
                & (quarantine.c.status == "open")
            )
        ).all()
        for r in rows:
            conn.execute(
                update(quarantine)
                .where(quarantine.c.id == r.id)
                .values(
                    status="dismissed",
                    resolved_at=now,
                    reasons=[*r.reasons, f"dismissed: {reason.strip()}"],
                )
            )
            changed += 1
        record_change(
            store,
            conn,
            Action.CHANGE,
            by,
            resource_type="quarantine",
            owners=[agency_id],
            record_count=changed,
            purpose=reason.strip(),
            details={
                "operation": "quarantine_dismiss",
                "quarantine_ids": [r.id for r in rows],
                "asked": len(set(ids)),
            },
        )
    return changed


def _record(e: QuarantineEntry) -> RawRecord:
    """Rebuild the raw record of a quarantine entry, with its geometry and read problems.

    A record that could not be read properly (e.g. its fields do not line up with the
    header) stays quarantined whatever the profile: re-ingest the repaired file.
    """
    raw = dict(e.raw)
    geometry = raw.pop("_geometry", None)
    problems = tuple(str(p) for p in raw.pop("_problems", None) or ())
    occurrence = raw.pop("_occurrence", None)
    fields = {k: (None if v is None else str(v)) for k, v in raw.items()}
    return RawRecord(
        e.row_number,
        fields,
        geometry,
        problems,
        occurrence=int(occurrence) if occurrence is not None else None,
    )


def _file_hashes(store: Store, ids: list[int]) -> dict[int, str]:
    with store.connect() as conn:
        rows = conn.execute(
            select(quarantine.c.id, quarantine.c.file_hash).where(quarantine.c.id.in_(ids))
        ).all()
    return {r.id: r.file_hash for r in rows}


def _retry_batch(store: Store, agency_id: str | None, profile: Profile) -> str:
    batch_id = str(uuid.uuid4())
    with store.begin() as conn:
        conn.execute(
            ingest_batches.insert().values(
                id=batch_id,
                agency_id=agency_id,
                profile_name=profile.name,
                profile_hash=profile.content_hash,
                source_file="(quarantine retry)",
                file_hash=f"retry:{batch_id}",
                file_size=0,
                status="running",
                started_at=store.now(),
                rows_done=0,
            )
        )
    return batch_id
