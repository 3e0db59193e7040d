"""Trends: period counts, seasonal baseline, exact Poisson change test, CompStat, borders."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from crossbeat.analysis import AnalysisError
from crossbeat.analysis.trends import (
    compstat,
    counts_by_period,
    rate_change_p,
    rising_across_borders,
    seasonal_expected,
)

smp = pytest.importorskip("statsmodels.stats.rates")


@cache
def _frame(seed: int = 5) -> pd.DataFrame:
    """Two years and a half of incidents in three groups and two categories, weekly cycle."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2021-01-01", "2024-06-30", freq="D")
    rows = []
    for day in days:
        weekend = day.day_of_week >= 5
        for group in ("north", "south", "east"):
            for cat in ("burglary", "robbery"):
                lam = (3.0 if weekend else 1.5) * (1.3 if cat == "burglary" else 1.0)
                if (
                    cat == "burglary"
                    and group in ("north", "south")
                    and day >= pd.Timestamp("2024-06-03")
                ):
                    lam *= 4  # a planted rise on both sides of the north/south border
                for _ in range(rng.poisson(lam)):
                    rows.append((day + pd.Timedelta(hours=int(rng.integers(0, 24))), group, cat))
    return pd.DataFrame(rows, columns=["t", "group", "cat"])


def _incidents() -> pd.DataFrame:
    return _frame().copy()


def test_rate_change_p_equals_statsmodels_exact_conditional():
    for c1, c0, ratio in [(30, 12, 1.0), (5, 5, 1.0), (0, 7, 1.0), (40, 90, 1 / 3), (12, 3, 2.0)]:
        ref = smp.test_poisson_2indep(c1, ratio, c0, 1.0, method="exact-cond").pvalue
        assert rate_change_p(np.array([c1]), np.array([c0]), ratio)[0] == pytest.approx(ref)
    assert rate_change_p(np.array([0]), np.array([0]))[0] == 1.0
    with pytest.raises(AnalysisError, match="non-negative"):
        rate_change_p(np.array([-1]), np.array([3]))


def test_counts_by_period_match_pandas_and_skip_missing_groups():
    df = _incidents()
    t = df.t.values.astype("datetime64[s]")
    groups = df.group.to_numpy(dtype=object).copy()
    groups[:5] = None
    edges = np.array(pd.date_range("2024-01-01", "2024-07-01", freq="MS").values, "datetime64[s]")
    res = counts_by_period(t, None, edges, groups=groups)
    assert res.skipped.reasons == {"missing group": 5}
    ref = (
        df.iloc[5:]
        .assign(month=lambda d: d.t.dt.to_period("M"))
        .query("t >= '2024-01-01'")
        .groupby(["group", "month"])
        .size()
        .unstack(fill_value=0)
    )
    assert list(res.groups) == list(ref.index)
    np.testing.assert_array_equal(res.counts, ref.to_numpy())


def test_seasonal_expected_is_the_mean_of_week_aligned_earlier_windows():
    df = _incidents()
    t = df.t.values.astype("datetime64[s]")
    start, end = np.datetime64("2024-03-04", "s"), np.datetime64("2024-03-18", "s")
    res = seasonal_expected(t, None, start, end, groups=df.group.values, years=2, spread_weeks=1)
    labels, observed, expected = res.groups, res.observed, res.expected
    s, e = pd.Timestamp("2024-03-04"), pd.Timestamp("2024-03-18")
    windows = [
        (s - pd.Timedelta(days=364 * y + 7 * d), e - pd.Timedelta(days=364 * y + 7 * d))
        for y in (1, 2)
        for d in (-1, 0, 1)
    ]
    for g, obs, exp in zip(labels, observed, expected, strict=True):
        sub = df[df.group == g]
        assert obs == ((sub.t >= s) & (sub.t < e)).sum()
        ref = np.mean([((sub.t >= a) & (sub.t < b)).sum() for a, b in windows])
        assert exp == pytest.approx(ref)
        # Two-week windows with the same weekdays: expected is close to observed (no change).
        assert abs(obs - exp) < 5 * np.sqrt(exp)
    ref_p = [
        smp.test_poisson_2indep(int(o), 1.0, round(e * 6), 6.0, method="exact-cond").pvalue
        for o, e in zip(observed, expected, strict=True)
    ]
    np.testing.assert_allclose(res.p, ref_p)
    assert res.params.years == 2 and len(res.params.windows) == 6
    # The planted four-fold rise of burglary in June 2024 north and south is found.
    cat = df.cat.values == "burglary"
    june = seasonal_expected(
        t[cat],
        None,
        np.datetime64("2024-06-03"),
        np.datetime64("2024-07-01"),
        groups=df.group.values[cat],
    )
    rising = {g for g, c, p in zip(june.groups, june.change, june.p, strict=True) if p < 0.001}
    assert rising == {"north", "south"}
    assert june.change[list(june.groups).index("north")] > 200
    with pytest.raises(AnalysisError, match="select more history"):
        seasonal_expected(t, None, start, end, years=5)


