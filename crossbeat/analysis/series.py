"""Series detection and "find similar incidents" (issue #11).

A series is a run of offences by the same offender(s): close in space and time and
alike in modus operandi. :func:`detect_series` is ST-DBSCAN (Birant & Kut, 2007) with
the modus operandi as extra neighbourhood conditions: two incidents are neighbours
when they are

* within ``eps_m`` metres (projected coordinates, local UTM by default),
* within ``eps_days`` days (midpoints of their time ranges),
* the same NIBRS offence,
* within ``eps_hours`` hours of each other on the clock (local time of day, circular:
  see below), and
* at compatible premises (the same premise type, or premises in one family such as
  convenience store / gas station, see :data:`PREMISE_FAMILIES`; unknown matches any).

**Time of day** is read on the local clock of the agency that recorded the incident
(``timezone``: an IANA zone per incident; UTC when not given), so a robbery at 21:00
in Toronto is at 21:00 whatever UTC offset daylight saving gives it. An incident known
only as a range ("between 18:00 and 23:00") is spread uniformly over that range of
the clock, not pinned to its start or midpoint: the gap on the clock between two
incidents is the *expected* circular distance between their times of day (a mean over
``CLOCK_POINTS`` evenly spaced points of each range). Two exact times give the plain
distance; a range as wide as the whole day is about 6 h from anything, so it no longer
matches every hour.

As in DBSCAN, core incidents need ``min_samples`` neighbours (counting themselves), and
clusters grow only through core incidents; a border incident joins its nearest core.
Unlike plain DBSCAN, a core also needs *more* alike neighbours than chance would give
(a Poisson test against the neighbours expected if space and time were independent, as
in the Knox test): in a dense downtown, three burglaries within 3 km and 10 days are
ordinary, not a series. Incidents whose
time range is wider than ``max_range_days`` are skipped and counted (a weekend-long
burglary says nothing about the hour of day).

:func:`similar_to` ranks every other incident by the same features for one incident.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from crossbeat.analysis.budget import check_time
from crossbeat.analysis.errors import AnalysisError, NotComparable, Skipped
from crossbeat.analysis.points import to_metres
from crossbeat.analysis.timespread import check_times, midpoint

#: Points of a time range on the clock averaged over for the gap between two times of day.
CLOCK_POINTS = 8
DAY_S = 86400.0

#: Premise types (NIBRS location codes) that one offender treats alike: shops with a till
#: (convenience, service/gas station, liquor, grocery, department, specialty store),
#: homes (residence/home), and bars and restaurants.
PREMISE_FAMILIES: tuple[frozenset[str], ...] = (
    frozenset({"07", "23", "17", "12", "08", "24"}),
    frozenset({"20"}),
    frozenset({"03", "21"}),
)


@dataclass(frozen=True)
class SeriesParams:
    """Parameters of a series search (enough to reproduce it)."""

    eps_m: float
    eps_days: float
    eps_hours: float
    min_samples: int
    max_range_days: float
    crs: str
    alpha: float = 0.01


@dataclass(frozen=True)
class SeriesResult:
    """Series found: ``label`` per input incident (-1: in none), and each series' members.

    ``series`` lists, per series, the input indices of its members in time order.
    """

    label: np.ndarray
    series: tuple[tuple[int, ...], ...]
    n_used: int
    skipped: Skipped
    params: SeriesParams
    #: Local clock (hours since midnight, the agency's time zone) at the start of each
    #: input incident's time, and the width of its range in hours (NaN: no time).
    local_hour: np.ndarray | None = None
    range_hours: np.ndarray | None = None


@dataclass(frozen=True)
class _Features:
    keep: np.ndarray
    x: np.ndarray
    y: np.ndarray
    days: np.ndarray
    #: Local clock at the start of each incident's range (hours, [0, 24)) and its width.
    hour: np.ndarray
    width: np.ndarray
    code: np.ndarray
    family: np.ndarray
    crs: str
    skipped: Skipped


def local_seconds(t: np.ndarray, timezone: np.ndarray | str | None) -> np.ndarray:
    """Return UTC times ``t`` as seconds on the local wall clock (NaN for NaT).

    ``timezone`` is an IANA zone name, one per incident, or None for UTC. Daylight
    saving is applied per instant (pandas / the tz database).

    Raises
    ------
    AnalysisError
        For an unknown zone name.
    """
    import pandas as pd  # type: ignore[import-untyped]

    t = np.asarray(t).astype("datetime64[s]")
    out = t.astype("int64").astype(float)
    out[np.isnat(t)] = np.nan
    if timezone is None:
        return out
    zones = np.broadcast_to(np.asarray(timezone, dtype=object), t.shape)
    for zone in set(zones.tolist()):
        if not zone or zone == "UTC":
            continue
        mine = (zones == zone) & ~np.isnat(t)
        try:
            local = pd.DatetimeIndex(t[mine]).tz_localize("UTC").tz_convert(str(zone))
        except Exception as exc:  # pytz / zoneinfo raise several types
            raise AnalysisError(f"unknown time zone {zone!r} (use an IANA name)") from exc
        naive = local.tz_localize(None).values.astype("datetime64[s]").astype("int64")
        out[mine] = naive.astype(float)
    return out


def _clock_gap(f: _Features, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Return the expected gap in hours on the clock between incidents ``i`` and ``j``.

    Each time of day is uniform over its range (width 0: exact); the gap is circular
    (23:00 and 01:00 are 2 h apart).
    """
    hi, hj, wi, wj = f.hour[i], f.hour[j], f.width[i], f.width[j]
    d = np.abs(hi - hj)
    out = np.minimum(d, 24.0 - d)
    spread = np.flatnonzero((wi > 0) | (wj > 0))
    offs = (np.arange(CLOCK_POINTS) + 0.5) / CLOCK_POINTS
    for start in range(0, spread.size, 50_000):
        k = spread[start : start + 50_000]
        a = hi[k, None] + wi[k, None] * offs
        b = hj[k, None] + wj[k, None] * offs
        dd = np.mod(np.abs(a[:, :, None] - b[:, None, :]), 24.0)
        out[k] = np.minimum(dd, 24.0 - dd).mean(axis=(1, 2))
    return out


