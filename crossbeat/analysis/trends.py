"""Counts by period, seasonal expected values, tests of change and CompStat tables.

Counting honours time uncertainty: an incident known only as a range is spread
uniformly over it (:func:`crossbeat.analysis.timespread.spread_over_bins`), so counts
can be fractional; the significance tests round them to whole incidents.

**Seasonal baseline.** The expected count for a window ``[start, end)`` is the mean
count in the same window ``364 × y`` days earlier for ``y = 1..years``, also shifted
by ``±7 × d`` days for ``d = 1..spread_weeks`` (Stroup et al.'s "historical limits"
method, as CDC uses for surveillance). Shifting by whole weeks keeps the weekly cycle
aligned (a window with two Fridays is compared with windows with two Fridays) and
the year shift keeps the season.

**Test of change.** Two counts ``c1`` (exposure ``e1``) and ``c0`` (exposure ``e0``) are
compared with the exact conditional test for Poisson rates: given ``c1 + c0``, ``c1`` is
binomial with ``p = e1 / (e1 + e0)`` under equal rates (two-sided, scipy
``binomtest``); it is statsmodels' ``test_poisson_2indep(method="exact-cond")``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import stats

from crossbeat.analysis.errors import AnalysisError, Skipped
from crossbeat.analysis.localtime import local_date, local_midnight
from crossbeat.analysis.timespread import check_times, spread_over_bins

DAY = np.timedelta64(1, "D")


@dataclass(frozen=True)
class PeriodCounts:
    """Counts per group (rows, labels ``groups``) and period (columns, ``edges``)."""

    groups: np.ndarray
    edges: np.ndarray
    counts: np.ndarray
    outside: float
    skipped: Skipped


def _labels(values: np.ndarray | None, n: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Return each incident's label index (-1 when missing) and the sorted labels."""
    if values is None:
        return np.zeros(n, dtype=np.int64), np.array(["all"], dtype=object)
    arr = np.asarray(values, dtype=object)
    if len(arr) != n:
        raise AnalysisError(f"{what} must have one value per incident")
    missing = np.array([v is None or v == "" or v != v for v in arr], dtype=bool)
    index = np.full(n, -1, dtype=np.int64)
    if missing.all():
        return index, np.array([], dtype=object)
    labels, inverse = np.unique(arr[~missing].astype(str), return_inverse=True)
    index[~missing] = inverse
    return index, labels.astype(object)


def counts_by_period(
    occurred_from: np.ndarray,
    occurred_to: np.ndarray | None,
    edges: np.ndarray,
    *,
    groups: np.ndarray | None = None,
) -> PeriodCounts:
    """Count incidents per group and period ``[edges[i], edges[i+1])``, spreading ranges.

    ``groups`` (jurisdiction, area, or anything per incident) default to one group,
    ``"all"`` (the region). Incidents with a missing group are skipped and counted.
    """
    n = len(np.asarray(occurred_from))
    if n == 0:
        raise AnalysisError("empty selection: no incidents to count")
    gidx, labels = _labels(groups, n, "groups")
    skipped = Skipped({"missing group": int((gidx < 0).sum())} if (gidx < 0).any() else {})
    ok = gidx >= 0
    sel = np.flatnonzero(ok)
    ot = None if occurred_to is None else np.asarray(occurred_to)[sel]
    bw = spread_over_bins(np.asarray(occurred_from)[sel], ot, np.asarray(edges))
    table = bw.counts_by(gidx[sel], len(labels))
    return PeriodCounts(labels, np.asarray(edges), table, bw.outside, skipped.merged(bw.skipped))


def rate_change_p(
    count: np.ndarray, baseline: np.ndarray, exposure_ratio: float | np.ndarray = 1.0
) -> np.ndarray:
    """Two-sided p-values that ``count`` and ``baseline`` come from one Poisson rate.

    ``exposure_ratio`` is the exposure of ``count`` over that of ``baseline`` (1 for two
    periods of equal length; 1/3 against the total of three earlier years). Counts are
    rounded to whole incidents; a pair of zeros gives p = 1.
    """
    c1 = np.rint(np.atleast_1d(np.asarray(count, dtype=float))).astype(np.int64)
    c0 = np.rint(np.atleast_1d(np.asarray(baseline, dtype=float))).astype(np.int64)
    ratio = np.broadcast_to(np.asarray(exposure_ratio, dtype=float), c1.shape)
    if np.any(c1 < 0) or np.any(c0 < 0) or np.any(ratio <= 0):
        raise AnalysisError("counts must be non-negative and exposures positive")
    out = np.ones(c1.shape)
    for i in range(len(c1)):
        total = int(c1[i] + c0[i])
        if total:
            out[i] = stats.binomtest(int(c1[i]), total, ratio[i] / (1 + ratio[i])).pvalue
    return out


