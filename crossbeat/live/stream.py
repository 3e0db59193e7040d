"""A live stream as Server-Sent Events: resume point, fan-out, per-subscriber filter.

:func:`sse_frames` is the whole stream of one connection, independent of the web
framework: it starts after ``Last-Event-ID`` (or at the current end of the log), takes
committed events from the process's :class:`~crossbeat.live.broker.Broker` (or the
database, for a client far behind), filters them for the subscriber through
:class:`crossbeat.sharing.live.StreamReader` at send time, and yields SSE frames whose
``id:`` is the event's id, so a reconnecting client resumes with nothing missed.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from anyio import CancelScope, to_thread

from crossbeat.live.broker import Broker
from crossbeat.sharing.live import Delivery, StreamReader, policy_key
from crossbeat.store import Store
from crossbeat.store.events import LiveEvent, events_after

#: Seconds between keep-alive comments on a quiet stream (proxies close idle ones).
KEEPALIVE = 15.0

#: Filters bulletin events for a subscriber (:mod:`crossbeat.live.bulletins`).
BulletinFilter = Callable[[Sequence[LiveEvent]], list[Delivery]]


#: One lock per (event loop, policy view): the subscribers of a view read a batch once.
_VIEW_LOCKS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[Any, ...], asyncio.Lock]
] = weakref.WeakKeyDictionary()


def _view_lock(reader: StreamReader) -> asyncio.Lock:
    """Return the lock of this subscriber's policy view in the running event loop."""
    locks = _VIEW_LOCKS.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(policy_key(reader.viewer), asyncio.Lock())


async def _deliveries(reader: StreamReader, events: Sequence[LiveEvent]) -> list[Delivery]:
    """Return what ``reader`` may be sent of ``events``, reading each view's batch once.

    When a batch arrives every subscriber wakes at once; without this, each of them
    would find the batch unread and read it in a thread of its own (a hundred reads,
    queued on two cores, for four distinct views). Here the first subscriber of a view
    reads (in a thread) while the others of that view wait without a thread, then
    take the batch from the shared cache with no I/O.
    """
    if reader.cached(events):
        return reader.deliveries(events)
    async with _view_lock(reader):
        if reader.cached(events):
            return reader.deliveries(events)
        return await to_thread.run_sync(reader.deliveries, events)


def frame(delivery: Delivery) -> str:
    """Return one SSE frame: ``id``, ``event`` and the JSON ``data`` on one line."""
    data = json.dumps(delivery.data, default=str, separators=(",", ":"))
    return f"id: {delivery.id}\nevent: {delivery.kind}\ndata: {data}\n\n"


def parse_last_event_id(value: str | None) -> int | None:
    """Return the cursor of a ``Last-Event-ID`` header (None: absent or not ours)."""
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:  # ours fit a BIGINT
        return None
    return int(text)


async def sse_frames(
    store: Store,
    broker: Broker,
    reader: StreamReader,
    *,
    after: int | None,
    disconnected: Callable[[], Awaitable[bool]],
    bulletins: BulletinFilter | None = None,
    keepalive: float = KEEPALIVE,
) -> AsyncIterator[str]:
    """Yield the SSE frames of one connection until the client goes; audit on the way out.

    Parameters
    ----------
    after
        The client's ``Last-Event-ID``; None starts at the newest committed event.
    disconnected
        Tells whether the client went away.
    bulletins
        Filters bulletin events for this subscriber (None sends none).
    """
    cursor = broker.last_id if after is None else after
    yield "retry: 2000\n\n"
    quiet = 0.0
    try:
        while not await disconnected():
            events = broker.buffered_after(cursor)
            if events is None:
                events = await to_thread.run_sync(_from_database, store, cursor)
            if not events:
                # Wake at least every second to notice a client that went away.
                await broker.wait(cursor, min(1.0, keepalive))
                quiet += 1.0
                if broker.last_id <= cursor and quiet >= keepalive:
                    quiet = 0.0
                    yield ": keep-alive\n\n"
                continue
            quiet = 0.0
            out = await _deliveries(reader, events)
            if bulletins is not None and any(e.kind.startswith("bulletin.") for e in events):
                more = await to_thread.run_sync(bulletins, events)
                out = sorted(out + more, key=lambda d: d.id)
            for d in out:
                yield frame(d)
            cursor = events[-1].id
    finally:
        # Shielded: a server shutting down cancels the stream, and the summary must
        # still be written.
        with CancelScope(shield=True):
            await to_thread.run_sync(reader.close)


def _from_database(store: Store, after: int) -> list[LiveEvent]:
    with store.connect() as conn:
        return events_after(conn, after, limit=1000)
