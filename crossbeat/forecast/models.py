"""Forecast models behind one interface (issue #13).

Every model is fitted on one category's history before an origin and predicts the
expected number of incidents in each active cell of a grid for a window ``[start, end)``
(float days, ``start >= origin``)::

    model.fit(history, grid, origin)
    risk = model.predict(origin, origin + 7)

The models here are the baselines and classic hot-spot maps: naive recent counts,
retrospective and prospective hot spots (Bowers, Johnson & Pease 2004) and kernel
density. The self-exciting point process is in :mod:`crossbeat.forecast.sepp`, the
gradient-boosted model in :mod:`crossbeat.forecast.gbm`. Surfaces that are not rates
are scaled so their total is the recent daily rate times the window length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy.signal import fftconvolve

from crossbeat.forecast.grid import SquareGrid
from crossbeat.forecast.history import History


class Model(Protocol):
    """The forecasting interface: fit before an origin, predict a window."""

    name: str

    def fit(self, history: History, grid: SquareGrid, origin: float) -> None:
        """Fit on the incidents of ``history`` that started before ``origin`` (float days)."""

    def predict(self, start: float, end: float) -> np.ndarray:
        """Return the expected count per active cell in ``[start, end)``."""

    def params(self) -> dict[str, Any]:
        """Return the parameters that reproduce this model (for its model card)."""


def _rate_scaled(
    surface: np.ndarray, history: History, origin: float, start: float, end: float
) -> np.ndarray:
    """Scale a risk surface so it sums to the recent daily rate times the window.

    The rate is over the last year, or over the whole history when it is shorter.
    """
    return _scaled(surface, _recent_rate(history, origin), start, end)


def _recent_rate(history: History, origin: float) -> float:
    """Return the daily rate of incidents over the last year before ``origin`` (or less)."""
    span = 365.0
    if len(history):
        span = float(np.clip(origin - float(np.min(history.t0)), 1.0, 365.0))
    return float(history.weights(origin - span, origin).sum()) / span


def _scaled(surface: np.ndarray, rate: float, start: float, end: float) -> np.ndarray:
    """Return ``surface`` scaled to sum to ``rate`` times the window (zeros if empty)."""
    total = float(surface.sum())
    if total <= 0:
        return np.zeros_like(surface)
    return surface * (rate * (end - start) / total)


@dataclass
class _Fitted:
    history: History | None = None
    grid: SquareGrid | None = None
    origin: float = 0.0

    def need(self) -> tuple[History, SquareGrid]:
        if self.history is None or self.grid is None:
            raise RuntimeError("fit the model before predicting")
        return self.history, self.grid


@dataclass
class NaiveCounts:
    """Naive baseline: each cell's count over the last ``days`` days (ranges spread)."""

    days: float = 365.0
    name: str = "naive"
    _f: _Fitted = field(default_factory=_Fitted, repr=False)

    def fit(self, history: History, grid: SquareGrid, origin: float) -> None:
        """Remember the history before ``origin``."""
        self._f = _Fitted(history.before(origin), grid, origin)

    def predict(self, start: float, end: float) -> np.ndarray:
        """Return the recent counts, scaled to the window."""
        h, g = self._f.need()
        c = g.counts(h, h.weights(self._f.origin - self.days, self._f.origin))
        return _rate_scaled(c, h, self._f.origin, start, end)

    def params(self) -> dict[str, Any]:
        """Return the look-back."""
        return {"days": self.days}