def _family(premise: np.ndarray) -> np.ndarray:
    """Return a premise family id per incident (-1: unknown, matches any)."""
    names: dict[str, int] = {}
    out = np.full(len(premise), -1, dtype=np.int64)
    for i, raw in enumerate(premise):
        p = str(raw or "").strip()
        if not p:
            continue
        fam = next((k for k, f in enumerate(PREMISE_FAMILIES) if p in f), None)
        out[i] = fam if fam is not None else names.setdefault(p, 100 + len(names))
    return out


def _features(
    lon, lat, occurred_from, occurred_to, code, premise, max_range_days, crs, timezone=None
) -> _Features:
    limit = np.timedelta64(int(max_range_days * 86400), "s")
    mid, good_t, skipped = midpoint(occurred_from, occurred_to, max_range=limit)
    start, end, _, _ = check_times(occurred_from, occurred_to)
    t_from = np.asarray(occurred_from)
    local0 = local_seconds(t_from, timezone)
    hour = np.mod(local0, DAY_S) / 3600.0
    width = np.clip(np.nan_to_num(end - start), 0.0, DAY_S) / 3600.0
    proj = to_metres(lon, lat, crs)
    code = np.asarray(code, dtype=object)
    no_code = np.array([not c for c in code], dtype=bool)
    keep = proj.keep & good_t & ~no_code
    skipped = skipped.merged(proj.skipped)
    lost = int((proj.keep & good_t & no_code).sum())
    if lost:
        skipped = skipped.merged(Skipped({"no offence code": lost}))
    x = np.full(len(code), np.nan)
    y = np.full(len(code), np.nan)
    x[proj.keep], y[proj.keep] = proj.x, proj.y
    days = mid / DAY_S
    return _Features(keep, x, y, days, hour, width, code, _family(premise), proj.crs, skipped)


def _gap(f: _Features, i: np.ndarray, j: np.ndarray, eps: tuple[float, float, float]) -> np.ndarray:
    """Return the largest normalised gap of each pair (> 1: not neighbours)."""
    d = np.hypot(f.x[i] - f.x[j], f.y[i] - f.y[j]) / eps[0]
    dt = np.abs(f.days[i] - f.days[j]) / eps[1]
    dh = _clock_gap(f, i, j) / eps[2]
    gap = np.maximum(np.maximum(d, dt), dh)
    fi, fj = f.family[i], f.family[j]
    alike = (f.code[i] == f.code[j]) & ((fi == fj) | (fi < 0) | (fj < 0))
    return np.where(alike, gap, np.inf)


