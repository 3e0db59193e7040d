"""Time uncertainty: a range is spread over the bins it covers, not pinned to its start."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossbeat.analysis import AnalysisError
from crossbeat.analysis.timespread import midpoint, spread_over_bins

DAYS = np.arange(np.datetime64("2024-03-01"), np.datetime64("2024-03-08")).astype("datetime64[s]")


def test_weekend_range_spread_by_hours_in_each_day():
    # Friday 2024-03-01 18:00 to Monday 2024-03-04 08:00: 6 + 24 + 24 + 8 = 62 hours.
    start = np.array(["2024-03-01T18:00"], dtype="datetime64[s]")
    end = np.array(["2024-03-04T08:00"], dtype="datetime64[s]")
    w = spread_over_bins(start, end, DAYS)
    np.testing.assert_allclose(w.counts(), np.array([6, 24, 24, 8, 0, 0]) / 62)
    assert w.outside == 0 and w.skipped.total == 0


def test_exact_times_missing_reversed_and_outside():
    start = np.array(
        ["2024-03-02T10:00", "NaT", "2024-03-03T10:00", "2024-02-01T00:00", "2024-03-06T12:00"],
        dtype="datetime64[s]",
    )
    end = np.array(
        ["NaT", "NaT", "2024-03-02T10:00", "NaT", "2024-03-08T12:00"], dtype="datetime64[s]"
    )
    w = spread_over_bins(start, end, DAYS)
    counts = w.counts()
    assert counts[1] == 1.0  # exact time: all of it in its day
    assert counts[5] == pytest.approx(0.25)  # 12 of 48 hours fall on 2024-03-06
    assert w.outside == pytest.approx(1 + 0.75)  # February, and the part after the last bin
    assert w.skipped.reasons == {"missing time": 1, "end before start": 1}


def test_counts_by_group_and_too_wide_ranges():
    start = np.array(["2024-03-01T00:00", "2024-03-01T00:00", "2024-03-02T00:00"], "datetime64[s]")
    end = np.array(["2024-03-03T00:00", "2024-03-06T00:00", "NaT"], "datetime64[s]")
    w = spread_over_bins(start, end, DAYS, max_range=np.timedelta64(3, "D"))
    table = w.counts_by(np.array([0, 1, 1]), 2)
    np.testing.assert_allclose(table[0], [0.5, 0.5, 0, 0, 0, 0])
    np.testing.assert_allclose(table[1], [0, 1, 0, 0, 0, 0])
    assert w.skipped.reasons == {"time range too wide": 1}


def test_midpoint_and_errors():
    start = np.array(["2024-03-01T18:00", "NaT"], dtype="datetime64[s]")
    end = np.array(["2024-03-02T06:00", "NaT"], dtype="datetime64[s]")
    mid, keep, skipped = midpoint(start, end)
    assert keep.tolist() == [True, False]
    assert mid[0] == np.datetime64("2024-03-02T00:00", "s").astype("int64")
    assert skipped.reasons == {"missing time": 1}
    with pytest.raises(AnalysisError, match="datetime64"):
        spread_over_bins(np.array([1.0]), None, DAYS)
    with pytest.raises(AnalysisError, match="increasing"):
        spread_over_bins(start, end, DAYS[::-1])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-3 * 86400, 10 * 86400), st.integers(0, 5 * 86400)),
        min_size=1,
        max_size=30,
    )
)
def test_each_incident_counts_once_inside_or_outside(ranges):
    base = np.datetime64("2024-03-01T00:00", "s")
    start = base + np.array([a for a, _ in ranges]).astype("timedelta64[s]")
    end = start + np.array([b for _, b in ranges]).astype("timedelta64[s]")
    w = spread_over_bins(start, end, DAYS)
    assert w.counts().sum() + w.outside == pytest.approx(len(ranges))
    assert (w.weight > 0).all() and (w.weight <= 1 + 1e-12).all()
    per_incident = np.bincount(w.incident, weights=w.weight, minlength=len(ranges))
    assert (per_incident <= 1 + 1e-9).all()