def _window_counts(t_from, t_to, gidx, n_groups, start, end) -> np.ndarray:
    bw = spread_over_bins(t_from, t_to, np.array([start, end]))
    return bw.counts_by(gidx, n_groups)[:, 0]


@dataclass(frozen=True)
class SeasonalParams:
    """The parameters of a seasonal baseline."""

    start: str
    end: str
    years: int
    spread_weeks: int
    windows: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SeasonalExpected:
    """Observed and expected counts per group for one window, and the test of change.

    ``p`` compares the observed count with the total over the earlier windows (exact
    conditional Poisson test, exposure 1 : number of windows); ``change`` is the
    percentage above (or below) expected, NaN when nothing was expected.
    """

    groups: np.ndarray
    observed: np.ndarray
    expected: np.ndarray
    change: np.ndarray
    p: np.ndarray
    skipped: Skipped
    params: SeasonalParams


def seasonal_expected(
    occurred_from: np.ndarray,
    occurred_to: np.ndarray | None,
    start: np.datetime64,
    end: np.datetime64,
    *,
    groups: np.ndarray | None = None,
    years: int = 3,
    spread_weeks: int = 1,
) -> SeasonalExpected:
    """Return observed and expected counts per group for the window ``[start, end)``.

    Expected is the mean of ``years × (2 × spread_weeks + 1)`` earlier windows (see the
    module docstring). The selection must reach back ``years`` years before ``start``:
    windows before the earliest incident would count as zeros, so they are refused.
    """
    if years < 1 or spread_weeks < 0:
        raise AnalysisError("years must be at least 1 and spread_weeks non-negative")
    n = len(np.asarray(occurred_from))
    if n == 0:
        raise AnalysisError("empty selection: no incidents for a baseline")
    start = start.astype("datetime64[s]")
    end = end.astype("datetime64[s]")
    if not end > start:
        raise AnalysisError("the window must end after it starts")
    gidx, labels = _labels(groups, n, "groups")
    skipped = Skipped({"missing group": int((gidx < 0).sum())} if (gidx < 0).any() else {})
    ok = gidx >= 0
    t_from = np.asarray(occurred_from)[ok]
    t_to = None if occurred_to is None else np.asarray(occurred_to)[ok]
    _, _, keep, time_skipped = check_times(t_from, t_to)
    if not keep.any():
        raise AnalysisError("no incident has a usable time")
    skipped = skipped.merged(time_skipped)
    g = gidx[ok]
    windows = [
        (start - (364 * y + 7 * d) * DAY, end - (364 * y + 7 * d) * DAY)
        for y in range(1, years + 1)
        for d in range(-spread_weeks, spread_weeks + 1)
    ]
    earliest = np.min(t_from[keep]).astype("datetime64[s]")
    first = min(w[0] for w in windows)
    if first < earliest:
        raise AnalysisError(
            f"the baseline needs incidents from {first} but the earliest is {earliest}: "
            "select more history or lower years"
        )
    observed = _window_counts(t_from, t_to, g, len(labels), start, end)
    base = np.zeros(len(labels))
    for s0, e0 in windows:
        base += _window_counts(t_from, t_to, g, len(labels), s0, e0)
    expected = base / len(windows)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.where(expected > 0, 100 * (observed / expected - 1), np.nan)
    return SeasonalExpected(
        groups=labels,
        observed=observed,
        expected=expected,
        change=change,
        p=rate_change_p(observed, base, 1.0 / len(windows)),
        skipped=skipped,
        params=SeasonalParams(
            str(start), str(end), years, spread_weeks, tuple((str(a), str(b)) for a, b in windows)
        ),
    )


