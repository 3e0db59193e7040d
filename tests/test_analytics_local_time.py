"""Time-series bins follow the local calendar of the viewer's agency, not UTC (issue #11).

Found by an acceptance review: Sacramento PD's incidents of a January evening landed in
February, because days, weeks and months were counted in UTC. Each test runs on the
real store (SQLite and PostgreSQL); ``citya`` is in America/Los_Angeles.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from crossbeat.analysis.localtime import edges, local_date, local_midnight
from crossbeat.analytics import run
from crossbeat.analytics.named import render_named, run_named
from crossbeat.sharing.own import operator_viewer
from crossbeat.sharing.request import Viewer
from crossbeat.store import Store
from tests.sharing_support import Inc, insert_incidents, setup_agencies

LA = ZoneInfo("America/Los_Angeles")
CITY = operator_viewer("citya")

#: Local times in Los Angeles: (source id, local time).
LOCAL = [
    ("jan10", datetime(2026, 1, 10, 12, 0)),
    ("jan31-evening", datetime(2026, 1, 31, 20, 0)),  # 04:00 UTC on 1 February
    ("feb10", datetime(2026, 2, 10, 12, 0)),
    ("mar02-late", datetime(2026, 3, 2, 23, 0)),  # 07:00 UTC on 3 March
    ("mar09-early", datetime(2026, 3, 9, 0, 30)),  # the day after the spring-forward day
    ("mar09-evening", datetime(2026, 3, 9, 20, 0)),  # 03:00 UTC on 10 March
]


@pytest.fixture
def la_store(store: Store) -> Store:
    """The three test agencies and six incidents of ``citya`` at known local times."""
    setup_agencies(store)
    insert_incidents(
        store,
        [
            Inc(
                "citya",
                sid,
                45.53,
                -122.69 + 0.012 * k,
                ["220"],
                t.replace(tzinfo=LA).astimezone(UTC),
            )
            for k, (sid, t) in enumerate(LOCAL)
        ],
    )
    return store


def _utc(day: str, hour: int) -> np.datetime64:
    return np.datetime64(f"{day}T{hour:02d}:00", "us")


def test_month_bins_count_a_january_evening_in_january(la_store: Store) -> None:
    out = run.trends(la_store, CITY, period="month", by="region")
    e = out.result.counts.edges
    assert list(e) == [
        _utc("2026-01-01", 8),
        _utc("2026-02-01", 8),
        _utc("2026-03-01", 8),
        _utc("2026-04-01", 7),  # daylight saving time from 8 March
    ]
    assert out.result.counts.counts[0].tolist() == [2.0, 1.0, 3.0]  # UTC gave 1, 2, 3
    body = render_named("trends", out, "json")
    assert body["params"]["timezone"] == "America/Los_Angeles"
    assert body["params"]["period"] == "month"


def test_day_bins_are_local_days_and_a_dst_day_has_23_hours(la_store: Store) -> None:
    out = run.trends(la_store, CITY, period="day", by="region")
    e, counts = out.result.counts.edges, out.result.counts.counts[0]
    jan31 = int(np.flatnonzero(e == _utc("2026-01-31", 8))[0])
    assert e[jan31 + 1] == _utc("2026-02-01", 8)
    assert counts[jan31] == 1.0 and counts[jan31 + 1] == 0.0  # 31 January, not 1 February
    mar8 = int(np.flatnonzero(e == _utc("2026-03-08", 8))[0])
    assert e[mar8 + 1] == _utc("2026-03-09", 7)  # 23 hours
    assert (e[mar8 + 1] - e[mar8]) == np.timedelta64(23, "h")
    assert counts[mar8] == 0.0 and counts[mar8 + 1] == 2.0  # 00:30 PDT is on 9 March
    assert e[-1] == _utc("2026-03-10", 7)
    assert out.result.params.timezone == "America/Los_Angeles"


def test_week_bins_start_on_local_mondays(la_store: Store) -> None:
    out = run.trends(la_store, CITY, period="week", by="region")
    e = out.result.counts.edges
    local = [local_date(x, "America/Los_Angeles") for x in e]
    assert all(d.weekday() == 0 for d in local)
    assert all(local_midnight(d, "America/Los_Angeles") == x for d, x in zip(local, e, strict=True))
    assert local[-1] == date(2026, 3, 16)  # the week of 9 March ends on the 16th


def test_fall_back_day_has_25_hours() -> None:
    t = np.array([_utc("2026-11-01", 19)], dtype="datetime64[us]")  # 11:00 PST
    e = edges(t, "day", None, "America/Los_Angeles")
    assert list(e) == [_utc("2026-11-01", 7), _utc("2026-11-02", 8)]
    # A midnight the clocks skip (Santiago, 6 September 2026) begins the day at 01:00.
    assert local_midnight(date(2026, 9, 6), "America/Santiago") == _utc("2026-09-06", 4)


def test_compstat_days_and_default_as_of_are_local(la_store: Store) -> None:
    out = run.compstat(la_store, CITY)
    p = out.result.params
    assert p.as_of == "2026-03-09"  # the latest incident's local day (UTC: 10 March)
    assert p.timezone == "America/Los_Angeles"
    assert p.periods[0][:3] == ("week", "2026-03-03", "2026-03-10")
    t = out.result.table
    row = int(np.flatnonzero(t.group == "citya")[0])
    # Week 3-9 March (local): the two on 9 March, not the 2 March one at 23:00 PST.
    assert t.current[row].tolist() == [2.0, 4.0, 6.0]
    body = render_named("compstat", run_named("compstat", la_store, CITY, None, {}), "json")
    assert body["params"]["timezone"] == "America/Los_Angeles"


def test_emerging_bins_are_local_months(la_store: Store) -> None:
    out = run.emerging(la_store, CITY, period="month", resolution=9)
    assert out.result.params.timezone == "America/Los_Angeles"
    assert out.result.params.bin_edges[:2] == (
        "2026-01-01T08:00:00.000000",
        "2026-02-01T08:00:00.000000",
    )


def test_zone_of_a_viewer_without_an_agency(la_store: Store) -> None:
    public = Viewer.public()
    assert run.viewer_zone(la_store, public, ["citya"]) == "America/Los_Angeles"
    assert run.viewer_zone(la_store, public, ["citya", "countyb"]) == "UTC"  # no shared zone
    assert run.viewer_zone(la_store, public, []) == "UTC"
    assert run.viewer_zone(la_store, operator_viewer("countyb"), ["citya"]) == "America/Denver"