def test_compstat_table_against_pandas_and_statsmodels():
    df = _incidents()
    t = df.t.values.astype("datetime64[s]")
    cats = df.cat.to_numpy(dtype=object).copy()
    cats[0] = ""
    table = compstat(t, None, np.datetime64("2024-06-30"), groups=df.group.values, categories=cats)
    assert table.period == ("week", "28d", "ytd")
    assert table.skipped.reasons == {"missing category": 1}
    assert len(table.group) == 6
    d = df.iloc[1:]
    end, year = pd.Timestamp("2024-07-01"), pd.Timedelta(days=364)  # 52 weeks: same weekdays
    windows = {
        "week": (end - pd.Timedelta(days=7), end, end - pd.Timedelta(days=7) - year, end - year),
        "28d": (end - pd.Timedelta(days=28), end, end - pd.Timedelta(days=28) - year, end - year),
        "ytd": ("2024-01-01", "2024-07-01", "2023-01-01", "2023-07-01"),  # calendar-aligned
    }
    for r in range(len(table.group)):
        sub = d[(d.group == table.group[r]) & (d.cat == table.category[r])]
        for k, name in enumerate(table.period):
            s1, e1, s0, e0 = (pd.Timestamp(v) for v in windows[name])
            cur = ((sub.t >= s1) & (sub.t < e1)).sum()
            prev = ((sub.t >= s0) & (sub.t < e0)).sum()
            ratio = (e1 - s1) / (e0 - s0)
            assert table.current[r, k] == cur and table.previous[r, k] == prev
            assert table.change[r, k] == pytest.approx(100 * (cur / ratio / prev - 1))
            ref = smp.test_poisson_2indep(cur, ratio, prev, 1.0, method="exact-cond").pvalue
            assert table.p[r, k] == pytest.approx(ref)
    rows = table.rows()
    assert rows[0]["group"] == table.group[0] and "28d_change_pct" in rows[0]
    assert table.params.as_of == "2024-06-30"
    # Year to date on 29 February compares with 1 January - 28 February of the year before.
    leap = compstat(t, None, np.datetime64("2024-02-29"))
    assert leap.params.periods[2][1:] == ("2024-01-01", "2024-03-01", "2023-01-01", "2023-03-01")


def test_rise_on_both_sides_of_a_border_is_flagged():
    df = _incidents()
    t = df.t.values.astype("datetime64[s]")
    table = compstat(
        t, None, np.datetime64("2024-06-30"), groups=df.group.values, categories=df.cat.values
    )
    flags = rising_across_borders(table, [("north", "south"), ("south", "east")])
    assert [(f.group_a, f.group_b, f.category) for f in flags] == [("north", "south", "burglary")]
    assert flags[0].change_a > 100 and flags[0].p_a < 0.05
    with pytest.raises(AnalysisError, match="unknown period"):
        rising_across_borders(table, [], period="quarter")


def test_bad_input():
    with pytest.raises(AnalysisError, match="empty selection"):
        compstat(np.array([], "datetime64[s]"), None, np.datetime64("2024-06-30"))
    with pytest.raises(AnalysisError, match="usable time"):
        compstat(np.array(["NaT"], "datetime64[s]"), None, np.datetime64("2024-06-30"))
    with pytest.raises(AnalysisError, match="empty selection"):
        counts_by_period(
            np.array([], "datetime64[s]"),
            None,
            np.array(["2024-01-01", "2024-02-01"], "datetime64[s]"),
        )


def test_microsecond_times_and_empty_labels_as_the_sharing_arrays_give_them():
    # crossbeat's policy-filtered arrays hold datetime64[us] times and "" where a value
    # is not shown; both must work as they are.
    df = _incidents()
    t = df.t.values.astype("datetime64[s]")
    groups = df.group.to_numpy(dtype=str).copy()
    groups[:3] = ""
    a = compstat(t, None, np.datetime64("2024-06-30"), groups=groups)
    b = compstat(t.astype("datetime64[us]"), None, np.datetime64("2024-06-30"), groups=groups)
    np.testing.assert_array_equal(a.current, b.current)
    np.testing.assert_array_equal(a.previous, b.previous)
    assert b.skipped.reasons == {"missing group": 3}
