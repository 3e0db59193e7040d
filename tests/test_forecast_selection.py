"""The count model chosen online, on every earlier window (issue #13)."""

from __future__ import annotations

import numpy as np
import pytest

from crossbeat.forecast.backtest import consecutive, rolling_backtest
from crossbeat.forecast.grid import grid_for
from crossbeat.forecast.history import History
from crossbeat.forecast.metrics import score
from crossbeat.forecast.models import NaiveCounts
from crossbeat.forecast.selection import OnlineSelection, count_family
from tests.forecast_support import synthetic

ORIGIN = 18000.0 + 600.0


class Away(NaiveCounts):
    """As peaked as naive counts, but on other cells: a member that ranks cells badly."""

    def predict(self, start: float, end: float) -> np.ndarray:
        return np.roll(super().predict(start, end), 997)


@pytest.fixture(scope="module")
def world() -> tuple[History, object]:
    h = synthetic()
    return h, grid_for(h.before(ORIGIN), 150.0)


def test_a_fresh_fit_warms_up_on_windows_before_the_origin_and_picks_the_better_member(
    world,
) -> None:
    h, g = world
    # The bad member is listed first: a tie would pick it, evidence must not.
    sel = OnlineSelection([Away(name="away"), NaiveCounts()], warmup=4)
    sel.fit(h, g, ORIGIN)
    p = sel.predict(ORIGIN, ORIGIN + 7)
    naive = NaiveCounts()
    naive.fit(h, g, ORIGIN)
    assert sel.chosen == "naive"
    assert np.array_equal(p, naive.predict(ORIGIN, ORIGIN + 7))
    params = sel.params()
    assert params["windows_scored"] == 4 and params["hits"]["naive"] > params["hits"]["away"]
    # No look-ahead: moving every incident after the origin elsewhere changes nothing.
    after = h.t0 >= ORIGIN
    moved = History(h.frame, np.where(after, h.x[::-1], h.x), np.where(after, h.y[::-1], h.y),
                    h.t0, h.t1, h.category, h.owner)  # fmt: skip
    other = OnlineSelection([Away(name="away"), NaiveCounts()], warmup=4)
    other.fit(moved, g, ORIGIN)
    assert np.array_equal(other.predict(ORIGIN, ORIGIN + 7), p)
    assert other.params()["hits"] == params["hits"]


def test_in_a_backtest_each_window_is_chosen_on_every_window_before_it(world) -> None:
    h, g = world
    windows = consecutive(ORIGIN, 7.0, 5)
    sel = OnlineSelection([Away(name="away"), NaiveCounts()], warmup=0)
    members = [Away(name="away"), NaiveCounts()]
    bt = rolling_backtest(h, g, [sel, *members], windows)
    chosen, away, naive = bt.results
    # The tally, recomputed from the members' own backtest: hits at 1 % and 5 %.
    hits = {
        r.model: [
            sum(score(e, o, g.area, f).hits for f in (0.01, 0.05))
            for e, o in zip(r.expected, r.observed, strict=True)
        ]
        for r in (away, naive)
    }
    for k in range(len(windows)):
        tally = [sum(hits["away"][:k]), sum(hits["naive"][:k])]
        # No window scored yet (k == 0) or a tie: the first member; else the larger tally.
        expect = away if tally[0] >= tally[1] else naive
        assert np.array_equal(chosen.expected[k], expect.expected[k]), k
    assert sel.params()["windows_scored"] == len(windows) - 1
    assert sel.params()["hits"] == {n: float(sum(v[:-1])) for n, v in hits.items()}


def test_the_count_family_starts_with_naive_counts_and_names_each_member_once() -> None:
    family = count_family()
    names = [m.name for m in family]
    assert names[0] == "naive" and len(set(names)) == len(names) == 9


def test_predicting_before_fitting_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        OnlineSelection(count_family()).predict(0.0, 7.0)


def test_the_cli_offers_exactly_the_service_models() -> None:
    import click

    from crossbeat.cli import cli
    from crossbeat.forecast.service import model_names

    run = cli.commands["forecast"].commands["run"]  # type: ignore[attr-defined]
    option = next(p for p in run.params if p.name == "model")
    assert isinstance(option.type, click.Choice)
    assert list(option.type.choices) == model_names()
    # The default is the model chosen on validation windows, in the CLI and the API.
    nij = cli.commands["forecast"].commands["nij"]  # type: ignore[attr-defined]
    nij_model = next(p for p in nij.params if p.name == "model")
    from crossbeat.api.routes.forecasts import ForecastIn

    assert option.default == nij_model.default == "ensemble-decayed"
    assert ForecastIn.model_fields["model"].default == "ensemble-decayed"
