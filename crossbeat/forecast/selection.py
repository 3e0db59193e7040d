"""Choosing a model online: one member of a family per forecast, on earlier windows (issue #13).

:class:`OnlineSelection` is a model whose forecast is one member's, the member that
caught the most incidents in the flagged cells over *every* earlier window it saw end
(an expanding validation set, rolling origin, no look-ahead). :func:`count_family` is
the family of count models it chooses among as ``counts-selected``
(:data:`crossbeat.forecast.service.MODELS`): naive counts over one, two and six years,
decayed counts with half-lives of 90, 180, 365 and 1095 days and empirical-Bayes shrunk
counts with half-lives of 365 and 1095 days. The decay rate and the shrinkage are then
chosen on the windows before each forecast instead of fixed once on a thin validation
set (docs/forecasting.md, "London: the count model chosen online").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crossbeat.forecast.grid import SquareGrid
from crossbeat.forecast.history import History
from crossbeat.forecast.metrics import score
from crossbeat.forecast.models import DecayedCounts, Model, NaiveCounts, ShrunkCounts


def count_family() -> list[Model]:
    """Return fresh count models, in the order :class:`OnlineSelection` breaks ties.

    Naive counts (365 days) first, so with no evidence the choice is naive counts.
    """
    return [
        NaiveCounts(name="naive"),
        NaiveCounts(days=730, name="naive-730"),
        NaiveCounts(days=2190, name="naive-2190"),
        DecayedCounts(half_life=90.0, name="decayed-90"),
        DecayedCounts(half_life=180.0, name="decayed-180"),
        DecayedCounts(half_life=365.0, name="decayed-365"),
        DecayedCounts(half_life=1095.0, name="decayed-1095"),
        ShrunkCounts(half_life=365.0, name="shrunk-365"),
        ShrunkCounts(half_life=1095.0, name="shrunk-1095"),
    ]


@dataclass
class OnlineSelection:
    """The member of a family that did best on every earlier window forecasts the next one.

    Method (rolling origin, no look-ahead): every member's forecast of each window is
    kept until the window has ended by a later origin; then each member's hits (the
    incidents in its flagged cells at each of ``fractions`` of the area, as
    :func:`crossbeat.forecast.metrics.score` counts them) are added to its tally and the
    surfaces dropped. Each forecast is the forecast of the member with the largest
    tally over every window scored so far (nothing is forgotten: windows with few
    incidents, as a small city's months are, only add evidence); ties go to the member
    listed first. A window in which nothing happened adds no hits to anyone. Before its
    first forecast, with no window scored yet (a fresh fit, as the service makes one),
    the members are scored on ``warmup`` windows of the forecast's length just before
    the origin (each fitted on what came before it); ``warmup=0`` starts from the
    first member.
    """

    members: Sequence[Model]
    fractions: tuple[float, ...] = (0.01, 0.05)
    warmup: int = 6
    name: str = "selected"
    chosen: str | None = None
    #: The member chosen at each forecast, in order.
    picks: list[str] = field(default_factory=list)
    _tally: np.ndarray | None = field(default=None, repr=False)
    _scored: int = field(default=0, repr=False)
    _pending: list[tuple[float, float, list[np.ndarray]]] = field(default_factory=list, repr=False)
    _grid: SquareGrid | None = field(default=None, repr=False)
    _past: History | None = field(default=None, repr=False)
    _origin: float = field(default=float("nan"), repr=False)

    def _add(self, preds: Sequence[np.ndarray], observed: np.ndarray) -> None:
        assert self._tally is not None and self._grid is not None
        for i, p in enumerate(preds):
            self._tally[i] += sum(
                score(p, observed, self._grid.area, f).hits for f in self.fractions
            )
        self._scored += 1

    def fit(self, history: History, grid: SquareGrid, origin: float) -> None:
        """Score the remembered windows that ended by ``origin``, then fit every member."""
        if grid is not self._grid or self._tally is None:
            self._grid, self._scored, self._pending = grid, 0, []
            self._tally = np.zeros(len(self.members))
        past = history.before(origin)
        keep = []
        for s, e, preds in self._pending:
            if e <= origin + 1e-9:
                self._add(preds, grid.observed(past, past.weights(s, e)))
            else:
                keep.append((s, e, preds))
        self._pending = keep
        self._past, self._origin = past, origin
        for m in self.members:
            m.fit(past, grid, origin)

    def _warm_up(self, length: float) -> None:
        assert self._past is not None and self._grid is not None
        past, grid = self._past, self._grid
        for k in range(self.warmup, 0, -1):
            s = self._origin - k * length
            observed = grid.observed(past, past.weights(s, s + length))
            preds = []
            for m in self.members:
                m.fit(past, grid, s)
                preds.append(m.predict(s, s + length))
            self._add(preds, observed)
        for m in self.members:  # back to the forecast's origin
            m.fit(past, grid, self._origin)

    def predict(self, start: float, end: float) -> np.ndarray:
        """Return the chosen member's forecast (every member's is kept for scoring later)."""
        if self._tally is None:
            raise RuntimeError("fit the model before predicting")
        if self._scored == 0 and self.warmup > 0:
            self._warm_up(end - start)
        preds = [m.predict(start, end) for m in self.members]
        self._pending.append((start, end, preds))
        best = int(np.argmax(self._tally))  # the first of the ties
        self.chosen = self.members[best].name
        self.picks.append(self.chosen)
        return preds[best]

    def params(self) -> dict[str, Any]:
        """Return the members, the rule, the windows scored, each tally and the choice."""
        tally = self._tally if self._tally is not None else np.zeros(len(self.members))
        return {
            "members": [{"model": m.name, **m.params()} for m in self.members],
            "rule": "most hits over every earlier window; ties to the first member",
            "fractions": list(self.fractions),
            "warmup_windows": self.warmup,
            "windows_scored": self._scored,
            "hits": {m.name: float(t) for m, t in zip(self.members, tally, strict=True)},
            "chosen": self.chosen,
        }
