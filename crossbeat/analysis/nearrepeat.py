"""Near-repeat analysis: the Knox test with Monte Carlo permutation of times.

Every pair of incidents closer than the largest distance band is counted in the
(distance band, time band) cell its separation falls in; bands are right-closed
``(lo, hi]`` with the first including 0 (same place, same day). Pairs farther apart in
time than the last time band are not counted. The expected table is the mean over
``permutations`` random shufflings of the times among the incidents (locations fixed),
which breaks any space-time interaction while keeping both the spatial and temporal
clustering; the p-value of each cell is ``(1 + #{sim >= observed}) / (permutations + 1)``
(one-sided: more pairs than chance), so it is never below ``1 / (permutations + 1)``.

Pairs are found with a k-d tree (scipy ``cKDTree.query_pairs``), so the cost grows with
the number of close pairs rather than with n².
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from crossbeat.analysis.budget import check_time
from crossbeat.analysis.errors import AnalysisError, Skipped
from crossbeat.analysis.points import to_metres
from crossbeat.analysis.timespread import midpoint

DAY = 86400.0


@dataclass(frozen=True)
class KnoxParams:
    """The parameters a Knox test used."""

    distance_edges_m: tuple[float, ...]
    time_edges_days: tuple[float, ...]
    permutations: int
    seed: int | None
    crs: str
    max_time_range_days: float | None


@dataclass(frozen=True)
class KnoxResult:
    """Observed and expected pair counts, ratios and p-values by (distance band, time band).

    Arrays are ``(len(distance_edges) - 1, len(time_edges) - 1)``; ``ratio`` is
    observed / expected (NaN where nothing was expected).
    """

    observed: np.ndarray
    expected: np.ndarray
    ratio: np.ndarray
    p: np.ndarray
    n_used: int
    n_pairs: int
    skipped: Skipped
    params: KnoxParams


def band_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Return the band of each value for right-closed bands ``(lo, hi]`` (first includes lo).

    Values outside every band get ``-1``.
    """
    i = np.searchsorted(edges, values, side="left") - 1
    i = np.where(values == edges[0], 0, i)
    return np.where((i < 0) | (i >= len(edges) - 1), -1, i)


def _edges(edges, what: str) -> np.ndarray:
    e = np.asarray(edges, dtype=float)
    if e.ndim != 1 or len(e) < 2 or e[0] < 0 or np.any(np.diff(e) <= 0):
        raise AnalysisError(f"{what} must be at least two increasing non-negative values")
    return e


def knox_table(
    dist: np.ndarray, dt: np.ndarray, d_edges: np.ndarray, t_edges: np.ndarray
) -> np.ndarray:
    """Count pairs by (distance band, time band) from their distances and time gaps."""
    db = band_index(dist, d_edges)
    tb = band_index(dt, t_edges)
    ok = (db >= 0) & (tb >= 0)
    nt = len(t_edges) - 1
    return np.bincount(db[ok] * nt + tb[ok], minlength=(len(d_edges) - 1) * nt).reshape(-1, nt)


def knox_test(
    lon: np.ndarray,
    lat: np.ndarray,
    occurred_from: np.ndarray,
    occurred_to: np.ndarray | None = None,
    *,
    distance_edges_m=(0, 100, 200, 300, 400),
    time_edges_days=(0, 7, 14, 21, 28),
    permutations: int = 99,
    seed: int | None = None,
    crs: str | None = None,
    max_time_range_days: float | None = 2.0,
) -> KnoxResult:
    """Run a Knox test for near-repeat victimisation.

    Parameters
    ----------
    lon, lat
        WGS84 coordinates (missing or invalid ones are skipped and counted).
    occurred_from, occurred_to
        Incident times (datetime64). An incident known only as a range is placed at the
        range's midpoint; ranges wider than ``max_time_range_days`` are skipped (their
        time is too uncertain for day-level bands) and counted.
    distance_edges_m, time_edges_days
        Band edges; e.g. ``(0, 100, 200)`` makes bands 0–100 m and 100–200 m.
    permutations, seed
        Monte Carlo shufflings of times; ``seed`` makes the expected table reproducible.
    """
    d_edges = _edges(distance_edges_m, "distance_edges_m")
    t_edges = _edges(time_edges_days, "time_edges_days")
    if permutations < 1:
        raise AnalysisError("permutations must be at least 1 (99 or 999 are usual)")
    max_range = (
        None if max_time_range_days is None else np.timedelta64(int(max_time_range_days * DAY), "s")
    )
    t_mid, t_keep, t_skipped = midpoint(occurred_from, occurred_to, max_range=max_range)
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if len(lon) != len(t_mid):
        raise AnalysisError("coordinates and times must have the same length")
    lon_t = np.where(t_keep, lon, np.nan)
    lat_t = np.where(t_keep, lat, np.nan)
    if not t_keep.any():
        raise AnalysisError(f"no incident with a usable time ({t_skipped.reasons})")
    proj = to_metres(lon_t, lat_t, crs)
    # Rows dropped for time were masked as missing coordinates: count them once, by time.
    coord_reasons = dict(proj.skipped.reasons)
    coord_reasons["missing coordinates"] = coord_reasons.get("missing coordinates", 0) - int(
        (~t_keep).sum()
    )
    skipped = t_skipped.merged(Skipped({k: v for k, v in coord_reasons.items() if v > 0}))
    n = len(proj.x)
    if n < 2:
        raise AnalysisError("a near-repeat test needs at least two incidents, got one")
    if np.ptp(proj.x) == 0 and np.ptp(proj.y) == 0:
        raise AnalysisError("every incident is at one point: distance bands cannot separate pairs")
    t = t_mid[proj.keep] / DAY
    xy = np.column_stack([proj.x, proj.y])
    pairs = cKDTree(xy).query_pairs(r=float(d_edges[-1]), output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    dist = np.hypot(*(xy[i] - xy[j]).T)
    observed = knox_table(dist, np.abs(t[i] - t[j]), d_edges, t_edges)
    # Distance bands do not change under permutation: compute them once.
    db = band_index(dist, d_edges)
    inside = db >= 0
    i, j, db = i[inside], j[inside], db[inside]
    nt = len(t_edges) - 1
    size = (len(d_edges) - 1) * nt
    rng = np.random.default_rng(seed)
    total = np.zeros(observed.shape)
    exceed = np.zeros(observed.shape)
    for _ in range(permutations):
        check_time()
        tp = t[rng.permutation(n)]
        tb = band_index(np.abs(tp[i] - tp[j]), t_edges)
        ok = tb >= 0
        sim = np.bincount(db[ok] * nt + tb[ok], minlength=size).reshape(-1, nt)
        total += sim
        exceed += sim >= observed
    expected = total / permutations
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(expected > 0, observed / expected, np.nan)
    return KnoxResult(
        observed=observed,
        expected=expected,
        ratio=ratio,
        p=(exceed + 1) / (permutations + 1),
        n_used=n,
        n_pairs=len(i),
        skipped=skipped,
        params=KnoxParams(
            tuple(d_edges.tolist()),
            tuple(t_edges.tolist()),
            permutations,
            seed,
            proj.crs,
            max_time_range_days,
        ),
    )
