"""Ingest benchmark: end-to-end ingest rate against the raw load rate, same rows, same run.

Usage::

    python benchmarks/run.py   # 1 M rows, SQLite + PostgreSQL, memory at 1 M and 5 M
    python benchmarks/run.py --rows 200000 --memory-rows 200000,1000000 --repeat 1

For each backend it measures, on the same synthetic CSV:

* the raw load rate: the CSV parsed with the csv module and loaded with a plain
  ``executemany`` into a SQLite table of the same columns, or with ``COPY`` into a
  PostgreSQL table (no validation, no derivation, no history);
* the end-to-end rate of ``crossbeat.ingest.pipeline.ingest_files`` (profile, dates,
  crosswalk, validation, H3, jurisdictions, upsert with history and quarantine);
* the rate of ingesting the same file again into that store (every row unchanged:
  skipped by its source digest, ``crossbeat.ingest.unchanged``);
* with ``--per-row``, the end-to-end rate with every row normalised one by one
  (``ingest_files(columnar=False)``, the reference path) beside the columnar one.

The feed is what real feeds are like: points in a projected CRS (Oregon State Plane
North, US feet, EPSG:2913, transformed to WGS84 by the ingest), and the agency's area
cut into 16 district polygons, with a neighbouring agency overlapping a quarter of it
(every point is tagged with the jurisdictions containing it).

Before any store is written it prints the rate of reading the file with the streaming
reader and as columns (plain blocks, ``crossbeat.ingest.csv_blocks``), then that of the
normalising stage alone (read, normalise, H3 and jurisdictions; no database) for the
per-row path (streaming reader, per-row normaliser) and the columnar one (blocks,
columnar normaliser) on the same rows (``--stage-rows``).

It prints the machine, the medians over ``--repeat`` runs and their ratio, then the
peak resident memory of a separate process ingesting ``--memory-rows`` rows each
(memory must not grow with file size): that of the ingesting process and that of its
normalising worker (files of 4 MB and more on a machine with several cores).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ingest_compare import geopandas_load, ogr2ogr, ogr2ogr_available, write_floor  # noqa: E402

PG_ADMIN = os.environ.get(
    "CROSSBEAT_BENCH_POSTGRES_URL",
    os.environ.get("CROSSBEAT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
)

HEADER = ["id", "date", "time", "x", "y", "address", "code", "description", "beat"]
#: The generated points (WGS84) and the 4 x 4 districts of the bench agency.
AREA = (-122.75, 45.45, -122.55, 45.60)
CRS = "EPSG:2913"
CODES = [
    ("220", "BURGLARY"),
    ("13B", "SIMPLE ASSAULT"),
    ("240", "MOTOR VEHICLE THEFT"),
    ("23F", "THEFT FROM MOTOR VEHICLE"),
    ("290", "VANDALISM"),
    ("23C", "SHOPLIFTING"),
    ("120", "ROBBERY"),
    ("35A", "DRUG VIOLATION"),
]
STREETS = [
    "MAIN ST",
    "OAK AVE",
    "RIVER RD",
    "HILL ST",
    "PARK BLVD",
    "ELM ST",
    "1ST AVE",
    "MARKET ST",
]

PROFILE = """
name = "bench-feed"
keep = ["beat"]

[source]
format = "csv"
timezone = "America/Los_Angeles"
crs = "EPSG:2913"

[id]
columns = ["id"]

[occurred_from]
date_column = "date"
time_column = "time"
formats = ["%m/%d/%Y"]
time_formats = ["%H%M"]

[location]
x = "x"
y = "y"
address = "address"

[[offences]]
scheme = "code-nibrs"
code = "code"
description = "description"
"""


def machine() -> dict[str, str]:
    """Describe the machine the figures come from."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


def generate(path: Path, rows: int, seed: int = 1) -> None:
    """Write a deterministic synthetic agency export of ``rows`` rows (points in EPSG:2913)."""
    from pyproj import Transformer

    rng = random.Random(seed)
    to_feet = Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
    min_lon, min_lat, max_lon, max_lat = AREA
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for i in range(rows):
            code, desc = CODES[rng.randrange(len(CODES))]
            lon = min_lon + rng.random() * (max_lon - min_lon)
            lat = min_lat + rng.random() * (max_lat - min_lat)
            x, y = to_feet.transform(lon, lat)
            w.writerow(
                [
                    f"B{i:08d}",
                    f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/2024",
                    f"{rng.randint(0, 23):02d}{rng.randint(0, 59):02d}",
                    f"{x:.1f}",
                    f"{y:.1f}",
                    f"{rng.randint(1, 9999)} {STREETS[rng.randrange(len(STREETS))]}",
                    code,
                    desc,
                    str(rng.randint(1, 40)),
                ]
            )


