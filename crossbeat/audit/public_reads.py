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

**Buffered in the web server (issue #10).** Even one upsert per anonymous request
serialises the public's reads on the database's write lock. A server process therefore
counts in memory (:func:`buffer_tallies`, started by the application's lifespan) and
writes its counts to ``public_read_tallies`` in one transaction every
:data:`BUFFER_SECONDS` and when it stops (:func:`write_buffered`): the sums are the
same, row for row. Known limit: a process that is killed (not stopped) loses at most
the last :data:`BUFFER_SECONDS` of its anonymous-read counts.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from types import EllipsisType
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
#: Seconds between writes of a server process's buffered counts.
BUFFER_SECONDS = 1.0

_Key = tuple[datetime, str, str, str, str]


@dataclasses.dataclass(slots=True)
class _Counts:
    requests: int
    records: int
    first_at: datetime
    last_at: datetime

    def add(self, other: _Counts) -> None:
        self.requests += other.requests
        self.records += other.records
        self.first_at = min(self.first_at, other.first_at)
        self.last_at = max(self.last_at, other.last_at)


class _Buffer:
    """One process's counts of one database, not yet written."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: dict[_Key, _Counts] = {}


_BUFFERS: dict[str, _Buffer] = {}
_BUFFERS_LOCK = threading.Lock()
#: The audit events of public reads counted in this context (see :func:`captured`).
_CAPTURE: contextvars.ContextVar[list[AuditEvent] | None] = contextvars.ContextVar(
    "public_read_capture", default=None
)


def buffer_tallies(store: Store) -> None:
    """Count this process's public reads of ``store`` in memory from now on.

    The caller must call :func:`write_buffered` every :data:`BUFFER_SECONDS` and when
    it stops (the web server's lifespan does).
    """
    with _BUFFERS_LOCK:
        _BUFFERS.setdefault(store.url, _Buffer())


def stop_buffering(store: Store) -> None:
    """Write what is buffered and count in the database again (the server stopping)."""
    with _BUFFERS_LOCK:
        buffer = _BUFFERS.pop(store.url, None)
    if buffer is not None and buffer.rows:
        _write_rows(store, buffer)


def write_buffered(store: Store) -> int:
    """Write this process's buffered counts of ``store`` in one transaction; return rows."""
    buffer = _BUFFERS.get(store.url)
    if buffer is None:
        return 0
    return _write_rows(store, buffer)


def _write_rows(store: Store, buffer: _Buffer) -> int:
    with buffer.lock:
        rows, buffer.rows = buffer.rows, {}
    if not rows:
        return 0
    try:
        with store.begin() as conn:
            for (start, owner, action, resource, ip), c in rows.items():
                _upsert(conn, start, owner, action, resource, ip, c)
    except Exception:
        # Put them back: the next write tries again (a database outage must not lose them).
        with buffer.lock:
            for key, value in rows.items():
                _merge(buffer.rows, key, value)
        raise
    return len(rows)


def _merge(rows: dict[_Key, _Counts], key: _Key, counts: _Counts) -> None:
    found = rows.get(key)
    if found is None:
        rows[key] = counts
    else:
        found.add(counts)


@contextlib.contextmanager
def captured() -> Iterator[list[AuditEvent]]:
    """Collect the audit events of the public reads counted inside the block.

    A response cache keeps them with the response and counts them again, for the new
    caller's address, whenever it serves the response (:func:`count_again`), so a
    cached answer is audited exactly as a computed one.
    """
    events: list[AuditEvent] = []
    token = _CAPTURE.set(events)
    try:
        yield events
    finally:
        _CAPTURE.reset(token)


def count_again(
    store: Store, events: Iterable[AuditEvent], source_ip: str | None, now: datetime
) -> None:
    """Count a served-again public read: ``events`` as from ``source_ip``, at ``now``."""
    if store.url in _BUFFERS:
        # Counted under the new address without building new events (a kept answer's
        # only cost besides its bytes, issue #10).
        _buffer(store, events, now, source_ip=source_ip)
        return
    again = [dataclasses.replace(e, source_ip=source_ip) for e in events]
    with store.begin() as conn:
        tally(store, conn, again, now)


def _buffer(
    store: Store,
    events: Iterable[AuditEvent],
    now: datetime,
    *,
    source_ip: str | None | EllipsisType = ...,
) -> None:
    """Count ``events`` in memory (as from ``source_ip`` when given, else their own)."""
    buffer = _BUFFERS[store.url]
    start = window_start(now)
    with buffer.lock:
        for e in events:
            ip = e.source_ip if isinstance(source_ip, EllipsisType) else source_ip
            key = (
                start,
                e.owner_agencies[0] if e.owner_agencies else "",
                e.action.value,
                e.resource_type or "",
                ip or "",
            )
            _merge(buffer.rows, key, _Counts(1, e.record_count or 0, now, now))


def window_start(when: datetime) -> datetime:
    """Return the start of the window holding ``when`` (windows align to the quarter hour)."""
    minutes = (when.minute // 15) * 15
    return when.replace(minute=minutes, second=0, microsecond=0)


def tally(store: Store, conn: Connection, events: Iterable[AuditEvent], now: datetime) -> None:
    """Count the events of one public read in their windows, in the caller's transaction.

    Each event counts as one request of its owner (or none), action, resource and
    address, with its ``record_count`` records. Windows that have closed are flushed.
    """
    events = list(events)
    capture = _CAPTURE.get()
    if capture is not None:
        capture.extend(events)
    if store.url in _BUFFERS:
        _buffer(store, events, now)
        return
    start = window_start(now)
    for e in events:
        owner = e.owner_agencies[0] if e.owner_agencies else ""
        ip = e.source_ip or ""
        counts = _Counts(1, e.record_count or 0, now, now)
        _upsert(conn, start, owner, e.action.value, e.resource_type or "", ip, counts)
    flush(store, now, conn=conn)


def _upsert(
    conn: Connection,
    start: datetime,
    owner: str,
    action: str,
    resource: str,
    ip: str,
    counts: _Counts,
) -> None:
    """Add the requests and records of ``counts`` to one tally row."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    t = public_read_tallies.c
    row = {
        "window_start": start,
        "owner_id": owner,
        "action": action,
        "resource_type": resource,
        "source_ip": ip,
        "requests": counts.requests,
        "records": counts.records,
        "first_at": counts.first_at,
        "last_at": counts.last_at,
    }
    stmt = insert(public_read_tallies).values(**row)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["window_start", "owner_id", "action", "resource_type", "source_ip"],
            set_={
                "requests": t.requests + stmt.excluded.requests,
                "records": t.records + stmt.excluded.records,
                "last_at": stmt.excluded.last_at,
            },
        )
    )


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
