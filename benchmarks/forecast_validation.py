"""Choose the forecasting model on validation windows before every test window (issue #13).

Usage::

    python benchmarks/forecast_validation.py                 # Toronto + London
    python benchmarks/forecast_validation.py --data london

The test windows of ``forecast_backtest.py`` are Toronto's 52 weeks of 2020 and the City
of London's months 2017-01…06 and 2020-02…12. The validation windows here all end before
the first of them: Toronto's 13 weeks before 2020-01-01 (2019-10-02…2019-12-31) and
London's months 2016-07…2016-12 (each fitted on everything before it, rolling origin),
for burglary, auto theft / vehicle crime and robbery.

Each candidate is an equal-weight ensemble of member forecasts (one member: the member
alone); members are fitted once per window and mixed as
:class:`crossbeat.forecast.models.Ensemble` mixes them. The rule, fixed before the test
windows were scored: the candidate that beats both naive counts and KDE on the most of
the 24 figures (PAI and hit rate at 1 % and 5 % of the area, six data set × category
pairs) wins; ties go to the most pairs won on all four figures, then to the higher mean
log ratio of PAI to naive counts at 1 % and 5 %. Prints every candidate's figures, the
tally, the machine and its load.

London per category, cell size and model (``--london-cells 50,70,100,150``): 1 % of the
City's 3.0 km² is two or three 100 m cells, so the cell size changes the figures as much
as the model does. A second rule, fixed before any test month was scored with it, picks
for each London category the (cell size, candidate) pair — sizes inside the given
limits, candidates those above plus empirical-Bayes shrunk counts
(:class:`crossbeat.forecast.models.ShrunkCounts`) alone and mixed — that beats naive
counts and KDE *on the same grid* on the most of the four figures, ties going to the
higher mean log ratio of PAI to naive counts at 1 % and 5 %, then to the larger cell.
``forecast_backtest.py --london-chosen`` then scores each category on its chosen grid,
with naive counts and KDE on that grid in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import forecast_data  # noqa: E402
from forecast_backtest import _day  # noqa: E402

from crossbeat.forecast.backtest import consecutive, rolling_backtest  # noqa: E402
from crossbeat.forecast.gbm import GradientBoosted  # noqa: E402
from crossbeat.forecast.grid import grid_for  # noqa: E402
from crossbeat.forecast.metrics import score  # noqa: E402
from crossbeat.forecast.models import (  # noqa: E402
    DecayedCounts,
    KernelDensity,
    Model,
    NaiveCounts,
    ShrunkCounts,
)
from crossbeat.forecast.sepp import SelfExciting  # noqa: E402

#: The candidates compared (members by name; see :func:`_members`).
CANDIDATES: tuple[tuple[str, ...], ...] = (
    ("n730",),
    ("n2190",),
    ("dec90",),
    ("dec180",),
    ("dec365",),
    ("gbm", "sepp", "n730"),  # the equal-weight `ensemble` of forecast_backtest.py
    ("gbm", "sepp", "dec90"),
    ("gbm", "sepp", "dec180"),
    ("gbm", "sepp", "dec365"),
    ("sepp", "dec90"),
    ("sepp", "dec180"),
    ("sepp", "dec365"),
    ("gbm", "sepp", "n730", "dec180"),
    ("gbm", "dec180"),
    ("sepp", "n730"),
)
#: London's per-category choice also considers empirical-Bayes shrunk counts.
LONDON_CANDIDATES: tuple[tuple[str, ...], ...] = CANDIDATES + (
    ("eb90",),
    ("eb365",),
    ("eb1095",),
    ("sepp", "eb90"),
    ("sepp", "eb365"),
    ("gbm", "sepp", "eb365"),
)
#: London cell sizes may range over these limits (metres).
LONDON_CELL_LIMITS = (50.0, 150.0)
FIGURES = ((0.01, "pai"), (0.01, "hit_rate"), (0.05, "pai"), (0.05, "hit_rate"))


def _members() -> list[Model]:
    return [
        NaiveCounts(name="naive"),
        KernelDensity(),
        NaiveCounts(days=730, name="n730"),
        NaiveCounts(days=2190, name="n2190"),
        DecayedCounts(half_life=90.0, name="dec90"),
        DecayedCounts(half_life=180.0, name="dec180"),
        DecayedCounts(half_life=365.0, name="dec365"),
        GradientBoosted(),
        SelfExciting(),
        ShrunkCounts(half_life=90.0, name="eb90"),
        ShrunkCounts(half_life=365.0, name="eb365"),
        ShrunkCounts(half_life=1095.0, name="eb1095"),
    ]


def _figures(preds: dict[str, list[np.ndarray]], names: tuple[str, ...], observed, area) -> list:
    mixed = [
        sum(preds[n][k] / max(float(preds[n][k].sum()), 1e-12) for n in names)
        for k in range(len(observed))
    ]
    out = []
    for f, metric in FIGURES:
        pairs = zip(mixed, observed, strict=True)
        vals = [getattr(score(np.asarray(m), o, area, f), metric) for m, o in pairs]
        vals = [v for v in vals if not np.isnan(v)]
        out.append(float(np.mean(vals)) if vals else float("nan"))
    return out


def _pairs(
    which: str, london_cells: tuple[float, ...] = (100.0,)
) -> list[tuple[str, object, object, list[tuple[float, float]]]]:
    pairs = []
    if which in ("toronto", "all") and (forecast_data.TORONTO / "train.csv").exists():
        h = forecast_data.toronto()
        grid = grid_for(h.before(_day("2020-01-01")), 150.0)
        wins = consecutive(_day("2020-01-01") - 13 * 7.0, 7.0, 13)
        for label, cat in forecast_data.TORONTO_CATEGORIES.items():
            pairs.append((f"Toronto {label}", h.of(cat), grid, wins))
    if which in ("london", "all") and (forecast_data.LONDON / "col_2016_2017").exists():
        h, city = forecast_data.london()
        months = [f"2016-{m:02d}-01" for m in range(7, 13)] + ["2017-01-01"]
        wins = [(_day(a), _day(b)) for a, b in zip(months, months[1:], strict=False)]
        for size in london_cells:
            grid = grid_for(h, size, area=city)
            at = "" if london_cells == (100.0,) else f" @{size:g} m"
            for label in ("burglary", "vehicle crime", "robbery"):
                pairs.append(
                    (
                        f"London {label}{at}",
                        h.of(forecast_data.LONDON_CATEGORIES[label]),
                        grid,
                        wins,
                    )
                )
    return pairs


def main() -> None:
    """Score every candidate on the validation windows and print the choice."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=["toronto", "london", "all"], default="all")
    ap.add_argument(
        "--london-cells",
        default="100",
        help="London cell sizes in metres, comma-separated (several: the per-category choice)",
    )
    a = ap.parse_args()
    cells = tuple(float(x) for x in a.london_cells.split(","))
    lo, hi = LONDON_CELL_LIMITS
    if any(not lo <= c <= hi for c in cells):
        ap.error(f"--london-cells must lie in [{lo:g}, {hi:g}] m")
    print(
        f"machine: {platform.machine()} cpus={os.cpu_count()} python={platform.python_version()} "
        f"load={os.getloadavg()[0]:.1f}"
    )
    tally: dict[tuple[str, ...], list] = {c: [] for c in CANDIDATES}
    per_category: dict[str, list[tuple[tuple, float, tuple[str, ...], list[float]]]] = {}
    for name, h, grid, wins in _pairs(a.data, cells):
        bt = rolling_backtest(h, grid, _members(), wins)
        preds = {r.model: r.expected for r in bt.results}
        observed = bt.results[0].observed
        naive = _figures(preds, ("naive",), observed, grid.area)
        kde = _figures(preds, ("kde",), observed, grid.area)
        print(f"\n## {name}: {len(wins)} windows, {bt.observed_total:.0f} incidents")
        print(f"{'candidate':<26}{'PAI 1%':>8}{'HR 1%':>8}{'PAI 5%':>8}{'HR 5%':>8}  wins")
        for label, v in (("naive", naive), ("kde", kde)):
            print(f"{label:<26}" + "".join(f"{x:8.3f}" for x in v))
        london = name.startswith("London")
        for c in LONDON_CANDIDATES if london else CANDIDATES:
            v = _figures(preds, c, observed, grid.area)
            won = sum(x > n and x > k for x, n, k in zip(v, naive, kde, strict=True))
            ratio = [np.log(max(v[i], 1e-3) / max(naive[i], 1e-3)) for i in (0, 2)]
            if c in tally and (not london or grid.size == 100.0):
                tally[c].append((won, ratio))
            if london:
                category = name.split(" @")[0]
                key = (won, float(np.mean(ratio)), grid.size)
                per_category.setdefault(category, []).append((key, grid.size, c, v))
            print(f"{'+'.join(c):<26}" + "".join(f"{x:8.3f}" for x in v) + f"  {won}")
        print(f"load average now: {os.getloadavg()[0]:.1f}")
        sys.stdout.flush()
    print("\ncandidate                  figures won  pairs won on all 4  mean log PAI ratio 1%/5%")
    keys = {}
    for c, rows in tally.items():
        won = sum(w for w, _ in rows)
        full = sum(w == 4 for w, _ in rows)
        ratio = np.mean([r for _, r in rows], axis=0) if rows else np.array([np.nan, np.nan])
        keys[c] = (won, full, float(np.nansum(ratio)))
        print(f"{'+'.join(c):<26}{won:>12}{full:>20}{ratio[0]:>12.3f}/{ratio[1]:.3f}")
    chosen = max(CANDIDATES, key=lambda c: keys[c])
    print(f"chosen on validation: {'+'.join(chosen)}")
    if len(cells) > 1:
        print("\nLondon per category (cell size and candidate; figures won, mean log PAI ratio)")
        for category, rows in per_category.items():
            key, size, c, v = max(rows, key=lambda r: r[0])
            print(
                f"{category}: {size:g} m, {'+'.join(c)} "
                f"(won {key[0]} of 4, log ratio {key[1]:.3f}; "
                + " / ".join(f"{x:.3f}" for x in v)
                + ")"
            )


if __name__ == "__main__":
    main()