@dataclass(frozen=True)
class CompStatParams:
    """The parameters of a CompStat table."""

    as_of: str
    periods: tuple[tuple[str, str, str, str, str], ...]
    alpha: float
    #: The IANA time zone whose local calendar days ``as_of`` and ``periods`` are
    #: (each period runs from the local midnight beginning its first day).
    timezone: str = "UTC"


@dataclass(frozen=True)
class CompStatTable:
    """One row per (group, category); per period ``current``, ``previous``, ``change`` and ``p``.

    Arrays are indexed ``[row, period]``, periods named in ``period``: ``"week"`` (the
    7 days ending ``as_of``), ``"28d"`` and ``"ytd"``, each against the same period a year
    earlier (364 days earlier for week and 28 days, so weekdays align; for year to date,
    1 January of the previous year to the same calendar day). ``change`` is the
    percentage change (NaN when the previous count is 0). A period whose year-earlier
    period starts before the earliest incident is listed in ``no_history`` and has no
    comparison (``previous``, ``change`` and ``p`` NaN).
    """

    group: np.ndarray
    category: np.ndarray
    period: tuple[str, ...]
    current: np.ndarray
    previous: np.ndarray
    change: np.ndarray
    p: np.ndarray
    skipped: Skipped
    params: CompStatParams
    #: Periods whose year-earlier period starts before the earliest incident: their
    #: ``previous``, ``change`` and ``p`` are NaN (no data is not zero incidents).
    no_history: tuple[str, ...] = ()

    def rows(self) -> list[dict[str, object]]:
        """Return the table as one plain dict per row, for printing or JSON."""
        out = []
        for r in range(len(self.group)):
            row: dict[str, object] = {"group": self.group[r], "category": self.category[r]}
            for k, name in enumerate(self.period):
                row[f"{name}"] = float(self.current[r, k])
                row[f"{name}_last_year"] = float(self.previous[r, k])
                row[f"{name}_change_pct"] = float(self.change[r, k])
                row[f"{name}_p"] = float(self.p[r, k])
            out.append(row)
        return out


class _Period(NamedTuple):
    """One CompStat period ``[start, end)`` and the same period a year earlier.

    Bounds are UTC instants; ``days`` are the same bounds as local dates.
    """

    name: str
    start: np.datetime64
    end: np.datetime64
    prev_start: np.datetime64
    prev_end: np.datetime64
    days: tuple[str, str, str, str]


def _periods(as_of: np.datetime64, tz: str = "UTC") -> list[_Period]:
    day = as_of.astype("datetime64[D]")
    end = day + DAY
    year = day.astype("datetime64[Y]")
    jan1 = year.astype("datetime64[D]")
    prev_jan1 = (year - np.timedelta64(1, "Y")).astype("datetime64[D]")
    d = day.astype(object)  # datetime.date
    leap_day = (d.month, d.day) == (2, 29)
    prev_day = d.replace(year=d.year - 1, day=28) if leap_day else d.replace(year=d.year - 1)
    prev_end = np.datetime64(prev_day, "D") + DAY
    days = [
        ("week", end - 7 * DAY, end, end - 7 * DAY - 364 * DAY, end - 364 * DAY),
        ("28d", end - 28 * DAY, end, end - 28 * DAY - 364 * DAY, end - 364 * DAY),
        ("ytd", jan1, end, prev_jan1, prev_end),
    ]
    out = []
    for name, s1, e1, s0, e0 in days:  # each bound: the local midnight beginning that day
        a1, b1, a0, b0 = (local_midnight(b.astype(object), tz) for b in (s1, e1, s0, e0))
        out.append(_Period(name, a1, b1, a0, b0, (str(s1), str(e1), str(s0), str(e0))))
    return out


