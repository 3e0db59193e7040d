"""Series and similar incidents on the local clock, with time ranges spread (issue #11)."""

from __future__ import annotations

import numpy as np
import pytest

from crossbeat.analysis.errors import AnalysisError
from crossbeat.analysis.series import detect_series, local_seconds, similar_to

TORONTO = "America/Toronto"


def _t(*values: str) -> np.ndarray:
    return np.array(values, dtype="datetime64[us]")


def test_local_clock_follows_daylight_saving() -> None:
    t = _t("2026-07-01T01:00", "2026-01-15T02:00", "NaT")
    local = local_seconds(t, np.array([TORONTO, TORONTO, TORONTO], dtype=object))
    hours = np.mod(local[:2], 86400) / 3600
    assert hours.tolist() == [21.0, 21.0] and np.isnan(local[2])
    assert np.mod(local_seconds(t[:1], None), 86400)[0] / 3600 == 1.0  # UTC
    with pytest.raises(AnalysisError, match="unknown time zone"):
        local_seconds(t[:1], "Mars/Olympus")


def test_a_series_at_the_same_local_hour_across_the_clock_change() -> None:
    # 21:00 in Toronto each evening; Toronto leaves daylight saving on 1 November 2026,
    # so the last one is 02:00 UTC where the first two were 01:00 UTC.
    t = _t("2026-10-28T01:00", "2026-10-30T01:00", "2026-11-03T02:00")
    args = (
        np.array([-79.400, -79.401, -79.402]),
        np.array([43.650, 43.651, 43.650]),
        t,
        None,
        np.array(["120"] * 3),
        np.array(["07"] * 3),
    )
    kw = {"eps_hours": 0.5, "alpha": 1.0, "min_samples": 3}
    assert detect_series(*args, **kw).series == ()  # type: ignore[arg-type]
    local = detect_series(*args, timezone=np.array([TORONTO] * 3, dtype=object), **kw)  # type: ignore[arg-type]
    assert local.series == ((0, 1, 2),)
    assert local.local_hour is not None and local.local_hour.tolist() == [21.0, 21.0, 21.0]


def test_time_ranges_are_spread_over_the_clock() -> None:
    # Target at 21:00; others: 18:00-23:00 (spread: 1.3 h away on average, though its
    # start is 3 h away and its midpoint 0.5 h), exact 22:00, and a whole day (about 6 h).
    start = _t("2026-03-10T21:00", "2026-03-10T18:00", "2026-03-11T22:00", "2026-03-09T00:00")
    end = _t("NaT", "2026-03-10T23:00", "NaT", "2026-03-10T00:00")
    n = len(start)
    sim = similar_to(
        0,
        np.full(n, -79.4),
        np.array([43.650, 43.651, 43.652, 43.653]),
        start,
        end,
        np.array(["220"] * n),
        np.array(["20"] * n),
        eps_hours=2.5,
        timezone="UTC",
    )
    assert sim.index.tolist() == [2, 1], sim.reasons  # the whole-day one is too far
    reasons = dict(zip(sim.index.tolist(), sim.reasons, strict=True))
    assert "1.0 h apart on the clock" in reasons[2]
    # Exact expectation of |U(18, 23) - 21| is (3² + 2²) / (2 × 5) = 1.3 h.
    assert "1.3 h apart on the clock" in reasons[1]


@pytest.mark.parametrize(
    ("lat", "start", "end", "code", "missing"),
    [
        (np.nan, "2026-03-10T21:00", "NaT", "220", ["place"]),
        (43.65, "NaT", "NaT", "220", ["time"]),
        (43.65, "2026-01-01T00:00", "2026-03-10T00:00", "220", ["time"]),  # 68 days wide
        (43.65, "2026-03-10T21:00", "NaT", "", ["offence code"]),
        (np.nan, "NaT", "NaT", "", ["place", "time", "offence code"]),
    ],
)
def test_an_incident_that_cannot_be_compared_says_what_it_lacks(
    lat: float, start: str, end: str, code: str, missing: list[str]
) -> None:
    from crossbeat.analysis.errors import NotComparable

    with pytest.raises(NotComparable) as caught:
        similar_to(
            0,
            np.array([-79.4, -79.4]),
            np.array([lat, 43.651]),
            _t(start, "2026-03-10T20:00"),
            _t(end, "NaT"),
            np.array([code, "220"]),
            np.array(["20", "20"]),
            timezone="UTC",
        )
    text = str(caught.value)
    for word in ("place", "time", "offence code"):
        assert (f"no usable {word}" in text or f"no {word}" in text) == (word in missing), text
