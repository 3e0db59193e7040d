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
  skipped by its source digest, ``crossbeat.ingest.unchanged``).

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
PG_ADMIN = os.environ.get(
    "CROSSBEAT_BENCH_POSTGRES_URL",
    os.environ.get("CROSSBEAT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
)

HEADER = ["id", "date", "time", "lon", "lat", "address", "code", "description", "beat"]
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

[id]
columns = ["id"]

[occurred_from]
date_column = "date"
time_column = "time"
formats = ["%m/%d/%Y"]
time_formats = ["%H%M"]

[location]
x = "lon"
y = "lat"
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
    """Write a deterministic synthetic agency export of ``rows`` rows."""
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for i in range(rows):
            code, desc = CODES[rng.randrange(len(CODES))]
            w.writerow(
                [
                    f"B{i:08d}",
                    f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/2024",
                    f"{rng.randint(0, 23):02d}{rng.randint(0, 59):02d}",
                    f"{-122.75 + rng.random() * 0.2:.6f}",
                    f"{45.45 + rng.random() * 0.15:.6f}",
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


def crossbeat_ingest(csv_path: Path, url: str, profile_path: Path) -> tuple[float, float]:
    """Ingest with the full pipeline into a fresh store, then again; return both seconds."""
    from crossbeat.agencies import register_agency
    from crossbeat.ingest.pipeline import ingest_files
    from crossbeat.ingest.profile import load_profile
    from crossbeat.model import Agency
    from crossbeat.store import open_store
    from crossbeat.store.base import close_all
    from crossbeat.vault.kek import generate_kek, parse_kek

    # Personal data (the full address) is encrypted on write: a throwaway KEK.
    store = open_store(url, kek=parse_kek(generate_kek()))
    profile = load_profile(profile_path)
    register_agency(store, Agency("benchpd", "Bench PD", timezone=profile.source.timezone))
    t0 = time.perf_counter()
    summary = ingest_files(store, "benchpd", profile, [csv_path])
    elapsed = time.perf_counter() - t0
    if summary.new != summary.rows:
        raise SystemExit(f"benchmark ingest did not store every row: {summary.as_dict()}")
    t0 = time.perf_counter()
    again = ingest_files(store, "benchpd", profile, [csv_path])
    again_elapsed = time.perf_counter() - t0
    close_all()
    if again.unchanged != again.rows:
        raise SystemExit(f"re-ingest did not find every row unchanged: {again.as_dict()}")
    return elapsed, again_elapsed


class PgDatabases:
    """Fresh PostgreSQL databases for each run, dropped afterwards."""

    def __init__(self, admin: str) -> None:
        import psycopg

        self.admin = admin.replace("postgresql+psycopg://", "postgresql://")
        self.con = psycopg.connect(self.admin, autocommit=True)
        self.names: list[str] = []

    def new(self) -> str:
        name = f"cb_bench_{uuid.uuid4().hex[:10]}"
        self.con.execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        base, _, _ = self.admin.rpartition("/")
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


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (median reported)")
    ap.add_argument("--memory-rows", default="1000000,5000000", help="comma-separated row counts")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
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
        for backend in args.backends.split(","):
            raw_t, cb_t, re_t = [], [], []
            pg = PgDatabases(PG_ADMIN) if backend == "postgres" else None
            try:
                for i in range(args.repeat):
                    if pg is None:
                        raw_t.append(raw_sqlite(csv_path, work / f"raw{i}.db"))
                        first, again = crossbeat_ingest(
                            csv_path, f"sqlite:///{work / f'cb{i}.db'}", profile_path
                        )
                        cb_t.append(first)
                        re_t.append(again)
                        for p in work.glob(f"*{i}.db*"):
                            p.unlink()
                    else:
                        raw_t.append(raw_postgres(csv_path, pg.new()))
                        first, again = crossbeat_ingest(csv_path, pg.new(), profile_path)
                        cb_t.append(first)
                        re_t.append(again)
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
            results[backend] = {
                "raw_rows_per_s": raw_rate,
                "ingest_rows_per_s": cb_rate,
                "reingest_rows_per_s": re_rate,
                "ratio": cb_rate / raw_rate,
            }
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
