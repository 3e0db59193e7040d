"""Analysis benchmark: each timing printed beside a reference measured in the same run.

Usage::

    python benchmarks/analysis.py                      # KDE 1 M, Gi* 100 k cells, Knox 50 k
    python benchmarks/analysis.py --kde-points 200000 --gi-cells 20000 --knox-points 10000
    python benchmarks/analysis.py --only arrays --arrays-rows 100000

* KDE: ``crossbeat.analysis.kde.kernel_density`` on ``--kde-points`` points (projection,
  binned FFT, contours) against scipy ``gaussian_kde`` evaluated on the same grid from a
  subsample, extrapolated linearly in the number of points.
* Gi*: ``grid_hotspots`` over a square grid of about ``--gi-cells`` cells (counting,
  weights, z-scores, Benjamini-Hochberg) against esda ``G_Local(star=True)`` on the same
  counts and weights (analytic only, ``permutations=0``; building its W included).
* Knox: ``knox_test`` on ``--knox-points`` incidents with 99 permutations against a
  numpy brute force (all n² pairs, same bands, same permutations) on a subsample,
  extrapolated by n².
* Duplicates: ``find_duplicates`` (splink, DuckDB) on ``--dup-points`` incidents of two
  agencies, 1 % of them re-reported by the other agency a few minutes and metres away,
  with precision and recall against those planted pairs; the reference scores every
  cross-agency pair by brute force on a subsample, extrapolated by n².

* Arrays: ``crossbeat.sharing.arrays.analysis_arrays`` (what every analysis reads) of
  ``--arrays-rows`` synthetic incidents on SQLite (the population of
  ``benchmarks/reads.py``, with its partial indexes), for the own analyst, a partner
  (own + ``h3:9`` by day by agreement) and the public, beside the bare ``SELECT`` of the
  same columns into numpy, median of ``--arrays-repeat`` runs, alternately, with the
  CPU time of this process and of the Arrow reader's worker process and the 2 s target
  (``--arrays-keep PATH`` keeps the population for later runs, as
  ``benchmarks/reads.py --keep`` does). The speed of this read is the
  sharing module's (issue #8); it is measured here so that one command shows every
  figure of issue #11.

Points are Toronto's real incident locations (../shared/data/toronto-mci) resampled with
50 m jitter to the size asked for, or a synthetic clustered cloud when that is absent.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

from crossbeat.analysis.hotspots import grid_hotspots, grid_weights
from crossbeat.analysis.kde import kernel_density
from crossbeat.analysis.nearrepeat import band_index, knox_test
from crossbeat.analysis.points import to_metres

TORONTO = Path(__file__).resolve().parents[2] / "shared" / "data" / "toronto-mci"


def _points(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    rng = np.random.default_rng(seed)
    if (TORONTO / "train.csv").exists():
        import pandas as pd

        df = pd.read_csv(TORONTO / "train.csv", usecols=["Long", "Lat", "occurrencedate"])
        df = df[pd.to_datetime(df.occurrencedate.str.slice(0, 10)) >= "2014-01-01"]
        pick = rng.integers(0, len(df), n)
        jitter = rng.normal(0, 50, (n, 2)) / np.array([80_000.0, 111_000.0])
        lon = df.Long.values[pick] + jitter[:, 0]
        lat = df.Lat.values[pick] + jitter[:, 1]
        days = rng.uniform(0, 365, n)
        return lon, lat, days, "Toronto MCI locations, resampled with 50 m jitter"
    centres = rng.uniform([-79.6, 43.6], [-79.2, 43.8], (50, 2))
    c = centres[rng.integers(0, 50, n)]
    lon = c[:, 0] + rng.normal(0, 0.01, n)
    lat = c[:, 1] + rng.normal(0, 0.007, n)
    return lon, lat, rng.uniform(0, 365, n), "synthetic clustered cloud"


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench_kde(n: int, sub: int) -> None:
    from scipy.stats import gaussian_kde

    lon, lat, _, what = _points(n)
    secs, res = _timed(lambda: kernel_density(lon, lat))
    grid = np.column_stack([np.meshgrid(res.x, res.y, indexing="ij")[k].ravel() for k in (0, 1)])
    proj = to_metres(lon[:sub], lat[:sub], res.params.crs)
    data = np.vstack([proj.x, proj.y])
    ref = gaussian_kde(data, bw_method=res.params.bandwidth_m / data.std(axis=1, ddof=1).mean())
    ref_secs, _ = _timed(lambda: ref(grid.T))
    print(
        f"KDE   {n:>9,} points ({what}), grid {len(res.x)}×{len(res.y)}: {secs:6.2f} s   "
        f"scipy gaussian_kde on {sub:,} points: {ref_secs:6.2f} s, "
        f"extrapolated to {n:,}: {ref_secs * n / sub:8.1f} s"
    )


def bench_gi(cells: int) -> None:
    import esda
    import libpysal

    lon, lat, _, what = _points(max(cells * 2, 200_000), seed=1)
    proj = to_metres(lon, lat)
    cell_m = float(np.sqrt(np.ptp(proj.x) * np.ptp(proj.y) / cells))
    secs, res = _timed(lambda: grid_hotspots(lon, lat, cell_m=cell_m, k=1))
    cols = len({c.split(",")[0] for c in res.cell})
    rows = len(res.cell) // cols

    def ref():
        w = libpysal.weights.WSP(grid_weights(cols, rows, 1)).to_W(silence_warnings=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return esda.G_Local(res.count, w, transform="B", star=True, permutations=0)

    ref_secs, g = _timed(ref)
    assert np.allclose(g.Zs, res.z)
    print(
        f"Gi*   {len(res.cell):>9,} cells ({what}) with BH FDR, {res.hot.sum():,} hot: "
        f"{secs:6.2f} s   esda G_Local(star=True) on the same weights: {ref_secs:6.2f} s "
        "(z-scores equal)"
    )


def _brute_knox(x, y, t, d_edges, t_edges, permutations, seed):
    n = len(x)
    iu, ju = np.triu_indices(n, k=1)
    dist = np.hypot(x[iu] - x[ju], y[iu] - y[ju])
    near = dist <= d_edges[-1]
    db = band_index(dist[near], d_edges)
    rng = np.random.default_rng(seed)
    nt = len(t_edges) - 1
    tables = []
    for perm in [np.arange(n)] + [rng.permutation(n) for _ in range(permutations)]:
        tp = t[perm]
        tb = band_index(np.abs(tp[iu[near]] - tp[ju[near]]), t_edges)
        ok = (db >= 0) & (tb >= 0)
        tables.append(np.bincount(db[ok] * nt + tb[ok], minlength=(len(d_edges) - 1) * nt))
    return tables


def bench_knox(n: int, sub: int) -> None:
    lon, lat, days, what = _points(n, seed=2)
    t = np.datetime64("2024-01-01", "s") + (days * 86400).astype("int64").astype("timedelta64[s]")
    secs, res = _timed(lambda: knox_test(lon, lat, t, permutations=99, seed=3))
    proj = to_metres(lon[:sub], lat[:sub], res.params.crs)
    d_edges = np.array(res.params.distance_edges_m)
    t_edges = np.array(res.params.time_edges_days)
    ref_secs, _ = _timed(lambda: _brute_knox(proj.x, proj.y, days[:sub], d_edges, t_edges, 99, 3))
    print(
        f"Knox  {n:>9,} incidents ({what}), 99 permutations, {res.n_pairs:,} close pairs: "
        f"{secs:6.2f} s   brute force on {sub:,}: {ref_secs:6.2f} s, "
        f"extrapolated to {n:,}: {ref_secs * (n / sub) ** 2:8.1f} s"
    )


def _planted(n: int, seed: int = 4):  # type: ignore[no-untyped-def]
    lon, lat, days, what = _points(n, seed=seed)
    rng = np.random.default_rng(seed)
    owner = np.where(rng.random(n) < 0.5, "city", "transit").astype(object)
    t = np.datetime64("2024-01-01", "s") + (days * 86400).astype("int64").astype("timedelta64[s]")
    codes = np.array(["13A", "13B", "120", "23H", "220", "290", "35A", "90C"], dtype=object)
    code = codes[rng.integers(0, len(codes), n)]
    k = n // 100
    src = rng.choice(n - k, k, replace=False)
    dst = np.arange(n - k, n)
    owner[dst] = np.where(owner[src] == "city", "transit", "city")
    t[dst] = t[src] + rng.integers(-12 * 60, 12 * 60, k).astype("timedelta64[s]")
    ang, r = rng.uniform(0, 2 * np.pi, k), rng.uniform(5, 35, k)
    lon[dst] = lon[src] + r * np.cos(ang) / 80_000
    lat[dst] = lat[src] + r * np.sin(ang) / 111_000
    code[dst] = code[src]
    against = np.where(np.isin(code, ["13A", "13B", "120"]), "person", "property").astype(object)
    return owner, lon, lat, t.astype("datetime64[us]"), code, against, src, dst, what


def bench_duplicates(n: int, sub: int) -> None:
    from crossbeat.analysis.duplicates import find_duplicates

    owner, lon, lat, t, code, against, src, dst, what = _planted(n)
    secs, res = _timed(lambda: find_duplicates(owner, lon, lat, t, None, code, against, seed=0))
    truth = {(int(a), int(b)) for a, b in zip(src, dst, strict=True)}
    got = {(int(min(a, b)), int(max(a, b))) for a, b in zip(res.left, res.right, strict=True)}
    hits = len(truth & got)
    precision, recall = hits / max(1, len(got)), hits / len(truth)
    proj = to_metres(lon[:sub], lat[:sub], res.params.crs)
    ts = (t[:sub] - np.datetime64(0, "us")).astype("timedelta64[s]").astype(float)

    def brute():  # type: ignore[no-untyped-def]
        iu, ju = np.triu_indices(sub, k=1)
        other = owner[:sub][iu] != owner[:sub][ju]
        d = np.hypot(proj.x[iu] - proj.x[ju], proj.y[iu] - proj.y[ju])
        dt = np.abs(ts[iu] - ts[ju]) / 60
        return other & (d <= 150) & (dt <= 60) & (code[:sub][iu] == code[:sub][ju])

    ref_secs, _ = _timed(brute)
    print(
        f"Dupes {n:>9,} incidents ({what}), {len(truth):,} planted: {secs:6.2f} s, "
        f"{len(got):,} pairs, precision {precision:.3f}, recall {recall:.3f}   "
        f"brute-force pair scoring on {sub:,}: {ref_secs:6.2f} s, "
        f"extrapolated to {n:,}: {ref_secs * (n / sub) ** 2:8.1f} s"
    )


def bench_arrays(n: int, repeat: int, keep: str | None = None) -> None:
    """Time policy-filtered arrays of ``n`` stored incidents beside the bare query.

    With ``keep`` (a file path) the population of ``benchmarks/reads.py --keep`` is
    reused, or built there and kept for the next run.
    """
    import importlib.util
    import statistics
    import tempfile

    spec = importlib.util.spec_from_file_location("reads", Path(__file__).with_name("reads.py"))
    assert spec is not None and spec.loader is not None
    reads = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reads)
    from crossbeat.store import open_store
    from crossbeat.vault.kek import generate_kek, parse_kek

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(keep).resolve() if keep else Path(tmp) / "arrays.db"
        if path.exists():
            store = open_store(f"sqlite:///{path}", create=False)
            reads.check_kept(store, n, 1)
            print(f"Arrays: {n:,} incidents reused from {path}; load {os.getloadavg()[0]:.1f}")
        else:
            store = open_store(f"sqlite:///{path}", kek=parse_kek(generate_kek()))
            store.clock = reads.FrozenClock(reads.NOW)
            t0 = time.perf_counter()
            reads.build(store, n, 1)
            if keep:
                reads.mark_kept(store, n, 1)
            secs = time.perf_counter() - t0
            print(f"Arrays: {n:,} incidents built in {secs:.0f} s; load {os.getloadavg()[0]:.1f}")
        store.clock = reads.FrozenClock(reads.NOW)
        reads.set_indexes(store, True)
        for name, governed, plain in reads.queries(store, False):
            if "arrays" not in name or "DB-API" in name or "1-statement" in name:
                # the old paths: benchmarks/reads.py
                continue
            size = len(governed())  # warm
            plain()
            g, b, cpu = [], [], []
            for _ in range(repeat):
                t0, c0 = time.perf_counter(), reads.cpu_seconds()
                governed()
                g.append(time.perf_counter() - t0)
                cpu.append(reads.cpu_seconds() - c0)  # with the Arrow reader's worker
                t0 = time.perf_counter()
                plain()
                b.append(time.perf_counter() - t0)
            gm, bm, cm = statistics.median(g), statistics.median(b), statistics.median(cpu)
            verdict = "met" if gm <= 2.0 else "not met"
            if n < 1_000_000:
                verdict += f" with {n:,} stored, the target is for 1,000,000"
            print(
                f"Arrays {name}, {size:,} points: {gm:6.2f} s (CPU {cm:.2f} s; target <= 2 s: "
                f"{verdict})   bare SELECT into numpy: {bm:6.2f} s (x{gm / bm:.1f})   "
                f"load {os.getloadavg()[0]:.1f}"
            )
        store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kde-points", type=int, default=1_000_000)
    parser.add_argument("--kde-subsample", type=int, default=2_000)
    parser.add_argument("--gi-cells", type=int, default=100_000)
    parser.add_argument("--knox-points", type=int, default=50_000)
    parser.add_argument("--knox-subsample", type=int, default=3_000)
    parser.add_argument("--dup-points", type=int, default=1_000_000)
    parser.add_argument("--dup-subsample", type=int, default=3_000)
    parser.add_argument("--arrays-rows", type=int, default=1_000_000)
    parser.add_argument("--arrays-repeat", type=int, default=3)
    parser.add_argument(
        "--arrays-keep",
        metavar="PATH",
        help="keep the arrays population in this SQLite file and reuse it on later runs "
        "(the file of `benchmarks/reads.py --keep` with the same number of rows)",
    )
    parser.add_argument(
        "--only", choices=["kde", "gi", "knox", "duplicates", "arrays"], help="One benchmark."
    )
    args = parser.parse_args()
    print(
        f"{platform.platform()}, python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    runs = {
        "kde": lambda: bench_kde(args.kde_points, args.kde_subsample),
        "gi": lambda: bench_gi(args.gi_cells),
        "knox": lambda: bench_knox(args.knox_points, args.knox_subsample),
        "duplicates": lambda: bench_duplicates(args.dup_points, args.dup_subsample),
        "arrays": lambda: bench_arrays(args.arrays_rows, args.arrays_repeat, args.arrays_keep),
    }
    for name, fn in runs.items():
        if args.only in (None, name):
            fn()


if __name__ == "__main__":
    main()
