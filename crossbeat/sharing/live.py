"""The live stream's reads: events filtered per subscriber at send time, audited in summary.

Every batch of committed events (:mod:`crossbeat.store.events`) is read for each
subscriber through the same plan as :func:`crossbeat.sharing.reads.read_incidents`,
with the agreements stored at that moment, so a revoked agreement stops what flows at
once. A subscriber gets an incident created or updated only as it would read it from
``GET /api/v1/incidents``; a withdrawal only of a record it may know: its own agency's,
or one this connection delivered (a partner never learns the id of a record it could
not see).

The reads are audited without one row per event: :class:`StreamReader` collects what
it sent and writes it as one read per owner agency (the record ids, the event range)
when the connection closes, when :data:`FLUSH_SECONDS` have passed, or when
:data:`FLUSH_IDS` ids are pending.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crossbeat.audit import Action
from crossbeat.clock import Clock
from crossbeat.sharing.policy import ReadPlan
from crossbeat.sharing.reads import _audit, _read, prepare
from crossbeat.sharing.request import CallsFilter, ReadRequest, Viewer, ViewerKind
from crossbeat.store import Store
from crossbeat.store.events import LiveEvent

#: Write the summary of a long-lived connection at least this often.
FLUSH_SECONDS = 300.0
#: ... or when this many record ids are waiting to be written.
FLUSH_IDS = 2000

INCIDENT_KINDS = ("incident.created", "incident.updated", "incident.withdrawn")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event as a subscriber gets it: its id, kind and JSON-ready payload."""

    id: int
    kind: str
    data: dict[str, Any]


def policy_key(viewer: Viewer) -> tuple[Any, ...]:
    """Return what a viewer's read depends on: viewers with equal keys see the same."""
    return (viewer.kind, viewer.agency_id, viewer.roles, viewer.purpose)


class ReadCache:
    """Each event as read for each policy view, shared by the subscribers of a process.

    A hundred subscribers of four agencies cost four reads per event, not a hundred.
    Entries are per event (the record as that view may see it, or None) and the oldest
    are forgotten beyond :attr:`size`; an event is read when the first subscriber of a
    view is sent it, so an agreement revoked after that still stops every later event.
    """

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[Any, ...], dict[str, Any] | None] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> tuple[bool, dict[str, Any] | None]:
        """Return (found, record) for a (policy view, event id) key."""
        with self._lock:
            if key in self._entries:
                return True, self._entries[key]
            return False, None

    def put(self, key: tuple[Any, ...], value: dict[str, Any] | None) -> None:
        """Remember an event as read for a view, forgetting the oldest beyond :attr:`size`."""
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


