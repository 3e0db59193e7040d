"""Borrowing from other categories: BorrowedCounts and choose_related (issue #13).

Deterministic synthetic places with known answers: the forecast category's own counts
point at the wrong places, a related category at the right ones.
"""

from __future__ import annotations

import numpy as np
import pytest

from crossbeat.forecast.borrowed import (
    ALL,
    BorrowedCounts,
    borrowed_family,
    borrowed_selection,
    choose_related,
    related_history,
)
from crossbeat.forecast.grid import grid_for
from crossbeat.forecast.history import History
from crossbeat.forecast.models import NaiveCounts
from tests.forecast_support import FRAME

ORIGIN = 20000.0
#: Ten places 200 m apart; P0 is x = 0, P9 is x = 1800.
PLACES = np.arange(10) * 200.0 + 25.0
#: Three validation windows of 30 days from ORIGIN.
WINDOWS = [(ORIGIN + 30.0 * k, ORIGIN + 30.0 * (k + 1)) for k in range(3)]


def _events(place: int, n: int, lo: float, hi: float, cat: str) -> list[tuple[float, float, str]]:
    return [(PLACES[place], t, cat) for t in np.linspace(lo, hi, n, endpoint=False)]


def _world(extra: list[tuple[float, float, str]] = ()) -> History:  # type: ignore[assignment]
    """Return the synthetic places (``extra`` rows appended: ``(x, t, category)``).

    Before ORIGIN, "v" (the forecast category) has 2 incidents at P8 and P9 and 1 at the
    others; "t" has 10, 9, …, 1 at P0…P9, "u" the reverse. In each validation window,
    "v" has 3 at P0 and 2 at P1, "t" and "u" their usual pattern.
    """
    rows: list[tuple[float, float, str]] = []
    for p in range(10):
        rows += _events(p, 2 if p >= 8 else 1, ORIGIN - 300.0, ORIGIN - 10.0, "v")
        rows += _events(p, 10 - p, ORIGIN - 300.0, ORIGIN - 1.0, "t")
        rows += _events(p, p + 1, ORIGIN - 300.0, ORIGIN - 1.0, "u")
    for s, e in WINDOWS:
        rows += _events(0, 3, s, e, "v") + _events(1, 2, s, e, "v")
        for p in range(10):
            rows += _events(p, 10 - p, s, e, "t") + _events(p, p + 1, s, e, "u")
    rows += list(extra)
    x = np.array([r[0] for r in rows])
    t = np.array([r[1] for r in rows])
    n = len(rows)
    return History(FRAME, x, np.full(n, 25.0), t, t.copy(),
                   np.array([r[2] for r in rows], dtype=object),
                   np.full(n, "a", dtype=object))  # fmt: skip


def _cell(g, place: int) -> int:
    return int(g.cell_index(np.array([PLACES[place]]), np.array([25.0]))[0])


def test_weight_zero_is_naive_counts_and_a_weight_adds_the_related_share() -> None:
    h = _world()
    g = grid_for(h, 50.0)
    own, related = h.of("v"), h.of("t")
    naive, zero = NaiveCounts(), BorrowedCounts(related, weight=0.0)
    naive.fit(own, g, ORIGIN)
    zero.fit(own, g, ORIGIN)
    assert np.allclose(zero.predict(ORIGIN, ORIGIN + 30), naive.predict(ORIGIN, ORIGIN + 30))
    one = BorrowedCounts(related, weight=1.0, related_label="t")
    one.fit(own, g, ORIGIN)
    s = one.surface()
    # The known answer: own share + related share (12 "v", 55 "t" before the origin).
    assert s[_cell(g, 0)] == pytest.approx(1 / 12 + 10 / 55)
    assert s[_cell(g, 8)] == pytest.approx(2 / 12 + 2 / 55)
    p = one.predict(ORIGIN, ORIGIN + 30)
    # Scaled to the category's own rate, as naive counts are; the ranking is the mix's.
    assert p.sum() == pytest.approx(naive.predict(ORIGIN, ORIGIN + 30).sum())
    assert p.argmax() == _cell(g, 0)
    assert one.params() == {"related": "t", "weight": 1.0, "days": 365.0}


def test_borrowed_counts_see_no_incident_of_any_category_after_the_origin() -> None:
    h = _world()
    later = _world([(PLACES[9], ORIGIN + 1.0, "t")] * 50 + [(PLACES[9], ORIGIN + 2.0, "v")] * 9)
    g = grid_for(h, 50.0)
    a, b = BorrowedCounts(h.of("t"), weight=2.0), BorrowedCounts(later.of("t"), weight=2.0)
    a.fit(h.of("v"), g, ORIGIN)
    b.fit(later.of("v"), g, ORIGIN)
    assert np.array_equal(a.predict(ORIGIN, ORIGIN + 7), b.predict(ORIGIN, ORIGIN + 7))


