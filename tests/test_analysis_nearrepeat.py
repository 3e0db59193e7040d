"""Knox test: the vectorised k-d tree version equals a brute-force O(n²) Knox test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crossbeat.analysis import AnalysisError
from crossbeat.analysis.nearrepeat import knox_test
from tests.analysis_support import days, lonlat_from_metres, utm

D_EDGES = [0, 100, 200, 400]
T_EDGES = [0, 7, 14, 28]


def _band(value: float, edges: list[float]) -> int | None:
    for k in range(len(edges) - 1):
        if edges[k] < value <= edges[k + 1] or (k == 0 and value == edges[0]):
            return k
    return None


def _brute_force(x, y, t_days, permutations, seed):
    """Knox table by looping over every pair, for the observed and permuted times."""
    n = len(x)

    def table(tt):
        out = [[0] * (len(T_EDGES) - 1) for _ in range(len(D_EDGES) - 1)]
        for i in range(n):
            for j in range(i + 1, n):
                d = _band(math.hypot(x[i] - x[j], y[i] - y[j]), D_EDGES)
                s = _band(abs(tt[i] - tt[j]), T_EDGES)
                if d is not None and s is not None:
                    out[d][s] += 1
        return np.array(out)

    observed = table(list(t_days))
    rng = np.random.default_rng(seed)
    sims = [table(list(np.asarray(t_days)[rng.permutation(n)])) for _ in range(permutations)]
    expected = np.mean(sims, axis=0)
    p = (1 + np.sum([s >= observed for s in sims], axis=0)) / (permutations + 1)
    return observed, expected, p


def _near_repeat_data(seed: int = 11):
    rng = np.random.default_rng(seed)
    n = 120
    x = rng.uniform(0, 1500, n)
    y = rng.uniform(0, 1500, n)
    t = rng.integers(0, 120, n).astype(float)
    # Planted near repeats: 30 follow-ups within 80 m and 1-5 days of an earlier incident.
    src = rng.integers(0, n, 30)
    x = np.concatenate([x, x[src] + rng.uniform(-50, 50, 30)])
    y = np.concatenate([y, y[src] + rng.uniform(-50, 50, 30)])
    t = np.concatenate([t, t[src] + rng.integers(1, 6, 30)])
    # Exact ties on band edges (100 m apart; 7 days apart) must land in the same band.
    x = np.concatenate([x, [2000.0, 2100.0]])
    y = np.concatenate([y, [2000.0, 2000.0]])
    t = np.concatenate([t, [10.0, 17.0]])
    return x, y, t


def test_matches_brute_force_including_expected_and_p_values():
    x, y, t = _near_repeat_data()
    lon, lat = lonlat_from_metres(x, y)
    res = knox_test(
        lon,
        lat,
        days("2024-01-01", t),
        distance_edges_m=D_EDGES,
        time_edges_days=T_EDGES,
        permutations=29,
        seed=4,
        crs="EPSG:32617",
    )
    px, py = utm(lon, lat)
    obs, exp, p = _brute_force(px, py, t, 29, 4)
    np.testing.assert_array_equal(res.observed, obs)
    np.testing.assert_allclose(res.expected, exp)
    np.testing.assert_allclose(res.p, p)
    np.testing.assert_allclose(res.ratio, obs / exp)
    # The planted near repeats show up: close in space and time, more than chance.
    assert res.ratio[0, 0] > 2 and res.p[0, 0] == pytest.approx(1 / 30)
    assert res.params.permutations == 29 and res.params.seed == 4


def test_seeded_and_reports_skipped_inputs():
    x, y, t = _near_repeat_data()
    lon, lat = lonlat_from_metres(x, y)
    start = days("2024-01-01", t)
    end = start.copy()
    end[:3] = start[:3] + np.timedelta64(5, "D")  # too uncertain for day bands
    end[3] = start[3] + np.timedelta64(12, "h")  # half a day: placed at its midpoint
    start[4] = np.datetime64("NaT")
    lon[5] = np.nan
    a = knox_test(lon, lat, start, end, permutations=9, seed=1)
    b = knox_test(lon, lat, start, end, permutations=9, seed=1)
    np.testing.assert_array_equal(a.expected, b.expected)
    assert a.skipped.reasons == {
        "time range too wide": 3,
        "missing time": 1,
        "missing coordinates": 1,
    }
    assert a.n_used == len(x) - 5


def test_bad_input_is_a_clear_error():
    t = days("2024-01-01", np.array([0.0, 1.0, 2.0]))
    with pytest.raises(AnalysisError, match="empty selection|no incident"):
        knox_test(np.array([]), np.array([]), t[:0])
    with pytest.raises(AnalysisError, match="at least two"):
        knox_test(np.array([-79.4]), np.array([43.7]), t[:1])
    with pytest.raises(AnalysisError, match="one point"):
        knox_test(np.full(3, -79.4), np.full(3, 43.7), t)
    with pytest.raises(AnalysisError, match="usable time"):
        knox_test(np.full(3, -79.4), np.full(3, 43.7), np.full(3, np.datetime64("NaT", "s")))
    with pytest.raises(AnalysisError, match="increasing"):
        knox_test(np.array([-79.4, -79.3]), np.array([43.7, 43.7]), t[:2], distance_edges_m=[5])
