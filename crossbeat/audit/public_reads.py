"""Anonymous reads audited per time window, not per request (issue #7, finding 9).

Every anonymous request used to append about four audit events (one per owner agency
and decision), so the tamper-evident log, which is never pruned, grew without bound
under load. Public reads are instead *counted*, in the read's own transaction, in
``public_read_tallies``: one row per :data:`WINDOW` (15 minutes), owner agency, action,
resource and client address. Once the window has closed the row becomes one audit event
(actor ``public``, the owner as owner agency, ``record_count`` the records shown, and in
``details.aggregated`` the window, the number of requests and the first and last time)
and the row is deleted, in one transaction. Windows are flushed by the next public read,
by the web server's periodic checkpoint task and before the audit log is read
(``GET /api/v1/audit``, ``crossbeat audit log``).

What this keeps: who (address) read which owner's data how often, and how many records,
to the quarter hour. What it drops: the individual requests' filters and times. Known
limit: until its window is flushed a tally is an ordinary row, not yet covered by the
hash chain (at most one window's counts could be altered unseen).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from crossbeat.audit.events import Action, AuditEvent, Outcome
from crossbeat.audit.log import append_many
from crossbeat.audit.tables import public_read_tallies

if TYPE_CHECKING:
    from crossbeat.store import Store

#: Length of a counting window.
WINDOW = timedelta(minutes=15)


def window_start(when: datetime) -> datetime:
    """Return the start of the window holding ``when`` (windows align to the quarter hour)."""
    minutes = (when.minute // 15) * 15
    return when.replace(minute=minutes, second=0, microsecond=0)


def tally(store: Store, conn: Connection, events: Iterable[AuditEvent], now: datetime) -> None:
    """Count the events of one public read in their windows, in the caller's transaction.

    Each event counts as one request of its owner (or none), action, resource and
    address, with its ``record_count`` records. Windows that have closed are flushed.
    """
    start = window_start(now)
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    for e in events:
        row = {
            "window_start": start,
            "owner_id": e.owner_agencies[0] if e.owner_agencies else "",
            "action": e.action.value,
            "resource_type": e.resource_type or "",
            "source_ip": e.source_ip or "",
            "requests": 1,
            "records": e.record_count,
            "first_at": now,
            "last_at": now,
        }
        stmt = insert(public_read_tallies).values(**row)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[
                    "window_start",
                    "owner_id",
                    "action",
                    "resource_type",
                    "source_ip",
                ],  # fmt: skip
                set_={
                    "requests": public_read_tallies.c.requests + 1,
                    "records": public_read_tallies.c.records + e.record_count,
                    "last_at": now,
                },
            )
        )
    flush(store, now, conn=conn)


def flush(store: Store, now: datetime, *, conn: Connection | None = None) -> int:
    """Turn every closed window's tallies into audit events; return how many.

    Safe to call from several processes at once: a tally row becomes an event only in
    the transaction that deletes it.
    """
    if conn is None:
        with store.begin() as own:
            return flush(store, now, conn=own)
    t = public_read_tallies.c
    due = conn.execute(
        select(public_read_tallies)
        .where(t.window_start <= window_start(now) - WINDOW)
        .order_by(t.window_start, t.owner_id, t.action, t.resource_type, t.source_ip)
    ).all()
    events = []
    for row in due:
        gone = conn.execute(
            delete(public_read_tallies).where(
                (t.window_start == row.window_start)
                & (t.owner_id == row.owner_id)
                & (t.action == row.action)
                & (t.resource_type == row.resource_type)
                & (t.source_ip == row.source_ip)
                & (t.requests == row.requests)
            )
        )
        if gone.rowcount != 1:
            continue  # flushed meanwhile by another process
        action = Action(row.action)
        events.append(
            AuditEvent(
                action=action,
                actor="public",
                source_ip=row.source_ip or None,
                outcome=Outcome.DENIED if action is Action.DENIED else Outcome.ALLOWED,
                purpose="public_information",
                resource_type=row.resource_type or None,
                owner_agencies=(row.owner_id,) if row.owner_id else (),
                record_count=row.records,
                details={
                    "aggregated": {
                        "window_start": row.window_start.isoformat(),
                        "window_end": (row.window_start + WINDOW).isoformat(),
                        "requests": row.requests,
                        "first_at": row.first_at.isoformat(),
                        "last_at": row.last_at.isoformat(),
                    }
                },
            )
        )
    append_many(store, events, conn=conn)
    return len(events)