def raw_sqlite(csv_path: Path, db_path: Path) -> float:
    """Load the rows with a plain executemany; return seconds."""
    t0 = time.perf_counter()
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute(f"CREATE TABLE raw ({', '.join(c + ' TEXT' for c in HEADER)})")
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader)
        batch: list[list[str]] = []
        for rec in reader:
            batch.append(rec)
            if len(batch) >= 10000:
                con.executemany(f"INSERT INTO raw VALUES ({','.join('?' * len(HEADER))})", batch)
                con.commit()
                batch = []
        if batch:
            con.executemany(f"INSERT INTO raw VALUES ({','.join('?' * len(HEADER))})", batch)
            con.commit()
    con.close()
    return time.perf_counter() - t0


def raw_postgres(csv_path: Path, url: str) -> float:
    """Load the rows with COPY; return seconds."""
    import psycopg

    t0 = time.perf_counter()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as con:
        con.execute(f"CREATE TABLE raw ({', '.join(c + ' text' for c in HEADER)})")
        with con.cursor() as cur, cur.copy("COPY raw FROM STDIN (FORMAT csv, HEADER true)") as copy:
            with csv_path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    copy.write(chunk)
        con.commit()
    return time.perf_counter() - t0


def districts() -> list[tuple[str, str, dict[str, object]]]:
    """Return (agency, name, GeoJSON polygon): 4 x 4 districts and an overlapping neighbour."""
    min_lon, min_lat, max_lon, max_lat = AREA
    dx, dy = (max_lon - min_lon) / 4, (max_lat - min_lat) / 4

    def box(x0: float, y0: float, x1: float, y1: float) -> dict[str, object]:
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        return {"type": "Polygon", "coordinates": [ring]}

    out = [
        (
            "benchpd",
            f"district {i}{j}",
            box(min_lon + i * dx, min_lat + j * dy, min_lon + (i + 1) * dx, min_lat + (j + 1) * dy),
        )
        for i in range(4)
        for j in range(4)
    ]
    mid_lon, mid_lat = (min_lon + max_lon) / 2, (min_lat + max_lat) / 2
    out.append(("nextpd", "north-east", box(mid_lon, mid_lat, max_lon + 0.1, max_lat + 0.1)))
    return out


def _bench_store(url: str, profile_path: Path) -> tuple[object, object]:
    """Open a fresh store with the bench agency, its districts and its neighbour."""
    from crossbeat.agencies import register_agency, set_jurisdictions
    from crossbeat.ingest.profile import load_profile
    from crossbeat.model import Agency
    from crossbeat.store import open_store
    from crossbeat.vault.kek import generate_kek, parse_kek

    # Personal data (the full address) is encrypted on write: a throwaway KEK.
    store = open_store(url, kek=parse_kek(generate_kek()))
    profile = load_profile(profile_path)
    for agency in ("benchpd", "nextpd"):
        register_agency(store, Agency(agency, agency, timezone=profile.source.timezone))
        set_jurisdictions(
            store, agency, [(name, geom) for a, name, geom in districts() if a == agency]
        )
    return store, profile


def crossbeat_ingest(
    csv_path: Path,
    url: str,
    profile_path: Path,
    columnar: bool = True,
    floor_url: str | None = None,
    before_url: str | None = None,
) -> tuple[float, float, float | None]:
    """Ingest with the full pipeline into a fresh store, then again; return both seconds.

    With ``floor_url`` (another fresh store), also the seconds of writing the stored
    rows into it (:func:`ingest_compare.write_floor`, the schema's write floor); with
    ``before_url`` too, the floor as the store wrote before (appended to FLOOR_BEFORE).
    """
    from crossbeat.ingest.pipeline import ingest_files
    from crossbeat.store.base import close_all

    store, profile = _bench_store(url, profile_path)
    t0 = time.perf_counter()
    summary = ingest_files(store, "benchpd", profile, [csv_path], columnar=columnar)
    elapsed = time.perf_counter() - t0
    if summary.new != summary.rows:
        raise SystemExit(f"benchmark ingest did not store every row: {summary.as_dict()}")
    t0 = time.perf_counter()
    again = ingest_files(store, "benchpd", profile, [csv_path])
    again_elapsed = time.perf_counter() - t0
    if again.unchanged != again.rows:
        raise SystemExit(f"re-ingest did not find every row unchanged: {again.as_dict()}")
    floor = None
    if floor_url is not None:
        target, _ = _bench_store(floor_url, profile_path)
        floor, written = write_floor(store, target)
        if written != summary.rows:
            raise SystemExit(f"write floor wrote {written} of {summary.rows} incidents")
        if before_url is not None:
            target, _ = _bench_store(before_url, profile_path)
            FLOOR_BEFORE.append(write_floor(store, target, before=True)[0])
    close_all()
    return elapsed, again_elapsed, floor