def _why_not_comparable(
    f: _Features, target: int, occurred_from: np.ndarray, occurred_to: np.ndarray | None
) -> str:
    """Name what the incident ``target`` lacks to be compared (place, time, offence code)."""
    missing = []
    if not np.isfinite(f.x[target]):
        missing.append("no usable place (no point, or one the viewer may not see)")
    one_to = None if occurred_to is None else np.asarray(occurred_to)[target : target + 1]
    one = np.asarray(occurred_from)[target : target + 1]
    _, good, _ = midpoint(one, one_to, max_range=np.timedelta64(30 * 86400, "s"))
    if not good[0]:
        missing.append("no usable time (none, or a range wider than 30 days)")
    if not f.code[target]:
        missing.append("no offence code (an unmapped local code, or a call for service)")
    return "this incident cannot be compared: " + "; ".join(missing or ["no usable data"])


def detect_series(
    lon: np.ndarray,
    lat: np.ndarray,
    occurred_from: np.ndarray,
    occurred_to: np.ndarray | None,
    nibrs_code: np.ndarray,
    premise: np.ndarray,
    *,
    eps_m: float = 3000.0,
    eps_days: float = 10.0,
    eps_hours: float = 2.5,
    min_samples: int = 3,
    max_range_days: float = 1.0,
    alpha: float = 0.01,
    crs: str | None = None,
    timezone: np.ndarray | str | None = None,
) -> SeriesResult:
    """Find series: clusters of alike incidents close in space, time and time of day.

    Parameters
    ----------
    lon, lat, occurred_from, occurred_to, nibrs_code, premise
        The incidents as columns (``premise``: NIBRS location type, may be empty).
    eps_m, eps_days, eps_hours
        Neighbourhood: metres apart, days apart, hours apart on the clock.
    min_samples
        Neighbours (counting the incident itself) a core incident needs.
    alpha
        A core also needs more alike neighbours than chance gives (Poisson tail below
        ``alpha``), so a dense downtown is not a "series" of everything in it; 1 turns
        this test off (plain ST-DBSCAN).
    max_range_days
        Skip incidents whose time is known only to a wider range than this.
    crs
        Projected CRS in metres (default: local UTM zone).
    timezone
        IANA zone of each incident (its agency's) for the time of day; None: UTC.

    Returns
    -------
    SeriesResult
        A label per incident and the members of each series, largest first.

    Examples
    --------
    >>> t = np.array(["2026-01-0%dT20:00" % d for d in (1, 3, 5)], dtype="datetime64[us]")
    >>> r = detect_series(np.array([-79.40, -79.41, -79.40]), np.array([43.65, 43.65, 43.66]),
    ...                   t, None, np.array(["120"] * 3), np.array([""] * 3), alpha=1.0)
    >>> r.series
    ((0, 1, 2),)
    """
    if min_samples < 2:
        raise AnalysisError("min_samples must be at least 2 (a series has several incidents)")
    if not 0 < alpha <= 1:
        raise AnalysisError(f"alpha must be in (0, 1], got {alpha}")
    n = len(lon)
    if n == 0:
        raise AnalysisError("empty selection: no incident to search for series")
    f = _features(
        lon, lat, occurred_from, occurred_to, nibrs_code, premise, max_range_days, crs, timezone
    )
    idx = np.flatnonzero(f.keep)
    params = SeriesParams(eps_m, eps_days, eps_hours, min_samples, max_range_days, f.crs, alpha)
    label = np.full(n, -1, dtype=np.int64)
    if idx.size == 0:
        return SeriesResult(label, (), 0, f.skipped, params, f.hour, f.width)
    tree = cKDTree(np.column_stack([f.x[idx], f.y[idx]]))
    pairs = tree.query_pairs(eps_m, output_type="ndarray")
    check_time()
    a, b = pairs[:, 0], pairs[:, 1]
    gap = _gap(f, idx[a], idx[b], (eps_m, eps_days, eps_hours))
    near = gap <= 1.0
    check_time()
    core = _cores(f, idx, a, b, gap, near, eps_days, eps_hours, min_samples, alpha)
    check_time()
    local = _clusters(idx.size, a[near], b[near], gap[near], core)
    label[idx] = local
    groups = [np.flatnonzero(label == k) for k in range(int(local.max()) + 1)]
    groups.sort(key=lambda g: (-len(g), int(g[0])))
    series = tuple(tuple(int(v) for v in g[np.argsort(f.days[g], kind="stable")]) for g in groups)
    relabel = np.full(n, -1, dtype=np.int64)
    for k, g in enumerate(series):
        relabel[list(g)] = k
    return SeriesResult(relabel, series, int(idx.size), f.skipped, params, f.hour, f.width)


