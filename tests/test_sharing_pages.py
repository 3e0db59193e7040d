"""Pages compiled to SQL against the per-record reference path (issue #8).

Hypothesis generates populations with the generators of ``test_sharing_properties``
(three agencies in three time zones, keyword canaries and miscoded records, random
agreements, a group, public-policy tightenings) and adds, to every world, an active
agreement at each precision a viewer can be granted (exact, block, an H3 cell, an area
of a layer, a jurisdiction) at a random time resolution and delay. For every viewer
and a set of requests (box, polygon, fields, offences, areas, times, statuses, codes,
jurisdictions, pages followed by their cursor) ``read_incidents(path="sql")`` must
return exactly the records, fields and cursors of ``path="reference"``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon

from crossbeat.sharing.pages import Coarsener
from crossbeat.sharing.policy import ReadRequest, Viewer
from crossbeat.sharing.reads import read_incidents
from crossbeat.sharing.rules import coarsen
from crossbeat.sharing.scope import TimeResolution
from tests.sharing_support import AREA, NOW
from tests.test_sharing_compiled import _active, visible_worlds
from tests.test_sharing_properties import (
    agreement_specs,
    build,
    prepare_sharing_store,
    viewers,
)

PRECISIONS = ["exact", "block", "h3:9", "h3:7", "area:beats", "area:citya/beats", "jurisdiction"]
WEST, SOUTH, EAST, NORTH = AREA
MID_X, MID_Y = (WEST + EAST) / 2, (SOUTH + NORTH) / 2

REQUESTS: list[dict[str, Any]] = [
    {},
    {"bbox": (WEST, SOUTH, MID_X, NORTH)},
    {"bbox": (MID_X - 0.03, MID_Y - 0.02, MID_X + 0.05, MID_Y + 0.03), "limit": 3},
    {"polygon": Polygon([(WEST, SOUTH), (EAST, SOUTH), (WEST, NORTH)])},
    {"fields": frozenset({"location", "occurred"})},
    {"fields": frozenset({"offence", "h3"}), "limit": 2},
    {"offences": frozenset({"property"})},
    {"areas": frozenset({("beats", "West"), ("countyb/beats", "North")})},
    {"since": NOW - timedelta(days=20, hours=5), "until": NOW - timedelta(days=3, hours=7)},
    {"statuses": frozenset({"open"})},
    {"codes": frozenset({"13A", "220"})},
    {"jurisdictions": frozenset({"citya"})},
    {"agencies": frozenset({"citya", "transitc"}), "limit": 4},
]


@pytest.fixture
def sharing_store(store, tmp_path):
    """As in ``test_sharing_properties``: three agencies, their admins, area layer files."""
    return prepare_sharing_store(store, tmp_path)


@st.composite
def precision_specs(draw: st.DrawFn, precision: str) -> dict[str, Any]:
    """An active agreement between two agencies at ``precision``."""
    spec = draw(agreement_specs().filter(lambda s: s["grantee"] not in ("public",)))
    return _active(dict(spec, precision=precision))


@st.composite
def page_worlds(draw: st.DrawFn) -> dict[str, Any]:
    """Worlds with many visible records and a grant at every precision."""
    world = draw(visible_worlds())
    world["specs"] += [draw(precision_specs(p)) for p in PRECISIONS]
    return world


def _pages(store, viewer: Viewer, request: ReadRequest, path: str) -> list[Any]:
    """Return every page of a read, following the cursor (one page without a limit)."""
    out = []
    after = None
    for _ in range(50):
        page = dataclasses.replace(request, after=after)
        result = read_incidents(store, viewer, page, path=path)
        out.append((result.records, result.next_after))
        after = result.next_after
        if after is None:
            return out
    raise AssertionError("a read did not end")


#: Requests read per viewer and example (of the 13): each example still reads every
#: request (by several viewers) and every viewer, in a pairing drawn per example.
PER_VIEWER = 4


def requests_for(i: int, offset: int) -> list[dict[str, Any]]:
    """Return the requests the ``i``-th viewer reads in an example drawn with ``offset``.

    Viewer ``i`` reads ``PER_VIEWER`` consecutive requests from ``offset + PER_VIEWER * i``
    (mod 13): over the 19 viewers every request is read several times per example, and
    the offset changes which viewer reads which.
    """
    start = offset + PER_VIEWER * i
    return [REQUESTS[(start + j) % len(REQUESTS)] for j in range(PER_VIEWER)]


def test_every_request_is_read_in_every_example():
    """The pairing above leaves no request unread, whatever the offset."""
    n = len(viewers(None))
    for offset in range(len(REQUESTS)):
        read = {id(r) for i in range(n) for r in requests_for(i, offset)}
        assert read == {id(r) for r in REQUESTS}


def test_compiled_pages_match_the_reference(sharing_store, db_url):
    examples = 8 if db_url.startswith("sqlite") else 4

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(world=page_worlds(), offset=st.integers(0, len(REQUESTS) - 1))
    def check(world: dict[str, Any], offset: int) -> None:
        build(sharing_store, world)
        seen: Counter[str] = Counter()
        for i, (viewer, _ref) in enumerate(viewers(world["purpose"])):
            for spec in requests_for(i, offset):
                request = ReadRequest(**spec)
                want = _pages(sharing_store, viewer, request, "reference")
                got = _pages(sharing_store, viewer, request, "sql")
                assert got == want, (viewer, spec)
                for records, _after in got:
                    for r in records:
                        seen[r.get("location_precision", "not shown")] += 1
        for name in seen:
            event(f"records at precision {name}")

    check()


def test_an_unknown_read_path_is_refused(sharing_store):
    with pytest.raises(ValueError, match="unknown read path"):
        read_incidents(sharing_store, Viewer.public(), path="fast")


@pytest.mark.parametrize("res", [TimeResolution.HOUR, TimeResolution.DAY, TimeResolution.MONTH])
@pytest.mark.parametrize("tz", ["America/Los_Angeles", "Europe/London", "Asia/Kolkata"])
def test_the_memoised_coarsening_is_coarsen(res, tz):
    """Every instant, across both clock changes of a year, floors as ``coarsen`` does."""
    c = Coarsener(res, tz)
    t = datetime(2024, 1, 1, tzinfo=UTC)
    while t < datetime(2025, 1, 2, tzinfo=UTC):
        assert c(t) == coarsen(t, res, tz), t
        t += timedelta(minutes=37, seconds=11)
    assert c(None) is None
