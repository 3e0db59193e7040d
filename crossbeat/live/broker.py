"""Fan-out of committed events to the live streams of one process (issue #10).

One :class:`Broker` per server process watches the event log
(:mod:`crossbeat.store.events`) from a background thread and wakes every live stream
of the process when events are committed, handing them the new events from a shared
buffer (one database read per batch, not one per subscriber):

* on PostgreSQL it ``LISTEN``\\ s on :data:`crossbeat.store.events.CHANNEL`, so several
  worker processes or hosts each deliver what any of them (or an ingest, or the CLI)
  committed; it also looks every :attr:`Broker.safety_poll` seconds, in case a
  notification was lost with a dropped connection;
* on SQLite (one host) it looks every :attr:`Broker.poll` seconds — a cheap indexed
  ``max(id)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

from sqlalchemy.engine import make_url

from crossbeat.store import Store
from crossbeat.store.events import CHANNEL, LiveEvent, events_after, last_event_id

log = logging.getLogger(__name__)

#: Events kept in memory for streams that fall behind (older ones are read again).
BUFFER = 20_000


class Broker:
    """Watch the event log and wake the live streams of this process.

    Parameters
    ----------
    store
        The store whose event log to watch.
    poll
        Seconds between looks on SQLite.
    safety_poll
        Seconds between looks on PostgreSQL when no notification arrives.
    """

    def __init__(self, store: Store, *, poll: float = 0.05, safety_poll: float = 2.0) -> None:
        self.store = store
        self.poll = poll
        self.safety_poll = safety_poll
        self.last_id = 0
        self._buffer: deque[LiveEvent] = deque(maxlen=BUFFER)
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._start = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start watching (from the current end of the log)."""
        with self.store.connect() as conn:
            self.last_id = last_event_id(conn)
        #: Every event with an id above this is in the buffer.
        self._start = self.last_id
        target = self._listen if self.store.dialect == "postgresql" else self._poll
        self._thread = threading.Thread(target=target, name="crossbeat-live", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching and wake every waiting stream."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._wake()

    # -- what streams call -------------------------------------------------------------
    def buffered_after(self, after: int) -> list[LiveEvent] | None:
        """Return the buffered events after ``after``, or None when they are not all held."""
        with self._lock:
            if after < self._start:
                return None
            # Newest first, stopping at the cursor: a stream that keeps up touches only
            # the new events, not the whole buffer (ids increase along it).
            out: list[LiveEvent] = []
            for e in reversed(self._buffer):
                if e.id <= after:
                    break
                out.append(e)
            out.reverse()
            return out

    async def wait(self, after: int, timeout: float) -> None:
        """Return when an event after ``after`` is committed, or after ``timeout`` seconds."""
        if self.last_id > after or self._stop.is_set():
            return
        item = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(item)
        try:
            if self.last_id > after:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(item[1].wait(), timeout)
        finally:
            with self._lock:
                self._waiters.discard(item)

    # -- the watching thread -----------------------------------------------------------
    def _fetch(self) -> None:
        """Read the events committed since the last look into the buffer; wake streams."""
        found = False
        while True:
            with self.store.connect() as conn:
                batch = events_after(conn, self.last_id, limit=5000)
            if not batch:
                break
            with self._lock:
                overflow = len(self._buffer) + len(batch) - BUFFER
                if overflow > 0:
                    gone = list(self._buffer)[:overflow] or batch[: overflow - len(self._buffer)]
                    self._start = gone[-1].id
                self._buffer.extend(batch)
                self.last_id = batch[-1].id
            found = True
        if found:
            self._wake()

    def _wake(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # the loop closed
                loop.call_soon_threadsafe(event.set)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self._fetch()
            except Exception:
                log.exception("live events: reading the event log failed; retrying")
                self._stop.wait(1.0)

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with _listening(self.store) as notifies:
                    self._fetch()  # what was committed while not listening
                    for _ in notifies(self.safety_poll, self._stop):
                        self._fetch()
            except Exception:
                log.exception("live events: LISTEN connection lost; reconnecting")
                self._stop.wait(1.0)


@contextlib.contextmanager
def _listening(store: Store) -> Iterator[Any]:
    """Open a psycopg connection listening on the channel; yield a notification waiter."""
    import psycopg

    url = make_url(store.url).set(drivername="postgresql")
    dsn = url.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")

        def notifies(timeout: float, stop: threading.Event) -> Iterator[None]:
            while not stop.is_set():
                # One wake per burst of notifications (or per timeout: the safety poll).
                for _ in conn.notifies(timeout=timeout, stop_after=1):
                    pass
                yield None

        yield notifies