def test_choose_related_picks_the_category_that_caught_the_incidents_and_the_least_weight() -> None:
    h = _world()
    g = grid_for(h, 50.0)
    two = (2.0 / g.n,)  # two cells flagged
    pick = choose_related(h, "v", g, WINDOWS, fractions=two)
    # Naive counts flag P8 and P9 in the first window (none of its 5 incidents), then
    # P0 and P1; "t" at weight 1 flags P0 and P1 from the first window (at 0.5 not yet:
    # P8 = 2/12 + 2/55 > P0 = 1/12 + 5/55), so 15 hits against 10; weight 2 and 4 tie it.
    assert (pick.related, pick.weight) == ("t", 1.0)
    assert pick.hits[("t", 1.0)] == (15.0,)
    assert pick.hits[(ALL, 0.0)] == (10.0,)
    assert pick.hits[("t", 0.5)] == (10.0,)
    assert pick.hits[("u", 4.0)] < pick.hits[(ALL, 0.0)]
    assert pick.windows == 3
    model = pick.model(h, "v")
    assert (model.weight, model.related_label) == (1.0, "t")
    assert set(model.related.category) == {"t"}
    # What happens after the last validation window changes nothing.
    later = _world([(PLACES[9], WINDOWS[-1][1] + 1.0, "v")] * 40)
    again = choose_related(later, "v", g, WINDOWS, fractions=two)
    assert again.hits == pick.hits


def test_borrowing_chosen_online_applies_choose_related_on_every_earlier_window() -> None:
    h = _world()
    g = grid_for(h, 50.0)
    own, two = h.of("v"), (2.0 / g.n,)
    pick = choose_related(h, "v", g, WINDOWS, fractions=two)
    family = borrowed_family(h, "v")
    # choose_related's candidates, in its order of tie-breaks: naive counts first.
    assert family[0].name == "naive" and len(family) == 1 + 7 * 3
    names = {(m.related_label, m.weight): m.name for m in family}  # type: ignore[attr-defined]
    names[(ALL, 0.0)] = "naive"
    # A rolling backtest over the windows, then a forecast after the last one.
    rolling = borrowed_selection(h, "v", warmup=0, fractions=two)
    for s, e in WINDOWS:
        rolling.fit(own, g, s)
        rolling.predict(s, e)
    end = WINDOWS[-1][1]
    rolling.fit(own, g, end)
    rolling.predict(end, end + 30.0)
    # A fresh fit at the same origin warms up on the same three windows.
    fresh = borrowed_selection(h, "v", warmup=3, fractions=two)
    fresh.fit(own, g, end)
    fresh.predict(end, end + 30.0)
    for sel in (rolling, fresh):
        params = sel.params()
        assert params["windows_scored"] == 3
        assert params["chosen"] == names[(pick.related, pick.weight)] == "borrowed (t ×1)"
        assert params["hits"] == {names[k]: sum(v) for k, v in pick.hits.items()}
    # Before any window has ended, the choice is naive counts.
    first = borrowed_selection(h, "v", warmup=0, fractions=two)
    first.fit(own, g, WINDOWS[0][0])
    first.predict(*WINDOWS[0])
    assert first.chosen == "naive"


def test_a_family_sharing_its_counts_forecasts_as_its_members_alone_would() -> None:
    import dataclasses

    h = _world([(PLACES[4], ORIGIN + 40.0, "t")] * 7)
    g = grid_for(h, 50.0)
    own = h.of("v")
    family = borrowed_family(h, "v")
    for origin in (ORIGIN, ORIGIN + 45.0, ORIGIN):  # back to an earlier origin too
        for m in family:
            m.fit(own, g, origin)
        shared = [m.predict(origin, origin + 30.0) for m in family]
        for m, p in zip(family, shared, strict=True):
            alone = dataclasses.replace(m, shared=None)  # type: ignore[type-var]
            alone.fit(own, g, origin)
            assert np.array_equal(alone.predict(origin, origin + 30.0), p), m.name


def test_choose_related_keeps_naive_counts_when_nothing_beats_them() -> None:
    h = _world()
    g = grid_for(h, 50.0)
    # Only "u" (pointing at P9, P8) to borrow from, and windows from the second on,
    # where naive counts already flag P0 and P1: no weight catches more.
    pick = choose_related(h, "v", g, WINDOWS[1:], related=["u"], fractions=(2.0 / g.n,))
    assert (pick.related, pick.weight) == (ALL, 0.0)
    assert pick.model(h, "v").weight == 0.0


def test_bad_borrowing_is_refused_with_the_reason() -> None:
    h = _world()
    g = grid_for(h, 50.0)
    with pytest.raises(ValueError, match="weight"):
        BorrowedCounts(h, weight=-1.0)
    with pytest.raises(ValueError, match="weight"):
        BorrowedCounts(h, weight=float("nan"))
    with pytest.raises(ValueError, match="days"):
        BorrowedCounts(h, days=0.0)
    with pytest.raises(ValueError, match="differ"):
        related_history(h, "v", "v")
    with pytest.raises(ValueError, match="validation window"):
        choose_related(h, "v", g, [])
    with pytest.raises(ValueError, match="weights"):
        choose_related(h, "v", g, WINDOWS, weights=(0.0, -0.5))
    with pytest.raises(RuntimeError, match="fit"):
        BorrowedCounts(h).predict(ORIGIN, ORIGIN + 7)
