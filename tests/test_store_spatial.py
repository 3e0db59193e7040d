"""The spatial index of live incidents and the local times stay in step with every write.

A real feed is ingested through a profile, then moved (a new version with other
coordinates and another time), partly withdrawn, expunged and finally the agency
removed; after each step the R*Tree (SQLite) holds exactly the live rows with a point,
at their stored coordinates, and a viewport read through the index returns what the
per-record reference path returns. ``occurred_local`` follows the records and the
agency's time zone, and a series by month read from it equals the reference path
(issue #8).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from crossbeat.agencies import register_agency
from crossbeat.agency_removal import remove_agency
from crossbeat.clock import FrozenClock
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import parse_profile
from crossbeat.ingest.writes import withdraw_records
from crossbeat.model import Agency
from crossbeat.model import incident_id as make_id
from crossbeat.sharing.policy import ReadRequest, Viewer
from crossbeat.sharing.reads import aggregate, read_incidents
from crossbeat.store import spatial
from crossbeat.store.schema import incidents
from crossbeat.store.spatial import (
    RTREE,
    SET_INDEX_MIN_ROWS,
    create_spatial_index,
    drop_spatial_index,
    indexed_together,
    rebuild_rtree,
    refresh_statistics,
)
from tests.sharing_support import NOW, setup_agencies

OWNER = Viewer.user("u-a", "citya", ["analyst"])

PROFILE = """
name = "local-feed"

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
"""


def _ingest(store: Any, folder: Path, rows: list[dict[str, str]], name: str) -> None:
    path = folder / name
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    ingest_files(store, "citya", parse_profile(PROFILE, base_dir=str(folder)), [path])


def _row(i: int, lon: float, when: str = "2026-01-31 20:30") -> dict[str, str]:
    return {"id": f"R{i}", "when": when, "lon": f"{lon:.5f}", "lat": "45.53", "code": "220"}


def _index_matches_live_rows(store: Any) -> int:
    """Require the R*Tree to hold exactly the live rows with a point; return how many."""
    with store.begin() as conn:
        c = incidents.c
        live = {
            r.id: (r.lat, r.lon)
            for r in conn.execute(
                select(c.id, c.lat, c.lon).where(
                    c.withdrawn_at.is_(None), c.lat.is_not(None), c.lon.is_not(None)
                )
            )
        }
        if conn.dialect.name == "postgresql":
            return len(live)
        entries = conn.execute(
            text(f"SELECT incident_id, min_lat, max_lat, min_lon, max_lon FROM {RTREE}")
        ).all()
    assert len(entries) == len(live)
    for incident_id, min_lat, max_lat, min_lon, max_lon in entries:
        lat, lon = live[incident_id]
        assert min_lat <= lat <= max_lat and min_lon <= lon <= max_lon
        assert max_lat - min_lat < 1e-4 and max_lon - min_lon < 1e-4
    return len(live)


def _viewport(store: Any, box: tuple[float, float, float, float]) -> set[str]:
    """The ids a viewport read returns, checked against the per-record path's."""
    request = ReadRequest(bbox=box, agencies=frozenset({"citya"}))
    fast = {r["id"] for r in read_incidents(store, OWNER, request).records}
    # The reference: the same plan without the index (every live row, filtered in Python).
    with store.begin() as conn:
        c = incidents.c
        q = select(c.id).where(
            c.withdrawn_at.is_(None),
            c.agency_id == "citya",
            c.lat.between(box[1], box[3]),
            c.lon.between(box[0], box[2]),
        )
        expected = set(conn.execute(q).scalars())
    assert fast == expected
    return fast


@pytest.fixture
def feed(store: Any, tmp_path: Path) -> Any:
    setup_agencies(store)
    store.clock = FrozenClock(NOW)
    _ingest(store, tmp_path, [_row(i, -122.69 + i * 0.002) for i in range(10)], "a.csv")
    store.folder = tmp_path
    return store


def test_the_index_follows_inserts_versions_withdrawals_and_removal(feed: Any) -> None:
    west = (-122.70, 45.52, -122.675, 45.54)  # R0..R7 (lon -122.690 .. -122.676)
    east = (-122.675, 45.52, -122.60, 45.54)
    assert _index_matches_live_rows(feed) == 10
    assert len(_viewport(feed, west)) == 8 and len(_viewport(feed, east)) == 2
    # A new version moves R0 east; a new record R10 arrives in the west.
    _ingest(feed, feed.folder, [_row(0, -122.65), _row(10, -122.695)], "b.csv")
    assert _index_matches_live_rows(feed) == 11
    assert len(_viewport(feed, west)) == 8 and len(_viewport(feed, east)) == 3
    # Withdrawn: gone from the index and from every viewport; expunged: deleted.
    withdraw_records(feed, "citya", ["R1"], reason="entered twice")
    withdraw_records(feed, "citya", ["R2"], expunge_records=True, reason="court order")
    assert _index_matches_live_rows(feed) == 9
    assert len(_viewport(feed, west)) == 6
    # Rebuilding from scratch gives the same index; so do drop and create (migration).
    with feed.begin() as conn:
        assert rebuild_rtree(conn) == (0 if conn.dialect.name == "postgresql" else 9)
        drop_spatial_index(conn)
        create_spatial_index(conn)
    assert _index_matches_live_rows(feed) == 9
    assert len(_viewport(feed, west)) == 6 and len(_viewport(feed, east)) == 3
    remove_agency(feed, "citya", confirm="citya")
    assert _index_matches_live_rows(feed) == 0


