"""Issue #7 finding 9: anonymous reads are audited per time window, not per request.

Before, every anonymous request appended about four audit events, so the log (never
pruned) grew without bound under load. Now 60 requests from two addresses in one
quarter hour become one event per owner agency and address.
"""

from __future__ import annotations

from crossbeat.audit import events_by_actor, log_size, public_reads
from crossbeat.sharing.reads import read_incidents
from crossbeat.sharing.request import ReadRequest, Viewer
from tests.api_support import World, build_world


def test_sixty_anonymous_requests_become_six_events(store) -> None:
    world: World = build_world(store)
    before = log_size(store)
    for i in range(60):
        address = ("198.51.100.1", "198.51.100.2")[i % 2]
        read_incidents(store, Viewer.public(source_ip=address), ReadRequest(limit=50))
        world.clock.advance(seconds=10)  # ten minutes in all: one window
    assert log_size(store) == before  # counted, not yet written
    world.clock.advance(minutes=15)
    assert public_reads.flush(store, world.clock.now()) == 6  # 3 owners x 2 addresses
    assert public_reads.flush(store, world.clock.now()) == 0  # each window once
    assert log_size(store) == before + 6
    written = events_by_actor(store, "public")
    assert sorted({(e.owner_agencies, e.source_ip) for e in written}) == sorted(
        {((o,), ip) for o in ("citya", "countyb", "transitc")
         for ip in ("198.51.100.1", "198.51.100.2")}
    )  # fmt: skip
    assert all(e.details["aggregated"]["requests"] == 30 for e in written)
    shown = len(read_incidents(store, Viewer.public(), ReadRequest(limit=50)).records)
    assert sum(e.record_count for e in written) == 60 * shown
