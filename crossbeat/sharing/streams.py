"""Live streams whose every poll re-reads the agreements, so revocation is immediate.

A stream is a cursor over :func:`crossbeat.sharing.reads.read_incidents`: each poll
plans afresh from the agreements stored at that moment, sends what changed (or became
visible, when a delay passed) since the last poll, tells the client which owners'
records to drop because their grants changed or ended, and which records to remove.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select

from crossbeat.clock import Clock
from crossbeat.sharing.policy import Decision, ReadRequest, Viewer
from crossbeat.sharing.reads import read_incidents
from crossbeat.sharing.rls import restricted
from crossbeat.store import Store
from crossbeat.store.schema import incidents


@dataclass(frozen=True)
class StreamUpdate:
    """What a live stream client must apply since the previous poll.

    ``reset_owners``: drop every record of these owners first (their grants changed or
    were revoked); ``records``: add or replace; ``removed``: ids to drop (withdrawn, or
    changed so that they no longer qualify).
    """

    records: list[dict[str, Any]]
    removed: list[str]
    reset_owners: list[str]
    decisions: tuple[Decision, ...]
    cursor: datetime


class LiveStream:
    """A live feed whose every poll re-reads the agreements, so revocation is immediate.

    Examples
    --------
    ``stream = LiveStream(store, viewer); update = stream.poll()`` on each tick; the
    first poll returns every visible record.
    """

    def __init__(
        self,
        store: Store,
        viewer: Viewer,
        request: ReadRequest | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.viewer = viewer
        self.request = request or ReadRequest()
        self.clock = clock or store.clock
        self.cursor: datetime | None = None
        self.grants: dict[str, frozenset[tuple[str, str | None]]] = {}
        #: Ids this stream has sent and not told the client to drop, with their owner:
        #: ``removed`` only ever names these, so that a change to a record the client
        #: never saw (a suppressed incident, say) is not revealed (issue #7).
        self.sent: dict[str, str] = {}

    def poll(self) -> StreamUpdate:
        """Return the changes since the last poll, under the agreements in force now."""
        now = self.clock.now()
        since = self.cursor
        req = dataclasses.replace(self.request, changed_since=since, limit=None)
        result = read_incidents(self.store, self.viewer, req, clock=self.clock)
        grants = {
            o: frozenset((r.via, r.agreement_id) for r in result.rules if r.owner == o)
            for o in {r.owner for r in result.rules}
        }
        reset = sorted(o for o, g in self.grants.items() if grants.get(o) != g)
        fresh = sorted(o for o in grants if o not in self.grants or o in reset)
        records = [r for r in result.records if r["agency_id"] not in fresh]
        if fresh and since is not None:
            full = dataclasses.replace(self.request, agencies=frozenset(fresh), limit=None)
            records += read_incidents(self.store, self.viewer, full, clock=self.clock).records
        elif since is None:
            records = result.records
        stable = set(grants) & set(self.grants) - set(reset)
        shown = {r["id"] for r in records}
        own = {o for o, g in grants.items() if any(via == "own" for via, _ in g)}
        changed = self._changed(since, stable, own)
        removed = [i for i in changed if i not in shown and i in self.sent]
        for i in removed:
            del self.sent[i]
        self.sent = {i: o for i, o in self.sent.items() if o not in reset}
        self.sent.update((r["id"], r["agency_id"]) for r in records)
        self.cursor, self.grants = now, grants
        return StreamUpdate(records, removed, reset, result.decisions, now)

    def _changed(self, since: datetime | None, owners: set[str], own: set[str]) -> list[str]:
        """Return ids (as shown) of the owners' records changed or withdrawn since ``since``.

        Those not in this poll's records were withdrawn or no longer qualify (a new
        version became sensitive, say): the client must drop them. Ids are as the
        viewer sees them: the owner's ids for its own readers (``own``), otherwise
        public ids.
        """
        if since is None or not owners:
            return []
        i = incidents.c
        with self.store.begin() as conn, restricted(conn, owners):
            q = select(i.id, i.public_id, i.agency_id).where(
                and_(
                    i.agency_id.in_(sorted(owners)),
                    (i.updated_at > since) | (i.withdrawn_at > since),
                )
            )
            rows = conn.execute(q).all()
        return sorted(r.id if r.agency_id in own else r.public_id for r in rows)
