"""The audit events of the ingest: which batch changed how many records of whose data.

The ingest commits a file in transactions of a chunk each; every transaction appends
one ``ingest`` event (:func:`record_chunk`) before it commits, so no committed record
is ever missing from the audit log, even when the run is killed between chunks. The
event names the batch, the file (name and SHA-256), the profile (name and content
hash, and the previous hash when the agency's last batch of that feed used another
version of the profile), the crosswalk versions the chunk's offences were classified
with, the last source row it accounts for, and the counts. Its owners are the agencies
of the chunk's rows, so each agency's auditors see the ingest of their data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from crossbeat.audit.changes import Principal, record_change
from crossbeat.audit.events import Action
from crossbeat.ingest.items import Item
from crossbeat.ingest.profile import Profile
from crossbeat.ingest.unchanged import Skipped
from crossbeat.ingest.writes import Counts
from crossbeat.store import Store
from crossbeat.store.schema import ingest_batches


@dataclass
class ChunkTally:
    """What one transaction of an ingest wrote, gathered over its parts."""

    counts: Counts = field(default_factory=Counts)
    owners: set[str] = field(default_factory=set)
    crosswalks: set[str] = field(default_factory=set)

    def add(self, items: Iterable[Item], counts: Counts, skipped: Skipped | None = None) -> None:
        """Add one written part: its items (for owners and crosswalks) and counts.

        ``skipped`` are the part's rows counted unchanged without items
        (:mod:`crossbeat.ingest.reingest`).
        """
        self.counts.add(counts)
        if skipped is not None:
            self.owners.add(skipped.agency_id)
            self.crosswalks.update(skipped.crosswalks)
        for it in items:
            if it.agency_id:
                self.owners.add(it.agency_id)
            if it.stored is not None:  # skipped as unchanged (crossbeat.ingest.unchanged)
                self.crosswalks.update(it.stored.crosswalks)
            if it.incident is not None:
                self.crosswalks.update(
                    f"{o.scheme}@{o.crosswalk_version}"
                    for o in it.incident.offences
                    if o.scheme and o.crosswalk_version
                )


def previous_profile_hash(store: Store, agency_id: str | None, profile: Profile) -> str | None:
    """Return the profile hash of the agency's last other batch of this feed, if it differs.

    This is how a profile change shows in the audit log: the first ingest with a
    changed profile names the hash it replaced.
    """
    t = ingest_batches.c
    agency = t.agency_id.is_(None) if agency_id is None else t.agency_id == agency_id
    with store.connect() as conn:
        last = conn.execute(
            select(t.profile_hash)
            .where(agency & (t.profile_name == profile.name) & (t.status == "complete"))
            .order_by(t.started_at.desc())
            .limit(1)
        ).scalar()
    return last if last is not None and last != profile.content_hash else None


def record_chunk(
    store: Store,
    conn: Connection,
    by: Principal | None,
    *,
    batch_id: str,
    profile: Profile,
    source: dict[str, Any],
    tally: ChunkTally,
    through_row: int | None,
    operation: str = "ingest",
) -> None:
    """Append the ``ingest`` event of one transaction of an ingest or quarantine retry.

    Parameters
    ----------
    store, conn
        The store and the open transaction that wrote the chunk.
    by
        The signed-in user, or None for the local operator.
    batch_id
        The ingest batch.
    profile
        The source profile used.
    source
        The file: ``file`` (name), ``file_hash``, and ``previous_profile_hash`` when
        the profile changed since the feed's last batch.
    tally
        What the transaction wrote.
    through_row
        The last source row the transaction accounts for (the checkpoint), if any.
    operation
        ``ingest`` or ``quarantine_retry``.
    """
    c = tally.counts
    details: dict[str, Any] = {
        "operation": operation,
        "batch_id": batch_id,
        "profile": profile.name,
        "profile_hash": profile.content_hash,
        **{k: v for k, v in source.items() if v is not None},
        "crosswalks": sorted(tally.crosswalks),
        "counts": c.as_dict(),
    }
    if through_row is not None:
        details["through_row"] = through_row
    record_change(
        store,
        conn,
        Action.INGEST,
        by,
        resource_type="incident",
        owners=tally.owners,
        record_count=c.new + c.updated + c.withdrawn + c.expunged + c.quarantined,
        details=details,
    )
