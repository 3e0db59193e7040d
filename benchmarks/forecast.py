"""Forecasting benchmark: fit + forecast time per model at 250 k incidents, and a full backtest.

Usage::

    python benchmarks/forecast.py                    # 250 000 incidents, 52-week backtest
    python benchmarks/forecast.py --incidents 50000 --weeks 4 --repeats 1
    python benchmarks/forecast.py --only kde,shrunk   # a subset (naive always)

Incidents are Toronto's real MCI locations and hours (../shared/data/toronto-mci),
resampled with 50 m jitter to the size asked for over 2014–2019 (a seeded synthetic
clustered cloud when the data are absent), all in one category. Each model is fitted on
everything before 2020-01-01 and forecasts the first week of 2020 on 150 m cells; the
median of ``--repeats`` runs is printed beside the naive-counts baseline measured in the
same run (ratio = model / naive). Then a rolling-origin backtest of every model over
``--weeks`` weekly windows (the whole of docs/forecasting.md's method) is timed. The
models are ``forecast_backtest.models``, the service's empirical-Bayes ``shrunk``
counts, ``counts-selected`` (a fresh fit: its six warm-up windows included) and
``borrowed`` counts (:class:`crossbeat.forecast.borrowed.BorrowedCounts`, weight 1,
mixing in a second resample of as many incidents as its related categories),
``borrowed-online`` (the service's ``borrowed``:
:func:`crossbeat.forecast.borrowed.borrowed_selection`, a fresh fit with its six
warm-up windows, choosing among 36 candidates: that resample cut into four categories,
all of them together, at seven weights, and naive counts); ``--only`` times a
subset; ``--gbm-max-rows N`` also times ``gbm`` with its training rows thinned to N
(``GradientBoosted(max_rows=N)``, named ``gbm-rowsN``). Each model's CPU time
(median) is printed beside its wall time.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import forecast_backtest  # noqa: E402

from crossbeat.forecast.backtest import consecutive, rolling_backtest  # noqa: E402
from crossbeat.forecast.borrowed import BorrowedCounts, borrowed_selection  # noqa: E402
from crossbeat.forecast.gbm import GradientBoosted  # noqa: E402
from crossbeat.forecast.grid import grid_for  # noqa: E402
from crossbeat.forecast.history import History, days  # noqa: E402
from crossbeat.forecast.models import Model  # noqa: E402

JAN_2020 = float(days(np.array(["2020-01-01"], dtype="datetime64[us]"))[0])


def _history(n: int, seed: int = 0) -> tuple[History, str]:
    rng = np.random.default_rng(seed)
    import forecast_data

    if (forecast_data.TORONTO / "train.csv").exists():
        h = forecast_data.toronto()
        pick = rng.integers(0, len(h), n)
        t = JAN_2020 - rng.uniform(0, 6 * 365, n) + (h.t0[pick] % 1.0)
        x, y = h.x[pick] + rng.normal(0, 50, n), h.y[pick] + rng.normal(0, 50, n)
        what = "Toronto MCI locations and hours, resampled with 50 m jitter over 2014-2019"
        frame = h.frame
    else:
        from crossbeat.forecast.history import Frame

        c = rng.uniform(-15000, 15000, (300, 2))[rng.integers(0, 300, n)]
        x, y = c[:, 0] + rng.normal(0, 300, n), c[:, 1] + rng.normal(0, 300, n)
        t = JAN_2020 - rng.uniform(0, 6 * 365, n)
        what, frame = "synthetic clustered cloud", Frame(-79.4, 43.7)
    t = np.sort(t)
    cat = np.full(n, "all", dtype=object)
    return History(frame, x, y, t, t.copy(), cat, np.full(n, "a", dtype=object)), what


def _categories(related: History) -> History:
    """Return ``related`` cut into four categories (c0…c3), as a viewer's other ones."""
    labels = np.array(["c0", "c1", "c2", "c3"], dtype=object)[np.arange(len(related)) % 4]
    r = related
    return History(r.frame, r.x, r.y, r.t0, r.t1, labels, r.owner)


def models(
    cell: float,
    only: set[str] | None = None,
    max_rows: int | None = None,
    related: History | None = None,
) -> list[Model]:
    """Return the timed models (fresh): the backtest's (``shrunk`` and ``counts-selected``
    among them) and, given a ``related`` history, ``borrowed`` counts mixing it in.

    Or those named in ``only`` (naive counts always).
    """
    every = list(forecast_backtest.models(cell))
    if related is not None:
        every.append(BorrowedCounts(related, weight=1.0, related_label="other", name="borrowed"))
        every.append(borrowed_selection(_categories(related), "all", name="borrowed-online"))
    if max_rows:
        every.append(GradientBoosted(max_rows=max_rows, name=f"gbm-rows{max_rows}"))
    always = {"naive", f"gbm-rows{max_rows}"}
    return [m for m in every if only is None or m.name in only or m.name in always]


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--incidents", type=int, default=250_000)
    ap.add_argument("--weeks", type=int, default=52, help="weekly windows in the backtest")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default=None, help="comma-separated model names to time")
    ap.add_argument(
        "--gbm-max-rows",
        type=int,
        default=None,
        help="also time gbm with its training rows thinned to this many (gbm-rowsN)",
    )
    a = ap.parse_args()
    only = set(a.only.split(",")) if a.only else None
    print(
        f"machine: {platform.machine()} cpus={os.cpu_count()} python={platform.python_version()} "
        f"load={os.getloadavg()[0]:.1f}"
    )
    h, what = _history(a.incidents)
    # The "other categories" that borrowed counts mix in: as many incidents again.
    related, _ = _history(a.incidents, seed=1)
    grid = grid_for(h, 150.0)
    print(f"data: {len(h):,} incidents ({what}); grid {grid.n:,} cells of 150 m")
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for m in models(150.0, only, a.gbm_max_rows, related):
        runs, cpus = [], []
        for _ in range(a.repeats):
            fresh = next(
                x for x in models(150.0, only, a.gbm_max_rows, related) if x.name == m.name
            )
            began, began_cpu = time.perf_counter(), time.process_time()
            fresh.fit(h, grid, JAN_2020)
            fresh.predict(JAN_2020, JAN_2020 + 7)
            runs.append(time.perf_counter() - began)
            cpus.append(time.process_time() - began_cpu)
        times[m.name] = statistics.median(runs)
        cpu[m.name] = statistics.median(cpus)
    base = times["naive"]
    # CPU time of this process (one thread per model): far less moved by other jobs'
    # load than the wall time.
    print(f"{'model':<16}{'fit+forecast s (median)':>26}{'ratio vs naive':>16}{'cpu s':>10}")
    for name, s in times.items():
        print(f"{name:<16}{s:>26.3f}{s / base:>16.1f}{cpu[name]:>10.2f}")
    later = h.take(h.t0 < JAN_2020)
    began = time.perf_counter()
    bt = rolling_backtest(
        later,
        grid,
        models(150.0, only, a.gbm_max_rows, related),
        consecutive(JAN_2020 - 7 * a.weeks, 7.0, a.weeks),
    )
    took = time.perf_counter() - began
    print(
        f"full backtest: {len(bt.results)} models x {a.weeks} weekly windows in {took:.1f} s "
        f"({took / max(base * a.weeks * len(bt.results), 1e-9):.1f} x naive's fit+forecast "
        "per window and model)"
    )
    print("seconds per model: " + ", ".join(f"{r.model} {r.seconds:.1f}" for r in bt.results))
    print(f"load average now: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
