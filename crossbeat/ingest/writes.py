"""Writing a chunk of normalised records: upsert, versions, withdrawals, quarantine.

Everything for one chunk happens in one transaction, together with the ingest
batch's counters and checkpoint, so a run killed at any moment leaves the store
exactly as it was after the last committed chunk, and a re-run resumes after it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    select,
    text,
    tuple_,
    update,
)

from crossbeat.audit.changes import MAX_LISTED_IDS, Principal, record_change
from crossbeat.audit.events import Action as AuditAction
from crossbeat.geo.areas import AreaIndex
from crossbeat.ingest.records import (
    incident_row,
    offence_rows,
    personal_rows,
    record_hash,
    snapshot,
)
from crossbeat.ingest.unchanged import Skipped, StoredRef, keyed_digest
from crossbeat.model import Incident, RecordUpdate
from crossbeat.store import Store
from crossbeat.store.areas import area_tag_rows
from crossbeat.store.children import child_columns
from crossbeat.store.events import NewEvent, append_events
from crossbeat.store.records import jurisdiction_rows
from crossbeat.store.schema import (
    expunged_records,
    incident_areas,
    incident_jurisdictions,
    incident_offences,
    incident_personal,
    incident_versions,
    incidents,
    ingest_batches,
    quarantine,
)
from crossbeat.store.spatial import indexed_together
from crossbeat.vault.fingerprint import Fingerprinter, fingerprinter
from crossbeat.vault.quarantine import seal_quarantined

Action = Literal["upsert", "withdraw", "expunge", "update", "unchanged"]


class WriteItem(Protocol):
    """What the write path needs of one source row (:class:`crossbeat.ingest.items.Item`).

    The ingest builds the items and derives them (H3 cells, jurisdictions) before they
    reach the store; the store only classifies and writes them.
    """

    @property
    def row_number(self) -> int: ...  # noqa: D102

    @property
    def file_hash(self) -> str: ...  # noqa: D102

    @property
    def source_file(self) -> str: ...  # noqa: D102

    @property
    def raw(self) -> dict[str, Any]: ...  # noqa: D102

    @property
    def agency_id(self) -> str | None: ...  # noqa: D102

    @property
    def incident(self) -> Incident | None: ...  # noqa: D102

    @property
    def action(self) -> Action: ...  # noqa: D102

    @property
    def reasons(self) -> tuple[str, ...]: ...  # noqa: D102

    @property
    def update(self) -> RecordUpdate | None: ...  # noqa: D102

    @property
    def source_key(self) -> str | None: ...  # noqa: D102

    @property
    def stored(self) -> StoredRef | None: ...  # noqa: D102


@dataclass(frozen=True, slots=True)
class _RejectedRow:
    """A row on its way to the quarantine, with why."""

    row_number: int
    file_hash: str
    source_file: str
    raw: dict[str, Any]
    agency_id: str | None
    reasons: tuple[str, ...]

    @classmethod
    def of(cls, it: WriteItem, reasons: tuple[str, ...] | None = None) -> _RejectedRow:
        return cls(
            it.row_number,
            it.file_hash,
            it.source_file,
            it.raw,
            it.agency_id,
            it.reasons if reasons is None else reasons,
        )


@dataclass
class Counts:
    """What happened to the rows of a chunk (or a whole run)."""

    rows: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    expunged: int = 0
    quarantined: int = 0
    unmapped: int = 0
    #: Quarantine ids or source rows of duplicates, for the report.
    notes: list[str] = field(default_factory=list)

    def add(self, other: Counts) -> None:
        """Add another tally to this one."""
        for name in ("rows", "new", "updated", "unchanged", "withdrawn", "expunged"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.quarantined += other.quarantined
        self.unmapped += other.unmapped
        self.notes.extend(other.notes)

    def as_dict(self) -> dict[str, int]:
        """Return the counters as a plain dict."""
        return {
            "rows": self.rows,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "withdrawn": self.withdrawn,
            "expunged": self.expunged,
            "quarantined": self.quarantined,
            "unmapped": self.unmapped,
        }


def write_chunk(
    store: Store,
    items: Sequence[WriteItem],
    *,
    batch_id: str,
    profile_name: str,
    checkpoint: int | None = None,
    conn: Connection | None = None,
    seen: dict[str, int] | None = None,
    areas: AreaIndex | None = None,
    skipped: Skipped | None = None,
) -> Counts:
    """Store one chunk of items in a single transaction and return what happened.

    Parameters
    ----------
    items
        Derived items (:func:`crossbeat.ingest.items.derive` gave their incidents H3
        cells and jurisdictions), in source order.
    areas
        The registered area layers (``JurisdictionIndex.areas``): every stored incident
        is tagged with the areas containing it. None tags no area.
    checkpoint
        When given, the batch's ``rows_done`` is set to it in the same transaction.
    conn
        Write in the caller's open transaction instead of a transaction of its own
        (the ingest commits several chunks at once); the caller commits or rolls back.
    seen
        Incident id to source row of the records stored by earlier calls in the same
        transaction; updated. Chunks written in several calls share it, so that a
        repeated id is reported as a duplicate exactly as within one call.
    skipped
        Rows of the chunk besides ``items`` found stored unchanged by their source
        digest without becoming items (:mod:`crossbeat.ingest.reingest`): counted and
        remembered in ``seen`` as the items of such rows would be. Each is the first
        row of its id in the chunk, so it is remembered before the items.
    """
    now = store.now()
    counts = Counts(rows=len(items))
    with nullcontext(conn) if conn is not None else store.begin() as conn:
        ids = [it.incident.id for it in items if it.incident]
        existing = _existing(store, conn, ids)
        tombstones = _tombstones(store, conn, ids)
        plan = _Plan(fingerprint=fingerprinter(store, conn))
        if seen is None:
            seen = {}
        if skipped is not None:
            counts.rows += len(skipped.row_numbers)
            counts.unchanged += len(skipped.row_numbers)
            counts.unmapped += skipped.unmapped
            seen.update(zip(skipped.incident_ids, skipped.row_numbers, strict=True))
            plan.skipped_rows.append((skipped.file_hash, skipped.row_numbers))
        updates = [it for it in items if it.update is not None]
        for it in items:
            if it.update is None:
                _classify(it, existing, tombstones, seen, plan, counts)
        _apply(store, conn, plan, batch_id=batch_id, now=now, areas=areas)
        if updates:
            _apply_updates(store, conn, updates, plan, counts, batch_id=batch_id, now=now)
        _quarantine(store, conn, plan.rejected, batch_id, profile_name, now)
        _resolve_quarantine(conn, plan.stored_keys, now, plan.skipped_rows)
        _bump_batch(conn, batch_id, counts, checkpoint)
    return counts


# -- classification ------------------------------------------------------------------


@dataclass
class _Plan:
    fingerprint: Fingerprinter
    inserts: list[tuple[Incident, str]] = field(default_factory=list)
    updates: list[tuple[Incident, str, dict[str, Any]]] = field(default_factory=list)
    withdrawals: list[dict[str, Any]] = field(default_factory=list)
    expunges: list[Incident] = field(default_factory=list)
    rejected: list[_RejectedRow] = field(default_factory=list)
    stored_keys: list[tuple[str, int]] = field(default_factory=list)
    #: Rows stored as they were, skipped by their source digest: (file hash, row numbers).
    skipped_rows: list[tuple[str, list[int]]] = field(default_factory=list)
    #: Incident id to the source key of the row storing it (the source digest).
    source_keys: dict[str, str] = field(default_factory=dict)
    #: Unchanged records stored without a source digest, with their row's source key.
    digests: list[tuple[str, str]] = field(default_factory=list)


def _classify(
    it: WriteItem,
    existing: dict[str, dict[str, Any]],
    tombstones: set[str],
    seen: dict[str, int],
    plan: _Plan,
    counts: Counts,
) -> None:
    if it.action == "unchanged" and it.stored is not None:
        # Matched its stored record by source digest (crossbeat.ingest.unchanged),
        # which made sure it is no duplicate.
        seen[it.stored.incident_id] = it.row_number
        plan.stored_keys.append((it.file_hash, it.row_number))
        counts.unchanged += 1
        counts.unmapped += it.stored.unmapped
        return
    inc = it.incident
    if inc is None:
        plan.rejected.append(_RejectedRow.of(it))
        counts.quarantined += 1
        return
    iid = inc.id
    if iid in tombstones:
        counts.expunged += 1  # expunged earlier: never brought back
        plan.stored_keys.append((it.file_hash, it.row_number))
        return
    old = existing.get(iid)
    first_row = seen.get(iid)
    if first_row is None and old is not None and old["file_hash"] == it.file_hash:
        if old["row_number"] != it.row_number:
            first_row = old["row_number"]
    if first_row is not None:
        reason = (
            f"duplicate source id {inc.source_id!r}: the same id is already at row {first_row} "
            "of this file; the first occurrence was kept"
        )
        plan.rejected.append(_RejectedRow.of(it, (reason,)))
        counts.quarantined += 1
        return
    seen[iid] = it.row_number
    plan.stored_keys.append((it.file_hash, it.row_number))
    if it.action == "expunge":
        plan.expunges.append(inc)
        counts.expunged += 1
        return
    if it.action == "withdraw":
        counts.withdrawn += 1
        if old is not None and old["withdrawn_at"] is None:
            plan.withdrawals.append(old)
        return
    digest = record_hash(inc, plan.fingerprint)
    if it.source_key is not None:
        plan.source_keys[iid] = it.source_key
    if inc.unmapped:
        counts.unmapped += 1
    if old is None:
        plan.inserts.append((inc, digest))
        counts.new += 1
        existing[iid] = {
            "record_hash": digest,
            "file_hash": it.file_hash,
            "row_number": it.row_number,
        }
    elif old["record_hash"] == digest:
        counts.unchanged += 1
        if it.source_key is not None:
            stored = old.get("source_digest")
            if stored is None or bytes(stored) != keyed_digest(plan.fingerprint, it.source_key):
                # Unchanged, but stored without this digest (before migration 0022, by
                # a field report, or under other rules giving the same record): keep
                # the row's, so that the next re-ingest can skip it.
                plan.digests.append((iid, it.source_key))
    else:
        plan.updates.append((inc, digest, old))
        counts.updated += 1


# -- reads ----------------------------------------------------------------------------------


def _existing(store: Store, conn: Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    q = (
        select(
            incidents.c.id,
            incidents.c.agency_id,
            incidents.c.public_id,
            incidents.c.record_hash,
            incidents.c.version,
            incidents.c.row_number,
            incidents.c.withdrawn_at,
            incidents.c.created_at,
            incidents.c.status,
            incidents.c.status_at,
            incidents.c.disposition,
            incidents.c.disposition_at,
            incidents.c.source_digest,
            ingest_batches.c.file_hash,
        )
        .select_from(
            incidents.outerjoin(ingest_batches, ingest_batches.c.id == incidents.c.batch_id)
        )
        .where(store.one_of(incidents.c.id, sorted(set(ids))))
    )
    return {r["id"]: dict(r) for r in conn.execute(q).mappings()}


def stored_digests(store: Store, conn: Connection, ids: list[str]) -> dict[str, Any]:
    """Return, per stored incident among ``ids``, its source digest and provenance.

    Each row has ``source_digest``, ``row_number``, ``unmapped`` and the ``file_hash``
    of the batch that wrote it (:class:`crossbeat.ingest.unchanged.UnchangedProbe`).
    """
    if not ids:
        return {}
    q = (
        select(
            incidents.c.id,
            incidents.c.source_digest,
            incidents.c.row_number,
            incidents.c.unmapped,
            ingest_batches.c.file_hash,
        )
        .select_from(
            incidents.outerjoin(ingest_batches, ingest_batches.c.id == incidents.c.batch_id)
        )
        .where(store.one_of(incidents.c.id, sorted(set(ids))))
    )
    return {r.id: r for r in conn.execute(q)}


@dataclass(frozen=True, slots=True)
class StoredSources:
    """The stored records of a part's source ids, as columns (one entry per match).

    ``positions`` are the positions in the part of the rows whose source id is stored
    (ascending; a source id repeated in the part matches at each of its positions on
    SQLite, at its first on PostgreSQL: only the first can be skipped either way),
    each with its record's ``ids``, ``digests`` (None: stored without one) and their
    ``sizes`` in bytes, ``row_numbers``, ``unmapped`` (0 or 1) and whether the batch
    that wrote it read the same file (``same_file``, 0 or 1; as the database gives
    them, bytes or a buffer, integers or booleans).
    """

    positions: tuple[int, ...] = ()
    ids: tuple[str, ...] = ()
    digests: tuple[bytes | None, ...] = ()
    sizes: tuple[int | None, ...] = ()
    row_numbers: tuple[int, ...] = ()
    unmapped: tuple[int, ...] = ()
    same_file: tuple[int, ...] = ()


#: The part's source ids (a JSON array, null for a row without one) joined with the
#: unique (agency, source id) index: SQLite walks the array in order and looks each up.
_SQLITE_SOURCES = text(
    "SELECT j.key, i.id, i.source_digest, length(i.source_digest), i.row_number, i.unmapped,"
    " i.batch_id IN (SELECT b.id FROM ingest_batches AS b WHERE b.file_hash = :file_hash)"
    " FROM json_each(:source_ids) AS j CROSS JOIN incidents AS i"
    " WHERE i.agency_id = :agency_id AND i.source_id = j.value ORDER BY j.key"
)
#: PostgreSQL: the part's source ids as one array, each found by the unique index (a
#: join with the unnested array is planned as a hash join over the agency's records).
_POSTGRES_SOURCES = text(
    "SELECT i.source_id, i.id, i.source_digest, octet_length(i.source_digest), i.row_number,"
    " i.unmapped,"
    " i.batch_id IN (SELECT b.id FROM ingest_batches AS b WHERE b.file_hash = :file_hash)"
    " FROM incidents AS i WHERE i.agency_id = :agency_id AND i.source_id = ANY(:source_ids)"
)


def stored_sources(
    store: Store,
    conn: Connection,
    agency_id: str,
    source_ids: Sequence[str | None],
    file_hash: str,
) -> StoredSources:
    """Return the stored records of an agency among a part's source ids, by position.

    One query over the unique (agency, source id) index, answered as plain tuples
    (no row objects, no dictionary per row): the columnar re-ingest
    (:mod:`crossbeat.ingest.reingest`) finds a part's records by their source ids
    instead of deriving each row's UUID, and compares digests as columns. A None
    source id matches nothing. ``same_file`` tells whether the batch that wrote a
    record read the file ``file_hash``.
    """
    if not any(s is not None for s in source_ids):
        return StoredSources()
    params: dict[str, Any] = {"agency_id": agency_id, "file_hash": file_hash}
    if store.dialect == "postgresql":
        params["source_ids"] = list(source_ids)
        found = conn.execute(_POSTGRES_SOURCES, params).cursor.fetchall()
        # Each record at the first position of its source id in the part, in order.
        first = dict(zip(reversed(source_ids), range(len(source_ids) - 1, -1, -1), strict=True))
        rows: Sequence[Any] = sorted((first[r[0]], *r[1:]) for r in found)
    else:
        params["source_ids"] = json.dumps(list(source_ids), ensure_ascii=False)
        rows = conn.execute(_SQLITE_SOURCES, params).cursor.fetchall()
    if not rows:
        return StoredSources()
    positions, ids, digests, sizes, row_numbers, unmapped, same = zip(*rows, strict=True)
    return StoredSources(positions, ids, digests, sizes, row_numbers, unmapped, same)


def _tombstones(store: Store, conn: Connection, ids: list[str]) -> set[str]:
    """Return the incident ids among ``ids`` that were expunged."""
    if not ids:
        return set()
    q = select(expunged_records.c.incident_id).where(
        store.one_of(expunged_records.c.incident_id, sorted(set(ids)))
    )
    return set(conn.execute(q).scalars())


# -- writes ---------------------------------------------------------------------------------


def _apply(
    store: Store,
    conn: Connection,
    plan: _Plan,
    *,
    batch_id: str,
    now: Any,
    areas: AreaIndex | None = None,
) -> None:
    if plan.updates or plan.withdrawals:
        _save_versions(
            conn,
            [old["id"] for *_, old in plan.updates] + [w["id"] for w in plan.withdrawals],
            batch_id,
            now,
        )
    fp = plan.fingerprint
    new_rows = [
        incident_row(i, version=1, digest=d, batch_id=batch_id, now=now, fingerprint=fp)
        for i, d in plan.inserts
    ]
    upd_rows = [
        incident_row(
            i,
            version=old["version"] + 1,
            digest=d,
            batch_id=batch_id,
            now=now,
            fingerprint=fp,
            created_at=old["created_at"],
        )
        for i, d, old in plan.updates
    ]
    for row, (*_, old) in zip(upd_rows, plan.updates, strict=True):
        _keep_dated(row, old)
    stored = [i for i, _ in plan.inserts] + [i for i, _, _ in plan.updates]
    # Child rows built once: inserted below and kept on the incident row as well
    # (crossbeat.store.children), so that they are never out of step.
    kids = {
        inc.id: (offence_rows(inc), jurisdiction_rows(inc.id, inc.agency_id, inc.jurisdictions))
        for inc in stored
    }
    for row in (*new_rows, *upd_rows):
        row["source_digest"] = keyed_digest(fp, plan.source_keys.get(row["id"]))
        row.update(child_columns(*kids[row["id"]]))
    if plan.digests:
        conn.execute(
            update(incidents)
            .where(incidents.c.id == bindparam("b_id"))
            .values(source_digest=bindparam("b_digest")),
            [{"b_id": i, "b_digest": keyed_digest(fp, k)} for i, k in plan.digests],
        )
    changed_ids = [r["id"] for r in upd_rows]
    if changed_ids:
        for table in (incident_offences, incident_jurisdictions, incident_areas, incident_personal):
            conn.execute(delete(table).where(table.c.incident_id.in_(changed_ids)))
        # The public id is kept from the first version: it must never change.
        cols = [c for c in upd_rows[0] if c not in ("id", "public_id")]
        stmt = (
            update(incidents)
            .where(incidents.c.id == bindparam("b_id"))
            .values({c: bindparam(f"b_{c}") for c in cols})
        )
        conn.execute(stmt, [{f"b_{k}": v for k, v in r.items()} for r in upd_rows])
    with indexed_together(conn, [r["id"] for r in new_rows]):
        store.bulk_insert(conn, incidents, new_rows)
    if stored:
        offs = [r for inc in stored for r in kids[inc.id][0]]
        store.bulk_insert(conn, incident_offences, offs)
        tags = [r for inc in stored for r in kids[inc.id][1]]
        store.bulk_insert(conn, incident_jurisdictions, tags)
        store.bulk_insert(conn, incident_areas, area_tag_rows(areas, stored))
        pers = personal_rows(store, conn, stored, now)
        store.bulk_insert(conn, incident_personal, pers)
    for w in plan.withdrawals:
        conn.execute(
            update(incidents)
            .where(incidents.c.id == w["id"])
            .values(withdrawn_at=now, version=w["version"] + 1, updated_at=now, batch_id=batch_id)
        )
    public = {r["id"]: r["public_id"] for r in new_rows}
    append_events(
        conn,
        [NewEvent("incident.created", i.agency_id, i.id, public[i.id]) for i, _ in plan.inserts]
        + [NewEvent("incident.updated", o["agency_id"], o["id"], o["public_id"])
           for *_, o in plan.updates]
        + [NewEvent("incident.withdrawn", w["agency_id"], w["id"], w["public_id"])
           for w in plan.withdrawals],
        now,
    )  # fmt: skip
    by_agency: dict[str, list[tuple[str, str]]] = {}
    for inc in plan.expunges:
        by_agency.setdefault(inc.agency_id, []).append((inc.source_id, inc.id))
    for agency, records in by_agency.items():
        expunge(store, conn, agency, records, now=now, reason="source expunged the record")


#: Fields an update feed sets, each with the columns holding the date it was set as
#: of and the source row of that update.
DATED_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("status", "status_at", "status_row"),
    ("disposition", "disposition_at", "disposition_row"),
)


def _keep_dated(row: dict[str, Any], old: dict[str, Any]) -> None:
    """Keep the fields a (newer) update feed set when the incident feed changes a record."""
    for name, at, _ in DATED_FIELDS:
        if old.get(at) is not None:
            row[name] = old[name]


def _apply_updates(
    store: Store,
    conn: Connection,
    items: Sequence[WriteItem],
    plan: _Plan,
    counts: Counts,
    *,
    batch_id: str,
    now: Any,
) -> None:
    """Apply the dated changes of an update feed, in row order.

    An update sets a field only when it is newer than the update that last set it:
    a later date (``status_at`` / ``disposition_at``) or, on the same date, a later
    source row (police.uk lists a month's outcomes of a crime in the order reached).
    So files can be ingested in any order, and again, to the same end. Each change
    of a value makes a new version; a newer update confirming the value already
    stored only records its date.
    An update for an incident that is not stored waits in quarantine (retry it after
    ingesting the incident); one for an expunged incident is counted as expunged.
    """
    ids = sorted({it.update.id for it in items if it.update is not None})
    rows = {
        r["id"]: dict(r)
        for r in conn.execute(select(incidents).where(store.one_of(incidents.c.id, ids))).mappings()
    }
    gone = _tombstones(store, conn, [i for i in ids if i not in rows])
    superseded: list[dict[str, Any]] = []
    touched: dict[str, dict[str, Any]] = {}
    for it in items:
        u = it.update
        assert u is not None
        row = rows.get(u.id)
        if row is None:
            if u.id in gone:
                counts.expunged += 1
                plan.stored_keys.append((it.file_hash, it.row_number))
                continue
            reason = (
                f"update: no incident with source id {u.source_id!r} is stored for agency "
                f"{u.agency_id!r}; ingest its incident feed, then run `crossbeat quarantine retry`"
            )
            plan.rejected.append(_RejectedRow.of(it, (reason,)))
            counts.quarantined += 1
            continue
        plan.stored_keys.append((it.file_hash, it.row_number))
        when = (u.as_of, it.row_number)
        newer = {
            name: (value, at, seq)
            for name, at, seq in DATED_FIELDS
            if (value := getattr(u, name)) is not None
            and (row[at] is None or when > (row[at], row[seq] or 0))
        }
        changes = {name: value for name, (value, _, _) in newer.items() if row[name] != value}
        if not newer:
            counts.unchanged += 1
            continue
        if changes:
            superseded.append(dict(row))
            row.update(changes, version=row["version"] + 1, updated_at=now)
            counts.updated += 1
        else:
            counts.unchanged += 1
        for _, at, seq in newer.values():
            row[at], row[seq] = when
        touched[row["id"]] = row
    _insert_versions(conn, superseded, batch_id, now)
    append_events(
        conn,
        [NewEvent("incident.updated", r["agency_id"], r["id"], r["public_id"]) for r in superseded],
        now,
    )
    if touched:
        cols = ("version", "updated_at", *(c for names in DATED_FIELDS for c in names))
        conn.execute(
            update(incidents)
            .where(incidents.c.id == bindparam("b_id"))
            .values({c: bindparam(f"b_{c}") for c in cols}),
            [{"b_id": r["id"], **{f"b_{c}": r[c] for c in cols}} for r in touched.values()],
        )


def _save_versions(conn: Connection, ids: list[str], batch_id: str | None, now: Any) -> None:
    rows = conn.execute(select(incidents).where(incidents.c.id.in_(ids))).mappings().all()
    _insert_versions(conn, [dict(r) for r in rows], batch_id, now)


def _insert_versions(
    conn: Connection, rows: list[dict[str, Any]], batch_id: str | None, now: Any
) -> None:
    """Keep stored incident rows, as they were before a change, in ``incident_versions``.

    One incident may appear several times (an update feed changing it twice in one
    chunk): each row is a version. The offences are read once for all of them.
    """
    if not rows:
        return
    ids = sorted({r["id"] for r in rows})
    offs: dict[str, list[dict[str, Any]]] = {}
    for o in conn.execute(
        select(incident_offences)
        .where(incident_offences.c.incident_id.in_(ids))
        .order_by(incident_offences.c.seq)
    ).mappings():
        offs.setdefault(o["incident_id"], []).append(dict(o))
    conn.execute(
        incident_versions.insert(),
        [
            {
                "incident_id": r["id"],
                "version": r["version"],
                "record_hash": r["record_hash"],
                "snapshot": snapshot(r, offs.get(r["id"], [])),
                "batch_id": batch_id,
                "superseded_at": now,
            }
            for r in rows
        ],
    )


def expunge(
    store: Store,
    conn: Connection,
    agency_id: str,
    records: Sequence[tuple[str, str]],
    *,
    now: Any,
    reason: str,
) -> None:
    """Delete records with their history and personal data, leaving tombstones.

    ``records`` are ``(source_id, incident_id)`` pairs.
    """
    ids = [iid for _, iid in records]
    gone = conn.execute(
        select(incidents.c.id, incidents.c.public_id).where(
            incidents.c.id.in_(ids) & incidents.c.withdrawn_at.is_(None)
        )
    ).all()
    append_events(
        conn, [NewEvent("incident.withdrawn", agency_id, r.id, r.public_id) for r in gone], now
    )
    for table in (
        incident_offences,
        incident_jurisdictions,
        incident_areas,
        incident_personal,
        incident_versions,
    ):
        conn.execute(delete(table).where(table.c.incident_id.in_(ids)))
    conn.execute(delete(incidents).where(incidents.c.id.in_(ids)))
    store.insert_ignore(
        conn,
        expunged_records,
        [
            {
                "agency_id": agency_id,
                "source_id": sid,
                "incident_id": iid,
                "expunged_at": now,
                "reason": reason,
            }
            for sid, iid in records
        ],
    )


def _quarantine(
    store: Store,
    conn: Connection,
    rejected: list[_RejectedRow],
    batch_id: str,
    profile_name: str,
    now: Any,
) -> None:
    """Upsert the rejected rows, their raw records sealed (crossbeat.vault.quarantine)."""
    sealed = seal_quarantined(store, conn, rejected)
    rows = [
        {
            "agency_id": it.agency_id,
            "batch_id": batch_id,
            "profile_name": profile_name,
            "source_file": it.source_file,
            "file_hash": it.file_hash,
            "row_number": it.row_number,
            **raw,
            "reasons": list(it.reasons),
            "status": "open",
            "created_at": now,
            "resolved_at": None,
            "incident_id": None,
        }
        for it, raw in zip(rejected, sealed, strict=True)
    ]
    store.upsert(
        conn,
        quarantine,
        rows,
        keys=["file_hash", "row_number"],
        update=[
            "agency_id",
            "batch_id",
            "profile_name",
            "raw",
            "codec",
            "key_id",
            "reasons",
            "status",
            "resolved_at",
        ],
    )


def _resolve_quarantine(
    conn: Connection,
    keys: list[tuple[str, int]],
    now: Any,
    skipped: Sequence[tuple[str, list[int]]] = (),
) -> None:
    """Mark open quarantine entries resolved once their row has been stored.

    ``keys`` are (file hash, row number) of stored rows; ``skipped`` the row numbers of
    each file's rows stored as they were (counted unchanged by their source digest).
    Most chunks have none: an indexed range query per file finds the open entries
    among the chunk's rows before anything is updated.
    """
    rows_of: dict[str, list[int]] = {}
    for file_hash, row_number in keys:
        rows_of.setdefault(file_hash, []).append(row_number)
    for file_hash, row_numbers in skipped:
        rows_of.setdefault(file_hash, []).extend(row_numbers)
    found: list[tuple[str, int]] = []
    for file_hash, rows in rows_of.items():
        open_rows = (
            conn.execute(
                select(quarantine.c.row_number).where(
                    (quarantine.c.file_hash == file_hash)
                    & quarantine.c.row_number.between(min(rows), max(rows))
                    & (quarantine.c.status == "open")
                )
            )
            .scalars()
            .all()
        )
        if open_rows:
            wanted = set(rows)
            found += [(file_hash, r) for r in open_rows if r in wanted]
    if not found:
        return
    conn.execute(
        update(quarantine)
        .where(
            and_(
                quarantine.c.status == "open",
                tuple_(quarantine.c.file_hash, quarantine.c.row_number).in_(found),
            )
        )
        .values(status="resolved", resolved_at=now)
    )


def _bump_batch(conn: Connection, batch_id: str, c: Counts, checkpoint: int | None) -> None:
    t = ingest_batches.c
    values: dict[str, Any] = {
        "rows": t.rows + c.rows,
        "new": t.new + c.new,
        "updated": t.updated + c.updated,
        "unchanged": t.unchanged + c.unchanged,
        "withdrawn": t.withdrawn + c.withdrawn,
        "expunged": t.expunged + c.expunged,
        "quarantined": t.quarantined + c.quarantined,
        "unmapped": t.unmapped + c.unmapped,
    }
    if checkpoint is not None:
        values["rows_done"] = checkpoint
    conn.execute(update(ingest_batches).where(t.id == batch_id).values(**values))


@dataclass(frozen=True, slots=True)
class WithdrawResult:
    """What a withdrawal or expunge request did."""

    changed: list[str]
    already: list[str]
    unknown: list[str]


def withdraw_records(
    store: Store,
    agency_id: str,
    source_ids: Sequence[str],
    *,
    expunge_records: bool = False,
    reason: str,
    by: Principal | None = None,
) -> WithdrawResult:
    """Withdraw (hide, keep history) or expunge (delete, keep a tombstone) records.

    After either, no read returns the records. Withdrawal keeps the record and its
    history for the owner's audit; expunging deletes it with its history and personal
    data and leaves only a tombstone, so that re-ingesting an old export cannot bring
    it back.

    The request is written to the audit log in the same transaction: one ``withdraw``
    or ``expunge`` event owned by the agency, with the ids of the records changed, the
    counts of changed, already gone and unknown ids, and the reason. ``by`` is the
    signed-in user, or None for the local operator.

    Raises
    ------
    ValueError
        When no reason is given.
    """
    from crossbeat.model import incident_id

    if not reason.strip():
        raise ValueError("withdrawing or expunging records needs a reason")
    now = store.now()
    ids = {incident_id(agency_id, s): s for s in source_ids}
    changed: list[str] = []
    already: list[str] = []
    with store.begin() as conn:
        found = {
            r.id: r
            for r in conn.execute(
                select(
                    incidents.c.id,
                    incidents.c.public_id,
                    incidents.c.version,
                    incidents.c.withdrawn_at,
                ).where(incidents.c.id.in_(list(ids)))
            )
        }
        gone = _tombstones(store, conn, list(ids))
        unknown = [s for i, s in ids.items() if i not in found and i not in gone]
        already = [s for i, s in ids.items() if i in gone]
        if expunge_records:
            targets = [(s, i) for i, s in ids.items() if i in found]
            if targets:
                expunge(store, conn, agency_id, targets, now=now, reason=reason)
            changed = [s for s, _ in targets]
        else:
            live = [found[i] for i in ids if i in found and found[i].withdrawn_at is None]
            already += [ids[i] for i in ids if i in found and found[i].withdrawn_at is not None]
            if live:
                _save_versions(conn, [r.id for r in live], None, now)
            for r in live:
                conn.execute(
                    update(incidents)
                    .where(incidents.c.id == r.id)
                    .values(withdrawn_at=now, version=r.version + 1, updated_at=now)
                )
            append_events(
                conn,
                [NewEvent("incident.withdrawn", agency_id, r.id, r.public_id) for r in live],
                now,
            )
            changed = [ids[r.id] for r in live]
        by_source = {s: i for i, s in ids.items()}
        record_change(
            store,
            conn,
            AuditAction.EXPUNGE if expunge_records else AuditAction.WITHDRAW,
            by,
            resource_type="incident",
            owners=[agency_id],
            record_ids=[by_source[s] for s in changed],
            purpose=reason.strip(),
            details={
                "operation": "expunge" if expunge_records else "withdraw",
                "source_ids": changed[:MAX_LISTED_IDS],
                "changed": len(changed),
                "already": len(already),
                "unknown": len(unknown),
            },
        )
    return WithdrawResult(changed=changed, already=already, unknown=unknown)


@dataclass(frozen=True, slots=True)
class StoredState:
    """What a checked write needs to know of one stored incident (its owner's view)."""

    version: int
    source_id: str
    withdrawn: bool


def stored_state(conn: Connection, incident_id: str) -> StoredState | None:
    """Return the version, source id and withdrawal of one incident (None: not stored).

    For writes that check the version first (field reports' ``If-Match``, in
    :mod:`crossbeat.live.field`), in the writer's transaction, after it took its lock.
    """
    c = incidents.c
    row = conn.execute(
        select(c.version, c.source_id, c.withdrawn_at).where(c.id == incident_id)
    ).first()
    if row is None:
        return None
    return StoredState(int(row.version), row.source_id, row.withdrawn_at is not None)
