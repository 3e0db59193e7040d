"""Forecasts on Toronto's real incidents (../shared/data/toronto-mci; skipped without it).

The full comparison of every model over the 52 weeks of 2020 is
benchmarks/forecast_backtest.py (docs/forecasting.md); this checks a fast slice of it
and the NIJ files on real data with the independent scorer.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from crossbeat.forecast import nij
from crossbeat.forecast.backtest import consecutive, rolling_backtest
from crossbeat.forecast.grid import grid_for
from crossbeat.forecast.models import KernelDensity, NaiveCounts
from crossbeat.forecast.sepp import SelfExciting
from tests.conftest import shared_data
from tests.nij_scorer import score_files

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def toronto():
    shared_data("toronto-mci", "train.csv")
    sys.path.insert(0, str(BENCHMARKS))
    import forecast_data

    return forecast_data.toronto().of("Break and Enter")


def _jan1() -> float:
    import numpy as np

    from crossbeat.forecast.history import days

    return float(days(np.array(["2020-01-01"], dtype="datetime64[us]"))[0])


def test_sepp_beats_kde_and_naive_counts_on_toronto_burglary(toronto) -> None:
    start = _jan1()
    grid = grid_for(toronto.before(start), 150.0)
    bt = rolling_backtest(
        toronto, grid, [SelfExciting(), NaiveCounts(), KernelDensity()], consecutive(start, 7.0, 8)
    )
    sepp, naive, kde = bt.results
    for f in (0.01, 0.05):
        assert sepp.mean(f, "pai") > kde.mean(f, "pai") * 1.1, bt.table()
        assert sepp.mean(f, "hit_rate") > kde.mean(f, "hit_rate"), bt.table()
    assert sepp.mean(0.05, "pai") > naive.mean(0.05, "pai"), bt.table()
    assert sepp.mean(0.01, "pai") > 15


def test_the_independent_scorer_agrees_on_a_real_nij_submission(toronto, tmp_path: Path) -> None:
    start = _jan1()
    grid = grid_for(toronto.before(start), 600 * 0.3048)
    f = nij.nij_forecast(SelfExciting(), toronto, grid, start, "2w", 0.25 * nij.SQ_MI)
    gj, grid_csv = nij.write_submission(f, tmp_path)
    window = toronto.take((toronto.t0 >= f.start) & (toronto.t0 < f.end))
    lon, lat = toronto.frame.inverse(window.x, window.y)
    pts = tmp_path / "incidents.csv"
    with pts.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["lon", "lat"])
        w.writerows(zip(lon, lat, strict=True))
    observed = grid.counts(window)
    hits = observed[f.flagged].sum()
    theirs = score_files(gj, grid_csv, pts)
    assert theirs.hits == hits and theirs.incidents == observed.sum()
    assert theirs.pai == pytest.approx(
        (hits / observed.sum()) / (f.flagged_area / grid.total_area), rel=3e-3
    )
    assert 0.25 * 0.999 <= theirs.flagged_area_m2 / nij.SQ_MI <= 0.75
    assert theirs.pai > 20