def decayed_weights(history: History, origin: float, half_life: float) -> np.ndarray:
    """Return each incident's weight ``2 ** (-(origin - t) / half_life)`` at ``origin``.

    An incident known as a range ``[t0, t1)`` counts as one incident spread uniformly
    over it: its weight is the exact mean of the decay over the range's part before
    ``origin``, times that part's share of the range (so a range that ends after the
    origin counts only its part before it). Incidents from ``origin`` on weigh 0.

    Examples
    --------
    >>> from crossbeat.forecast.history import Frame
    >>> z = np.zeros(3)
    >>> h = History(Frame(0, 0), z, z, np.array([9.0, 8.0, 10.0]), np.array([9.0, 8.0, 12.0]),
    ...             z.astype(str), z.astype(str))
    >>> decayed_weights(h, 10.0, 1.0).tolist()
    [0.5, 0.25, 0.0]
    """
    lam = np.log(2.0) / half_life
    t0 = np.minimum(history.t0, origin)
    end = np.minimum(history.t1, origin)
    span = history.t1 - history.t0
    exact = span <= 0
    # ∫ from t0 to end of exp(-λ(o - t)) dt / span, for the ranges.
    ranged = (np.exp(-lam * (origin - end)) - np.exp(-lam * (origin - t0))) / (
        lam * np.where(exact, 1.0, span)
    )
    point = np.where(history.t0 < origin, np.exp(-lam * (origin - history.t0)), 0.0)
    return np.where(exact, point, np.clip(ranged, 0.0, None))


@dataclass
class DecayedCounts:
    """Exponentially decayed counts: each cell's incidents weighted by ``2 ** (-age / half_life)``.

    Between naive counts over a fixed look-back (every incident of the last year counts
    1, older ones 0) and the long-run rate: recent incidents count most, and older ones
    still break ties between cells with the same recent count. Scaled to the window as
    the other count models.
    """

    half_life: float = 90.0
    name: str = "decayed"
    _f: _Fitted = field(default_factory=_Fitted, repr=False)

    def fit(self, history: History, grid: SquareGrid, origin: float) -> None:
        """Remember the history before ``origin``."""
        self._f = _Fitted(history.before(origin), grid, origin)

    def predict(self, start: float, end: float) -> np.ndarray:
        """Return the decayed counts, scaled to the window."""
        h, g = self._f.need()
        c = g.counts(h, decayed_weights(h, self._f.origin, self.half_life))
        return _rate_scaled(c, h, self._f.origin, start, end)

    def params(self) -> dict[str, Any]:
        """Return the half-life."""
        return {"half_life_days": self.half_life}


def shrink_to_surface(counts: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, float]:
    """Return Poisson–gamma empirical-Bayes rates of ``counts`` shrunk toward ``prior``.

    Each cell's count ``n_i`` is taken as Poisson with a rate drawn from a gamma
    distribution of mean ``M_i`` (the prior surface, e.g. the counts smoothed over the
    neighbourhood) and shape ``κ`` (Clayton & Kaldor 1987; Marshall 1991). The posterior
    mean is ``M_i (n_i + κ) / (M_i + κ)``: a cell with few incidents is pulled toward its
    neighbourhood, a cell with many keeps its own rate. ``κ`` is estimated by the method
    of moments from the extra-Poisson variance, ``Σ M² / Σ((n − M)² − n)``; with no
    extra variance the counts carry nothing beyond the surface and the surface is
    returned (``κ`` infinite). Returns the rates and ``κ``.

    Examples
    --------
    >>> rates, kappa = shrink_to_surface(np.array([4.0, 0.0, 0.0, 0.0]), np.full(4, 1.0))
    >>> round(kappa, 3), rates.round(3).tolist()
    (0.5, [3.0, 0.333, 0.333, 0.333])
    """
    n = np.asarray(counts, float)
    m = np.asarray(prior, float)
    extra = float(np.sum((n - m) ** 2 - n))
    if extra <= 0 or not np.any(m > 0):
        return m.copy(), float("inf")
    kappa = float(np.sum(m * m)) / extra
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(m > 0, m * (n + kappa) / (m + kappa), 0.0)
    return rates, kappa


