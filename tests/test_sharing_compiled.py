"""The SQL aggregate path against the per-record reference path (issue #8).

Hypothesis generates populations with the generators of ``test_sharing_properties``
(three agencies in three time zones; incidents with random offences, stored flags,
keyword canaries in descriptions and attributes, miscoded records, times, places and
withdrawals; random agreements in every state, with block, H3 and jurisdiction
precision, hour/day/month resolution, delays, purposes and included sensitivities; a
group; public-policy tightenings). For every viewer (each agency × every role, an API
token per agency, the public) and several groupings and request filters,
``aggregate(path="sql")`` must equal ``aggregate(path="reference")`` cell for cell,
margin for margin, suppression for suppression, and write the same audit counts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select, update

from crossbeat.audit.tables import audit_events
from crossbeat.sharing.compiled import offset_segments, period_start
from crossbeat.sharing.policy import ReadRequest, Viewer
from crossbeat.sharing.reads import aggregate
from crossbeat.sharing.rules import coarsen
from crossbeat.sharing.scope import TimeResolution
from crossbeat.store.schema import incidents as incidents_table
from tests.sharing_support import ADMINS, NOW
from tests.test_sharing_properties import (
    agreement_specs,
    build,
    incidents,
    prepare_sharing_store,
    to_request,
    viewers,
    worlds,
)

GROUPINGS = [
    (),
    ("agency",),
    ("nibrs",),
    ("crime_against",),
    ("h3_9",),
    ("h3_7",),
    ("jurisdiction",),
    ("month",),
    ("day",),
    ("hour",),
    ("agency", "day"),
    ("month", "agency"),  # the analyst map's side panel (issue #12): months summed in SQL
    ("h3_7", "nibrs"),
    ("area:beats",),  # not compiled yet: the per-record path for every owner
]


@pytest.fixture
def sharing_store(store, tmp_path):
    """As in ``test_sharing_properties``: three agencies, their admins, area layer files."""
    return prepare_sharing_store(store, tmp_path)


def _active(spec: dict[str, Any]) -> dict[str, Any]:
    """Make a generated agreement active and serving the analysis purpose."""
    spec = dict(spec, status="active")
    if spec["purposes"] is not None:
        spec["purposes"] = sorted({*spec["purposes"], "analysis"})
    return spec


@st.composite
def visible_worlds(draw: st.DrawFn) -> dict[str, Any]:
    """Worlds of ``test_sharing_properties`` with more incidents and more active grants.

    The original distribution mostly shows partners and the public nothing; here most
    agreements are active for the viewers' purpose, so that every kind of rule
    (precision, time resolution, delay, sensitivity exclusions) counts records.
    """
    world = draw(worlds())
    extra = draw(st.integers(5, 25))
    world["incidents"] += [draw(incidents(100 + i)) for i in range(extra)]
    more = draw(st.lists(agreement_specs(), min_size=2, max_size=6))
    world["specs"] = [_active(s) for s in [*world["specs"], *more]]
    world["purpose"] = None
    return world


def _audit_counts(store, since: int) -> list[tuple[Any, ...]]:
    with store.connect() as conn:
        rows = conn.execute(select(audit_events).where(audit_events.c.seq > since)).mappings()
        return sorted(
            (r["actor"], r["action"], tuple(r["owner_agencies"]), r["record_count"])
            for r in rows
            if r["resource_type"] == "incident_aggregate"
        )


def _last_seq(store) -> int:
    with store.connect() as conn:
        return conn.execute(select(func.max(audit_events.c.seq))).scalar() or 0


def same_result(store, viewer: Viewer, request: ReadRequest, by: tuple[str, ...]) -> None:
    want = aggregate(store, viewer, request, by=by, path="reference")
    got = aggregate(store, viewer, request, by=by, path="sql")
    assert got.cells == want.cells, (viewer, request, by)
    assert (got.rows, got.columns, got.total) == (want.rows, want.columns, want.total)
    assert (got.threshold, got.suppressed) == (want.threshold, want.suppressed)
    assert got.decisions == want.decisions


REQUESTS = st.sampled_from(
    [
        {},
        {"offences": ["property"]},
        {"offences": ["13A", "220"]},
        {"agencies": ["citya", "transitc"]},
        {"since": NOW - timedelta(days=20, hours=5), "until": NOW - timedelta(days=3, hours=7)},
        {"since": NOW - timedelta(days=35, minutes=13)},
        {"bbox": (-122.70, 45.50, -122.60, 45.54)},
        {"areas": [("beats", "West"), ("countyb/beats", "North")]},
        {"areas": [("citya/beats", "East")], "offences": ["person"]},
        {"jurisdictions": ["transitc"]},
        {"jurisdictions": ["citya", "countyb"], "offences": ["property"]},
    ]
)


def test_sql_aggregates_match_the_reference(sharing_store, db_url):
    examples = 12 if db_url.startswith("sqlite") else 6

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(world=visible_worlds(), extra=REQUESTS, groupings=st.permutations(GROUPINGS))
    def check(world: dict[str, Any], extra: dict[str, Any], groupings) -> None:
        build(sharing_store, world)
        for viewer, _ref in viewers(world["purpose"]):
            for by in [(), *groupings[:3]]:
                same_result(sharing_store, viewer, ReadRequest(), by)
            same_result(sharing_store, viewer, to_request(extra), groupings[3])

    check()


def test_local_periods_are_summed_in_sql_and_match_the_reference(sharing_store, db_url):
    """Months and days by agency (the analyst map's panel, #12) equal the reference.

    On SQLite the hourly groups of ``occurred_local`` are summed into months or days by
    the database (one row per period comes back, not one per hour); the counts, the
    suppression and the total are those of the per-record path, in either order of the
    dimensions.
    """
    examples = 6 if db_url.startswith("sqlite") else 3
    statements: list[str] = []

    def keep(conn, cursor, statement, params, context, executemany):
        if "occurred_local" in statement and "GROUP BY" in statement:
            statements.append(statement)

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(world=visible_worlds())
    def check(world: dict[str, Any]) -> None:
        build(sharing_store, world)
        for viewer, _ref in viewers(world["purpose"]):
            for by in (("month", "agency"), ("agency", "month"), ("day", "agency")):
                same_result(sharing_store, viewer, ReadRequest(), by)

    event.listen(sharing_store.engine, "before_cursor_execute", keep)
    try:
        check()
    finally:
        event.remove(sharing_store.engine, "before_cursor_execute", keep)
    assert statements, "no count by local time ran: the test shows nothing"
    if db_url.startswith("sqlite"):
        assert all("sum(anon_1.n)" in s for s in statements), statements[0]


def _poison(store) -> None:
    """Make every row stale and claim it carries no flag (what an old rule set said)."""
    with store.begin() as conn:
        conn.execute(update(incidents_table).values(sens_served=0, sens_rules="0-old-rules"))


def test_stale_materialised_flags_are_never_served(sharing_store, db_url):
    """Rows derived under other rules are re-derived by the read before it counts them."""
    examples = 6 if db_url.startswith("sqlite") else 3

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(world=visible_worlds(), by=st.sampled_from(GROUPINGS[:-1]))
    def check(world: dict[str, Any], by: tuple[str, ...]) -> None:
        build(sharing_store, world)
        for viewer, _ref in viewers(world["purpose"]):
            _poison(sharing_store)
            got = aggregate(sharing_store, viewer, ReadRequest(), by=by, path="sql")
            want = aggregate(sharing_store, viewer, ReadRequest(), by=by, path="reference")
            assert (got.cells, got.total, got.suppressed) == (
                want.cells,
                want.total,
                want.suppressed,
            ), (viewer, by)

    check()


def test_audit_counts_per_owner_are_the_same_on_both_paths(sharing_store):
    """One event per owner with its count, never one per incident, on both paths."""

    @settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(world=worlds())
    def check(world: dict[str, Any]) -> None:
        build(sharing_store, world)
        for viewer, _ref in viewers(world["purpose"])[:6]:
            start = _last_seq(sharing_store)
            aggregate(sharing_store, viewer, by=("day",), path="reference")
            ref = _audit_counts(sharing_store, start)
            middle = _last_seq(sharing_store)
            aggregate(sharing_store, viewer, by=("day",), path="sql")
            assert _audit_counts(sharing_store, middle) == ref

    check()


def test_an_unknown_path_is_refused(sharing_store):
    with pytest.raises(ValueError, match="unknown aggregate path"):
        aggregate(sharing_store, Viewer.public(), path="fast")


@pytest.mark.parametrize("tz", ["America/Los_Angeles", "Europe/London", "Asia/Kolkata", "UTC"])
def test_offset_segments_give_every_instant_its_zone_offset(tz):
    from zoneinfo import ZoneInfo

    lo, hi = datetime(2023, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
    segments = offset_segments(tz, lo, hi)
    t = lo
    while t < hi:
        off = [o for s, o in segments if s <= t][-1]
        assert off == t.astimezone(ZoneInfo(tz)).utcoffset().total_seconds(), t
        t += timedelta(hours=1, minutes=7)


@pytest.mark.parametrize("res", [TimeResolution.HOUR, TimeResolution.DAY, TimeResolution.MONTH])
@pytest.mark.parametrize("tz", ["America/Denver", "Asia/Kathmandu"])
def test_period_start_bounds_the_coarsened_time(res, tz):
    """``coarsen(t) >= since`` exactly when ``t >= period_start(since)``."""
    from crossbeat.sharing.rules import Rule
    from crossbeat.sharing.scope import parse_precision

    rule = Rule(
        "a", "agency", "x", None, frozenset(), frozenset(), frozenset(),
        parse_precision("exact"), res, timedelta(0), False, tz,
    )  # fmt: skip
    since = datetime(2024, 3, 10, 8, 17, 31, tzinfo=UTC)
    start = period_start(since, rule)
    for minutes in range(-3000, 3000, 37):
        t = since + timedelta(minutes=minutes)
        assert (coarsen(t, res, tz) >= since) == (t >= start), t


# -- analysis arrays ---------------------------------------------------------------------
def _as_utc(value: Any) -> Any:
    import numpy as np

    if value is None:
        return np.datetime64("NaT")
    return np.datetime64(value.astimezone(UTC).replace(tzinfo=None), "us")


def same_arrays(store, viewer: Viewer, request: ReadRequest) -> int:
    """The arrays hold exactly what read_incidents returns, column by column."""
    import math

    import numpy as np

    from crossbeat.sharing.arrays import analysis_arrays
    from crossbeat.sharing.reads import read_incidents

    want = read_incidents(store, viewer, request).records
    got = analysis_arrays(store, viewer, request)
    assert list(got.id) == [r["id"] for r in want], (viewer, request)
    for k, r in enumerate(want):
        assert got.owner[k] == r["agency_id"]
        for name in ("lat", "lon"):
            value = r.get(name)
            shown = float(getattr(got, name)[k])
            assert (value is None and math.isnan(shown)) or shown == value, (name, r)
        for name in ("occurred_from", "occurred_to"):
            a, b = getattr(got, name)[k], _as_utc(r.get(name))
            assert (np.isnat(a) and np.isnat(b)) or a == b, (name, a, b, r)
        assert got.nibrs_code[k] == (r.get("nibrs_code") or "")
        assert got.crime_against[k] == (r.get("crime_against") or "")
        assert got.location_type[k] == (r.get("location_type") or "")
    return len(want)


def test_analysis_arrays_match_read_incidents(sharing_store, db_url):
    examples = 10 if db_url.startswith("sqlite") else 5

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(world=visible_worlds(), extra=REQUESTS)
    def check(world: dict[str, Any], extra: dict[str, Any]) -> None:
        build(sharing_store, world)
        for viewer, _ref in viewers(world["purpose"]):
            same_arrays(sharing_store, viewer, ReadRequest())
            same_arrays(sharing_store, viewer, to_request(extra))

    check()


def test_analysis_arrays_audit_one_event_per_owner(sharing_store):
    from crossbeat.sharing.arrays import analysis_arrays
    from tests.sharing_support import Inc, insert_incidents

    population = [
        Inc(owner, f"S{i}", 45.52, -122.65 + i * 0.01, ["220"], NOW - timedelta(days=i))
        for i, owner in enumerate(["citya", "citya", "citya", "countyb", "countyb"])
    ]
    insert_incidents(sharing_store, population)
    viewer = Viewer.user("u1", "citya", ["analyst"])
    start = _last_seq(sharing_store)
    got = analysis_arrays(sharing_store, viewer)
    assert got.owner_counts() == {"citya": 3}
    with sharing_store.connect() as conn:
        rows = conn.execute(select(audit_events).where(audit_events.c.seq > start)).mappings().all()
    assert [(tuple(r["owner_agencies"]), r["record_count"], r["resource_type"]) for r in rows] == [
        (("citya",), 3, "incident_arrays")
    ]


@pytest.mark.parametrize("resolution", ["hour", "day", "month"])
def test_time_filters_apply_to_the_coarsened_time(sharing_store, resolution):
    """``since``/``until`` compare the published (coarsened) time, on both paths alike."""
    from crossbeat.clock import FrozenClock
    from crossbeat.sharing.agreements import create_agreement
    from tests.sharing_support import Inc, insert_incidents

    sharing_store.clock = FrozenClock(NOW)
    start = NOW - timedelta(days=40)
    population = [
        Inc("citya", f"T{i}", 45.52, -122.65, ["220"], start + timedelta(hours=7 * i, minutes=i))
        for i in range(120)
    ]
    insert_incidents(sharing_store, population)
    create_agreement(
        sharing_store, "citya", "countyb", offences=["all"], fields=["all"],
        precision="exact", time_resolution=resolution, delay="0s", purposes=["analysis"],
        approved_by=ADMINS["citya"],
    )  # fmt: skip
    viewer = Viewer.user("u2", "countyb", ["analyst"])
    for hours in (5, 49, 200, 400, 601):
        since = start + timedelta(hours=hours, minutes=23)
        request = ReadRequest(since=since, until=since + timedelta(days=9, hours=3))
        tz = "America/Los_Angeles"
        want = sum(
            1
            for inc in population
            if request.since <= coarsen(inc.occurred_from, TimeResolution(resolution), tz)
            and coarsen(inc.occurred_from, TimeResolution(resolution), tz) < request.until
        )
        got = aggregate(sharing_store, viewer, request, by=(), path="sql")
        ref = aggregate(sharing_store, viewer, request, by=(), path="reference")
        assert got.total == ref.total == want, (hours, got.total, ref.total, want)


def test_what_is_not_compiled_runs_the_reference_path_for_its_owner_only(sharing_store):
    """A bounding box on anchored points falls back for that owner; others stay in SQL."""
    import dataclasses

    from crossbeat.clock import FrozenClock
    from crossbeat.sharing.agreements import create_agreement
    from crossbeat.sharing.compiled import count_by_rule
    from crossbeat.sharing.reads import anchor_index, prepare, reference_counts
    from tests.sharing_support import Inc, insert_incidents

    sharing_store.clock = FrozenClock(NOW)
    insert_incidents(
        sharing_store,
        [
            Inc(o, f"F{i}", 45.52, -122.69 + 0.02 * i, ["220"], NOW - timedelta(days=3))
            for i, o in enumerate(["citya", "citya", "countyb", "countyb"])
        ],
    )
    create_agreement(
        sharing_store, "citya", "countyb", offences=["all"], fields=["all"], precision="h3:9",
        time_resolution="day", delay="0s", purposes=["analysis"], approved_by=ADMINS["citya"],
    )  # fmt: skip
    viewer = Viewer.user("u3", "countyb", ["analyst"])
    request = ReadRequest(bbox=(-122.72, 45.49, -122.52, 45.57), aggregate=True)
    with sharing_store.begin() as conn:
        p = prepare(conn, viewer, request, NOW)
        p = dataclasses.replace(p, request=dataclasses.replace(p.request, group_by=()))
        found = count_by_rule(
            conn, p, lambda c, sub: reference_counts(c, sub, anchor_index(c, sharing_store.url))
        )
    assert {(rc.rule.owner, rc.path, rc.total) for rc in found} == {
        ("citya", "reference", 2),
        ("countyb", "sql", 2),
    }


@pytest.mark.parametrize("precision", ["h3:9", "h3:7", "block"])
def test_a_point_straddling_its_parent_cell_is_anchored_alike_everywhere(sharing_store, precision):
    """The arrays (stored cells), pages and records (cells from the point) give one anchor.

    The point's res-11 cell has another parent at resolution 9 than the res-9 cell holding
    the point: with the parents stored, the arrays anchored it in a neighbouring cell.
    """
    import h3

    from crossbeat.sharing.agreements import create_agreement
    from crossbeat.sharing.reads import read_incidents
    from tests.sharing_support import Inc, insert_incidents
    from tests.test_geo_cells import STRADDLING

    lat, lon = STRADDLING
    insert_incidents(
        sharing_store, [Inc("citya", "X1", lat, lon, ["220"], NOW - timedelta(days=1))]
    )
    create_agreement(
        sharing_store, "citya", "countyb", offences=["all"], fields=["all"], precision=precision,
        time_resolution="day", delay="0s", purposes=["analysis"], approved_by=ADMINS["citya"],
    )  # fmt: skip
    viewer = Viewer.user("u3", "countyb", ["analyst"])
    (record,) = read_incidents(sharing_store, viewer).records
    same_arrays(sharing_store, viewer, ReadRequest())
    box = ReadRequest(bbox=(-122.7, 45.5, -122.6, 45.6))
    (paged,) = read_incidents(sharing_store, viewer, box).records
    assert (paged["lat"], paged["lon"]) == (record["lat"], record["lon"]) != (lat, lon)
    # The cells shown with the record hold the point, and at the anchor's resolution the
    # anchor too (a res-10 ``block`` cell may straddle two res-9 cells: H3 does not nest).
    for res in (7, 9):
        if f"h3_{res}" in record:
            assert record[f"h3_{res}"] == h3.latlng_to_cell(lat, lon, res)
            if precision == f"h3:{res}":
                assert record[f"h3_{res}"] == h3.latlng_to_cell(record["lat"], record["lon"], res)