def _months(store: Any, path: str) -> dict[tuple[str, ...], int | None]:
    request = ReadRequest(agencies=frozenset({"citya"}))
    return aggregate(store, OWNER, request, by=("month",), path=path).cells


def test_local_months_follow_the_records_and_the_time_zone(feed: Any) -> None:
    # 20:30 on 31 January in Los Angeles is 04:30 UTC on 1 February.
    _ingest(feed, feed.folder, [_row(11, -122.6, "2026-02-28 23:30")], "c.csv")
    assert _months(feed, "sql") == _months(feed, "reference") == {("2026-01",): 10, ("2026-02",): 1}
    with feed.begin() as conn:
        local = conn.execute(
            select(incidents.c.occurred_local).where(incidents.c.source_id == "R11")
        ).scalar_one()
    assert local == "2026-02-28T23"
    # A new version at another time is counted at its new month by the first read.
    _ingest(feed, feed.folder, [_row(11, -122.6, "2026-04-10 10:00")], "d.csv")
    assert _months(feed, "sql") == _months(feed, "reference") == {("2026-01",): 10, ("2026-04",): 1}
    # citya moves to UTC: the next read derives every local time again before it counts.
    register_agency(feed, Agency(id="citya", name="Citya", timezone="UTC"))
    assert _months(feed, "sql") == _months(feed, "reference") == {("2026-02",): 10, ("2026-04",): 1}


def _trigger_present(store: Any) -> bool:
    with store.begin() as conn:
        if conn.dialect.name == "postgresql":
            return True
        q = "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'incidents_rtree_insert'"
        return conn.execute(text(q)).first() is not None


def test_a_large_insert_indexes_its_points_together(feed: Any) -> None:
    """The ingest's parts index their points in one statement, not by trigger (issue #9).

    The index holds exactly the live rows afterwards, the insert trigger is back for
    every other writer, and a transaction that fails inside the block leaves both the
    index and the trigger as they were.
    """
    many = SET_INDEX_MIN_ROWS + 40
    rows = [_row(i, -122.69 + (i % 50) * 0.002) for i in range(100, 100 + many)]
    _ingest(feed, feed.folder, rows, "many.csv")
    assert _index_matches_live_rows(feed) == 10 + many
    assert _trigger_present(feed)
    # A new version moving one of them, inside a large file, moves its entry.
    moved = [_row(100, -122.60), *rows[1:]]
    _ingest(feed, feed.folder, moved, "many-again.csv")
    assert _index_matches_live_rows(feed) == 10 + many
    assert make_id("citya", "R100") in _viewport(feed, (-122.601, 45.52, -122.599, 45.54))
    # Killed inside the block: rolled back whole, the trigger included.
    with pytest.raises(RuntimeError), feed.begin() as conn:
        with indexed_together(conn, [f"x{i}" for i in range(SET_INDEX_MIN_ROWS)]):
            raise RuntimeError("killed")
    assert _trigger_present(feed)
    # A small write (a field report's) is still indexed by the trigger.
    _ingest(feed, feed.folder, [_row(999, -122.66)], "one.csv")
    assert _index_matches_live_rows(feed) == 11 + many


def _planner_rows(conn: Any) -> float:
    """Return how many rows of ``incidents`` the planner's statistics say there are."""
    if conn.dialect.name == "postgresql":
        sql = "SELECT reltuples FROM pg_class WHERE oid = 'incidents'::regclass"
        return float(conn.execute(text(sql)).scalar())
    # Each index's entry starts with its row count: the largest is the table's.
    stats = conn.execute(text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'incidents'")).scalars()
    return max((float(stat.split()[0]) for stat in stats), default=-1.0)


def test_statistics_follow_a_large_write(feed: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner's statistics are refreshed after a large write (issue #8).

    SQLite after any write that calls for it; PostgreSQL (where autovacuum analyses
    later) when the write is at least ``PG_ANALYZE_ROWS`` rows and a tenth of the table,
    and always at the end of a large first load (``changed`` None).
    """
    monkeypatch.setattr(spatial, "PG_ANALYZE_ROWS", 15)
    with feed.begin() as conn:
        refresh_statistics(conn)
        assert _planner_rows(conn) == 10
    _ingest(feed, feed.folder, [_row(i, -122.69) for i in range(100, 112)], "more.csv")
    pg = feed.engine.dialect.name == "postgresql"
    with feed.begin() as conn:
        refresh_statistics(conn, 12)  # below 15 rows: PostgreSQL leaves it to autovacuum
        assert _planner_rows(conn) == (10 if pg else 22)
        refresh_statistics(conn, 15)
        assert _planner_rows(conn) == 22
    monkeypatch.setattr(spatial, "PG_ANALYZE_ROWS", 1)
    _ingest(feed, feed.folder, [_row(i, -122.69) for i in range(200, 202)], "two.csv")
    with feed.begin() as conn:
        refresh_statistics(conn, 2)  # a tenth of the table is 2.2 rows
        assert _planner_rows(conn) == (22 if pg else 24)
        refresh_statistics(conn, 3)
        assert _planner_rows(conn) == 24