class StreamReader:
    """Filter committed events for one subscriber and audit what it was sent, in summary.

    Parameters
    ----------
    store
        The store.
    viewer
        The subscriber.
    clock
        Time source (default: the store's clock).
    cache
        Shared by the subscribers of one process (:class:`ReadCache`); None reads alone.
    shape
        Renders a record for the wire (the web API's record model for the viewer), once
        per event and policy view; None sends records as read.

    Examples
    --------
    ``reader = StreamReader(store, viewer)``; ``reader.deliveries(events)`` for each batch;
    ``reader.close()`` when the client goes.
    """

    def __init__(
        self,
        store: Store,
        viewer: Viewer,
        *,
        clock: Clock | None = None,
        cache: ReadCache | None = None,
        shape: Callable[[Viewer, dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.store = store
        self.shape = shape
        self.viewer = viewer
        self.clock = clock or store.clock
        self.cache = cache
        self.connection = str(uuid.uuid4())
        #: Owner's id -> id as shown, of the records this connection delivered.
        self.sent: dict[str, str] = {}
        self._pending: list[dict[str, str]] = []
        self._plan: ReadPlan | None = None
        self._events = 0
        self._first: int | None = None
        self._last: int | None = None
        self._flushed_at = self.clock.now()

    def _shown(self, e: LiveEvent) -> str | None:
        own = self.viewer.kind is not ViewerKind.PUBLIC and self.viewer.agency_id == e.agency_id
        return e.subject_id if own else e.public_id

    def _read(self, events: Sequence[LiveEvent], now: datetime) -> dict[int, dict[str, Any]]:
        """Return event id -> record, for the events whose record the subscriber may see."""
        view = policy_key(self.viewer)
        out: dict[int, dict[str, Any]] = {}
        missing: list[LiveEvent] = []
        for e in events:
            found, record = self.cache.get((view, e.id)) if self.cache else (False, None)
            if not found:
                missing.append(e)
            elif record is not None:
                out[e.id] = record
        if not missing:
            return out
        ids = frozenset(s for e in missing if (s := self._shown(e)) is not None)
        request = ReadRequest(ids=ids, calls=CallsFilter.INCLUDE)
        with self.store.begin() as conn:
            records, plan, _, _ = _read(self.store, conn, self.viewer, request, now)
        self._plan = plan
        if self.shape is not None:
            records = [self.shape(self.viewer, r) for r in records]
        by_id = {r["id"]: r for r in records}
        for e in missing:
            record = by_id.get(self._shown(e) or "")
            if self.cache is not None:
                self.cache.put((view, e.id), record)
            if record is not None:
                out[e.id] = record
        return out

    def cached(self, events: Sequence[LiveEvent]) -> bool:
        """Return whether every incident event is read for this view already (no I/O)."""
        if self.cache is None:
            return False
        view = policy_key(self.viewer)
        return (
            all(
                self.cache.get((view, e.id))[0]
                for e in events
                if e.kind in ("incident.created", "incident.updated")
            )
            and len(self._pending) + len(events) < FLUSH_IDS
        )

    def deliveries(self, events: Sequence[LiveEvent]) -> list[Delivery]:
        """Return what this subscriber may be sent of ``events`` (incident events only).

        Created and updated incidents are read now, under the agreements in force now;
        a record the subscriber may not see is left out (never announced).
        """
        events = [e for e in events if e.kind in INCIDENT_KINDS]
        if not events:
            return []
        now = self.clock.now()
        wanted = [e for e in events if e.kind != "incident.withdrawn"]
        read = self._read(wanted, now) if wanted else None
        out: list[Delivery] = []
        for e in events:
            shown = self._shown(e)
            if shown is None:
                continue
            if e.kind == "incident.withdrawn":
                own = shown == e.subject_id
                if own or self.sent.pop(e.subject_id, None) is not None:
                    out.append(Delivery(e.id, e.kind, {"id": shown, "agency_id": e.agency_id}))
                continue
            assert read is not None
            record = read.get(e.id)
            if record is None:
                continue
            self.sent[e.subject_id] = shown
            out.append(Delivery(e.id, e.kind, record))
            self._pending.append({"id": shown, "agency_id": record["agency_id"]})
        if out:
            self._events += len(out)
            self._first = self._first if self._first is not None else out[0].id
            self._last = out[-1].id
        if (
            len(self._pending) >= FLUSH_IDS
            or (now - self._flushed_at).total_seconds() >= FLUSH_SECONDS
        ):
            self.flush()
        return out

    def flush(self) -> None:
        """Write what was sent since the last flush as one read per owner agency."""
        now = self.clock.now()
        with self.store.begin() as conn:
            plan = self._plan or prepare(conn, self.viewer, ReadRequest(), now)
            extra = {
                "stream": self.connection,
                "events_sent": self._events,
                "first_event": self._first,
                "last_event": self._last,
            }
            _audit(self.store, conn, plan, Action.READ, "incident_stream", self._pending, extra)
        self._pending, self._events, self._first, self._last = [], 0, None, None
        self._flushed_at = now

    def close(self) -> None:
        """Audit what is left; call once when the connection ends."""
        self.flush()