@dataclass
class ShrunkCounts:
    """Counts shrunk toward their smoothed surface by empirical Bayes (:func:`shrink_to_surface`).

    The counts are decayed counts with ``half_life`` days (every incident before the
    origin, weighted ``2 ** (-age / half_life)``); the prior surface is the same counts
    smoothed by a Gaussian kernel of ``bandwidth`` metres, rescaled to the same total.
    At tiny flagged areas (a few cells) naive counts tie and flag whichever tied cell
    comes first; the shrunk rates rank a cell with a given count higher when its
    neighbourhood is busier, and discount a lone burst in a quiet place.
    """

    half_life: float = 365.0
    bandwidth: float = 150.0
    name: str = "shrunk"
    _f: _Fitted = field(default_factory=_Fitted, repr=False)
    _kappa: float = field(default=float("nan"), repr=False)

    def fit(self, history: History, grid: SquareGrid, origin: float) -> None:
        """Remember the history before ``origin``."""
        self._f = _Fitted(history.before(origin), grid, origin)

    def predict(self, start: float, end: float) -> np.ndarray:
        """Return the shrunk rates, scaled to the window."""
        h, g = self._f.need()
        c = g.counts(h, decayed_weights(h, self._f.origin, self.half_life))
        prior = g.smooth(c, self.bandwidth)
        total = float(prior.sum())
        if total > 0:
            prior = prior * (float(c.sum()) / total)
        rates, self._kappa = shrink_to_surface(c, prior)
        return _rate_scaled(rates, h, self._f.origin, start, end)

    def params(self) -> dict[str, Any]:
        """Return the half-life, the bandwidth and the last estimated shape ``κ``."""
        kappa = None if np.isnan(self._kappa) or np.isinf(self._kappa) else self._kappa
        return {"half_life_days": self.half_life, "bandwidth_m": self.bandwidth, "kappa": kappa}


def _disk_kernel(grid: SquareGrid, bandwidth: float, kind: str) -> np.ndarray:
    r = max(int(np.floor(bandwidth / grid.size)), 0)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    d = np.hypot(xx, yy) * grid.size
    inside = d <= bandwidth
    if kind == "quartic":
        k = (1 - (d / max(bandwidth, 1e-9)) ** 2) ** 2
    else:  # Bowers-Johnson: 1 / (1 + distance in cells)
        k = 1.0 / (1.0 + np.hypot(xx, yy))
    return np.where(inside, k, 0.0)


