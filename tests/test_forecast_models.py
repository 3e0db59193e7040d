"""Forecast models, grids, metrics and backtests on deterministic synthetic data (issue #13)."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import Polygon

from crossbeat.forecast.backtest import consecutive, rolling_backtest
from crossbeat.forecast.gbm import GradientBoosted
from crossbeat.forecast.grid import grid_for
from crossbeat.forecast.history import Frame, History, history_from_lonlat
from crossbeat.forecast.metrics import score
from crossbeat.forecast.models import (
    Ensemble,
    KernelDensity,
    Model,
    NaiveCounts,
    ProspectiveHotspot,
    RetrospectiveHotspot,
)
from crossbeat.forecast.sepp import SelfExciting
from tests.forecast_support import synthetic

ORIGIN = 18000.0 + 600.0


def _models() -> list[Model]:
    return [
        NaiveCounts(),
        RetrospectiveHotspot(),
        ProspectiveHotspot(),
        KernelDensity(),
        SelfExciting(iterations=10),
        GradientBoosted(max_iter=50, origins=4),
        Ensemble([NaiveCounts(), KernelDensity()]),
    ]


@pytest.fixture(scope="module")
def world() -> tuple[History, object]:
    h = synthetic()
    return h, grid_for(h.before(ORIGIN), 150.0)


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.name)
def test_every_model_predicts_a_finite_count_per_cell(world, model: Model) -> None:
    h, g = world
    model.fit(h, g, ORIGIN)
    p = model.predict(ORIGIN, ORIGIN + 7)
    assert p.shape == (g.n,)
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    # Roughly the recent rate: 12 a day for a week.
    assert 7 * 12 * 0.5 < p.sum() < 7 * 12 * 1.6
    assert model.params() == model.params()


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.name)
def test_every_model_finds_stable_hot_spots(world, model: Model) -> None:
    h, g = world
    bt = rolling_backtest(h, g, [model], consecutive(ORIGIN, 7.0, 2), (0.01, 0.05))
    r = bt.results[0]
    assert r.mean(0.05, "pai") > 8, bt.table()
    assert r.mean(0.05, "hit_rate") > 0.45


def test_a_fitted_model_never_sees_the_future(world) -> None:
    h, g = world
    m = GradientBoosted(max_iter=30, origins=3)
    m.fit(h, g, ORIGIN)
    before = m.predict(ORIGIN, ORIGIN + 7)
    m2 = GradientBoosted(max_iter=30, origins=3)
    m2.fit(h.before(ORIGIN), g, ORIGIN)
    assert np.allclose(before, m2.predict(ORIGIN, ORIGIN + 7))


def test_predicting_before_fitting_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        NaiveCounts().predict(0, 7)


def test_a_time_range_is_spread_over_the_windows_it_covers() -> None:
    t0 = np.array(["2020-01-01T00"], dtype="datetime64[us]")
    t1 = np.array(["2020-01-03T00"], dtype="datetime64[us]")
    h = history_from_lonlat(np.array([-79.4]), np.array([43.7]), t0, t1, np.array(["a"]))
    d0 = float(h.t0[0])
    assert h.weights(d0, d0 + 1)[0] == pytest.approx(0.5)
    assert h.weights(d0 + 1, d0 + 5)[0] == pytest.approx(0.5)
    assert h.weights(d0 - 3, d0)[0] == 0


def test_a_grid_clipped_to_a_polygon_has_its_area() -> None:
    frame = Frame(-79.4, 43.7)
    ring = [(-79.42, 43.69), (-79.38, 43.69), (-79.385, 43.715), (-79.42, 43.71)]
    h = History(
        frame, np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), np.array(["a"]), np.array([""])
    )
    g = grid_for(h, 100.0, area=Polygon(ring))
    x, y = frame.forward(np.array([p[0] for p in ring]), np.array([p[1] for p in ring]))
    assert g.total_area == pytest.approx(Polygon(zip(x, y, strict=True)).area, rel=1e-6)
    assert (g.area <= 100.0 * 100.0 + 1e-6).all()


def test_scores_have_known_answers() -> None:
    s = score(np.array([5.0, 4, 3, 2, 1]), np.array([0.0, 3, 1, 0, 0]), np.ones(5), 0.4)
    assert (s.cells, s.hits, s.hit_rate, s.pai, s.pei) == (2, 3.0, 0.75, pytest.approx(1.875), 0.75)


def _simulate_hawkes(
    mu: float, theta: float, omega: float, cells: int, days: float, seed: int
) -> np.ndarray:
    """Return (cell, time) of a per-cell Hawkes process simulated by its branching structure."""
    rng = np.random.default_rng(seed)
    out = []
    for c in range(cells):
        gen = list(rng.uniform(0, days, rng.poisson(mu * days)))
        allt = list(gen)
        while gen:
            kids = []
            for t in gen:
                kids += list(t + rng.exponential(1 / omega, rng.poisson(theta)))
            gen = [k for k in kids if k < days]
            allt += gen
        out += [(c, t) for t in allt]
    return np.array(out)


def test_sepp_recovers_the_parameters_of_a_simulated_process() -> None:
    ev = _simulate_hawkes(mu=0.05, theta=0.5, omega=0.2, cells=100, days=1000.0, seed=7)
    size = 100.0
    x = (ev[:, 0] % 10) * size + 50
    y = (ev[:, 0] // 10) * size + 50
    t = 18000.0 + ev[:, 1]
    n = len(t)
    h = History(Frame(-79.4, 43.7), x, y, t, t.copy(), np.full(n, "a"), np.full(n, ""))
    g = grid_for(h, size, reach=0.0)
    m = SelfExciting(
        days=1000.0, background_bandwidth=0.0, max_lag=200.0, min_lag=0.0, iterations=60
    )
    m.fit(h, g, 18000.0 + 1000.0)
    assert m.theta == pytest.approx(0.5, abs=0.1)
    assert m.omega == pytest.approx(0.2, rel=0.3)


def test_learned_ensemble_weights_come_from_windows_before_the_origin_only(world) -> None:
    from crossbeat.forecast.models import LearnedEnsemble

    h, g = world

    # A member that ranks cells well (recent counts) and one that points away from them.
    class Away(NaiveCounts):
        def predict(self, start: float, end: float) -> np.ndarray:
            # As peaked as the counts, but on other cells.
            return np.roll(super().predict(start, end), 997)

    def make() -> LearnedEnsemble:
        return LearnedEnsemble([NaiveCounts(), Away(name="away")], validation_windows=4, step=0.25)

    ens = make()
    ens.fit(h, g, ORIGIN)
    assert ens.weights is not None and ens.weights.tolist() == [1.0, 0.0]
    assert ens.params()["weights"] == [float(w) for w in ens.weights]
    p = ens.predict(ORIGIN, ORIGIN + 7)
    assert p.shape == (g.n,) and np.all(p >= 0)
    # No leakage: moving every incident after the origin elsewhere changes nothing.
    after = h.t0 >= ORIGIN
    moved = History(h.frame, np.where(after, h.x[::-1], h.x), np.where(after, h.y[::-1], h.y),
                    h.t0, h.t1, h.category, h.owner)  # fmt: skip
    other = make()
    other.fit(moved, g, ORIGIN)
    assert np.array_equal(other.weights, ens.weights)
    assert np.allclose(other.predict(ORIGIN, ORIGIN + 7), p)
    # In a rolling backtest it reuses its own earlier forecasts as validation windows.
    windows = consecutive(ORIGIN, 7.0, 6)
    bt = rolling_backtest(h, g, [make()], windows)
    assert len(bt.results[0].scores[0.01]) == 6


def _two_places(old: int, recent: int) -> History:
    """``old`` incidents 600–700 days before ORIGIN at A, ``recent`` 10–60 days before at B."""
    rng = np.random.default_rng(3)
    ta = ORIGIN - rng.uniform(600.0, 700.0, old)
    tb = ORIGIN - rng.uniform(10.0, 60.0, recent)
    x = np.concatenate([np.full(old, -1025.0), np.full(recent, 1025.0)])
    t = np.concatenate([ta, tb])
    n = old + recent
    return History(Frame(-79.4, 43.7), x, np.full(n, 25.0), t, t.copy(),
                   np.full(n, "b", dtype=object), np.full(n, "a", dtype=object))  # fmt: skip


def test_decayed_counts_weigh_recent_incidents_by_their_half_life() -> None:
    from crossbeat.forecast.models import DecayedCounts, decayed_weights

    h = _two_places(old=40, recent=5)
    g = grid_for(h, 50.0)
    a = g.cell_index(np.array([-1025.0]), np.array([25.0]))[0]
    b = g.cell_index(np.array([1025.0]), np.array([25.0]))[0]
    # The known answer: each cell holds the sum of 2^(-age / half-life) of its incidents.
    for half_life in (30.0, 2000.0):
        m = DecayedCounts(half_life=half_life)
        m.fit(h, g, ORIGIN)
        p = m.predict(ORIGIN, ORIGIN + 7)
        age = ORIGIN - h.t0
        want_a = float(np.sum(2 ** (-age[:40] / half_life)))
        want_b = float(np.sum(2 ** (-age[40:] / half_life)))
        assert p[a] / p[b] == pytest.approx(want_a / want_b, rel=1e-9)
        # Scaled to the last year's daily rate (the 5 recent incidents) times 7 days.
        assert p.sum() == pytest.approx(5 / 365 * 7)
        assert m.params() == {"half_life_days": half_life}
    # A short half-life ranks the recent place first, a long one the old hot spot.
    short, long_ = DecayedCounts(half_life=30.0), DecayedCounts(half_life=2000.0)
    short.fit(h, g, ORIGIN)
    long_.fit(h, g, ORIGIN)
    assert short.predict(ORIGIN, ORIGIN + 7).argmax() == b
    assert long_.predict(ORIGIN, ORIGIN + 7).argmax() == a
    # Incidents from the origin on are not seen.
    later = History(h.frame, np.append(h.x, -1025.0), np.append(h.y, 25.0),
                    np.append(h.t0, ORIGIN + 1), np.append(h.t1, ORIGIN + 1),
                    np.append(h.category, "b"), np.append(h.owner, "a"))  # fmt: skip
    again = DecayedCounts(half_life=30.0)
    again.fit(later, g, ORIGIN)
    assert np.allclose(again.predict(ORIGIN, ORIGIN + 7), short.predict(ORIGIN, ORIGIN + 7))
    assert decayed_weights(later, ORIGIN, 30.0)[-1] == 0.0


def test_decayed_weight_of_a_time_range_is_the_mean_decay_over_its_part_before_the_origin() -> None:
    from crossbeat.forecast.models import decayed_weights

    # A 30-day range ending 20 days before the origin, and one straddling the origin.
    t0, t1 = np.array([ORIGIN - 50.0, ORIGIN - 10.0]), np.array([ORIGIN - 20.0, ORIGIN + 10.0])
    z = np.zeros(2)
    h = History(Frame(0, 0), z, z, t0, t1, z.astype(str), z.astype(str))
    w = decayed_weights(h, ORIGIN, 15.0)
    # Numerical means of the decay over a fine grid of each range (zero after the origin).
    for i in range(2):
        ts = np.linspace(t0[i], t1[i], 200_001)
        d = np.where(ts < ORIGIN, 2 ** (-(ORIGIN - ts) / 15.0), 0.0)
        assert w[i] == pytest.approx(d.mean(), rel=1e-4)


def test_empirical_bayes_recovers_the_gamma_shape_and_beats_raw_counts() -> None:
    from crossbeat.forecast.models import shrink_to_surface

    # Poisson counts whose rates are gamma around a known surface with shape 2.
    rng = np.random.default_rng(13)
    prior = rng.uniform(0.2, 6.0, 20_000)
    rates = rng.gamma(2.0, prior / 2.0)
    counts = rng.poisson(rates).astype(float)
    shrunk, kappa = shrink_to_surface(counts, prior)
    assert kappa == pytest.approx(2.0, rel=0.1)
    # The posterior means are closer to the true rates than the counts or the surface.
    err = {k: float(np.mean((v - rates) ** 2)) for k, v in
           {"shrunk": shrunk, "counts": counts, "prior": prior}.items()}  # fmt: skip
    assert err["shrunk"] < 0.8 * min(err["counts"], err["prior"])
    # Counts with no more variance than Poisson's carry nothing beyond the surface.
    flat, inf = shrink_to_surface(np.array([1.0, 1.0, 1.0]), np.ones(3))
    assert inf == float("inf") and flat.tolist() == [1.0, 1.0, 1.0]


def test_shrunk_counts_break_ties_by_the_neighbourhood_and_see_nothing_after_the_origin() -> None:
    from crossbeat.forecast.models import ShrunkCounts

    # Three places with 3 incidents each: one beside a busy cell (12 incidents 100 m
    # away), two alone; plus singles 2 km away that make the counts over-dispersed.
    singles = list(range(-2975, 3000, 400))
    xs = [-1025.0] * 3 + [-925.0] * 12 + [1025.0] * 3 + [3025.0] * 3 + singles
    ys = np.where(np.arange(len(xs)) < 21, 25.0, 2025.0)
    n = len(xs)
    t = np.full(n, ORIGIN - 10.0)
    h = History(Frame(-79.4, 43.7), np.asarray(xs, float), ys, t, t.copy(),
                np.full(n, "b", dtype=object), np.full(n, "a", dtype=object))  # fmt: skip
    g = grid_for(h, 50.0)
    busy, lone, other = g.cell_index(np.array([-1025.0, 1025.0, 3025.0]), np.full(3, 25.0))
    m = ShrunkCounts(half_life=365.0, bandwidth=100.0)
    m.fit(h, g, ORIGIN)
    p = m.predict(ORIGIN, ORIGIN + 7)
    assert p[busy] > p[lone] and p[lone] == pytest.approx(p[other])
    # Naive counts tie the three places.
    naive = NaiveCounts()
    naive.fit(h, g, ORIGIN)
    q = naive.predict(ORIGIN, ORIGIN + 7)
    assert q[busy] == q[lone] == q[other]
    # Scaled to the last year's daily rate times the window, like the other count models.
    assert p.sum() == pytest.approx(q.sum())
    params = m.params()
    assert params["half_life_days"] == 365.0 and params["kappa"] > 0
    # An incident after the origin changes nothing.
    later = History(h.frame, np.append(h.x, 1025.0), np.append(h.y, 25.0),
                    np.append(h.t0, ORIGIN + 1), np.append(h.t1, ORIGIN + 1),
                    np.append(h.category, "b"), np.append(h.owner, "a"))  # fmt: skip
    again = ShrunkCounts(half_life=365.0, bandwidth=100.0)
    again.fit(later, g, ORIGIN)
    assert np.allclose(again.predict(ORIGIN, ORIGIN + 7), p)


def test_gbm_thins_its_training_rows_only_when_asked_and_above_max_rows(world) -> None:
    h, g = world

    def fitted(max_rows: int | None) -> np.ndarray:
        m = GradientBoosted(max_iter=30, origins=3, max_rows=max_rows)
        m.fit(h, g, ORIGIN)
        return m.predict(ORIGIN, ORIGIN + 7)

    full = fitted(None)
    # A cap above the rows kept changes nothing, to the bit (same seeded draws).
    assert np.array_equal(full, fitted(10**8))
    # A cap that binds trains on fewer rows, re-weighted: still the recent rate in total
    # and the same hot spots at 5 % of the area.
    thin = fitted(2_000)
    assert not np.array_equal(full, thin)
    assert 0.6 < thin.sum() / full.sum() < 1.6
    obs = g.counts(h, h.weights(ORIGIN, ORIGIN + 7))
    assert score(thin, obs, g.area, 0.05).pai > 0.8 * score(full, obs, g.area, 0.05).pai
    assert GradientBoosted().params()["max_rows"] is None  # off by default


def test_a_clipped_grid_scores_only_the_incidents_inside_its_study_area() -> None:
    # A 1 km square jurisdiction; cells of 300 m, so the boundary cells stick out of it.
    frame = Frame(-79.4, 43.7)
    lon, lat = frame.inverse(np.array([0.0, 1000, 1000, 0]), np.array([0.0, 0, 1000, 1000]))
    square = Polygon(zip(lon, lat, strict=True))
    xs = np.array([500.0, 950.0, 1050.0, 1150.0])  # the last two outside, in a boundary cell
    t = np.array([ORIGIN + 1.0] * 4)
    h = History(frame, xs, np.full(4, 500.0), t, t.copy(),
                np.full(4, "b", dtype=object), np.full(4, "a", dtype=object))  # fmt: skip
    g = grid_for(h, 300.0, area=square)
    assert g.total_area == pytest.approx(1e6, rel=1e-3)
    assert g.counts(h).sum() == 4 and g.observed(h).sum() == 2
    bt = rolling_backtest(h, g, [NaiveCounts()], [(ORIGIN, ORIGIN + 7)])
    assert bt.observed_total == 2
    # Without a jurisdiction every incident of an active cell is in the study area.
    whole = grid_for(h, 300.0)
    assert np.array_equal(whole.observed(h), whole.counts(h))


def test_hits_difference_brackets_the_windows_paired_difference() -> None:
    from crossbeat.forecast.backtest import ModelResult, hits_difference
    from crossbeat.forecast.metrics import Score

    def result(hits: list[float]) -> ModelResult:
        r = ModelResult("m", {})
        r.scores[0.01] = [Score(0.01, 1.0, 1, h, 10.0, 0, 0, 0) for h in hits]
        return r

    rng = np.random.default_rng(2)
    base = rng.poisson(5.0, 40).astype(float)
    # A model one hit better in every window: the difference is certain.
    d = hits_difference(result(list(base + 1)), result(list(base)), 0.01)
    assert (d.difference, d.low, d.high, d.windows) == (40.0, 40.0, 40.0, 40)
    # Noise around the baseline: the interval holds 0 and the observed difference.
    noisy = base + rng.choice([-1.0, 1.0], 40)
    d = hits_difference(result(list(noisy)), result(list(base)), 0.01)
    assert d.low < 0 < d.high and d.low <= d.difference <= d.high
    # Seeded: the same interval again.
    assert hits_difference(result(list(noisy)), result(list(base)), 0.01) == d
    with pytest.raises(ValueError, match="same"):
        hits_difference(result([1.0, 2.0]), result([1.0]), 0.01)
