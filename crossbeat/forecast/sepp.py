"""Self-exciting point process on a grid, fitted by EM (Mohler et al. 2011, 2015).

Each cell ``n`` has intensity

    λ_n(t) = μ_n · h(hour of t) + Σ_{t_i < t in n} θ ω exp(-ω (t - t_i))

a background that varies in space (``μ_n``, smoothed by a Gaussian kernel of
``background_bandwidth`` metres as Mohler's non-parametric background) and by time of
day (``h``, 24 hourly factors averaging 1), plus near-repeat triggering: each incident
raises its cell's rate by ``θ`` expected offspring, decaying at rate ``ω`` per day. EM
alternates the branching probabilities (E) and closed-form updates of μ, h, θ, ω (M).
Incidents known as a range enter at their midpoint; their hour-of-day weight is spread
over the hours of the range.

The EM estimate is kept for ``refit_days`` of later origins (the rolling backtest fits
each origin; parameters move slowly), while the triggering sum always uses every
incident before the current origin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crossbeat.forecast.grid import SquareGrid
from crossbeat.forecast.history import History


@dataclass
class SelfExciting:
    """Grid self-exciting point process (see the module docstring)."""

    days: float = 2190.0
    background_bandwidth: float = 50.0
    iterations: int = 30
    max_lag: float = 90.0
    min_lag: float = 0.5
    refit_days: float = 28.0
    name: str = "sepp"
    theta: float = 0.1
    omega: float = 0.1
    hourly: np.ndarray = field(default_factory=lambda: np.ones(24))
    _mu: np.ndarray | None = field(default=None, repr=False)
    _fitted_at: float | None = field(default=None, repr=False)
    _fit_grid: SquareGrid | None = field(default=None, repr=False)
    _h: History | None = field(default=None, repr=False)
    _g: SquareGrid | None = field(default=None, repr=False)
    _origin: float = 0.0

    def fit(self, history: History, grid: SquareGrid, origin: float) -> None:
        """Estimate μ, h, θ, ω by EM (unless a fit within ``refit_days`` is reusable)."""
        h = history.before(origin)
        self._h, self._g, self._origin = h, grid, origin
        fresh = self._fitted_at is not None and self._fit_grid is grid
        if fresh and 0 <= origin - float(self._fitted_at or 0) < self.refit_days:
            return
        self._em(h.take(h.t0 >= origin - self.days), grid, origin)
        self._fitted_at, self._fit_grid = origin, grid

    def _em(self, h: History, grid: SquareGrid, origin: float) -> None:
        cell = grid.cell_index(h.x, h.y)
        ok = cell >= 0
        t = np.minimum(h.midpoints()[ok], origin)
        cell = cell[ok]
        hours = _hour_weights(h.take(ok))
        order = np.lexsort((t, cell))
        t, cell, hours = t[order], cell[order], hours[order]
        span = max(float(min(self.days, origin - t.min())) if t.size else 1.0, 1.0)
        # Pairs (parent i, child j) in the same cell within max_lag days.
        parents, children = [], []
        for k in range(1, t.size):
            i = np.arange(t.size - k)
            j = i + k
            same = (cell[i] == cell[j]) & (t[j] - t[i] <= self.max_lag)
            if not same.any():
                break
            # Same-hour records at one place are one event reported several times (or
            # several victims), not a repeat: they would drive ω to its cap.
            same &= t[j] - t[i] >= self.min_lag
            parents.append(i[same])
            children.append(j[same])
        pi = np.concatenate(parents) if parents else np.zeros(0, np.int64)
        cj = np.concatenate(children) if children else np.zeros(0, np.int64)
        lag = t[cj] - t[pi]
        theta, omega, hourly = self.theta, self.omega, np.ones(24)
        counts = np.bincount(cell, minlength=grid.n).astype(float)
        mu = counts / span
        for _ in range(self.iterations):
            bg = mu[cell] * (hours @ hourly)
            trig = theta * omega * np.exp(-omega * lag)
            denom = bg + np.bincount(cj, weights=trig, minlength=t.size)
            p_bg = bg / denom
            p_tr = trig / denom[cj]
            n_tr = float(p_tr.sum())
            theta = n_tr / max(t.size, 1)
            omega = n_tr / max(float((p_tr * lag).sum()), 1e-9)
            omega = min(max(omega, 1e-3), 10.0)
            mu = np.bincount(cell, weights=p_bg, minlength=grid.n) / span
            hourly = (p_bg @ hours) / max(float(p_bg.sum()), 1e-12) * 24.0
            hourly = np.where(hourly > 0, hourly, 1e-3)
        self.theta, self.omega, self.hourly = float(theta), float(omega), hourly
        self._mu = grid.smooth(mu, self.background_bandwidth)

    def predict(self, start: float, end: float) -> np.ndarray:
        """Return the integrated intensity over ``[start, end)`` per cell."""
        if self._h is None or self._g is None or self._mu is None:
            raise RuntimeError("fit the model before predicting")
        h, g = self._h, self._g
        hours = np.arange(np.floor(start * 24), np.ceil(end * 24))
        tod = np.mean(self.hourly[(hours % 24).astype(int)]) if hours.size else 1.0
        out = self._mu * (end - start) * tod
        recent = h.take(h.t0 >= start - 10.0 / max(self.omega, 1e-3))
        tm = np.minimum(recent.midpoints(), start)
        w = self.theta * (np.exp(-self.omega * (start - tm)) - np.exp(-self.omega * (end - tm)))
        return out + g.counts(recent, w)

    def params(self) -> dict[str, Any]:
        """Return the fitted and chosen parameters."""
        return {
            "days": self.days,
            "background_bandwidth_m": self.background_bandwidth,
            "theta": self.theta,
            "omega_per_day": self.omega,
            "hourly": [round(float(v), 4) for v in self.hourly],
        }


def _hour_weights(h: History) -> np.ndarray:
    """Return each incident's weight over the 24 hours of the day (rows sum to 1)."""
    n = len(h)
    out = np.zeros((n, 24))
    span = h.t1 - h.t0
    exact = span * 24 < 1.0
    hour0 = np.floor((h.t0 * 24) % 24).astype(int)
    out[np.flatnonzero(exact), hour0[exact]] = 1.0
    for k in np.flatnonzero(~exact):
        first, last = h.t0[k] * 24, h.t1[k] * 24
        if last - first >= 24:
            out[k] = 1.0 / 24
            continue
        edges = np.arange(np.floor(first), np.ceil(last) + 1)
        parts = np.clip(np.minimum(edges[1:], last) - np.maximum(edges[:-1], first), 0, None)
        np.add.at(out[k], (edges[:-1] % 24).astype(int), parts / parts.sum())
    return out
