"""A time the grant coarsened is a range to the end of its period, in every analysis.

Found by an acceptance review (issue #11): a partner granted times "by day" got each
incident at its day's local midnight with no end, so analyses read an exact midnight
time, and series detection put hundreds of unrelated incidents in one "series".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from crossbeat.analytics.selection import select
from crossbeat.sharing.agreements import create_agreement
from crossbeat.sharing.arrays import analysis_arrays
from crossbeat.sharing.policy import Viewer
from crossbeat.store import Store
from tests.sharing_support import (
    ADMINS,
    NOW,
    Inc,
    add_admins,
    insert_incidents,
    setup_agencies,
)

LA = ZoneInfo("America/Los_Angeles")
PARTNER = Viewer.user("u2", "countyb", ["analyst"])
OWN = Viewer.user("u1", "citya", ["analyst"])
#: Local times of citya's incidents (a March day of a change of UTC offset among them).
LOCAL = [
    datetime(2026, 3, 8, 1, 30),
    datetime(2026, 3, 8, 23, 10),
    datetime(2026, 5, 31, 23, 59),
    datetime(2026, 6, 1, 0, 5),
]


def _us(t: datetime) -> np.datetime64:
    return np.datetime64(t.astimezone(UTC).replace(tzinfo=None), "us")


@pytest.fixture
def coarse_store(store: Store) -> Store:
    setup_agencies(store)
    add_admins(store)
    population = [
        Inc("citya", f"C{i}", 45.52, -122.65 + i * 0.001, ["220"], t.replace(tzinfo=LA))
        for i, t in enumerate(LOCAL)
    ]
    insert_incidents(store, population)
    return store


def _grant(store: Store, resolution: str) -> None:
    create_agreement(
        store, "citya", "countyb", offences=["all"], fields=["all"], precision="exact",
        time_resolution=resolution, delay="0s", purposes=["analysis"],
        approved_by=ADMINS["citya"],
    )  # fmt: skip
    assert NOW > max(t.replace(tzinfo=LA) for t in LOCAL)


def _by_start(arrays) -> list[tuple[np.datetime64, np.datetime64]]:
    start, end = arrays.occurred_from, arrays.occurred_to
    return sorted(zip(start.tolist(), end.tolist(), strict=True))


@pytest.mark.parametrize("resolution", ["hour", "day", "month"])
def test_a_coarsened_time_reaches_the_end_of_its_local_period(coarse_store, resolution) -> None:
    _grant(coarse_store, resolution)
    arrays = analysis_arrays(coarse_store, PARTNER)
    assert np.isnat(arrays.occurred_to).all()  # as published: no end shown
    got = _by_start(select(coarse_store, PARTNER).arrays)
    want = []
    for t in LOCAL:
        if resolution == "hour":
            start = t.replace(minute=0, tzinfo=LA)
            end = (start.astimezone(UTC) + timedelta(hours=1)).astimezone(LA)
        elif resolution == "day":
            start = t.replace(hour=0, minute=0, tzinfo=LA)
            end = (t + timedelta(days=1)).replace(hour=0, minute=0, tzinfo=LA)
        else:
            start = t.replace(day=1, hour=0, minute=0, tzinfo=LA)
            end = (start + timedelta(days=32)).replace(day=1, tzinfo=LA)
        want.append((_us(start), _us(end) - np.timedelta64(1, "us")))
    assert [(a, b) for a, b in got] == [
        (a.astype(datetime), b.astype(datetime)) for a, b in sorted(want)
    ]
    # The day of the change of UTC offset (8 March) is 23 hours long, not 24.
    if resolution == "day":
        first = sorted(want)[0]
        assert (first[1] - first[0]) == np.timedelta64(23 * 3600 * 10**6 - 1, "us")


def test_exact_times_are_left_alone(coarse_store) -> None:
    arrays = analysis_arrays(coarse_store, OWN)
    assert arrays.period_end is not None and np.isnat(arrays.period_end).all()
    start, end = arrays.time_range()
    assert np.array_equal(start, arrays.occurred_from, equal_nan=True)
    assert np.isnat(end).all()
    chosen = select(coarse_store, OWN).arrays
    assert np.isnat(chosen.occurred_to).all()
    assert sorted(chosen.occurred_from.tolist()) == sorted(
        _us(t.replace(tzinfo=LA)).astype(datetime) for t in LOCAL
    )
