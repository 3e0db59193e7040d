"""The public release: canaries, anchor points, and an attack on suppressed counts."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import timedelta
from pathlib import Path

import h3
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, box
from sqlalchemy import select

from crossbeat.clock import FrozenClock
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import parse_profile
from crossbeat.model import incident_id
from crossbeat.sharing.agreements import create_agreement
from crossbeat.sharing.overrides import tighten_public_policy
from crossbeat.sharing.policy import GROUP_BY, ReadRequest, Viewer
from crossbeat.sharing.preview import preview
from crossbeat.sharing.public import AnchorIndex
from crossbeat.sharing.reads import (
    aggregate,
    count_incidents,
    read_detail,
    read_incidents,
)
from crossbeat.sharing.release import BASE, RECORDS, Part, combine
from crossbeat.sharing.streams import LiveStream
from crossbeat.store.schema import incidents
from tests.sharing_support import (
    ADMINS,
    AGENCIES,
    NOW,
    Inc,
    add_admins,
    insert_incidents,
    setup_agencies,
)

PUBLIC = Viewer.public()


def _normal(i: int) -> Inc:
    owner = sorted(AGENCIES)[i % 3]
    minx, miny, maxx, maxy = AGENCIES[owner][1].bounds
    return Inc(
        owner=owner,
        source_id=f"N{i}",
        lat=miny + (maxy - miny) * ((i * 37) % 100) / 100,
        lon=minx + (maxx - minx) * ((i * 61) % 100) / 100,
        codes=[["220", "240", "23H", "13B", "290"][i % 5]],
        occurred_from=NOW - timedelta(days=10 + i % 20, hours=i % 24),
    )


CANARIES = [
    Inc("citya", "C-flagged", 45.53, -122.66, ["11A"], NOW - timedelta(days=20),
        flags=frozenset({"sexual_offence"})),
    # Miscoded: harmless code, but the description says what it is; no stored flag.
    Inc("citya", "C-desc", 45.52, -122.65, ["23H"], NOW - timedelta(days=20),
        descriptions=["SEXUAL ASSAULT IN PARKING LOT"]),
    # Miscoded: the local code says domestic violence; no stored flag.
    Inc("countyb", "C-local", 45.54, -122.58, ["13B"], NOW - timedelta(days=21),
        local_codes=["DV ASSAULT"]),
    # A sensitive second offence behind a harmless first one.
    Inc("countyb", "C-second", 45.51, -122.57, ["23H", "11D"], NOW - timedelta(days=22)),
    Inc("transitc", "C-juvenile", 45.53, -122.60, ["220"], NOW - timedelta(days=23),
        flags=frozenset({"juvenile"})),
    # Only a kept free-text attribute gives it away.
    Inc("transitc", "C-attr", 45.531, -122.61, ["90Z"], NOW - timedelta(days=24),
        attributes={"remarks": "juvenile runaway returned"}),
    Inc("citya", "C-informant", 45.55, -122.69, ["35A"], NOW - timedelta(days=25),
        flags=frozenset({"informant"})),
    Inc("countyb", "C-victim", 45.505, -122.61, ["13A"], NOW - timedelta(days=26),
        flags=frozenset({"victim_identifying"})),
    Inc("citya", "C-statrape", 45.515, -122.68, ["36B"], NOW - timedelta(days=27)),
]  # fmt: skip


@pytest.fixture
def public_store(store):
    setup_agencies(store)
    store.clock = FrozenClock(NOW)
    population = [_normal(i) for i in range(80)] + CANARIES
    insert_incidents(store, population)
    add_admins(store)
    for owner in AGENCIES:
        create_agreement(store, owner, "public", approved_by=ADMINS[owner][0])
    store.population = population
    return store


def _all_public_records(store) -> list[dict]:
    out, after = [], None
    while True:
        page = read_incidents(store, PUBLIC, ReadRequest(limit=7, after=after))
        out += page.records
        if page.next_after is None:
            return out
        after = page.next_after


def test_canaries_never_reach_the_public(public_store):
    store = public_store
    canary_ids = {c.public_id for c in CANARIES} | {c.id for c in CANARIES}
    normal = [i for i in store.population if i.id not in canary_ids]
    seen = _all_public_records(store)
    assert {r["id"] for r in seen} == {i.public_id for i in normal}
    assert not canary_ids & {r["id"] for r in read_incidents(store, PUBLIC, export=True).records}
    assert not canary_ids & {r["id"] for r in LiveStream(store, PUBLIC).poll().records}
    for canary in CANARIES:
        assert read_detail(store, PUBLIC, canary.public_id).record is None
        # A partner without include_sensitive does not get them either.
        partner = Viewer.user("u", "countyb", ["analyst"])
        if canary.owner != "countyb":
            assert read_detail(store, partner, canary.public_id).record is None
    for owner in AGENCIES:
        shown = preview(store, owner, "public", sample=1000, real_sample=True)
        assert not canary_ids & {r["id"] for r in shown.sample}
        assert shown.visible == sum(1 for i in normal if i.owner == owner)
    # Counts never include them, whatever the grouping.
    assert count_incidents(store, PUBLIC) == len(normal)
    for dims in [(d,) for d in ("agency", "jurisdiction", "nibrs", "crime_against", "month")] + [
        ("agency", "nibrs")
    ]:
        result = aggregate(store, PUBLIC, by=dims)
        published = {k: v for k, v in result.cells.items() if v is not None}
        # The total is the sum of the published cells: it holds no hidden count.
        assert result.total == sum(published.values()) <= len(normal)
        assert result.complete == (result.total == len(normal) and not result.suppressed)
        for key, n in published.items():
            if "nibrs" in dims:
                code = key[dims.index("nibrs")]
                assert code not in {"11A", "11D", "36B"}, "a sensitive offence was counted"
            assert n >= result.threshold


def test_public_points_are_anchors_stable_and_within_their_jurisdictions(public_store):
    store = public_store
    truth = {i.public_id: i for i in store.population}
    first = {r["id"]: r for r in _all_public_records(store)}
    again = {r["id"]: r for r in read_incidents(store, PUBLIC).records}
    boxed = read_incidents(store, PUBLIC, ReadRequest(bbox=(-122.72, 45.49, -122.52, 45.57)))
    for rid, record in first.items():
        inc = truth[rid]
        assert (record["lat"], record["lon"]) != (inc.lat, inc.lon)
        assert (record["lat"], record["lon"]) == (again[rid]["lat"], again[rid]["lon"])
        moved = Point(record["lon"], record["lat"])
        for _tz, polygon in AGENCIES.values():
            assert polygon.covers(moved) == polygon.covers(Point(inc.lon, inc.lat))
        cell = h3.latlng_to_cell(inc.lat, inc.lon, 9)
        assert h3.grid_distance(cell, h3.latlng_to_cell(record["lat"], record["lon"], 9)) <= 1
        assert record["location_precision"] == "h3:9"
        assert "block_address" not in record and "h3_11" not in record
        assert record["time_precision"] == "day"
    assert {r["id"]: (r["lat"], r["lon"]) for r in boxed.records} == {
        k: (v["lat"], v["lon"]) for k, v in first.items()
    }


def test_a_small_bbox_cannot_locate_the_true_point(public_store):
    """Filtering is on the published point: a box around the true point finds nothing."""
    store = public_store
    target = store.population[0]
    tiny = (target.lon - 1e-5, target.lat - 1e-5, target.lon + 1e-5, target.lat + 1e-5)
    assert read_incidents(store, PUBLIC, ReadRequest(bbox=tiny)).records == []


def test_time_window_applies_to_the_published_day(public_store):
    """A window inside one day cannot tell when in that day an incident happened."""
    store = public_store
    target = store.population[1]
    start = target.occurred_from - timedelta(minutes=1)
    narrow = ReadRequest(since=start, until=start + timedelta(minutes=2))
    ids = {r["id"] for r in read_incidents(store, PUBLIC, narrow).records}
    assert target.public_id not in ids


def test_public_delay_and_tightening(public_store):
    store = public_store
    fresh = Inc("citya", "fresh", 45.53, -122.66, ["220"], NOW - timedelta(days=3))
    insert_incidents(store, [fresh])
    assert read_detail(store, PUBLIC, fresh.public_id).record is None
    store.clock.advance(days=5)
    assert read_detail(store, PUBLIC, fresh.public_id).record is not None
    tighten_public_policy(store, "citya", {"records": False, "threshold": 8})
    assert read_detail(store, PUBLIC, fresh.public_id).record is None
    result = aggregate(store, PUBLIC, by=("agency",))
    assert result.threshold == 8
    # Counts only: citya's count is a sum of base cells of at least 8 (here none is).
    assert result.cells.get(("citya",)) in (None, *range(8, 1000))
    assert next(d for d in result.decisions if d.owner == "citya").allow


CANARY_PROFILE = """
name = "canary-feed"

