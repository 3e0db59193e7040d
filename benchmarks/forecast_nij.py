"""Toronto in NIJ rule mode: 600 ft cells, 0.25 and 0.75 sq mi flagged, weekly windows of 2020.

Usage::

    python benchmarks/forecast_nij.py [--weeks 52] [--category burglary] [--models naive,kde,sepp]

Same method as benchmarks/forecast_backtest.py (fit on everything before each week),
with the challenge's limits: the flagged areas are 0.25 and 0.75 sq mi of Toronto's
study area (about 254 sq mi here), so PAI is comparable in kind (not in city) with the
2017 NIJ challenge's published entries. ``borrowed-online`` is the service's ``borrowed``
(:func:`crossbeat.forecast.borrowed.borrowed_selection`, borrowing from Toronto's five
categories, chosen before each week on hits at 1 % and 5 % of the area).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import forecast_data  # noqa: E402
from forecast_backtest import _day, models  # noqa: E402

from crossbeat.forecast import nij  # noqa: E402
from crossbeat.forecast.backtest import consecutive, rolling_backtest  # noqa: E402
from crossbeat.forecast.borrowed import borrowed_selection  # noqa: E402
from crossbeat.forecast.grid import grid_for  # noqa: E402


def main() -> None:
    """Run the NIJ-rule backtest and print mean PAI/PEI per model."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weeks", type=int, default=52)
    ap.add_argument("--category", default="burglary")
    ap.add_argument("--cell-ft", type=float, default=600.0)
    ap.add_argument(
        "--models",
        default=None,
        help="comma-separated model names (default: forecast_backtest's models)",
    )
    a = ap.parse_args()
    if not (forecast_data.TORONTO / "train.csv").exists():
        print("toronto-mci not available: skipped")
        return
    nij.check_cell(a.cell_ft * 0.3048)
    print(
        f"machine: {platform.machine()} cpus={os.cpu_count()} python={platform.python_version()} "
        f"load={os.getloadavg()[0]:.1f}"
    )
    began = time.perf_counter()
    everything = forecast_data.toronto()
    category = forecast_data.TORONTO_CATEGORIES[a.category]
    h = everything.of(category)
    grid = grid_for(h.before(_day("2020-01-01")), a.cell_ft * 0.3048)
    # Whole cells only, as nij.flag_area does: the fraction is of the study area.
    fractions = tuple(s * nij.SQ_MI / grid.total_area for s in (0.25, 0.75))
    wins = consecutive(_day("2020-01-01"), 7.0, a.weeks)
    compared = models(grid.size)  # shrunk and counts-selected among them
    related = everything.of(*forecast_data.TORONTO_FORECASTABLE)
    compared.append(borrowed_selection(related, category, name="borrowed-online"))
    if a.models:
        keep = set(a.models.split(","))
        compared = [m for m in compared if m.name in keep]
    bt = rolling_backtest(h, grid, compared, wins, fractions)
    print(f"Toronto {a.category}, {a.cell_ft:g} ft cells, study area "
          f"{grid.total_area / nij.SQ_MI:.0f} sq mi, {a.weeks} weeks of 2020")  # fmt: skip
    print(f"{'model':<14}{'PAI 0.25':>10}{'PEI 0.25':>10}{'PAI 0.75':>10}{'PEI 0.75':>10}")
    for r in bt.results:
        f1, f2 = fractions
        print(f"{r.model:<14}{r.mean(f1, 'pai'):>10.1f}{r.mean(f1, 'pei'):>10.3f}"
              f"{r.mean(f2, 'pai'):>10.1f}{r.mean(f2, 'pei'):>10.3f}")  # fmt: skip
    print(f"{time.perf_counter() - began:.0f} s; load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
