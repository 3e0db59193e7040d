"""Vector tiles with the viewer's policy applied, against the records and counts (issue #8).

Hypothesis builds the populations of ``test_sharing_compiled`` (three agencies, every
kind of grant: block, H3 and jurisdiction precision, delays, purposes, sensitive and
miscoded canaries, withdrawals, public-policy tightenings). For every viewer and tiles
over the area, on SQLite and PostgreSQL:

* a point tile holds exactly the records ``read_incidents`` returns with the tile as
  bounding box, at the same (generalised) point and with the same properties;
* a hexagon tile holds exactly the cells of ``aggregate(by=h3_N)`` (and ``h3_N,
  crime_against``) whose centre lies in the tile, with the same counts and the same
  suppression.

Then the ETag: 304 on a match; a new ETag after a write, a withdrawal and a revoke.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import h3
import mapbox_vector_tile
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from shapely.geometry import box
from sqlalchemy.dialects import sqlite

from crossbeat.sharing import tiles
from crossbeat.sharing.flags import local_hour
from crossbeat.sharing.mvt import EXTENT, mercator, tile_envelope
from crossbeat.sharing.policy import ReadRequest, Viewer
from crossbeat.sharing.public import AnchorIndex
from crossbeat.sharing.reads import aggregate, read_incidents
from crossbeat.sharing.rules import coarsen
from crossbeat.sharing.scope import TimeResolution
from crossbeat.sharing.tiles import (
    CATEGORIES,
    clear_cache,
    h3_column,
    tile,
    tile_bounds,
)
from crossbeat.store.schema import incidents
from tests.sharing_support import AREA
from tests.test_sharing_compiled import visible_worlds
from tests.test_sharing_properties import build, prepare_sharing_store, viewers


@pytest.fixture
def sharing_store(store, tmp_path):
    clear_cache()
    return prepare_sharing_store(store, tmp_path)


def covering(z: int) -> list[tuple[int, int, int]]:
    """Return every tile at zoom ``z`` that overlaps the test area."""
    n = 1 << z

    def col(lon: float) -> int:
        return int((lon + 180.0) / 360.0 * n)

    def row(lat: float) -> int:
        r = math.radians(lat)
        return int((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * n)

    return [
        (z, x, y)
        for x in range(col(AREA[0]), col(AREA[2]) + 1)
        for y in range(row(AREA[3]), row(AREA[1]) + 1)
    ]


def decode(data: bytes) -> dict[str, Any]:
    return mapbox_vector_tile.decode(data) if data else {}


def tile_units(z: int, x: int, y: int, lon: float, lat: float) -> tuple[float, float]:
    """Return the MVT coordinates (y up, as decoded) of a WGS84 point in tile z/x/y."""
    min_x, min_y, max_x, max_y = tile_envelope(z, x, y)
    mx, my = mercator(lon, lat)
    return ((mx - min_x) / (max_x - min_x) * EXTENT, (my - min_y) / (max_y - min_y) * EXTENT)


def check_points(
    store, viewer: Viewer, z: int, x: int, y: int, request: ReadRequest | None = None
) -> None:
    request = request or ReadRequest()
    result = tile(store, viewer, z, x, y, request)
    features = decode(result.data).get("incidents", {}).get("features", [])
    asked = dataclasses.replace(request, bbox=tile_bounds(z, x, y))
    want = read_incidents(store, viewer, asked).records
    by_id = {f["properties"]["id"]: f for f in features}
    assert sorted(by_id) == sorted(r["id"] for r in want), (viewer, z, x, y)
    assert len(features) == len(want)
    for record in want:
        f = by_id[record["id"]]
        props = {
            "id": record["id"],
            "agency_id": record["agency_id"],
            "crime_against": record.get("crime_against"),
            "nibrs": record.get("nibrs_code"),
            "occurred_from": record["occurred_from"].isoformat()
            if record.get("occurred_from")
            else None,
        }
        assert f["properties"] == {k: v for k, v in props.items() if v is not None}
        ux, uy = tile_units(z, x, y, record["lon"], record["lat"])
        gx, gy = f["geometry"]["coordinates"]
        assert abs(gx - ux) <= 1 and abs(gy - uy) <= 1, (record, f)
    assert result.owner_counts == _per_owner(want)


def _per_owner(records: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        out[r["agency_id"]] = out.get(r["agency_id"], 0) + 1
    return out


def check_hexagons(
    store, viewer: Viewer, z: int, x: int, y: int, request: ReadRequest | None = None
) -> None:
    request = request or ReadRequest()
    result = tile(store, viewer, z, x, y, request)
    features = decode(result.data).get("hexagons", {}).get("features", [])
    col = h3_column(z)
    west, south, east, north = tile_bounds(z, x, y)

    def inside(cell: str) -> bool:
        if cell == "none":
            return False
        lat, lng = h3.cell_to_latlng(cell)
        return west <= lng < east and south <= lat < north

    single = aggregate(store, viewer, request, by=(col,))
    both = aggregate(store, viewer, request, by=(col, "crime_against"))
    want: dict[str, dict[str, Any]] = {}
    for (cell,), n in single.cells.items():
        if inside(cell):
            want.setdefault(cell, {"hidden": []})["count"] = n
    for (cell, cat), n in both.cells.items():
        if inside(cell):
            want.setdefault(cell, {"hidden": []})[cat] = n
    expected = {}
    for cell, values in want.items():
        props = {k: v for k, v in values.items() if k != "hidden" and v is not None}
        hidden = sorted(k for k, v in values.items() if v is None)
        if hidden:
            props["hidden"] = ",".join(hidden)
        expected[cell] = {"h3": cell, **props}
    got = {f["properties"]["h3"]: f["properties"] for f in features}
    assert got == expected, (viewer, z, x, y)
    assert set(CATEGORIES) >= {k for p in got.values() for k in p} - {"h3", "count", "hidden"}


def test_tiles_match_the_records_and_the_aggregates(sharing_store, db_url):
    examples = 6 if db_url.startswith("sqlite") else 3
    points, hexes = covering(13), covering(10) + covering(12)

    @settings(
        max_examples=examples,
        deadline=None,
        # No shrinking: a failing world is printed as drawn (shrinking took minutes).
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        world=visible_worlds(),
        at=st.lists(st.sampled_from(points), min_size=2, max_size=2, unique=True),
        hexagons=st.lists(st.sampled_from(hexes), min_size=2, max_size=2, unique=True),
    )
    def check(world: dict[str, Any], at, hexagons) -> None:
        build(sharing_store, world)
        for viewer, _ref in viewers(world["purpose"]):
            for z, x, y in at:
                check_points(sharing_store, viewer, z, x, y)
            for z, x, y in hexagons:
                check_hexagons(sharing_store, viewer, z, x, y)
            # The jurisdiction filter (the analyst map's), compiled to SQL in both.
            (z, x, y), within = at[0], ReadRequest(jurisdictions=frozenset({"transitc"}))
            check_points(sharing_store, viewer, z, x, y, within)
            z, x, y = hexagons[0]
            check_hexagons(sharing_store, viewer, z, x, y, within)

    check()


def test_a_tile_over_the_budget_carries_the_governed_hexagons(sharing_store, db_url, monkeypatch):
    """Over the budget a point tile holds hexagons: the viewer's governed counts by cell.

    With a budget of none, every point tile with a record near it carries hexagons (of
    ``h3_9`` at zoom 13-14, ``h3_11`` from zoom 15), equal to the aggregates with their
    suppression; a tile without one still carries (no) points.
    """
    monkeypatch.setattr(tiles, "POINT_BUDGET", 0)
    examples = 4 if db_url.startswith("sqlite") else 2
    wide, fine = covering(13), covering(15)
    over: list[int] = []

    @settings(
        max_examples=examples,
        deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        world=visible_worlds(),
        # Some of the 20 tiles at zoom 13 over the area (most hold records, some none)
        # and two of the 228 at zoom 15 (most hold none).
        near=st.lists(st.sampled_from(wide), min_size=4, max_size=4, unique=True),
        at=st.lists(st.sampled_from(fine), min_size=2, max_size=2, unique=True),
    )
    def check(world: dict[str, Any], near, at) -> None:
        build(sharing_store, world)
        for viewer, _ref in viewers(world["purpose"]):
            for z, x, y in [*near, *at]:
                result = tile(sharing_store, viewer, z, x, y)
                if result.layer == "hexagons":
                    over.append(result.features)
                    check_hexagons(sharing_store, viewer, z, x, y)
                else:
                    assert result.features == 0, (viewer, z, x, y)
                    check_points(sharing_store, viewer, z, x, y)

    check()
    assert over, "no tile went over the budget: the test shows nothing"


def test_point_tiles_seek_the_owners_cells_on_their_index(sharing_store, db_url):
    """A point tile's counts and rows read the owner's cell index by name on SQLite (#12).

    With the sampled planner statistics SQLite took the arrays index (every column, the
    cell last) and walked all of an owner's entries for each count; the tile now names
    ``ix_incidents_live_agency_h3_9`` (``INDEXED BY``), and the plan seeks its cells.
    Without the index (a first load drops it until it ends) the tile reads as before;
    PostgreSQL is never given a hint. The points are those the records read shows.
    """
    from datetime import timedelta

    from sqlalchemy import event, text

    from tests.sharing_support import NOW, Inc, insert_incidents

    population = [
        Inc("citya", f"near-{i}", 45.530 + i * 2e-4, -122.660 + i * 2e-4, ["13A"],
            NOW - timedelta(days=3 + i))
        for i in range(30)
    ]  # fmt: skip
    insert_incidents(sharing_store, population)
    viewer = Viewer.user("citya.analyst", "citya", ["analyst"])
    z = 13
    n = 1 << z
    x = int((-122.657 + 180.0) / 360.0 * n)
    r = math.radians(45.533)
    y = int((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * n)
    seen: list[str] = []

    def keep(conn, cursor, statement, params, context, executemany):
        if "h3_9 IN" in statement:
            seen.append(statement)

    event.listen(sharing_store.engine, "before_cursor_execute", keep)
    try:
        check_points(sharing_store, viewer, z, x, y)
        assert decode(tile(sharing_store, viewer, z, x, y).data)["incidents"]["features"]
        tile_reads = [s for s in seen if "LIMIT" in s or "incidents.occurred_from \nFROM" in s]
        assert tile_reads, seen
        sqlite = db_url.startswith("sqlite")
        named = "INDEXED BY ix_incidents_live_agency_h3_9"
        assert all((named in s) is sqlite for s in tile_reads), tile_reads
        if sqlite:
            with sharing_store.engine.connect() as conn:
                count = next(s for s in tile_reads if "LIMIT" in s)
                plan = conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + count.replace("?", "NULL")
                ).fetchall()
                assert any("ix_incidents_live_agency_h3_9" in str(row) for row in plan), plan
            with sharing_store.begin() as conn:
                conn.execute(text("DROP INDEX ix_incidents_live_agency_h3_9"))
            clear_cache()
            seen.clear()
            check_points(sharing_store, viewer, z, x, y)
            assert seen and not any(named in s for s in seen), seen
    finally:
        event.remove(sharing_store.engine, "before_cursor_execute", keep)


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2199, 12, 31), timezones=st.just(UTC)
    )
)
def test_a_tiles_exact_times_are_the_stored_times_as_the_store_reads_them(when):
    """The text a point tile publishes for an exact time, sliced from SQLite's stored text,
    is the ISO text of the time the column's own type reads from it."""
    dialect = sqlite.dialect()
    typ = incidents.c.occurred_from.type
    stored = typ.bind_processor(dialect)(when)
    assert tiles._stored_iso(stored) == typ.result_processor(dialect, None)(stored).isoformat()
    assert tiles._stored_iso(when) is None  # PostgreSQL gives datetimes: converted in full


def test_the_cells_a_tile_reads_for_anchored_points_hold_every_point_it_shows():
    """Cells whose every anchor lies outside the tile are not read, and no point is lost:
    each point near the tile whose anchor lies in it is in a kept cell (block and h3:9
    anchors; the jurisdiction boundaries of the test area cross some of the cells)."""
    west, south, east, north = AREA
    middle = (west + east) / 2
    # Two jurisdictions meeting in the middle of the tile: a boundary crosses some cells.
    anchors = AnchorIndex([box(west, south, middle, north), box(middle, south, east, north)])
    z, n = 15, 2**15
    x = int((middle + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians((south + north) / 2))) / math.pi) / 2 * n)
    bounds = tiles.tile_bounds(z, x, y)
    rng = np.random.default_rng(3)
    lat = rng.uniform(bounds[1] - 0.01, bounds[3] + 0.01, 4000)
    lon = rng.uniform(bounds[0] - 0.01, bounds[2] + 0.01, 4000)
    for resolution, column in ((10, 9), (9, 9)):
        a_lat, a_lon = anchors.anchor_many(lat, lon, resolution)
        shown = (
            (bounds[0] <= a_lon)
            & (a_lon <= bounds[2])
            & (bounds[1] <= a_lat)
            & (a_lat <= bounds[3])
        )
        assert shown.any()
        candidates = tuple(
            sorted({h3.latlng_to_cell(a, b, column) for a, b in zip(lat, lon, strict=True)})
        )
        kept = set(tiles._anchored_in(candidates, anchors, resolution, bounds))
        assert len(kept) < len(candidates)  # some cells are not read
        for a, b in zip(lat[shown], lon[shown], strict=True):
            assert h3.latlng_to_cell(a, b, column) in kept


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2100, 12, 30), timezones=st.just(UTC)
    ),
    st.sampled_from(
        [
            "America/Los_Angeles",
            "America/Toronto",
            "Europe/London",
            "Asia/Kolkata",
            "Australia/Lord_Howe",
            "Pacific/Chatham",
            "America/Havana",
            "UTC",
        ]
    ),  # fmt: skip
    st.sampled_from([TimeResolution.DAY, TimeResolution.MONTH]),
)
def test_a_tiles_local_days_and_months_are_the_coarsened_times(when, zone, resolution):
    """A day or month read as a prefix of ``occurred_local`` (the local hour stored at
    write time) floors to the very time :func:`coarsen` gives, in zones with half-hour
    offsets, DST at midnight and a 30-minute DST shift."""
    local = local_hour(when, ZoneInfo(zone))
    key = local[: tiles._LOCAL_PREFIX[resolution]]
    assert tiles._local_floor(resolution, zone, key) == coarsen(when, resolution, zone).isoformat()
