"""Emerging hot spots: Esri's pattern definitions, and planted patterns recovered."""

from __future__ import annotations

import h3
import numpy as np
import pytest

from crossbeat.analysis import AnalysisError
from crossbeat.analysis.emerging import classify, emerging_hotspots
from tests.analysis_support import days, lonlat_from_metres

H, C, N = 1, -1, 0


@pytest.mark.parametrize(
    ("states", "trend_z", "trend_p", "pattern"),
    [
        ([N] * 9 + [H], 1.0, 0.5, "new hot"),
        ([N] * 7 + [H, H, H], 2.0, 0.01, "consecutive hot"),
        ([H] * 10, 3.0, 0.001, "intensifying hot"),
        ([H] * 10, 0.2, 0.8, "persistent hot"),
        ([H] * 10, -3.0, 0.001, "diminishing hot"),
        ([N, H, N, N, H, N, H, N, N, H], 0.5, 0.6, "sporadic hot"),
        ([N, H, N, N, H, N, H, N, N, N], 0.5, 0.6, "sporadic hot"),
        ([N, C, N, N, H, N, H, N, N, H], 0.5, 0.6, "oscillating hot"),
        ([H] * 9 + [N], 0.0, 1.0, "historical hot"),
        ([N] * 9 + [C], -1.0, 0.5, "new cold"),
        ([C] * 10, -3.0, 0.001, "intensifying cold"),
        ([N, H, N, C, N, C, N, N, N, C], 0.0, 1.0, "oscillating cold"),
        ([N, H, N, C, N, N, N, N, N, N], 0.0, 1.0, "none"),
        ([N] * 10, 0.0, 1.0, "none"),
    ],
)
def test_esri_definitions(states, trend_z, trend_p, pattern):
    assert classify(np.array(states), trend_z, trend_p, 0.05) == pattern


def test_planted_new_and_persistent_hot_spots_recovered():
    rng = np.random.default_rng(8)
    n_bins = 10
    xs, ys, ts = [], [], []
    for b in range(n_bins):
        # Uniform background every week, a persistent cluster every week, and a new
        # cluster only in the last week.
        k = 400
        xs += [rng.uniform(-4000, 4000, k), rng.normal(-2000, 100, 40)]
        ys += [rng.uniform(-4000, 4000, k), rng.normal(-2000, 100, 40)]
        ts += [rng.uniform(7 * b, 7 * b + 7, k + 40)]
        if b == n_bins - 1:
            xs.append(rng.normal(2000, 100, 40))
            ys.append(rng.normal(2000, 100, 40))
            ts.append(rng.uniform(7 * b, 7 * b + 7, 40))
    x, y, t = np.concatenate(xs), np.concatenate(ys), np.concatenate(ts)
    lon, lat = lonlat_from_metres(x, y)
    edges = days("2024-01-01", np.arange(0, 7 * n_bins + 1, 7))
    res = emerging_hotspots(lon, lat, days("2024-01-01", t), None, edges, resolution=8)
    assert res.counts.sum() == pytest.approx(len(x))
    assert res.counts.shape == (len(res.cell), n_bins)

    def pattern_at(mx: float, my: float) -> str:
        plon, plat = lonlat_from_metres(np.array([mx]), np.array([my]))
        cell = h3.latlng_to_cell(float(plat[0]), float(plon[0]), 8)
        return res.pattern[list(res.cell).index(cell)]

    assert pattern_at(-2000, -2000) == "persistent hot"
    assert pattern_at(2000, 2000) == "new hot"
    # The uniform background is mostly no pattern.
    assert np.mean(res.pattern == "none") > 0.8


def test_time_ranges_spread_and_skips_reported():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-3000, 3000, 300), rng.uniform(-3000, 3000, 300)
    lon, lat = lonlat_from_metres(x, y)
    start = days("2024-01-01", rng.uniform(0, 28, 300))
    end = start + np.timedelta64(3, "D")
    start[0] = np.datetime64("NaT")
    start[1] = np.datetime64("2023-01-01")  # before the first bin
    end[1] = np.datetime64("NaT")
    edges = days("2024-01-01", np.arange(0, 36, 7))
    res = emerging_hotspots(lon, lat, start, end, edges)
    assert res.skipped.reasons["missing time"] == 1
    assert res.skipped.reasons["outside the time bins"] >= 1
    assert res.counts.sum() < 298.5  # part of some late ranges falls after the last bin


def test_bad_input():
    edges = days("2024-01-01", np.arange(0, 29, 7))
    t = days("2024-01-02", np.zeros(3))
    with pytest.raises(AnalysisError, match="three time bins"):
        emerging_hotspots(np.zeros(3), np.zeros(3), t, None, edges[:3])
    with pytest.raises(AnalysisError, match="empty selection"):
        emerging_hotspots(np.array([]), np.array([]), t[:0], None, edges)
    with pytest.raises(AnalysisError, match="single incident"):
        emerging_hotspots(np.array([-79.4]), np.array([43.7]), t[:1], None, edges)
    with pytest.raises(AnalysisError, match="one cell"):
        emerging_hotspots(np.full(3, -79.4), np.full(3, 43.7), t, None, edges)
    with pytest.raises(AnalysisError, match="fewer than two"):
        emerging_hotspots(
            np.array([-79.4, -79.3]), np.full(2, 43.7), t[:2] - 365 * 86400, None, edges
        )