def _convolve(grid: SquareGrid, values: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    out = fftconvolve(grid.raster(values), kernel, mode="same")
    return np.clip(out.ravel()[grid.active], 0.0, None)


@dataclass
class RetrospectiveHotspot:
    """Retrospective hot spots: a quartic kernel over every incident in the last ``days``."""

    bandwidth: float = 400.0
    days: float = 730.0
    name: str = "retrospective"
    _f: _Fitted = field(default_factory=_Fitted, repr=False)

    def fit(self, history: History, grid: SquareGrid, origin: float) -> None:
        """Remember the history before ``origin``."""
        self._f = _Fitted(history.before(origin), grid, origin)

    def predict(self, start: float, end: float) -> np.ndarray:
        """Return the kernel surface, scaled to the window."""
        h, g = self._f.need()
        c = g.counts(h, h.weights(self._f.origin - self.days, self._f.origin))
        s = _convolve(g, c, _disk_kernel(g, self.bandwidth, "quartic"))
        return _rate_scaled(s, h, self._f.origin, start, end)

    def params(self) -> dict[str, Any]:
        """Return the bandwidth and look-back."""
        return {"bandwidth_m": self.bandwidth, "days": self.days}


@dataclass
class ProspectiveHotspot:
    """Prospective hot spots (Bowers, Johnson & Pease 2004).

    Each incident within ``weeks`` weeks and ``bandwidth`` metres adds
    ``1 / (1 + cells away) × 1 / (1 + whole weeks ago)`` to a cell: recent, near
    burglaries raise the risk of their neighbours (the near-repeat).
    """

    bandwidth: float = 400.0
    weeks: int = 8
    name: str = "prospective"
    _f: _Fitted = field(default_factory=_Fitted, repr=False)

    def fit(self, history: History, grid: SquareGrid, origin: float) -> None:
        """Remember the history before ``origin``."""
        self._f = _Fitted(history.before(origin), grid, origin)

    def predict(self, start: float, end: float) -> np.ndarray:
        """Return the prospective surface, scaled to the window."""
        h, g = self._f.need()
        o = self._f.origin
        total = np.zeros(g.n)
        for week in range(self.weeks):
            w = h.weights(o - 7.0 * (week + 1), o - 7.0 * week)
            total += g.counts(h, w) / (1.0 + week)
        s = _convolve(g, total, _disk_kernel(g, self.bandwidth, "bowers"))
        return _rate_scaled(s, h, o, start, end)

    def params(self) -> dict[str, Any]:
        """Return the bandwidths."""
        return {"bandwidth_m": self.bandwidth, "weeks": self.weeks}


@dataclass
class KernelDensity:
    """Kernel density: Gaussian kernel of ``bandwidth`` metres over the last ``days`` days."""

    bandwidth: float = 200.0
    days: float = 365.0
    name: str = "kde"
    _f: _Fitted = field(default_factory=_Fitted, repr=False)

    def fit(self, history: History, grid: SquareGrid, origin: float) -> None:
        """Remember the history before ``origin``."""
        self._f = _Fitted(history.before(origin), grid, origin)

    def predict(self, start: float, end: float) -> np.ndarray:
        """Return the density, scaled to the window."""
        h, g = self._f.need()
        c = g.counts(h, h.weights(self._f.origin - self.days, self._f.origin))
        return _rate_scaled(g.smooth(c, self.bandwidth), h, self._f.origin, start, end)

    def params(self) -> dict[str, Any]:
        """Return the bandwidth and look-back."""
        return {"bandwidth_m": self.bandwidth, "days": self.days}


@dataclass
class Ensemble:
    """Weighted mean of member forecasts, each rescaled to the same total first."""

    members: Sequence[Model]
    weights: Sequence[float] | None = None
    name: str = "ensemble"

    def fit(self, history: History, grid: SquareGrid, origin: float) -> None:
        """Fit every member."""
        for m in self.members:
            m.fit(history, grid, origin)

    def predict(self, start: float, end: float) -> np.ndarray:
        """Return the weighted mean of the members' normalised surfaces."""
        preds = [m.predict(start, end) for m in self.members]
        w = np.asarray(self.weights if self.weights is not None else [1.0] * len(preds), float)
        sums = [float(p.sum()) for p in preds]
        # A member with nothing to say (all zero) does not drag the total down.
        total = float(np.mean([t for t in sums if t > 0])) if any(t > 0 for t in sums) else 0.0
        mix = sum(wi * p / max(float(p.sum()), 1e-12) for wi, p in zip(w, preds, strict=True))
        return np.asarray(mix) * total / float(w.sum())

    def params(self) -> dict[str, Any]:
        """Return the members' names, parameters and weights."""
        return {
            "members": [{"model": m.name, **m.params()} for m in self.members],
            "weights": list(self.weights) if self.weights is not None else None,
        }


def simplex(members: int, step: float) -> np.ndarray:
    """Return every weight vector of ``members`` non-negative multiples of ``step`` summing to 1.

    Examples
    --------
    >>> simplex(2, 0.5).tolist()
    [[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]
    """
    parts = int(round(1.0 / step))

    def rec(k: int, left: int) -> list[list[int]]:
        if k == 1:
            return [[left]]
        return [[i, *rest] for i in range(left + 1) for rest in rec(k - 1, left - i)]

    return np.asarray(rec(members, parts), float) / parts


@dataclass
class LearnedEnsemble:
    """An ensemble whose weights are learned on validation windows before each origin.

    Method (rolling origin, no leakage): at ``fit(history, grid, origin)`` the members'
    forecasts for the last ``validation_windows`` windows of ``validation_days`` that
    *ended by the origin* are scored against what happened in them, and the weights
    (a grid over the simplex with ``step``) that maximise the pooled hit rate (hits over
    incidents, all windows and ``fractions`` together: steadier than per-window means
    when few incidents fall in the flagged cells) are kept (ties go to the weights
    nearest to equal). The members' forecasts for those windows come from the
    ensemble's own earlier forecasts when it made them (a rolling backtest costs nothing
    extra), else from fitting the members
    at each validation origin once (a warm-up). Weights are re-learned every
    ``relearn_days``. Each member is normalised to the same total before mixing.
    """

    members: Sequence[Model]
    validation_windows: int = 8
    validation_days: float = 7.0
    fractions: tuple[float, ...] = (0.01, 0.02, 0.05)
    step: float = 0.2
    relearn_days: float = 28.0
    name: str = "ensemble"
    weights: np.ndarray | None = field(default=None, repr=False)
    _memory: list[tuple[float, float, list[np.ndarray]]] = field(default_factory=list, repr=False)
    _grid: SquareGrid | None = field(default=None, repr=False)
    _learned_at: float | None = field(default=None, repr=False)
    _validation: list[float] = field(default_factory=list, repr=False)

    def _windows(self, origin: float) -> list[tuple[float, float]]:
        d = self.validation_days
        return [
            (origin - k * d, origin - (k - 1) * d) for k in range(self.validation_windows, 0, -1)
        ]

    def _remembered(self, start: float, end: float) -> list[np.ndarray] | None:
        for s, e, preds in self._memory:
            if abs(s - start) < 1e-6 and abs(e - end) < 1e-6:
                return preds
        return None

    def fit(self, history: History, grid: SquareGrid, origin: float) -> None:
        """Learn the weights on the validation windows before ``origin``, then fit every member."""
        from crossbeat.forecast.metrics import score

        if grid is not self._grid:
            self._memory, self._grid, self._learned_at, self.weights = [], grid, None, None
        stale = self._learned_at is None or not (0 <= origin - self._learned_at < self.relearn_days)
        if stale:
            past = history.before(origin)
            # The ensemble's own forecasts of the latest windows that ended by the
            # origin when it has enough of them; else fixed windows just before it.
            recent = origin - 2 * self.validation_windows * self.validation_days
            seen = sorted((s, e) for s, e, _ in self._memory if recent <= e <= origin + 1e-9)
            wins = (
                seen[-self.validation_windows :]
                if len(seen) >= self.validation_windows
                else self._windows(origin)
            )
            preds, observed = [], []
            for s, e in wins:
                got = self._remembered(s, e)
                if got is None:
                    got = []
                    for m in self.members:
                        m.fit(past, grid, s)
                        got.append(m.predict(s, e))
                    self._memory.append((s, e, got))
                preds.append([p / max(float(p.sum()), 1e-12) for p in got])
                observed.append(grid.observed(past, past.weights(s, e)))
            candidates = simplex(len(self.members), self.step)
            equal = np.full(len(self.members), 1.0 / len(self.members))
            best, best_key = equal, (-np.inf, 0.0)
            for w in candidates:
                hits = 0.0
                total = 0.0
                for p, o in zip(preds, observed, strict=True):
                    mix = np.asarray(sum(wi * pi for wi, pi in zip(w, p, strict=True)))
                    for f in self.fractions:
                        sc = score(mix, o, grid.area, f)
                        hits += sc.hits
                        total += sc.total
                value = hits / total if total > 0 else 0.0
                key = (round(value, 9), -float(np.abs(w - equal).sum()))
                if key > best_key:
                    best, best_key = w, key
            self.weights = best
            self._validation = [float(best_key[0])]
            self._learned_at = origin
            # Keep only what later origins can still use.
            self._memory = [m for m in self._memory if m[1] > origin - 2 * self.relearn_days
                            - self.validation_windows * self.validation_days]  # fmt: skip
        for m in self.members:
            m.fit(history, grid, origin)

    def predict(self, start: float, end: float) -> np.ndarray:
        """Return the weighted mix of the members' normalised surfaces (remembered for later)."""
        preds = [m.predict(start, end) for m in self.members]
        if self._remembered(start, end) is None:
            self._memory.append((start, end, preds))
        w = self.weights if self.weights is not None else np.full(len(preds), 1.0 / len(preds))
        sums = [float(p.sum()) for p in preds]
        total = float(np.mean([t for t in sums if t > 0])) if any(t > 0 for t in sums) else 0.0
        mix = sum(wi * p / max(float(p.sum()), 1e-12) for wi, p in zip(w, preds, strict=True))
        return np.asarray(mix) * total / max(float(np.sum(w)), 1e-12)

    def params(self) -> dict[str, Any]:
        """Return the members, the learned weights and the validation method."""
        return {
            "members": [{"model": m.name, **m.params()} for m in self.members],
            "weights": [float(x) for x in self.weights] if self.weights is not None else None,
            "validation": {
                "windows": self.validation_windows,
                "days": self.validation_days,
                "fractions": list(self.fractions),
                "step": self.step,
                "relearn_days": self.relearn_days,
                "score": self._validation[0] if self._validation else None,
            },
        }