#: Seconds of the write floor as the store wrote before this session (``--floor-before``).
FLOOR_BEFORE: list[float] = []


def stage_rates(csv_path: Path, profile_path: Path, rows: int) -> tuple[float, float, float]:
    """Return rows/s of reading + normalising + deriving ``rows`` rows (no database).

    For the per-row normaliser and the columnar one, on the same parts of 2,000 rows,
    and the share of rows the columnar path built itself (the rest are exceptions).
    """
    import itertools

    from crossbeat.agencies import jurisdiction_index
    from crossbeat.ingest.csv_blocks import records
    from crossbeat.ingest.items import derive
    from crossbeat.ingest.pipeline import RowRouter
    from crossbeat.ingest.readers import open_source
    from crossbeat.store.base import close_all

    store, profile = _bench_store("sqlite://", profile_path)
    index = jurisdiction_index(store)

    def run(columnar: bool, count: int = rows) -> float:
        router = RowRouter(store, profile, "benchpd", str(csv_path), index, columnar=columnar)
        t0 = time.perf_counter()
        with open_source(csv_path, profile.source) as src:
            stream = itertools.islice(records(src) if columnar else iter(src), count)
            while part := list(itertools.islice(stream, 2000)):
                if len(derive(router.batch(part, "f"), index)) != len(part):
                    raise SystemExit("stage benchmark lost rows")
        return time.perf_counter() - t0

    run(False, 2000), run(True, 2000)  # warm up: lexicons, transformers, caches
    per_row, columnar = run(False), run(True)
    router = RowRouter(store, profile, "benchpd", str(csv_path), index)
    with open_source(csv_path, profile.source) as src:
        first = list(itertools.islice(iter(src), 2000))
    share = sum(1 for c in router.columnar("benchpd").common(first) if c is not None) / len(first)
    close_all()
    return rows / per_row, rows / columnar, share


def read_rates(csv_path: Path, profile_path: Path) -> tuple[float, float]:
    """Return rows/s of reading the whole file: the streaming reader, and by blocks.

    The blocks are the columnar reader's (:func:`crossbeat.ingest.csv_blocks.records`):
    both give the same records.
    """
    from crossbeat.ingest.csv_blocks import records
    from crossbeat.ingest.profile import load_profile
    from crossbeat.ingest.readers import open_source

    profile = load_profile(profile_path)
    out = []
    for blockwise in (False, True):
        t0 = time.perf_counter()
        with open_source(csv_path, profile.source) as src:
            n = sum(1 for _ in (records(src) if blockwise else src))
        out.append(n / (time.perf_counter() - t0))
    return out[0], out[1]


class PgDatabases:
    """Fresh PostgreSQL databases for each run, dropped afterwards."""

    def __init__(self, admin: str) -> None:
        import psycopg

        self.admin = admin.replace("postgresql+psycopg://", "postgresql://")
        self.con = psycopg.connect(self.admin, autocommit=True)
        self.names: list[str] = []

    def new(self, postgis: bool = False) -> str:
        """Create a database and return its URL (``postgis``: with the extension)."""
        import psycopg

        name = f"cb_bench_{uuid.uuid4().hex[:10]}"
        self.con.execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        base, _, _ = self.admin.rpartition("/")
        if postgis:
            with psycopg.connect(f"{base}/{name}", autocommit=True) as con:
                con.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        return f"{base}/{name}"

    def close(self) -> None:
        for n in self.names:
            self.con.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')
        self.con.close()


