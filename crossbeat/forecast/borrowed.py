"""Borrowing strength from other categories: counts mixed with related ones (issue #13).

A small city's category (the City of London's 200 vehicle crimes a year) leaves most
cells with no incident or one, so naive counts tie across most of the map and the
cells flagged at 5 % of the area are largely a tie-break. The other categories
recorded at the same places say where people, vehicles and targets are: places busy
with thefts from the person or with crime of every kind are where the next vehicle
crime is more likely, among cells the category's own counts cannot separate.

:class:`BorrowedCounts` forecasts each cell as the category's own count over the last
``days`` days plus ``weight`` times a related history's count over the same days, each
normalised to sum 1 (so the weight is the related surface's share against the
category's own), scaled to the category's recent rate like the other count models.
:func:`choose_related` picks the related categories and the weight on validation
windows that all end before the forecasts it is used for: the candidate with the most
pooled hits at the given area fractions, weight 0 (naive counts) included so that
naive counts stay when nothing beats them (docs/forecasting.md, "Borrowing from other
categories"). :func:`borrowed_selection` is the same rule applied again before every
forecast, on every window that has ended by then (the service's ``borrowed`` model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crossbeat.forecast.grid import SquareGrid
from crossbeat.forecast.history import History
from crossbeat.forecast.metrics import score
from crossbeat.forecast.models import Model, _Fitted, _recent_rate, _scaled
from crossbeat.forecast.selection import OnlineSelection

#: The weights :func:`choose_related` tries (0 is naive counts).
WEIGHTS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
#: The label of the related history holding every category (the forecast one included).
ALL = "all categories"


def _share(counts: np.ndarray) -> np.ndarray:
    total = float(counts.sum())
    return counts / total if total > 0 else np.zeros_like(counts)


class SharedCounts:
    """What the members of one borrowed family compute alike at an origin, computed once.

    Every member of :func:`borrowed_family` fitted at an origin on the same history and
    grid needs the same history before the origin, the same share of its own counts and
    the same recent rate, and the members that borrow from the same related history the
    same related share: without this each of 36 candidates recomputed them. Values are
    kept for one (history, grid, origin) at a time, with references to the history and
    grid they were computed from, so an id is never mistaken for another object's.
    """

    def __init__(self) -> None:
        self._key: tuple[int, int, float] | None = None
        self._held: tuple[History, SquareGrid] | None = None
        self._values: dict[tuple[Any, ...], Any] = {}

    def value(
        self, history: History, grid: SquareGrid, origin: float, what: tuple[Any, ...], make: Any
    ) -> Any:
        """Return ``make()`` for ``what`` at this (history, grid, origin), computed once."""
        key = (id(history), id(grid), origin)
        if key != self._key:
            self._key, self._held, self._values = key, (history, grid), {}
        if what not in self._values:
            self._values[what] = make()
        return self._values[what]


@dataclass
class BorrowedCounts:
    """Own counts plus ``weight`` × a related history's counts, each normalised to sum 1.

    ``related`` holds the incidents of the related categories at any time; only those
    that started before each origin are used (as for the forecast category itself), so
    a backtest sees no incident of any category from its windows. ``related_label``
    names them on the model card. With ``weight`` 0 this is naive counts over ``days``.
    ``shared`` (given by :func:`borrowed_family` to all its members) computes what the
    members have in common once per origin; the forecasts are the same without it.
    """

    related: History
    weight: float = 1.0
    days: float = 365.0
    related_label: str = ALL
    name: str = "borrowed"
    shared: SharedCounts | None = field(default=None, repr=False, compare=False)
    _f: _Fitted = field(default_factory=_Fitted, repr=False)
    _r: History | None = field(default=None, repr=False)
    _source: History | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not np.isfinite(self.weight) or self.weight < 0:
            raise ValueError(f"weight must be a finite number >= 0, not {self.weight}")
        if not self.days > 0:
            raise ValueError(f"days must be > 0, not {self.days}")

    def _once(self, what: tuple[Any, ...], make: Any) -> Any:
        # Computed once per origin for the whole family when it shares, else here.
        if self.shared is None or self._source is None or self._f.grid is None:
            return make()
        return self.shared.value(self._source, self._f.grid, self._f.origin, what, make)

    def fit(self, history: History, grid: SquareGrid, origin: float) -> None:
        """Remember both histories before ``origin``."""
        self._source = history
        self._f = _Fitted(None, grid, origin)
        self._f.history = self._once(("before",), lambda: history.before(origin))
        self._r = self._once(("before", id(self.related)), lambda: self.related.before(origin))

    def surface(self) -> np.ndarray:
        """Return the unscaled mix ``own share + weight × related share`` per cell."""
        h, g = self._f.need()
        r = self._r
        assert r is not None
        o, days = self._f.origin, self.days
        own = self._once(("own", days), lambda: _share(g.counts(h, h.weights(o - days, o))))
        if self.weight == 0:
            return np.array(own)
        other = self._once(
            ("related", id(self.related), days),
            lambda: _share(g.counts(r, r.weights(o - days, o))),
        )
        return np.asarray(own + self.weight * other)

    def predict(self, start: float, end: float) -> np.ndarray:
        """Return the mixed counts, scaled to the category's recent rate over the window."""
        h, _ = self._f.need()
        rate = self._once(("rate",), lambda: _recent_rate(h, self._f.origin))
        return _scaled(self.surface(), rate, start, end)

    def params(self) -> dict[str, Any]:
        """Return the related categories, the weight and the look-back."""
        return {"related": self.related_label, "weight": self.weight, "days": self.days}


