"""Rolling-origin backtests (issue #13).

For each window ``[o, e)``, every model is fitted on the incidents that started
before ``o`` and predicts ``[o, e)``; the forecast is scored against the incidents
that happened in that window (ranges spread, so an incident counts by the share of its
range inside the window) at each area fraction. Scores are averaged over origins (the
mean of per-window PAI, as NIJ averages per period) and totalled (hits over all windows).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from crossbeat.forecast.cells import CellGrid
from crossbeat.forecast.grid import SquareGrid
from crossbeat.forecast.history import History
from crossbeat.forecast.metrics import Score, calibration, score
from crossbeat.forecast.models import Model


@dataclass
class ModelResult:
    """One model's scores over a backtest."""

    model: str
    params: dict[str, object]
    scores: dict[float, list[Score]] = field(default_factory=dict)
    expected: list[np.ndarray] = field(default_factory=list, repr=False)
    observed: list[np.ndarray] = field(default_factory=list, repr=False)
    seconds: float = 0.0

    def mean(self, fraction: float, metric: str) -> float:
        """Return the mean over windows of ``metric`` (``pai``, ``pei``, ``hit_rate``)."""
        vals = [getattr(s, metric) for s in self.scores[fraction]]
        vals = [v for v in vals if not np.isnan(v)]
        return float(np.mean(vals)) if vals else float("nan")

    def pooled_hit_rate(self, fraction: float) -> float:
        """Return hits over all windows / incidents over all windows."""
        s = self.scores[fraction]
        total = sum(x.total for x in s)
        return sum(x.hits for x in s) / total if total else float("nan")

    def calibration(self, bins: int = 10) -> list[tuple[float, float, int]]:
        """Return calibration bins pooled over every window."""
        return calibration(np.concatenate(self.expected), np.concatenate(self.observed), bins)


@dataclass
class Backtest:
    """The result of :func:`rolling_backtest`."""

    windows: list[tuple[float, float]]
    fractions: tuple[float, ...]
    results: list[ModelResult]
    observed_total: float

    def best(self, fraction: float, metric: str = "pai") -> ModelResult:
        """Return the model with the highest mean ``metric`` at ``fraction``."""
        return max(self.results, key=lambda r: r.mean(fraction, metric))

    def table(self) -> str:
        """Return a plain-text table: model × fraction → mean PAI, PEI, hit rate."""
        lines = []
        width = max([14, *(len(r.model) + 1 for r in self.results)])
        head = "model".ljust(width) + "".join(
            f"{'PAI@' + _pct(f):>10}{'PEI@' + _pct(f):>10}{'HR@' + _pct(f):>10}"
            for f in self.fractions
        )
        lines.append(head)
        for r in self.results:
            row = r.model.ljust(width)
            for f in self.fractions:
                row += (
                    f"{r.mean(f, 'pai'):10.2f}{r.mean(f, 'pei'):10.3f}{r.mean(f, 'hit_rate'):10.3f}"
                )
            lines.append(row)
        return "\n".join(lines)


@dataclass(frozen=True)
class HitsDifference:
    """Hits of one model minus a baseline's, summed over windows, with a bootstrap interval."""

    fraction: float
    difference: float
    low: float
    high: float
    windows: int


def hits_difference(
    model: ModelResult,
    baseline: ModelResult,
    fraction: float,
    *,
    resamples: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> HitsDifference:
    """Return ``model``'s hits minus ``baseline``'s over the windows, with an interval.

    Both results must come from the same backtest (the same windows, observed in the
    same way). The interval is a paired percentile bootstrap over windows: windows are
    drawn with replacement ``resamples`` times (seeded), and each draw's summed
    difference of hits is kept; an interval that holds 0 says the windows cannot tell
    the two models apart. Windows are the unit because incidents within one window are
    scored against the same forecast.

    Examples
    --------
    >>> a, b = ModelResult("a", {}), ModelResult("b", {})
    >>> a.scores[0.01] = [Score(0.01, 1, 1, h, 5, 0, 0, 0) for h in (2.0, 1.0, 3.0)]
    >>> b.scores[0.01] = [Score(0.01, 1, 1, h, 5, 0, 0, 0) for h in (1.0, 0.0, 2.0)]
    >>> d = hits_difference(a, b, 0.01)
    >>> d.difference, d.low, d.high, d.windows
    (3.0, 3.0, 3.0, 3)
    """
    mine = np.array([s.hits for s in model.scores[fraction]], float)
    theirs = np.array([s.hits for s in baseline.scores[fraction]], float)
    if mine.shape != theirs.shape or not mine.size:
        raise ValueError("hits_difference needs two results over the same, non-empty windows")
    diff = mine - theirs
    rng = np.random.default_rng(seed)
    draws = diff[rng.integers(0, diff.size, (resamples, diff.size))].sum(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(draws, [tail, 100.0 - tail])
    return HitsDifference(fraction, float(diff.sum()), float(low), float(high), int(diff.size))


def consecutive(start: float, length: float, count: int) -> list[tuple[float, float]]:
    """Return ``count`` back-to-back windows of ``length`` days from ``start``.

    Examples
    --------
    >>> consecutive(0.0, 7.0, 2)
    [(0.0, 7.0), (7.0, 14.0)]
    """
    return [(start + k * length, start + (k + 1) * length) for k in range(count)]


def _pct(f: float) -> str:
    return f"{f * 100:g}%"


def rolling_backtest(
    history: History,
    grid: SquareGrid | CellGrid,
    models: Sequence[Model],
    windows: Sequence[tuple[float, float]],
    fractions: Sequence[float] = (0.01, 0.05),
) -> Backtest:
    """Fit and score each model at each origin (see the module docstring).

    Parameters
    ----------
    history
        One category's incidents (training and test periods).
    grid
        The forecast grid: square cells, or H3 / area-layer cells
        (:mod:`crossbeat.forecast.cells`, with models wrapped in ``OnCells``).
    models
        Models behind :class:`crossbeat.forecast.models.Model`.
    windows
        ``(start, end)`` forecast windows in float days, ascending; each start is
        the origin (see :func:`consecutive`).
    fractions
        Area fractions to flag.
    """
    results = [ModelResult(m.name, dict(m.params())) for m in models]
    for r in results:
        r.scores = {f: [] for f in fractions}
    total = 0.0
    for o, e in windows:
        observed = grid.observed(history, history.weights(o, e))
        total += float(observed.sum())
        for m, r in zip(models, results, strict=True):
            began = time.perf_counter()
            # Square-grid models take a SquareGrid; OnCells wrappers take a CellGrid.
            m.fit(history, grid, o)  # type: ignore[arg-type]
            expected = m.predict(o, e)
            r.seconds += time.perf_counter() - began
            r.expected.append(expected)
            r.observed.append(observed)
            for f in fractions:
                r.scores[f].append(score(expected, observed, grid.area, f))
    for m, r in zip(models, results, strict=True):
        r.params = dict(m.params())
    return Backtest(list(windows), tuple(fractions), results, total)