def _cores(
    f: _Features, idx, a, b, gap, near, eps_days, eps_hours, min_samples, alpha
) -> np.ndarray:
    """Return the core incidents: enough alike neighbours, and more than chance gives.

    Expected neighbours of ``i`` under no space-time interaction: its alike incidents
    (same offence, compatible premise) within ``eps_m`` in space, times the chance that
    one of them falls within ``eps_days`` (two windows over the offence's time span) and
    within ``eps_hours`` on the clock. Core: Poisson P(X >= observed) < ``alpha``.
    """
    from scipy.stats import poisson

    m = idx.size
    observed = np.bincount(a[near], minlength=m) + np.bincount(b[near], minlength=m)
    fa, fb = f.family[idx[a]], f.family[idx[b]]
    alike = (f.code[idx[a]] == f.code[idx[b]]) & ((fa == fb) | (fa < 0) | (fb < 0))
    spatial = np.bincount(a[alike], minlength=m) + np.bincount(b[alike], minlength=m)
    span = np.ones(m)
    codes = f.code[idx]
    for code in set(codes.tolist()):
        mine = codes == code
        days = f.days[idx[mine]]
        span[mine] = max(float(days.max() - days.min()), 2.0 * eps_days)
    chance = np.minimum(1.0, 2.0 * eps_days / span) * min(1.0, 2.0 * eps_hours / 24.0)
    expected = spatial * chance
    p = poisson.sf(observed - 1, np.maximum(expected, 1e-12))
    return (observed + 1 >= min_samples) & (p < alpha)


def _clusters(
    m: int, a: np.ndarray, b: np.ndarray, gap: np.ndarray, core: np.ndarray
) -> np.ndarray:
    """DBSCAN's clusters from a neighbour graph: cores joined, borders to the nearest core."""
    label = np.full(m, -1, dtype=np.int64)
    both = core[a] & core[b]
    if core.any():
        g = coo_matrix((np.ones(both.sum()), (a[both], b[both])), shape=(m, m))
        _, comp = connected_components(g, directed=False)
        cores = np.flatnonzero(core)
        _, label[cores] = np.unique(comp[cores], return_inverse=True)
    best = np.full(m, np.inf)
    for u, v, d in ((a, b, gap), (b, a, gap)):
        border = core[v] & ~core[u]
        for i, j, g_ in zip(u[border], v[border], d[border], strict=True):
            if g_ < best[i]:
                best[i], label[i] = g_, label[j]
    return label


@dataclass(frozen=True)
class Similar:
    """Incidents most like one incident: input indices, scores (1 = identical) and reasons."""

    index: np.ndarray
    score: np.ndarray
    reasons: tuple[str, ...]
    params: SeriesParams


def similar_to(
    target: int,
    lon: np.ndarray,
    lat: np.ndarray,
    occurred_from: np.ndarray,
    occurred_to: np.ndarray | None,
    nibrs_code: np.ndarray,
    premise: np.ndarray,
    *,
    limit: int = 10,
    eps_m: float = 3000.0,
    eps_days: float = 30.0,
    eps_hours: float = 2.5,
    crs: str | None = None,
    timezone: np.ndarray | str | None = None,
) -> Similar:
    """Rank incidents by likeness to incident ``target`` (same offence, near, same MO).

    The score is ``1 - mean`` of the three normalised gaps (space, time, time of day),
    for incidents of the same offence and a compatible premise within all three. The
    time of day is on the local clock (``timezone``, as for :func:`detect_series`), a
    range spread over the clock.

    Raises
    ------
    NotComparable
        When the target has no usable place, time or offence.
    """
    f = _features(lon, lat, occurred_from, occurred_to, nibrs_code, premise, 30.0, crs, timezone)
    params = SeriesParams(eps_m, eps_days, eps_hours, 1, 30.0, f.crs, 1.0)
    if not f.keep[target]:
        raise NotComparable(_why_not_comparable(f, target, occurred_from, occurred_to))
    others = np.flatnonzero(f.keep)
    others = others[others != target]
    t = np.full(others.size, target)
    eps = (eps_m, eps_days, eps_hours)
    gap = _gap(f, t, others, eps)
    ok = gap <= 1.0
    others = others[ok]
    d = np.hypot(f.x[others] - f.x[target], f.y[others] - f.y[target])
    dd = np.abs(f.days[others] - f.days[target])
    dh = _clock_gap(f, np.full(others.size, target), others)
    score = 1.0 - (d / eps_m + dd / eps_days + dh / eps_hours) / 3.0
    order = np.lexsort((others, -score))[:limit]
    reasons = tuple(
        f"same offence {f.code[target]}, {d[k]:.0f} m and {dd[k]:.1f} days apart, "
        f"{dh[k]:.1f} h apart on the clock"
        for k in order
    )
    return Similar(others[order], score[order], reasons, params)
