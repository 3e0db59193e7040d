"""Gradient-boosted forecasts on cell × period features (issue #13).

For an origin ``o`` and a window of ``w`` days, each cell gets features computed only
from incidents before ``o``: counts in the last 7, 28, 91, 365, 730 and 2190 days; the same
smoothed at two spatial scales (``scales`` metres); a near-repeat feature (the last 14
days, smoothed); seasonality (the count in the same window a year earlier, smoothed; the
day of the year); and a cross-border feature (incidents recorded by *other* owners than
the cell's main one, within the larger scale, over the last year: partner agencies'
data near the border). The target is the count in ``[o, o + max(w, horizon))``
(short windows borrow a longer horizon's signal and are scaled back). Training rows come
from ``origins`` earlier origins spaced 28 days apart, whose target windows all end
before the forecast origin (no look-ahead). The regressor is scikit-learn's
``HistGradientBoostingRegressor`` with a Poisson loss (63 bins per feature), seeded.
Training keeps every cell-period with an incident and a seeded sample of the empty
ones (four per non-empty one), weighted by the inverse sampling rate (unbiased expected
counts; one per non-empty one lost 3 points of PAI at 1 % on Toronto burglary).
``max_rows`` (off by default) thins every kept row alike to about that many, re-weighted:
it halves the fit at 250,000 incidents but costs accuracy wherever it binds (Toronto
burglary thinned from 88,000 rows to 50,000: PAI at 1 % 20.85 against 21.64), so it is
a choice for an agency that needs speed, not a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from crossbeat.forecast.grid import SquareGrid
from crossbeat.forecast.history import History

_LAGS = (7.0, 28.0, 91.0, 365.0, 730.0, 2190.0)


def features(
    history: History, grid: SquareGrid, origin: float, window: float, scales: tuple[float, float]
) -> np.ndarray:
    """Return the ``(cells, features)`` matrix at ``origin`` for a ``window``-day forecast."""
    h = history
    cols = []
    lag_counts = {}
    for lag in _LAGS:
        c = grid.counts(h, h.weights(origin - lag, origin))
        lag_counts[lag] = c
        cols.append(c)
    for s in scales:
        for lag in (28.0, 365.0):
            cols.append(grid.smooth(lag_counts[lag], s))
    cols.append(grid.smooth(grid.counts(h, h.weights(origin - 14.0, origin)), scales[0]))
    last_year = grid.counts(h, h.weights(origin - 365.0, origin - 365.0 + window))
    cols.append(last_year)
    cols.append(grid.smooth(last_year, scales[1]))
    cols.append(_cross_border(h, grid, origin, scales[1]))
    doy = (origin % 365.25) / 365.25 * 2 * np.pi
    cols.append(np.full(grid.n, np.sin(doy)))
    cols.append(np.full(grid.n, np.cos(doy)))
    cols.append(np.full(grid.n, window))
    return np.column_stack(cols)


def _cross_border(h: History, grid: SquareGrid, origin: float, scale: float) -> np.ndarray:
    # One owner (most histories): nothing across a border, and no sort of the owners
    # (np.unique over 250 k strings was a tenth of a fit).
    if h.owner.size == 0 or bool(np.all(h.owner == h.owner[0])):
        return np.zeros(grid.n)
    idx = grid.cell_index(h.x, h.y)
    owners = np.unique(h.owner)
    w = h.weights(origin - 365.0, origin)
    per_owner = np.stack(
        [
            np.bincount(
                idx[(idx >= 0) & (h.owner == o)],
                weights=w[(idx >= 0) & (h.owner == o)],
                minlength=grid.n,
            )
            for o in owners
        ]
    )
    main = per_owner.argmax(axis=0)
    others = per_owner.sum(axis=0) - per_owner[main, np.arange(grid.n)]
    return grid.smooth(others, scale)


@dataclass
class GradientBoosted:
    """Poisson gradient boosting on cell × period features (see the module docstring)."""

    origins: int = 12
    horizon: float = 91.0
    scales: tuple[float, float] = (150.0, 500.0)
    max_iter: int = 200
    learning_rate: float = 0.05
    max_leaf_nodes: int = 31
    refit_days: float = 28.0
    zeros_per_positive: float = 4.0
    max_rows: int | None = None
    max_bins: int = 63
    seed: int = 0
    threads: int = 1
    name: str = "gbm"
    _h: History | None = field(default=None, repr=False)
    _g: SquareGrid | None = field(default=None, repr=False)
    _origin: float = 0.0
    _models: dict[float, tuple[float, SquareGrid, HistGradientBoostingRegressor | None]] = field(
        default_factory=dict, repr=False
    )

    def fit(self, history: History, grid: SquareGrid, origin: float) -> None:
        """Remember the history; the regressor is trained per window length on demand."""
        self._h, self._g, self._origin = history.before(origin), grid, origin

    def _regressor(self, window: float) -> HistGradientBoostingRegressor | None:
        h, g, o = self._h, self._g, self._origin
        assert h is not None and g is not None
        cached = self._models.get(round(window, 3))
        if cached and cached[1] is g and 0 <= o - cached[0] < self.refit_days:
            return cached[2]
        step = 28.0
        xs, ys = [], []
        for k in range(1, self.origins + 1):
            ok = o - window - (k - 1) * step
            past = h.take(h.t0 < ok)
            xs.append(features(past, g, ok, window, self.scales))
            ys.append(g.counts(h, h.weights(ok, ok + window)))
        x, y = np.vstack(xs), np.concatenate(ys)
        if not y.sum() > 0:
            return None
        # Rows whose target is 0 are most rows and carry little information: keep every
        # row with a positive target and a seeded sample of the others, at most
        # ``zeros_per_positive`` per positive row, weighted by the inverse of the
        # sampling rate so the Poisson loss (and the predicted means) stay unbiased.
        rng = np.random.default_rng(self.seed)
        positive = y > 0
        zeros = int((~positive).sum())
        rate = min(1.0, self.zeros_per_positive * max(int(positive.sum()), 1) / max(zeros, 1))
        keep = positive | (rng.random(y.size) < rate)
        weight = np.where(positive, 1.0, 1.0 / rate)
        # Very large histories (over ``max_rows`` rows kept) are thinned again, every
        # kept row alike, seeded and re-weighted: trees cost time in proportion to rows.
        kept = int(keep.sum())
        if self.max_rows is not None and kept > self.max_rows:
            thin = self.max_rows / kept
            keep &= rng.random(y.size) < thin
            weight = weight / thin
        reg = HistGradientBoostingRegressor(
            loss="poisson",
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            max_bins=self.max_bins,
            early_stopping=False,
            random_state=self.seed,
        )
        # One OpenMP thread by default: on a shared machine, OpenMP's spinning threads
        # slowed fits 100-fold; results do not depend on the thread count.
        with threadpool_limits(limits=self.threads):
            reg.fit(x[keep], y[keep], sample_weight=weight[keep])
        self._models[round(window, 3)] = (o, g, reg)
        return reg

    def predict(self, start: float, end: float) -> np.ndarray:
        """Return the predicted count per cell for ``[start, end)``."""
        if self._h is None or self._g is None:
            raise RuntimeError("fit the model before predicting")
        window = end - start
        # Trained on targets of at least ``horizon`` days (weekly counts per cell are
        # mostly 0 or 1: too little signal to rank cells); scaled back to the window.
        span = max(window, self.horizon)
        reg = self._regressor(span)
        if reg is None:
            # Too short a history to train on (no incident in any training target):
            # the last year's counts, as the naive model.
            recent = self._g.counts(self._h, self._h.weights(start - 365.0, start))
            return recent * (window / 365.0)
        x = features(self._h, self._g, start, span, self.scales)
        with threadpool_limits(limits=self.threads):
            out = reg.predict(x)
        return np.clip(out, 0.0, None) * (window / span)

    def params(self) -> dict[str, Any]:
        """Return the hyper-parameters (and seed)."""
        return {
            "origins": self.origins,
            "horizon_days": self.horizon,
            "scales_m": list(self.scales),
            "max_iter": self.max_iter,
            "learning_rate": self.learning_rate,
            "max_leaf_nodes": self.max_leaf_nodes,
            "zeros_per_positive": self.zeros_per_positive,
            "max_rows": self.max_rows,
            "max_bins": self.max_bins,
            "seed": self.seed,
        }
