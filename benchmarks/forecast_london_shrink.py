"""City of London: naive counts shrunk towards the long-run rate, weights chosen before each origin.

Usage::

    python benchmarks/forecast_london_shrink.py [--category "vehicle crime"]

The London windows of ``forecast_backtest.py`` (monthly, 2017-01…2017-06 and
2020-02…2020-12, 100 m cells clipped to the City). Compared in one run: naive counts
(365 days), KDE, the equal-weight ``ensemble`` and ``naive-shrunk``: a
:class:`~crossbeat.forecast.models.LearnedEnsemble` of one-year and six-year counts whose
weights (step 0.25) maximise the pooled hit rate at 1, 2 and 5 % on the 12 monthly
windows that ended by each origin (no look-ahead: nothing of the scored window is
seen). Each model has its own member instances. Prints the machine load.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import forecast_backtest  # noqa: E402
import forecast_data  # noqa: E402

from crossbeat.forecast.backtest import rolling_backtest  # noqa: E402
from crossbeat.forecast.gbm import GradientBoosted  # noqa: E402
from crossbeat.forecast.grid import grid_for  # noqa: E402
from crossbeat.forecast.models import (  # noqa: E402
    Ensemble,
    KernelDensity,
    LearnedEnsemble,
    NaiveCounts,
)
from crossbeat.forecast.sepp import SelfExciting  # noqa: E402


def main() -> None:
    """Run the comparison and print one table per category."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--category", default=None)
    a = ap.parse_args()
    if not (forecast_data.LONDON / "col_2016_2017").exists():
        print("uk-london not available: skipped")
        return
    day = forecast_backtest._day
    h, city = forecast_data.london()
    grid = grid_for(h, 100.0, area=city)
    months = [f"2017-{m:02d}-01" for m in range(1, 8)]
    wins = [(day(x), day(y)) for x, y in zip(months, months[1:], strict=False)]
    months = [f"2020-{m:02d}-01" for m in range(2, 13)] + ["2021-01-01"]
    wins += [(day(x), day(y)) for x, y in zip(months, months[1:], strict=False)]
    for label, cat in forecast_data.LONDON_CATEGORIES.items():
        if a.category not in (None, label):
            continue
        models = [
            NaiveCounts(),
            KernelDensity(),
            Ensemble([GradientBoosted(), SelfExciting(), NaiveCounts(days=730)], name="ensemble"),
            LearnedEnsemble(
                [NaiveCounts(), NaiveCounts(days=2190)],
                validation_days=30.4,
                validation_windows=12,
                step=0.25,
                name="naive-shrunk",
            ),
        ]
        began = time.perf_counter()
        bt = rolling_backtest(h.of(cat), grid, models, wins)
        print(
            f"\n## City of London — {label}: {len(wins)} windows, {bt.observed_total:.0f} "
            f"incidents; {time.perf_counter() - began:.1f} s; load {os.getloadavg()[0]:.1f}"
        )
        print(bt.table())
        sys.stdout.flush()


if __name__ == "__main__":
    main()