def peak_memory(rows: int, work: Path, profile_path: Path) -> tuple[float, float]:
    """Ingest ``rows`` rows into SQLite in a fresh process.

    Returns the peak RSS in MiB of that process and of its worker (0 without one).
    """
    csv_path = work / f"mem_{rows}.csv"
    generate(csv_path, rows, seed=2)
    db = work / f"mem_{rows}.db"
    code = (
        "import resource, sys\n"
        "from crossbeat.agencies import register_agency\n"
        "from crossbeat.ingest.pipeline import ingest_files\n"
        "from crossbeat.ingest.profile import load_profile\n"
        "from crossbeat.model import Agency\n"
        "from crossbeat.store import open_store\n"
        "from crossbeat.vault.kek import generate_kek, parse_kek\n"
        f"store = open_store('sqlite:///{db}', kek=parse_kek(generate_kek()))\n"
        f"profile = load_profile('{profile_path}')\n"
        "register_agency(store, Agency('benchpd', 'Bench PD', timezone=profile.source.timezone))\n"
        f"s = ingest_files(store, 'benchpd', profile, ['{csv_path}'])\n"
        "assert s.new == s.rows, s.as_dict()\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
        " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    csv_path.unlink()
    main_kib, worker_kib = out.stdout.strip().splitlines()[-1].split()
    return int(main_kib) / 1024, int(worker_kib) / 1024


def alternatives(backend: str, csv_path: Path, work: Path, rows: int) -> dict[str, float]:
    """Load the CSV with ogr2ogr and GeoPandas: into PostGIS, or into a GeoPackage for SQLite.

    Prints and returns rows/s of each (ogr2ogr is skipped when GDAL is not installed).
    """
    out: dict[str, float] = {}
    tools = [("geopandas", geopandas_load)]
    if ogr2ogr_available():
        tools.insert(0, ("ogr2ogr", ogr2ogr))
    else:
        print(f"{backend:<9} ogr2ogr: not installed (apt-get install gdal-bin), skipped")
    pg = PgDatabases(PG_ADMIN) if backend == "postgres" else None
    try:
        for name, load in tools:
            if pg is not None:
                target, where = pg.new(postgis=True), "PostGIS"
            else:
                target, where = str(work / f"{name}.gpkg"), "GeoPackage"
            rate = rows / load(csv_path, target)
            out[f"{name}_rows_per_s"] = rate
            print(
                f"{backend:<9} {name} into {where}: {rate:>9,.0f} rows/s   "
                f"load average {os.getloadavg()}"
            )
            if pg is None:
                Path(target).unlink()
    finally:
        if pg is not None:
            pg.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (median reported)")
    ap.add_argument("--memory-rows", default="1000000,5000000", help="comma-separated row counts")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    ap.add_argument(
        "--stage-rows", type=int, default=100_000, help="rows of the normalising-stage figures"
    )
    ap.add_argument(
        "--per-row",
        action="store_true",
        help="also ingest end to end with the per-row normaliser (columnar=False)",
    )
    ap.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip the schema write floor (the stored rows written into a fresh store)",
    )
    ap.add_argument(
        "--floor-before",
        action="store_true",
        help="also the write floor as the store wrote before (trigger, indexes, text COPY)",
    )
    ap.add_argument(
        "--no-alternatives",
        dest="alternatives",
        action="store_false",
        help="skip ogr2ogr and GeoPandas loading the same CSV",
    )
    args = ap.parse_args()

    results: dict[str, object] = {"machine": machine(), "rows": args.rows, "repeat": args.repeat}
    print("machine:", json.dumps(results["machine"]))
    with tempfile.TemporaryDirectory(prefix="crossbeat-bench-") as tmp:
        work = Path(tmp)
        profile_path = work / "bench.toml"
        profile_path.write_text(PROFILE, encoding="utf-8")
        csv_path = work / "rows.csv"
        generate(csv_path, args.rows)
        print(f"rows: {args.rows:,} ({csv_path.stat().st_size / 1e6:.1f} MB CSV)")
        streaming, blockwise = read_rates(csv_path, profile_path)
        print(
            f"reading the file ({args.rows:,} records): streaming reader {streaming:,.0f} rows/s, "
            f"plain blocks as columns {blockwise:,.0f} rows/s (x{blockwise / streaming:.2f})   "
            f"load average {os.getloadavg()}"
        )
        results["read"] = {"streaming": streaming, "blocks": blockwise}
        stage = min(args.stage_rows, args.rows)
        if stage:
            per_row, columnar, share = stage_rates(csv_path, profile_path, stage)
            print(
                f"normalising stage ({stage:,} rows, read + normalise + H3 + jurisdictions, "
                f"no database): per-row {per_row:,.0f} rows/s, columnar {columnar:,.0f} rows/s "
                f"(x{columnar / per_row:.2f}; {share:.0%} of rows on the columnar path)   "
                f"load average {os.getloadavg()}"
            )
            results["stage"] = {"per_row": per_row, "columnar": columnar, "share": share}
        for backend in args.backends.split(","):
            raw_t, cb_t, re_t, row_t, floor_t = [], [], [], [], []
            FLOOR_BEFORE.clear()
            pg = PgDatabases(PG_ADMIN) if backend == "postgres" else None
            try:
                for i in range(args.repeat):
                    if pg is None:
                        raw_t.append(raw_sqlite(csv_path, work / f"raw{i}.db"))
                        floor_url = f"sqlite:///{work / f'floor{i}.db'}" if args.floor else None
                        before_url = (
                            f"sqlite:///{work / f'before{i}.db'}" if args.floor_before else None
                        )
                        first, again, floor = crossbeat_ingest(
                            csv_path,
                            f"sqlite:///{work / f'cb{i}.db'}",
                            profile_path,
                            True,
                            floor_url,
                            before_url,
                        )
                        if args.per_row:
                            url = f"sqlite:///{work / f'pr{i}.db'}"
                            row_t.append(crossbeat_ingest(csv_path, url, profile_path, False)[0])
                        for p in work.glob(f"*{i}.db*"):
                            p.unlink()
                    else:
                        raw_t.append(raw_postgres(csv_path, pg.new()))
                        floor_url = pg.new() if args.floor else None
                        before_url = pg.new() if args.floor_before else None
                        first, again, floor = crossbeat_ingest(
                            csv_path, pg.new(), profile_path, True, floor_url, before_url
                        )
                        if args.per_row:
                            row_t.append(
                                crossbeat_ingest(csv_path, pg.new(), profile_path, False)[0]
                            )
                    cb_t.append(first)
                    re_t.append(again)
                    if floor is not None:
                        floor_t.append(floor)
            finally:
                if pg is not None:
                    pg.close()
            raw_rate = args.rows / statistics.median(raw_t)
            cb_rate = args.rows / statistics.median(cb_t)
            re_rate = args.rows / statistics.median(re_t)
            label = "executemany" if pg is None else "COPY"
            print(
                f"{backend:<9} raw ({label}): {raw_rate:>10,.0f} rows/s   "
                f"crossbeat ingest: {cb_rate:>9,.0f} rows/s   ratio {cb_rate / raw_rate:6.1%}   "
                f"(median of {args.repeat}; raw runs {[round(t, 1) for t in raw_t]} s, "
                f"ingest runs {[round(t, 1) for t in cb_t]} s)"
            )
            print(
                f"{backend:<9} re-ingest of the unchanged file: {re_rate:>9,.0f} rows/s   "
                f"(runs {[round(t, 1) for t in re_t]} s)   load average {os.getloadavg()}"
            )
            entry: dict[str, float] = {
                "raw_rows_per_s": raw_rate,
                "ingest_rows_per_s": cb_rate,
                "reingest_rows_per_s": re_rate,
                "ratio": cb_rate / raw_rate,
            }
            if floor_t:
                floor_rate = args.rows / statistics.median(floor_t)
                print(
                    f"{backend:<9} schema write floor (the stored rows into a fresh store): "
                    f"{floor_rate:>9,.0f} rows/s   end to end {cb_rate / floor_rate:6.1%} of it   "
                    f"(runs {[round(t, 1) for t in floor_t]} s)   load average {os.getloadavg()}"
                )
                entry["floor_rows_per_s"] = floor_rate
            if FLOOR_BEFORE:
                before_rate = args.rows / statistics.median(FLOOR_BEFORE)
                print(
                    f"{backend:<9} write floor as written before (R*Tree trigger, indexes "
                    f"during the load, text COPY): {before_rate:>9,.0f} rows/s   "
                    f"now x{floor_rate / before_rate:.2f}   "
                    f"(runs {[round(t, 1) for t in FLOOR_BEFORE]} s)"
                )
                entry["floor_before_rows_per_s"] = before_rate
            if row_t:
                row_rate = args.rows / statistics.median(row_t)
                print(
                    f"{backend:<9} per-row normaliser end to end: {row_rate:>9,.0f} rows/s   "
                    f"columnar x{cb_rate / row_rate:.2f}   (runs {[round(t, 1) for t in row_t]} s)"
                )
                results[f"{backend}_per_row_rows_per_s"] = row_rate
            if args.alternatives:
                entry.update(alternatives(backend, csv_path, work, args.rows))
            results[backend] = entry
        mem: dict[str, dict[str, float]] = {}
        for n in (int(x) for x in args.memory_rows.split(",") if x):
            main_mib, worker_mib = peak_memory(n, work, profile_path)
            mem[str(n)] = {"ingest": main_mib, "worker": worker_mib}
            print(
                f"peak RSS ingesting {n:>9,} rows into SQLite: {main_mib:7.1f} MiB "
                f"(normalising worker: {worker_mib:.1f} MiB)"
            )
        results["peak_rss_mib"] = mem
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
