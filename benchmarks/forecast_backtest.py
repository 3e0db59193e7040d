"""Backtest every forecasting model on the shared real data (issue #13, docs/forecasting.md).

Usage::

    python benchmarks/forecast_backtest.py                        # Toronto + London, all
    python benchmarks/forecast_backtest.py --data toronto --category burglary --weeks 12
    python benchmarks/forecast_backtest.py --data london --london-chosen

Toronto MCI: fit on 2014–2019, forecast each week of 2020 (rolling origin: the models
see every incident before each week's start). London (City of London Police, month-only
dates): monthly windows 2017-01…2017-06 and 2020-02…2020-12, each fitted on everything
before it. Prints, per category, each model's mean PAI, PEI and hit rate at 1 % and 5 % of
the area, the pooled hit rates, timings, and whether the best model beats naive counts
and KDE on all four figures. ``--london-chosen`` scores each London category on the cell
size chosen for it on validation windows (:data:`LONDON_CHOSEN`), with its chosen model
beside every other model, naive counts and KDE on that same grid. ``--london-close-gap``
moves London's 2020 incidents and windows back so 2020-01 follows 2017-06 (see
``forecast_data.london``). Before each category's test windows, its
:class:`crossbeat.forecast.borrowed.BorrowedCounts` (related categories and weight) is
chosen on validation windows that end before them — Toronto's 13 weeks before
2020-01-01, London's months 2016-07…12 — by ``choose_related``'s rule, printed, and
scored beside the other models. ``borrowed-online`` is the service's ``borrowed`` model
(:func:`crossbeat.forecast.borrowed.borrowed_selection`): the same rule applied again
before every window, on every window that has ended by then, borrowing only from the
categories the service may read for it (forecastable ones: ``forecast_data``).
``--models a,b`` runs a subset of the other models.
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

from crossbeat.forecast.backtest import (  # noqa: E402
    Backtest,
    consecutive,
    hits_difference,
    rolling_backtest,
)
from crossbeat.forecast.borrowed import borrowed_selection, choose_related  # noqa: E402
from crossbeat.forecast.gbm import GradientBoosted  # noqa: E402
from crossbeat.forecast.grid import grid_for  # noqa: E402
from crossbeat.forecast.history import days  # noqa: E402
from crossbeat.forecast.models import (  # noqa: E402
    DecayedCounts,
    Ensemble,
    KernelDensity,
    LearnedEnsemble,
    Model,
    NaiveCounts,
    ProspectiveHotspot,
    RetrospectiveHotspot,
    ShrunkCounts,
)
from crossbeat.forecast.selection import OnlineSelection, count_family  # noqa: E402
from crossbeat.forecast.sepp import SelfExciting  # noqa: E402

#: The model chosen on validation windows before every test window (docs/forecasting.md,
#: "Choosing the model on validation windows"): the verdict is about it.
CHOSEN = "ensemble-decayed"

#: London, per category: the cell size (m) and equal-weight members chosen on the
#: validation months 2016-07…12 by ``forecast_validation.py --data london --london-cells
#: 50,70,100,150`` (the per-category rule in its docstring), before any test month was
#: scored with them.
LONDON_CHOSEN: dict[str, tuple[float, tuple[str, ...]]] = {
    "burglary": (70.0, ("eb1095",)),
    "vehicle crime": (150.0, ("sepp", "n730")),
    "robbery": (50.0, ("sepp", "n730")),
}


def member(name: str) -> Model:
    """Return a fresh member model by its short name (``forecast_validation.py``'s names)."""
    kinds: dict[str, Model] = {
        "n730": NaiveCounts(days=730, name="n730"),
        "n2190": NaiveCounts(days=2190, name="n2190"),
        "dec90": DecayedCounts(half_life=90.0, name="dec90"),
        "dec180": DecayedCounts(half_life=180.0, name="dec180"),
        "dec365": DecayedCounts(half_life=365.0, name="dec365"),
        "eb90": ShrunkCounts(half_life=90.0, name="eb90"),
        "eb365": ShrunkCounts(half_life=365.0, name="eb365"),
        "eb1095": ShrunkCounts(half_life=1095.0, name="eb1095"),
        "gbm": GradientBoosted(),
        "sepp": SelfExciting(),
    }
    return kinds[name]


def models(cell: float, window_days: float = 7.0) -> list[Model]:
    """Return the compared models (fresh, unfitted).

    ``window_days`` is the forecast window's length: the learned ensembles validate
    their weights on windows of that length before each origin.
    """
    # The ensembles share their members' instances: each is fitted once per origin.
    sepp, gbm, naive = SelfExciting(), GradientBoosted(), NaiveCounts()
    naive730, decayed90 = NaiveCounts(days=730), DecayedCounts(half_life=90.0)
    decayed180, decayed365 = DecayedCounts(half_life=180.0), DecayedCounts(half_life=365.0)
    return [
        naive,
        RetrospectiveHotspot(),
        ProspectiveHotspot(),
        KernelDensity(),
        sepp,
        gbm,
        Ensemble([gbm, sepp, naive730], name="ensemble"),
        LearnedEnsemble(
            [gbm, sepp, naive730, naive],
            validation_days=window_days,
            validation_windows=12,
            name="ensemble-learned",
        ),
        LearnedEnsemble(
            [naive, NaiveCounts(days=2190)],
            validation_days=window_days,
            validation_windows=12,
            step=0.25,
            name="naive-shrunk",
        ),
        LearnedEnsemble(
            [naive, decayed90, decayed180, decayed365],
            validation_days=window_days,
            validation_windows=12,
            step=1.0,
            name="decayed-learned",
        ),
        Ensemble([sepp, decayed90], name=CHOSEN),
        ShrunkCounts(half_life=365.0, name="shrunk"),
        OnlineSelection(count_family(), name="counts-selected"),
    ]


def _day(s: str) -> float:
    return float(days(np.array([s], dtype="datetime64[us]"))[0])


def _verdict(bt: Backtest, chosen_name: str = CHOSEN) -> str:
    """Say whether each model beats naive counts and KDE on all four figures (1 %, 5 %)."""
    base = {b: next(r for r in bt.results if r.model == b) for b in ("naive", "kde")}

    def beats(r: object) -> bool:
        return all(
            r.mean(f, m) > b.mean(f, m)  # type: ignore[attr-defined]
            for b in base.values()
            for f in (0.01, 0.05)
            for m in ("pai", "hit_rate")
        )

    chosen = next((r for r in bt.results if r.model == chosen_name), None)
    winners = [r.model for r in bt.results if beats(r)]
    said = "not run" if chosen is None else "yes" if beats(chosen) else "NO"
    return (
        f"best by PAI@1%: {bt.best(0.01, 'pai').model}; "
        f"chosen model ({chosen_name}) beats naive and kde on PAI and hit rate at 1 % and 5 %: "
        f"{said}; every model that does: {', '.join(winners) or 'none'}"
    )


def _against_naive(bt: Backtest) -> str:
    """Say each model's hits minus naive counts' at 1 % and 5 %, with bootstrap intervals."""
    naive = next(r for r in bt.results if r.model == "naive")
    parts = []
    for r in bt.results:
        if r is naive:
            continue
        ds = [hits_difference(r, naive, f) for f in (0.01, 0.05)]
        parts.append(
            f"{r.model} "
            + " / ".join(f"{d.difference:+.0f} ({d.low:+.0f}…{d.high:+.0f})" for d in ds)
        )
    return (
        f"hits minus naive counts' at 1 % / 5 %, summed over {len(bt.windows)} windows "
        "(95 % paired bootstrap interval over windows): " + "; ".join(parts)
    )


def run(
    name: str,
    history,
    grid,
    windows,
    categories: dict[str, str],
    window_days: float = 7.0,
    chosen: dict[str, tuple[object, str, Model]] | None = None,
    validation: list[tuple[float, float]] | None = None,
    only: set[str] | None = None,
    forecastable: tuple[str, ...] | list[str] | None = None,
) -> None:
    """Backtest each category and print its table.

    ``chosen`` maps a category label to its own grid, the chosen model's name and the
    model, which is scored beside every other model on that grid. With ``validation``
    windows (all before the first test window), each category's :class:`BorrowedCounts`
    related categories and weight are chosen on them (``choose_related``) and the
    chosen model is scored beside the others. ``only`` keeps the models so named.
    With ``forecastable`` (categories of ``history``), ``borrowed-online`` borrows from
    those, chosen before each window (unless ``only`` leaves it out).
    """
    for label, cat in categories.items():
        h = history.of(cat)
        began = time.perf_counter()
        compared = models(grid.size, window_days)
        if only is not None:
            compared = [m for m in compared if m.name in only]
        chosen_name = CHOSEN
        if chosen and label in chosen:
            grid, chosen_name, extra = chosen[label]
            compared.append(extra)
        if validation:
            pick = choose_related(history, cat, grid, validation)  # type: ignore[arg-type]
            ranked = sorted(pick.hits.items(), key=lambda kv: -sum(kv[1]))
            print(
                f"\n{name} — {label}: borrowing chosen on {pick.windows} validation windows "
                f"(pooled hits at 1 % / 5 %): naive {pick.hits[('all categories', 0.0)]}; "
                + "; ".join(f"{r} ×{w:g} {v}" for (r, w), v in ranked[:5])
            )
            compared.append(pick.model(history, cat))
        if forecastable is not None and (only is None or "borrowed-online" in only):
            compared.append(
                borrowed_selection(history.of(*forecastable), cat, name="borrowed-online")
            )
        bt = rolling_backtest(h, grid, compared, windows)
        took = time.perf_counter() - began
        print(
            f"\n## {name} — {label} ({cat}): {len(windows)} windows, "
            f"{bt.observed_total:.0f} incidents in them, "
            f"{grid.n} cells of {grid.size:.0f} m, "
            f"study area {grid.total_area / 1e6:.1f} km²; {took:.1f} s"
        )
        print(bt.table())
        print(
            "pooled hit rate @1%/@5%: "
            + ", ".join(
                f"{r.model} {r.pooled_hit_rate(0.01):.3f}/{r.pooled_hit_rate(0.05):.3f}"
                for r in bt.results
            )
        )
        print("seconds per model: " + ", ".join(f"{r.model} {r.seconds:.1f}" for r in bt.results))
        print(f"load average now: {os.getloadavg()[0]:.1f}")
        print(_verdict(bt, chosen_name))
        print(_against_naive(bt))
        sys.stdout.flush()


def main() -> None:
    """Parse arguments and run the backtests."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=["toronto", "london", "all"], default="all")
    ap.add_argument("--category", default=None, help="one category label (e.g. burglary)")
    ap.add_argument("--weeks", type=int, default=52, help="Toronto: weeks of 2020 to forecast")
    ap.add_argument("--cell", type=float, default=150.0, help="Toronto cell size in metres")
    ap.add_argument("--london-cell", type=float, default=100.0, help="London cell size in metres")
    ap.add_argument(
        "--london-chosen",
        action="store_true",
        help="London: each category on its validation-chosen cell size, with its chosen model",
    )
    ap.add_argument(
        "--london-close-gap",
        action="store_true",
        help="London: 2020 follows 2017-06 directly (look-backs skip the missing months)",
    )
    ap.add_argument(
        "--models",
        default=None,
        help="comma-separated model names to run (default: all; the borrowed model always runs)",
    )
    a = ap.parse_args()
    only = None if a.models is None else set(a.models.split(","))
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()} "
        f"python={platform.python_version()} load={os.getloadavg()[0]:.1f}"
    )
    if a.data in ("toronto", "all"):
        if not (forecast_data.TORONTO / "train.csv").exists():
            print("toronto-mci not available: skipped")
        else:
            h = forecast_data.toronto()
            train = h.before(_day("2020-01-01"))
            grid = grid_for(train, a.cell)
            cats = {
                k: v for k, v in forecast_data.TORONTO_CATEGORIES.items() if a.category in (None, k)
            }
            validation = consecutive(_day("2020-01-01") - 13 * 7.0, 7.0, 13)
            tests = consecutive(_day("2020-01-01"), 7.0, a.weeks)
            run(
                "Toronto",
                h,
                grid,
                tests,
                cats,
                validation=validation,
                only=only,
                forecastable=forecast_data.TORONTO_FORECASTABLE,
            )
    if a.data in ("london", "all"):
        if not (forecast_data.LONDON / "col_2016_2017").exists():
            print("uk-london not available: skipped")
        else:
            h, city = forecast_data.london(close_gap=a.london_close_gap)
            grid = grid_for(h, a.london_cell, area=city)
            months = [f"2017-{m:02d}-01" for m in range(1, 8)]
            wins = [(_day(a_), _day(b_)) for a_, b_ in zip(months, months[1:], strict=False)]
            months = [f"2020-{m:02d}-01" for m in range(2, 13)] + ["2021-01-01"]
            gap = forecast_data.LONDON_GAP_DAYS if a.london_close_gap else 0.0
            wins += [
                (_day(a_) - gap, _day(b_) - gap) for a_, b_ in zip(months, months[1:], strict=False)
            ]
            cats = {
                k: v for k, v in forecast_data.LONDON_CATEGORIES.items() if a.category in (None, k)
            }
            chosen = None
            if a.london_chosen:
                chosen = {}
                for label, (size, names) in LONDON_CHOSEN.items():
                    mix = [member(n) for n in names]
                    tag = f"chosen {'+'.join(names)} @{size:g} m"
                    model = mix[0] if len(mix) == 1 else Ensemble(mix, name=tag)
                    model.name = tag
                    chosen[label] = (grid_for(h, size, area=city), tag, model)
                cats = {k: v for k, v in cats.items() if k in chosen}
            months = [f"2016-{m:02d}-01" for m in range(7, 13)] + ["2017-01-01"]
            validation = [(_day(a_), _day(b_)) for a_, b_ in zip(months, months[1:], strict=False)]
            run(
                "City of London",
                h,
                grid,
                wins,
                cats,
                window_days=30.4,
                chosen=chosen,
                validation=validation,
                only=only,
                forecastable=forecast_data.london_forecastable(),
            )


if __name__ == "__main__":
    main()
