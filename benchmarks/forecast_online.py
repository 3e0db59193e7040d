"""Backtest the count model chosen online (``counts-selected``) beside naive counts and KDE.

Usage::

    python benchmarks/forecast_online.py --data london            # 100 m cells
    python benchmarks/forecast_online.py --data london --london-cell 150
    python benchmarks/forecast_online.py --data toronto --weeks 52

The rule (:class:`crossbeat.forecast.selection.OnlineSelection` over
:func:`crossbeat.forecast.selection.count_family`, written down before it was first run
on London): before each test window, every count model of the family is scored on every
window that ended by the origin since the start of the validation period — London's
months from 2016-07 (the validation months, then the earlier test months, which are
history by then; the 30 missing months are not windows), Toronto's weeks from
2019-10-02 — and the one with the most pooled hits at 1 % and 5 % of the area forecasts
the window; ties go to the family's first member, naive counts. The rolling backtest
runs over the validation windows and the test windows; only the test windows are
scored in the printed table (the same test windows as ``forecast_backtest.py``), with
naive counts and KDE on the same grid in the same run. Prints which member was chosen
for each window, the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import forecast_data  # noqa: E402
from forecast_backtest import _day  # noqa: E402

from crossbeat.forecast.backtest import consecutive, rolling_backtest  # noqa: E402
from crossbeat.forecast.grid import grid_for  # noqa: E402
from crossbeat.forecast.metrics import score  # noqa: E402
from crossbeat.forecast.models import KernelDensity, NaiveCounts  # noqa: E402
from crossbeat.forecast.selection import OnlineSelection, count_family  # noqa: E402

FIGURES = ((0.01, "pai"), (0.01, "hit_rate"), (0.05, "pai"), (0.05, "hit_rate"))


def _months(*runs: list[str]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for run in runs:
        out += [(_day(a), _day(b)) for a, b in zip(run, run[1:], strict=False)]
    return out


def _figures(expected, observed, area) -> tuple[list[float], list[float]]:
    """Return the mean PAI / hit rate at 1 % and 5 %, and the pooled hits at 1 % and 5 %."""
    means = [
        float(np.nanmean([getattr(score(e, o, area, f), m)
                          for e, o in zip(expected, observed, strict=True)]))
        for f, m in FIGURES
    ]  # fmt: skip
    hits = [
        float(sum(score(e, o, area, f).hits for e, o in zip(expected, observed, strict=True)))
        for f in (0.01, 0.05)
    ]
    return means, hits


def run(name: str, history, grid, validation: int, windows, categories: dict[str, str]) -> None:
    """Backtest each category over validation + test windows; print the test windows."""
    for label, cat in categories.items():
        h = history.of(cat)
        began = time.perf_counter()
        chooser = OnlineSelection(count_family(), warmup=0, name="counts-selected")
        bt = rolling_backtest(h, grid, [chooser, NaiveCounts(), KernelDensity()], windows)
        took = time.perf_counter() - began
        observed = bt.results[0].observed[validation:]
        print(
            f"\n## {name} — {label} ({cat}): {len(windows) - validation} test windows after "
            f"{validation} validation windows, {sum(o.sum() for o in observed):.0f} incidents "
            f"in the test windows; {grid.n} cells of {grid.size:.0f} m; {took:.1f} s"
        )
        head = ("model", "PAI 1%", "HR 1%", "PAI 5%", "HR 5%", "hits 1%", "hits 5%")
        print(f"{head[0]:<16}" + "".join(f"{x:>9}" for x in head[1:]))
        rows = {}
        for r in bt.results:
            means, hits = _figures(r.expected[validation:], observed, grid.area)
            rows[r.model] = means
            print(f"{r.model:<16}" + "".join(f"{x:9.3f}" for x in means)
                  + "".join(f"{x:9.0f}" for x in hits))  # fmt: skip
        wins = all(
            rows["counts-selected"][i] > rows[b][i] for b in ("naive", "kde") for i in range(4)
        )
        print(f"counts-selected beats naive and kde on all four: {'yes' if wins else 'NO'}")
        print("chosen per test window: " + " ".join(chooser.picks[validation:]))
        print(f"final tally: {chooser.params()['hits']}")
        print(f"load average now: {os.getloadavg()[0]:.1f}")
        sys.stdout.flush()


def main() -> None:
    """Parse arguments and run the backtests."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=["toronto", "london"], default="london")
    ap.add_argument("--category", default=None, help="one category label (e.g. burglary)")
    ap.add_argument("--weeks", type=int, default=52, help="Toronto: weeks of 2020 to forecast")
    ap.add_argument("--cell", type=float, default=150.0, help="Toronto cell size in metres")
    ap.add_argument("--london-cell", type=float, default=100.0, help="London cell size (m)")
    a = ap.parse_args()
    print(
        f"machine: {platform.machine()} cpus={os.cpu_count()} "
        f"python={platform.python_version()} load={os.getloadavg()[0]:.1f}"
    )
    if a.data == "toronto":
        h = forecast_data.toronto()
        grid = grid_for(h.before(_day("2020-01-01")), a.cell)
        wins = consecutive(_day("2020-01-01") - 13 * 7.0, 7.0, 13 + a.weeks)
        cats = forecast_data.TORONTO_CATEGORIES
        validation = 13
    else:
        h, city = forecast_data.london()
        grid = grid_for(h, a.london_cell, area=city)
        wins = _months(
            [f"2016-{m:02d}-01" for m in range(7, 13)] + ["2017-01-01"],
            [f"2017-{m:02d}-01" for m in range(1, 8)],
            [f"2020-{m:02d}-01" for m in range(2, 13)] + ["2021-01-01"],
        )
        cats = {
            k: forecast_data.LONDON_CATEGORIES[k] for k in ("burglary", "vehicle crime", "robbery")
        }
        validation = 6
    cats = {k: v for k, v in cats.items() if a.category in (None, k)}
    run("Toronto" if a.data == "toronto" else "City of London", h, grid, validation, wins, cats)


if __name__ == "__main__":
    main()