@dataclass(frozen=True)
class RelatedChoice:
    """The outcome of :func:`choose_related`: the chosen pair and every candidate's hits."""

    related: str
    weight: float
    windows: int
    #: ``(related label, weight) -> pooled hits at each fraction``, every candidate.
    hits: dict[tuple[str, float], tuple[float, ...]]

    def model(self, history: History, category: str, *, days: float = 365.0) -> BorrowedCounts:
        """Return the chosen :class:`BorrowedCounts` for ``category`` of ``history``."""
        return BorrowedCounts(
            related_history(history, category, self.related),
            weight=self.weight,
            days=days,
            related_label=self.related,
            name=f"borrowed ({self.related} ×{self.weight:g})",
        )


def related_history(history: History, category: str, related: str) -> History:
    """Return the incidents :func:`choose_related`'s ``related`` label stands for.

    :data:`ALL` is every category (``category`` included); another label is that one
    category, which must differ from ``category``.
    """
    if related == ALL:
        return history
    if related == category:
        raise ValueError(f"the related category must differ from the forecast one ({category})")
    return history.of(related)


def choose_related(
    history: History,
    category: str,
    grid: SquareGrid,
    windows: Sequence[tuple[float, float]],
    *,
    related: Sequence[str] | None = None,
    weights: Sequence[float] = WEIGHTS,
    days: float = 365.0,
    fractions: Sequence[float] = (0.01, 0.05),
) -> RelatedChoice:
    """Choose the related categories and weight on validation ``windows``.

    Each window ``[start, end)`` is forecast by every candidate fitted on the incidents
    before ``start`` (rolling origin), and scored by the incidents of ``category`` in
    it; the candidate with the most hits pooled over the windows and ``fractions``
    wins. Ties go to the smaller weight (weight 0, naive counts, first), then to the
    candidate listed first (``related`` in order, then :data:`ALL`); weight 0 is one
    candidate, labelled :data:`ALL`. Only the windows
    matter: pass windows that end before the forecasts the choice is for.

    ``related`` defaults to every other category in ``history`` (sorted) and
    :data:`ALL`.
    """
    if not windows:
        raise ValueError("choose_related needs at least one validation window")
    if any(w < 0 or not np.isfinite(w) for w in weights):
        raise ValueError("weights must be finite and >= 0")
    own = history.of(category)
    labels = list(related) if related is not None else sorted(set(history.category) - {category})
    if related is None:
        labels.append(ALL)
    positive = sorted({float(w) for w in weights} - {0.0})
    keys = ([(ALL, 0.0)] if 0.0 in {float(w) for w in weights} else []) + [
        (lab, w) for w in positive for lab in labels
    ]  # weight 0 is naive counts whatever the label: one candidate
    models = {
        (lab, w): BorrowedCounts(related_history(history, category, lab), weight=w, days=days)
        for lab, w in keys
    }
    hits = {k: np.zeros(len(fractions)) for k in models}
    for start, end in windows:
        observed = grid.observed(own, own.weights(start, end))
        for key, m in models.items():
            m.fit(own, grid, start)
            p = m.predict(start, end)
            for i, f in enumerate(fractions):
                hits[key][i] += score(p, observed, grid.area, f).hits
    best = max(keys, key=lambda k: (float(hits[k].sum()), -keys.index(k)))
    return RelatedChoice(
        best[0],
        best[1],
        len(windows),
        {k: tuple(float(x) for x in v) for k, v in hits.items()},
    )


def borrowed_family(
    history: History,
    category: str,
    *,
    related: Sequence[str] | None = None,
    weights: Sequence[float] = WEIGHTS,
    days: float = 365.0,
) -> list[Model]:
    """Return :func:`choose_related`'s candidates as models, in its order of tie-breaks.

    ``history`` holds every category the candidates may borrow from (the forecast one
    included); ``related`` defaults to every other category in it and :data:`ALL`.
    Weight 0 (naive counts over ``days``) comes first, then each positive weight in
    ascending order with the labels in order: a selection that breaks ties to the
    member listed first breaks them as :func:`choose_related` does.
    """
    if any(w < 0 or not np.isfinite(w) for w in weights):
        raise ValueError("weights must be finite and >= 0")
    labels = list(related) if related is not None else sorted(set(history.category) - {category})
    if related is None:
        labels.append(ALL)
    # One related history per label and one store of what the members share.
    histories = {lab: related_history(history, category, lab) for lab in labels}
    shared = SharedCounts()
    members: list[Model] = []
    if 0.0 in {float(w) for w in weights}:
        members.append(BorrowedCounts(history, weight=0.0, days=days, name="naive", shared=shared))
    for w in sorted({float(w) for w in weights} - {0.0}):
        for lab in labels:
            members.append(
                BorrowedCounts(
                    histories[lab],
                    weight=w,
                    days=days,
                    related_label=lab,
                    name=f"borrowed ({lab} ×{w:g})",
                    shared=shared,
                )
            )
    return members


def borrowed_selection(
    history: History,
    category: str,
    *,
    related: Sequence[str] | None = None,
    warmup: int = 6,
    fractions: tuple[float, ...] = (0.01, 0.05),
    name: str = "borrowed",
) -> OnlineSelection:
    """Return borrowing chosen before every forecast on every earlier window.

    An :class:`~crossbeat.forecast.selection.OnlineSelection` over
    :func:`borrowed_family`: the related categories and weight with the most hits at
    ``fractions`` of the area over every window that has ended by the origin (before a
    first forecast, the ``warmup`` windows of the forecast's length just before it),
    ties to the smaller weight. Fit it on the forecast category's history; ``history``
    here is what it may borrow from.
    """
    return OnlineSelection(
        borrowed_family(history, category, related=related),
        fractions=fractions,
        warmup=warmup,
        name=name,
    )
