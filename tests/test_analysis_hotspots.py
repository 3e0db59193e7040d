"""Getis-Ord Gi*: z-scores agree with PySAL esda on the same weights; FDR and permutations."""

from __future__ import annotations

import warnings

import h3
import numpy as np
import pytest
from scipy import stats

from crossbeat.analysis import AnalysisError
from crossbeat.analysis.hotspots import (
    gi_star_z,
    grid_hotspots,
    grid_weights,
    h3_hotspots,
    h3_weights,
)
from tests.analysis_support import lonlat_from_metres

esda = pytest.importorskip("esda")
libpysal = pytest.importorskip("libpysal")


def _esda_z(values: np.ndarray, weights) -> np.ndarray:
    w = libpysal.weights.WSP(weights.tocsr()).to_W(silence_warnings=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # esda warns about its own defaults
        g = esda.G_Local(values, w, transform="B", star=True, permutations=0)
    return np.asarray(g.Zs)


def _clustered(seed: int = 7):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.uniform(-3000, 3000, 1500), rng.normal(800, 150, 300)])
    y = np.concatenate([rng.uniform(-3000, 3000, 1500), rng.normal(-600, 150, 300)])
    return lonlat_from_metres(x, y)


def test_h3_gi_star_agrees_with_esda():
    lon, lat = _clustered()
    res = h3_hotspots(lon, lat, resolution=9, k=1)
    w = h3_weights(list(res.cell), 1)
    assert w.diagonal().min() == 1  # self included: Gi*, not Gi
    np.testing.assert_allclose(res.z, _esda_z(res.count, w), rtol=1e-9, atol=1e-9)
    # Two-sided normal p-values and BH q-values as scipy computes them.
    np.testing.assert_allclose(res.p, 2 * stats.norm.sf(np.abs(res.z)))
    np.testing.assert_allclose(res.q, stats.false_discovery_control(res.p, method="bh"))
    assert res.n_used == len(lon)


def test_grid_gi_star_agrees_with_esda_and_finds_the_planted_cluster():
    lon, lat = _clustered()
    res = grid_hotspots(lon, lat, cell_m=250, k=1)
    cols = {int(c.split(",")[0]) for c in res.cell}
    rows = {int(c.split(",")[1]) for c in res.cell}
    w = grid_weights(len(cols), len(rows), 1)
    np.testing.assert_allclose(res.z, _esda_z(res.count, w), rtol=1e-9, atol=1e-9)
    # The hottest cell is where the cluster was planted (800, -600 from the origin).
    top = res.cell[np.argmax(res.z)]
    col, row = (int(v) for v in top.split(","))
    assert abs((col + 0.5) * 250 - (630_000 + 800)) < 600
    assert abs((row + 0.5) * 250 - (4_840_000 - 600)) < 600
    # Hot spots are at the planted cluster, not scattered over the uniform background.
    hot = np.array([[int(v) for v in c.split(",")] for c in res.cell[res.hot]])
    assert len(hot) > 0
    dx = (hot[:, 0] + 0.5) * 250 - (630_000 + 800)
    dy = (hot[:, 1] + 0.5) * 250 - (4_840_000 - 600)
    assert np.mean(np.hypot(dx, dy) < 1000) >= 0.9


def test_h3_hot_spot_cell_contains_the_cluster_centre():
    lon, lat = _clustered()
    res = h3_hotspots(lon, lat, resolution=9)
    c_lon, c_lat = lonlat_from_metres(np.array([800.0]), np.array([-600.0]))
    centre = h3.latlng_to_cell(float(c_lat[0]), float(c_lon[0]), 9)
    assert res.hot[list(res.cell).index(centre)]
    assert res.params.cells == "h3" and res.params.alpha == 0.05


def test_weighted_gi_star_matches_the_ord_getis_formula():
    # Non-binary weights: the general formula with S1 = sum of squared weights.
    rng = np.random.default_rng(1)
    x = rng.poisson(3, 40).astype(float)
    w = np.zeros((40, 40))
    for i in range(40):
        for j in range(max(0, i - 2), min(40, i + 3)):
            w[i, j] = 1.0 / (1 + abs(i - j))
    n = len(x)
    xbar, s = x.mean(), x.std()
    expected = [
        (w[i] @ x - xbar * w[i].sum())
        / (s * np.sqrt((n * (w[i] ** 2).sum() - w[i].sum() ** 2) / (n - 1)))
        for i in range(n)
    ]
    import scipy.sparse as sp

    np.testing.assert_allclose(gi_star_z(x, sp.csr_matrix(w)), expected)


def test_permutation_p_values_floor_and_are_seeded():
    lon, lat = _clustered()
    a = h3_hotspots(lon, lat, resolution=9, permutations=19, seed=5)
    b = h3_hotspots(lon, lat, resolution=9, permutations=19, seed=5)
    np.testing.assert_array_equal(a.p_sim, b.p_sim)
    assert a.p_sim.min() == pytest.approx(1 / 20)  # the floor 1/(permutations+1)
    # With 19 permutations no cell could pass BH over this many cells.
    q_sim = stats.false_discovery_control(a.p_sim, method="bh")
    assert q_sim.min() >= 0.05
    # Strongest analytic hot spots are also extreme under permutation.
    assert a.p_sim[np.argmax(a.z)] == pytest.approx(1 / 20)
    assert np.isnan(h3_hotspots(lon, lat, resolution=9).p_sim).all()


def test_explicit_study_area_skips_incidents_outside_it():
    lon, lat = _clustered()
    cells = sorted({h3.latlng_to_cell(b, a, 8) for a, b in zip(lon, lat, strict=True)})
    keep = cells[: len(cells) // 2]
    inside = np.isin([h3.latlng_to_cell(b, a, 8) for a, b in zip(lon, lat, strict=True)], keep)
    res = h3_hotspots(lon, lat, resolution=8, cells=keep)
    assert res.skipped.reasons == {"outside the study area": int((~inside).sum())}
    assert res.count.sum() == inside.sum()


@pytest.mark.parametrize("fn", [h3_hotspots, grid_hotspots])
def test_bad_input_is_a_clear_error(fn):
    with pytest.raises(AnalysisError, match="empty selection"):
        fn(np.array([]), np.array([]))
    with pytest.raises(AnalysisError, match="single incident"):
        fn(np.array([-79.4]), np.array([43.7]))
    with pytest.raises(AnalysisError, match="one cell"):
        fn(np.full(5, -79.4), np.full(5, 43.7))
    with pytest.raises(AnalysisError, match="alpha"):
        fn(*_clustered(), alpha=1.5)
