"""The live event log: what changed, in commit order, for the live stream (issue #10).

Every change of an incident (the ingest's upserts and withdrawals, field reports) and
of a bulletin appends a row to ``live_events`` in the change's own transaction, so an
event exists exactly when its change was committed. The row's id is the stream's
cursor: a client that reconnects with ``Last-Event-ID`` is sent every event after it.

For that to lose nothing, ids must be handed out in commit order: an appender on
PostgreSQL first takes a transaction-scoped advisory lock (held until its commit), so
a transaction that took id 7 has committed before another can take id 8. SQLite
serialises writers anyway. On PostgreSQL the append also sends ``NOTIFY`` on
:data:`CHANNEL`, delivered to every listener when the transaction commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, func, select, text

from crossbeat.store.schema import live_events

EventKind = Literal[
    "incident.created",
    "incident.updated",
    "incident.withdrawn",
    "bulletin.created",
    "bulletin.acknowledged",
]

#: The PostgreSQL ``NOTIFY`` channel of new events.
CHANNEL = "crossbeat_live"
#: Advisory lock key serialising appenders (ids in commit order): "CBLIVE" in hex.
_LOCK_KEY = 0x43424C495645


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One committed change, as stored in the event log."""

    id: int
    kind: str
    agency_id: str
    subject_id: str
    public_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append: its kind, the owner and the subject's ids."""

    kind: EventKind
    agency_id: str
    subject_id: str
    public_id: str | None = None


def append_events(conn: Connection, events: Iterable[NewEvent], now: datetime) -> None:
    """Append events in the caller's transaction (they are published when it commits).

    Parameters
    ----------
    conn
        The transaction that makes the changes the events describe.
    events
        The events, in order.
    now
        Their time (the change's).
    """
    rows = [
        {
            "kind": e.kind,
            "agency_id": e.agency_id,
            "subject_id": e.subject_id,
            "public_id": e.public_id,
            "created_at": now,
        }
        for e in events
    ]
    if not rows:
        return
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    conn.execute(live_events.insert(), rows)
    if postgres:
        conn.execute(text("SELECT pg_notify(:c, '')"), {"c": CHANNEL})


def events_after(conn: Connection, after: int, *, limit: int = 1000) -> list[LiveEvent]:
    """Return the events with an id above ``after``, oldest first (at most ``limit``)."""
    t = live_events.c
    rows = conn.execute(select(live_events).where(t.id > after).order_by(t.id).limit(limit)).all()
    return [
        LiveEvent(r.id, r.kind, r.agency_id, r.subject_id, r.public_id, r.created_at) for r in rows
    ]


def last_event_id(conn: Connection) -> int:
    """Return the id of the newest event (0 when there is none)."""
    return int(conn.execute(select(func.coalesce(func.max(live_events.c.id), 0))).scalar_one())


def incident_events(kind: EventKind, rows: Sequence[tuple[str, str, str | None]]) -> list[NewEvent]:
    """Return one event of ``kind`` per ``(agency_id, incident_id, public_id)``."""
    return [NewEvent(kind, a, i, p) for a, i, p in rows]