[source]
format = "csv"
timezone = "America/Los_Angeles"

[id]
columns = ["id"]

[occurred_from]
column = "when"
formats = ["%Y-%m-%d %H:%M"]

[location]
x = "lon"
y = "lat"

[[offences]]
scheme = "code-nibrs"
code = "code"
description = "desc"
"""


def test_canaries_through_the_ingest(store, tmp_path):
    """Sensitive rows ingested from a file (one only by its description) stay unpublished."""
    setup_agencies(store)
    store.clock = FrozenClock(NOW)
    rows = [
        {"id": f"R{i}", "when": "2026-05-01 10:00", "lon": f"{-122.69 + i * 0.001:.4f}",
         "lat": "45.53", "code": "220", "desc": "BURGLARY"}
        for i in range(12)
    ] + [
        {"id": "X1", "when": "2026-05-01 10:00", "lon": "-122.66", "lat": "45.53",
         "code": "11A", "desc": "RAPE"},
        {"id": "X2", "when": "2026-05-01 10:00", "lon": "-122.65", "lat": "45.53",
         "code": "23H", "desc": "THEFT - DOMESTIC DISPUTE"},
    ]  # fmt: skip
    path = tmp_path / "feed.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    ingest_files(store, "citya", parse_profile(CANARY_PROFILE), [Path(path)])
    add_admins(store, "citya")
    create_agreement(store, "citya", "public", approved_by=ADMINS["citya"][0])
    ids = {r["id"] for r in read_incidents(store, PUBLIC).records}
    assert len(ids) == 12
    with store.begin() as conn:
        canaries = set(
            conn.execute(
                select(incidents.c.public_id).where(incidents.c.source_id.in_(["X1", "X2"]))
            ).scalars()
        )
    assert len(canaries) == 2 and not canaries & ids
    assert not {incident_id("citya", "X1"), incident_id("citya", "X2")} & ids


# -- anchors ---------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(
    lat=st.floats(45.49, 45.57),
    lon=st.floats(-122.72, -122.52),
    res=st.sampled_from([6, 7, 8, 9, 10]),
)
def test_anchor_never_crosses_a_boundary_and_is_stable(lat, lon, res):
    polygons = [g for _tz, g in AGENCIES.values()] + [box(-122.65, 45.50, -122.649, 45.56)]
    index = AnchorIndex(polygons)
    a = index.anchor(lat, lon, res)
    assert a == AnchorIndex(polygons).anchor(lat, lon, res)
    assert a != (round(lat, 6), round(lon, 6)) or res == 10
    here, there = Point(lon, lat), Point(a[1], a[0])
    for polygon in polygons:
        assert polygon.covers(here) == polygon.covers(there)
    cell = h3.latlng_to_cell(lat, lon, res)
    assert h3.grid_distance(cell, h3.latlng_to_cell(a[0], a[1], res)) <= 1


@pytest.mark.parametrize("extra", [0, 70])
def test_anchor_many_is_anchor_point_by_point(extra):
    """One rule for one point and for many: the same anchors, boundary cells included.

    Points are drawn near the jurisdiction boundaries (so many cells are crossed by
    one), with 70 more small polygons in the second case (more than a bit mask holds).
    """
    import numpy as np

    polygons = [g for _tz, g in AGENCIES.values()]
    polygons += [
        box(-122.70 + 0.002 * k, 45.50 + 0.0007 * k, -122.699 + 0.002 * k, 45.501 + 0.0007 * k)
        for k in range(extra)
    ]
    rng = np.random.default_rng(extra + 1)
    lat = np.concatenate([rng.uniform(45.49, 45.57, 3000), [np.nan, 45.52]])
    lon = np.concatenate([rng.uniform(-122.72, -122.52, 3000), [-122.6, np.nan]])
    for res in (8, 9, 10):
        many = AnchorIndex(polygons).anchor_many(lat, lon, res)
        # A warm index (the whole cells of the first half kept, looked up in bulk), in
        # two calls, the second with resolutions mixed in its kept cells.
        warm = AnchorIndex(polygons)
        warm.anchor_many(lat[:1500], lon[:1500], res)
        warm.anchor_many(lat[:700], lon[:700], 11)
        again = warm.anchor_many(lat, lon, res)
        kept = warm._known[0]
        assert kept.size and (kept[1:] > kept[:-1]).all()  # sorted, each cell once
        np.testing.assert_array_equal(again[0], many[0])
        np.testing.assert_array_equal(again[1], many[1])
        one = AnchorIndex(polygons)
        want = [
            one.anchor(float(y), float(x), res) if y == y and x == x else (np.nan, np.nan)
            for y, x in zip(lat, lon, strict=True)
        ]
        np.testing.assert_array_equal(many[0], [w[0] for w in want])
        np.testing.assert_array_equal(many[1], [w[1] for w in want])
        crossed = {c for c, inside in one._whole.items() if inside is None}
        assert crossed and len(crossed) < len(one._whole)  # both kinds of cell were met


def test_points_sharing_a_cell_and_jurisdictions_share_an_anchor():
    index = AnchorIndex([g for _tz, g in AGENCIES.values()])
    cell = h3.latlng_to_cell(45.52, -122.66, 9)
    centre = h3.cell_to_latlng(cell)
    nearby = [(centre[0] + d, centre[1] + d) for d in (0.0, 0.0003, -0.0003)]
    nearby = [p for p in nearby if h3.latlng_to_cell(p[0], p[1], 9) == cell]
    assert len(nearby) >= 2
    assert len({index.anchor(lat, lon, 9) for lat, lon in nearby}) == 1


# -- the attack on suppressed counts -------------------------------------------------------------
tables_1d = st.dictionaries(st.sampled_from("abcdef"), st.integers(1, 12), min_size=1).map(
    lambda d: {(k,): v for k, v in d.items()}
)
tables_2d = st.dictionaries(
    st.tuples(st.sampled_from("abc"), st.sampled_from("xyz")),
    st.integers(1, 14),
    min_size=1,
    max_size=6,
)


def _released(counts, dims, k, mode=RECORDS):
    part = Part("o", mode, k)
    for key, n in counts.items():
        for _ in range(n):
            part.add(key, key if mode == BASE else None)
    return combine([part], dims)


@settings(max_examples=150, deadline=None)
@given(counts=st.one_of(tables_1d, tables_2d), k=st.sampled_from([3, 5]), data=st.data())
def test_no_suppressed_count_can_be_solved_for(counts, k, data):
    """Whatever the hidden counts are (1 to k-1), the published table is the same.

    Totals and margins are sums of the published cells, so there is no equation in
    which a hidden cell takes part: nothing to solve, by linear algebra or by counting.
    """
    dims = len(next(iter(counts)))
    table = _released(counts, dims, k)
    hidden = [key for key, n in counts.items() if n < k]
    assume(hidden)
    shown = [v for v in table.cells.values() if v is not None]
    shown += [*table.rows.values(), *table.columns.values(), table.total]
    assert all(v == 0 or v >= k for v in shown if v is not None)
    assert all(table.cells[key] in (None, n) for key, n in counts.items())
    assert table.complete is False
    other = dict(counts)
    for key in hidden:
        other[key] = data.draw(st.integers(1, k - 1))
    assert _released(other, dims, k) == table
    for mode in (BASE,):  # a counts-only owner's base cells below k are dropped alike
        assert _released(other, dims, k, mode).total == _released(counts, dims, k, mode).total


def test_a_lone_small_cell_is_not_revealed_by_the_total():
    table = _released({("a",): 3, ("b",): 40, ("c",): 50}, 1, 5)
    assert table.cells[("a",)] is None
    assert table.cells[("b",)] == 40 and table.cells[("c",)] == 50
    assert table.total == 90  # the sum of the published cells: 93 - 40 - 50 is not asked


def test_group_by_dimensions_are_documented():
    text = (Path(__file__).resolve().parents[1] / "docs" / "sharing.md").read_text()
    for dim in GROUP_BY:
        assert f"`{dim}`" in text
    assert Counter(GROUP_BY)  # the registry is not empty


def test_police_uk_violence_category_is_shared_as_a_possible_sexual_offence():
    """docs/taxonomy.md: no crosswalk flag, but the read-time keyword re-check flags it."""
    from crossbeat.model import Sensitivity
    from crossbeat.sharing.public import incident_flags
    from crossbeat.taxonomy import load_crosswalk

    offence, flags = load_crosswalk("police-uk").classify("Violence and sexual offences", None)
    assert offence.nibrs_code == "13B" and not flags
    row = {"nibrs_code": "13B", "offence_local_code": "Violence and sexual offences"}
    offences = [{"nibrs_code": "13B", "local_code": "Violence and sexual offences"}]
    assert Sensitivity.SEXUAL_OFFENCE in incident_flags(row, offences)
    assert incident_flags({"nibrs_code": "23F", "offence_local_code": "Vehicle crime"}, []) == (
        frozenset()
    )