def compstat(
    occurred_from: np.ndarray,
    occurred_to: np.ndarray | None,
    as_of: np.datetime64,
    *,
    groups: np.ndarray | None = None,
    categories: np.ndarray | None = None,
    alpha: float = 0.05,
    tz: str = "UTC",
) -> CompStatTable:
    """Build a CompStat table as of day ``as_of`` (inclusive) per group and category.

    Days are local calendar days in time zone ``tz`` (an IANA name): a period begins
    and ends at local midnights, so a week across a clock change lasts 167 or 169 hours.

    Raises
    ------
    AnalysisError
        For an empty selection or no usable incident time.
    """
    t_from = np.asarray(occurred_from)
    n = len(t_from)
    if n == 0:
        raise AnalysisError("empty selection: no incidents for a CompStat table")
    _, _, keep, _ = check_times(t_from, occurred_to)
    if not keep.any():
        raise AnalysisError("no incident has a usable time")
    gidx, glabels = _labels(groups, n, "groups")
    cidx, clabels = _labels(categories, n, "categories")
    reasons = {"missing group": int((gidx < 0).sum()), "missing category": int((cidx < 0).sum())}
    ok = (gidx >= 0) & (cidx >= 0)
    combo = gidx * len(clabels) + cidx
    pairs, inverse = np.unique(combo[ok], return_inverse=True)
    t_to = None if occurred_to is None else np.asarray(occurred_to)[ok]
    periods = _periods(as_of, tz)
    current = np.zeros((len(pairs), len(periods)))
    previous = np.zeros_like(current)
    skipped = Skipped({k: v for k, v in reasons.items() if v})
    for k, (_, s1, e1, s0, e0, _) in enumerate(periods):
        bw1 = spread_over_bins(t_from[ok], t_to, np.array([s1, e1]))
        bw0 = spread_over_bins(t_from[ok], t_to, np.array([s0, e0]))
        current[:, k] = bw1.counts_by(inverse, len(pairs))[:, 0]
        previous[:, k] = bw0.counts_by(inverse, len(pairs))[:, 0]
        if k == 0:
            skipped = skipped.merged(bw1.skipped)
    exposure = np.array(
        [(per.end - per.start) / (per.prev_end - per.prev_start) for per in periods],
        dtype=np.float64,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.where(previous > 0, 100 * (current / exposure - previous) / previous, np.nan)
    p = np.column_stack(
        [rate_change_p(current[:, k], previous[:, k], exposure[k]) for k in range(len(periods))]
    )
    # A year-earlier period that starts before the earliest incident has no data, not
    # zero incidents: comparing with it would report a significant rise of everything.
    earliest = t_from[keep].min()
    history = local_midnight(local_date(earliest, tz), tz)
    no_history = tuple(per.name for per in periods if per.prev_start < history)
    for k, per in enumerate(periods):
        if per.name in no_history:
            previous[:, k] = change[:, k] = p[:, k] = np.nan
    g_of, c_of = np.divmod(pairs, len(clabels))
    return CompStatTable(
        group=glabels[g_of],
        category=clabels[c_of],
        period=tuple(per.name for per in periods),
        current=current,
        previous=previous,
        change=change,
        p=p,
        skipped=skipped,
        no_history=no_history,
        params=CompStatParams(
            str(as_of.astype("datetime64[D]")),
            tuple((per.name, *per.days) for per in periods),
            alpha,
            tz,
        ),
    )


@dataclass(frozen=True)
class BorderRise:
    """A category rising significantly on both sides of a border in one period."""

    category: str
    period: str
    group_a: str
    group_b: str
    change_a: float
    change_b: float
    p_a: float
    p_b: float


def rising_across_borders(
    table: CompStatTable,
    borders: Iterable[tuple[str, str]],
    *,
    period: str = "28d",
    alpha: float | None = None,
) -> list[BorderRise]:
    """Flag categories that rose significantly (``p < alpha``) in both groups of a border.

    ``borders`` are pairs of neighbouring groups (jurisdictions or areas). The tests are
    per side and not corrected for the number of borders and categories looked at: treat
    a flag as a lead to check, not a finding.
    """
    if period not in table.period:
        raise AnalysisError(f"unknown period {period!r}; the table has {table.period}")
    k = table.period.index(period)
    a_ = table.params.alpha if alpha is None else alpha
    row = {(g, c): r for r, (g, c) in enumerate(zip(table.group, table.category, strict=True))}
    rising = {
        key
        for key, r in row.items()
        if table.p[r, k] < a_ and table.current[r, k] > table.previous[r, k]
    }
    out = []
    for ga, gb in borders:
        for cat in sorted(set(table.category)):
            if (ga, cat) in rising and (gb, cat) in rising:
                ra, rb = row[(ga, cat)], row[(gb, cat)]
                out.append(
                    BorderRise(
                        str(cat),
                        period,
                        ga,
                        gb,
                        float(table.change[ra, k]),
                        float(table.change[rb, k]),
                        float(table.p[ra, k]),
                        float(table.p[rb, k]),
                    )
                )
    return out
