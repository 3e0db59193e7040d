"""Append to the audit log and read it back (issue #3).

:func:`append` is the one way to write an event. It locks the one-row chain tip
(``audit_head``) with an ``UPDATE`` before reading it, which takes SQLite's write lock
and PostgreSQL's row lock alike, so concurrent appenders from many threads or processes
get gapless sequence numbers and an unbroken chain. Give it the caller's connection to
make the audited action and its event commit (or roll back) together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Dialect,
    Row,
    Select,
    Table,
    column,
    exists,
    func,
    insert,
    literal,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType, TypeDecorator, TypeEngine

from crossbeat.audit.events import Action, AuditEvent, as_action
from crossbeat.audit.merkle import Frontier
from crossbeat.audit.tables import audit_event_owners, audit_events, audit_head
from crossbeat.store import generation

if TYPE_CHECKING:
    from crossbeat.store import Store

PAGE_SIZE = 1000


class AuditError(RuntimeError):
    """The audit log cannot be written or read; the message names the next step."""


def append(store: Store, event: AuditEvent, *, conn: Connection | None = None) -> AuditEvent:
    """Append one event to the audit log.

    Parameters
    ----------
    store
        The store holding the log.
    event
        What happened; its ``seq``, ``occurred_at``, ``prev_hash`` and ``entry_hash``
        must be unset.
    conn
        The caller's open transaction. The event then commits or rolls back with the
        audited action. Log refused or failed attempts without it (or after the
        rollback), so that their event survives.

    Returns
    -------
    AuditEvent
        The stored event, with sequence number, time (from ``store.clock``, taken once
        the log is locked so times never go backwards) and hashes.
    """
    return append_many(store, [event], conn=conn)[0]


def append_many(
    store: Store, events: Iterable[AuditEvent], *, conn: Connection | None = None
) -> list[AuditEvent]:
    """Append several events in one locked step (same time stamp, consecutive seq).

    Parameters
    ----------
    store
        The store holding the log.
    events
        Events as for :func:`append`.
    conn
        The caller's open transaction, as for :func:`append`.

    Returns
    -------
    list of AuditEvent
        The stored events, in order.
    """
    batch = list(events)
    for event in batch:
        if event.seq is not None or event.entry_hash is not None:
            raise ValueError(f"event {event.seq} was already appended; build a new AuditEvent")
    if not batch:
        return []
    if conn is None:
        with store.begin() as own:
            return _append(store, own, batch)
    return _append(store, conn, batch)


def lock_tip(conn: Connection, grow: int = 0) -> Row[Any]:
    """Lock the chain tip for this transaction and return it (size before ``grow``).

    The ``UPDATE`` is what serialises writers: SQLite takes its database write lock,
    PostgreSQL the row lock, and both wait for a concurrent writer to commit.
    """
    row = conn.execute(
        update(audit_head)
        .where(audit_head.c.id == 1)
        .values(size=audit_head.c.size + grow)
        .returning(audit_head.c.size, audit_head.c.last_hash, audit_head.c.frontier)
    ).first()
    if row is None:
        raise AuditError(
            "the audit log has no chain tip (table audit_head is empty): the audit tables "
            "were damaged; run `crossbeat audit verify` and restore from a backup"
        )
    return row


#: Actions that change data or who may see it: each appended one bumps the data
#: generation (:mod:`crossbeat.store.generation`) in the same transaction (issue #8).
#: Reads, previews (``sharing_decision``) and account events do not: a viewer's roles
#: and groups reach a tile's ETag through the viewer's rules.
CHANGE_ACTIONS = frozenset(
    {Action.CHANGE, Action.INGEST, Action.WITHDRAW, Action.EXPUNGE, Action.AGREEMENT_CHANGE}
)


def _append(store: Store, conn: Connection, batch: list[AuditEvent]) -> list[AuditEvent]:
    tip = lock_tip(conn, grow=len(batch))
    if any(e.action in CHANGE_ACTIONS for e in batch):
        generation.bump(conn)
    start = tip.size - len(batch)
    try:
        frontier = Frontier.from_hex(start, tip.frontier)
    except (TypeError, ValueError) as exc:
        raise AuditError(
            f"the audit chain tip is damaged ({exc}); run `crossbeat audit verify`"
        ) from exc
    now = store.now()
    prev = tip.last_hash
    stored: list[AuditEvent] = []
    for offset, event in enumerate(batch, start=1):
        placed = dataclasses.replace(event, seq=start + offset, occurred_at=now, prev_hash=prev)
        prev = placed.compute_hash()
        frontier.append(bytes.fromhex(prev))
        stored.append(dataclasses.replace(placed, entry_hash=prev))
    rows = [event_row(e) for e in stored]
    owners = [{"agency_id": a, "seq": e.seq} for e in stored for a in e.owner_agencies]
    head = (
        update(audit_head)
        .where(audit_head.c.id == 1)
        .values(last_hash=prev, frontier=frontier.to_hex())
    )
    if conn.dialect.name == "postgresql" and _one_statement(rows, owners):
        # One round trip instead of three (every governed read appends its events; on a
        # loaded machine each round trip waits for a core, issue #8): the events and
        # their owners inserted by data-modifying WITH clauses of the tip's UPDATE. The
        # owners' foreign key is checked at the end of the statement, after the events'
        # rows are in.
        stmt = head.add_cte(insert(audit_events).values(rows).cte("new_events"))
        if owners:
            stmt = stmt.add_cte(insert(audit_event_owners).values(owners).cte("new_owners"))
        conn.execute(stmt)
        return stored
    conn.execute(insert(audit_events), rows)
    if owners:
        conn.execute(insert(audit_event_owners), owners)
    conn.execute(head)
    return stored


#: Most bound values in the one-statement append (PostgreSQL allows 65,535 per statement).
_MAX_BOUND = 30_000


def _one_statement(rows: list[dict[str, Any]], owners: list[dict[str, Any]]) -> bool:
    """Whether an append is small enough for one statement (a read's always is)."""
    bound = sum(len(r) for r in rows) + 2 * len(owners)
    return bound <= _MAX_BOUND


def event_row(event: AuditEvent) -> dict[str, Any]:
    """Return the ``audit_events`` row that stores an appended event."""
    return {
        "seq": event.seq,
        "occurred_at": event.occurred_at,
        "actor": event.actor,
        "actor_agency": event.actor_agency,
        "source_ip": event.source_ip,
        "action": event.action.value,
        "outcome": event.outcome.value,
        "purpose": event.purpose,
        "resource_type": event.resource_type,
        "owner_agencies": list(event.owner_agencies),
        "record_ids": list(event.record_ids),
        "record_count": event.record_count,
        "details": dict(event.details),
        "prev_hash": event.prev_hash,
        "entry_hash": event.entry_hash,
    }


class Malformed:
    """A stored value that could not be read as its column's type (see :func:`tolerant`)."""

    def __init__(self, raw: Any, error: str) -> None:
        self.raw = raw
        self.error = error

    def __repr__(self) -> str:
        return f"Malformed({self.raw!r})"


class _Tolerant(TypeDecorator[Any]):
    """Read a column as its type does, but yield :class:`Malformed` instead of raising."""

    impl = NullType
    cache_ok = True

    def __init__(self, inner: TypeEngine[Any]) -> None:
        super().__init__()
        self.inner = inner

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        """Wrap the column type's own result processor."""
        proc = self.inner.dialect_impl(dialect).result_processor(dialect, coltype)
        if proc is None:
            return None

        def process(value: Any) -> Any:
            try:
                return proc(value)
            except (ValueError, TypeError) as exc:
                return Malformed(value, str(exc))

        return process


def tolerant(table: Table) -> Select[Any]:
    """Return ``SELECT`` of every column of ``table`` that never fails on a bad value.

    SQLite stores whatever it is given, so a tampered row may hold text that is not a
    time or not JSON; verification must report that, not crash on it.
    """
    return select(*(type_coerce(c, _Tolerant(c.type)).label(c.name) for c in table.c))


def event_from_row(row: Row[Any]) -> AuditEvent:
    """Rebuild an event from its stored row (``ValueError`` if the row is malformed)."""
    m = row._mapping
    for name, value in m.items():
        if isinstance(value, Malformed):
            raise ValueError(f"{name} is unreadable ({value.error})")
    for name in ("owner_agencies", "record_ids"):
        if not isinstance(m[name], list):
            raise ValueError(f"{name} is stored as {type(m[name]).__name__}, not a list")
    return AuditEvent(
        action=m["action"],
        actor=m["actor"],
        actor_agency=m["actor_agency"],
        source_ip=m["source_ip"],
        outcome=m["outcome"],
        purpose=m["purpose"],
        resource_type=m["resource_type"],
        owner_agencies=tuple(m["owner_agencies"]),
        record_ids=tuple(m["record_ids"]),
        record_count=m["record_count"],
        details=m["details"],
        seq=m["seq"],
        occurred_at=m["occurred_at"],
        prev_hash=m["prev_hash"],
        entry_hash=m["entry_hash"],
    )


def iter_rows(
    conn: Connection,
    *,
    after: int | None = None,
    until: int | None = None,
    page: int = PAGE_SIZE,
    lenient: bool = False,
) -> Iterator[list[Row[Any]]]:
    """Yield the stored event rows in ``seq`` order, one page (list) at a time.

    Parameters
    ----------
    conn
        An open connection.
    after
        Start after this sequence number (None: from the very first row, whatever its
        number, so that rows numbered 0 or below are seen too).
    until
        Stop after this sequence number (None: to the end).
    page
        Rows per query; memory use is bounded by it.
    lenient
        Read unreadable values as :class:`Malformed` instead of raising (for verify).
    """
    base = tolerant(audit_events) if lenient else select(audit_events)
    while True:
        query = base.order_by(audit_events.c.seq).limit(page)
        if after is not None:
            query = query.where(audit_events.c.seq > after)
        if until is not None:
            query = query.where(audit_events.c.seq <= until)
        rows = list(conn.execute(query))
        if not rows:
            return
        yield rows
        after = rows[-1].seq
        if len(rows) < page:
            return


def iter_events(
    store: Store, *, after: int = 0, until: int | None = None, page: int = PAGE_SIZE
) -> Iterator[AuditEvent]:
    """Yield every stored event in order, reading the log in pages.

    Parameters
    ----------
    store
        The store holding the log.
    after
        Start after this sequence number.
    until
        Stop after this sequence number (None: to the end).
    page
        Rows per query.
    """
    with store.connect() as conn:
        for rows in iter_rows(conn, after=after, until=until, page=page):
            yield from (event_from_row(row) for row in rows)


def get_event(store: Store, seq: int) -> AuditEvent | None:
    """Return the event with this sequence number, or None."""
    with store.connect() as conn:
        row = conn.execute(select(audit_events).where(audit_events.c.seq == seq)).first()
    return None if row is None else event_from_row(row)


def log_size(store: Store) -> int:
    """Return the number of events in the log (the chain tip's size)."""
    with store.connect() as conn:
        size = conn.execute(select(audit_head.c.size).where(audit_head.c.id == 1)).scalar()
    if size is None:
        raise AuditError("the audit log has no chain tip: run `crossbeat audit verify`")
    return int(size)


def leaf_hashes(conn: Connection, size: int) -> list[bytes]:
    """Return the stored entry hashes of the first ``size`` events (for proofs)."""
    hashes = [
        bytes.fromhex(h)
        for (h,) in conn.execute(
            select(audit_events.c.entry_hash)
            .where(audit_events.c.seq <= size)
            .order_by(audit_events.c.seq)
        )
    ]
    if len(hashes) != size:
        raise AuditError(
            f"the log holds {len(hashes)} of the first {size} events: run `crossbeat audit verify`"
        )
    return hashes


def events_for_owner(
    store: Store,
    agency_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    action: Action | str | None = None,
    record_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEvent]:
    """Return every event that touched an agency's data, by anyone, newest first.

    This is the owner-visible access log: an agency's auditors see each read, export,
    change and sharing decision on their records, whoever made it.

    Parameters
    ----------
    store
        The store holding the log.
    agency_id
        The owner agency.
    since, until
        Only events at or after ``since`` and before ``until`` (aware datetimes).
    actor
        Only events by this actor.
    action
        Only events of this action.
    record_id
        Only events that list this record id.
    limit, offset
        Page through the result.

    Returns
    -------
    list of AuditEvent
        Newest first.
    """
    query = select(audit_events).join(
        audit_event_owners, audit_event_owners.c.seq == audit_events.c.seq
    )
    query = query.where(audit_event_owners.c.agency_id == agency_id)
    if actor is not None:
        query = query.where(audit_events.c.actor == actor)
    return _run(store, query, since, until, action, record_id, limit, offset)


def events_by_actor(
    store: Store,
    actor: str | None = None,
    *,
    actor_agency: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    action: Action | str | None = None,
    record_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEvent]:
    """Return what one actor (or every actor of one agency) did, newest first.

    Parameters
    ----------
    store
        The store holding the log.
    actor
        The user id, token id, ``"public"`` or ``"system"``.
    actor_agency
        Only actors of this agency (alone: every action by that agency's people).
    since, until, action, record_id, limit, offset
        As for :func:`events_for_owner`.

    Returns
    -------
    list of AuditEvent
        Newest first.
    """
    if actor is None and actor_agency is None:
        raise ValueError("give an actor, an actor_agency or both")
    query = select(audit_events)
    if actor is not None:
        query = query.where(audit_events.c.actor == actor)
    if actor_agency is not None:
        query = query.where(audit_events.c.actor_agency == actor_agency)
    return _run(store, query, since, until, action, record_id, limit, offset)


def _run(
    store: Store,
    query: Any,
    since: datetime | None,
    until: datetime | None,
    action: Action | str | None,
    record_id: str | None,
    limit: int,
    offset: int,
) -> list[AuditEvent]:
    if limit < 1 or offset < 0:
        raise ValueError("limit must be at least 1 and offset at least 0")
    if since is not None:
        query = query.where(audit_events.c.occurred_at >= since)
    if until is not None:
        query = query.where(audit_events.c.occurred_at < until)
    if action is not None:
        query = query.where(audit_events.c.action == as_action(action).value)
    if record_id is not None:
        query = query.where(_lists_record(store.dialect, record_id))
    query = query.order_by(audit_events.c.seq.desc()).limit(limit).offset(offset)
    with store.connect() as conn:
        return [event_from_row(row) for row in conn.execute(query)]


def _lists_record(dialect: str, record_id: str) -> ColumnElement[bool]:
    """Return a condition true when ``record_ids`` contains ``record_id``."""
    if dialect == "postgresql":  # JSONB containment, served by the GIN index
        return type_coerce(audit_events.c.record_ids, JSONB).contains([record_id])
    ids = func.json_each(audit_events.c.record_ids).table_valued("value")
    return exists(select(literal(1)).select_from(ids).where(column("value") == record_id))


def owners_by_seq(conn: Connection, after: int | None, until: int) -> dict[int, set[str]]:
    """Return the owner-index entries for events in ``(after, until]``, by seq."""
    query = select(audit_event_owners).where(audit_event_owners.c.seq <= until)
    if after is not None:
        query = query.where(audit_event_owners.c.seq > after)
    found: dict[int, set[str]] = {}
    for row in conn.execute(query):
        found.setdefault(row.seq, set()).add(row.agency_id)
    return found
