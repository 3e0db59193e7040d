"""Toronto's own analyst reading Toronto's 240,992 incidents: governed reads beside bare SQL.

Usage::

    python benchmarks/toronto_reads.py                    # ingest into a temporary file
    python benchmarks/toronto_reads.py --db /tmp/tps.db   # keep (and reuse) the database
    python benchmarks/toronto_reads.py --reference        # + the per-record path once

The issue (#8) measured, before the reads were compiled to SQL, on this data in one
SQLite file as the agency's own analyst: a count by ``h3_9`` 172 s, by month 147 s, the
bare ``GROUP BY h3_9`` 0.5 s, a viewport page of 5,000 incidents 2.8 s. This script
ingests ``../shared/data/toronto-mci`` (train.csv and test.csv) through
``examples/profiles/toronto-mci.mci.toml`` with ``crossbeat.ingest`` (as
``crossbeat ingest`` does, flags derived at its end) and prints the same reads now,
p50/p95 of ``--repeat`` runs, each beside the bare SQL query in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from run import machine  # noqa: E402
from sqlalchemy import text  # noqa: E402

from crossbeat.agencies import register_agency  # noqa: E402
from crossbeat.ingest.pipeline import ingest_files  # noqa: E402
from crossbeat.ingest.profile import load_profile  # noqa: E402
from crossbeat.model import Agency  # noqa: E402
from crossbeat.sharing.flags import refresh_flags  # noqa: E402
from crossbeat.sharing.policy import ReadRequest, Viewer  # noqa: E402
from crossbeat.sharing.reads import aggregate, read_incidents  # noqa: E402
from crossbeat.store import Store, open_store  # noqa: E402
from crossbeat.vault.kek import generate_kek, parse_kek  # noqa: E402

DATA = HERE.parent.parent / "shared" / "data" / "toronto-mci"
PROFILE = HERE.parent / "examples" / "profiles" / "toronto-mci.mci.toml"
ANALYST = Viewer.user("tps-analyst", "tps", ["analyst"])
#: Downtown Toronto, about 1.6 km x 1.1 km: more than 5,000 incidents.
VIEWPORT = (-79.395, 43.645, -79.375, 43.655)


def build(store: Store) -> None:
    """Register Toronto and ingest its two files (skipped when already stored)."""
    with store.engine.connect() as conn:
        if conn.execute(text("SELECT count(*) FROM incidents")).scalar():
            return
    register_agency(
        store, Agency(id="tps", name="Toronto Police Service", timezone="America/Toronto")
    )
    t0 = time.perf_counter()
    files = [DATA / "train.csv", DATA / "test.csv"]
    summary = ingest_files(store, "tps", load_profile(PROFILE), files)
    t1 = time.perf_counter()
    derived = refresh_flags(store, ["tps"])
    t2 = time.perf_counter()
    print(f"ingested {summary.totals.rows:,} rows in {t1 - t0:.0f} s; "
          f"flags of {derived:,} rows derived in {t2 - t1:.1f} s")  # fmt: skip


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    """Return the wall times (ms) of ``repeat`` calls, after one warm-up call."""
    fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--db", help="SQLite file to use (kept; reused when it holds the data)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--reference", action="store_true", help="time the per-record path once")
    ap.add_argument("--only", default="", help="time only the queries whose name contains this")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"no Toronto data at {DATA}")
    print("machine:", json.dumps(machine()))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.db) if args.db else Path(tmp) / "toronto.db"
        # Personal data is sealed at ingest: the key is kept beside a reused database.
        key_file = path.with_suffix(".kek")
        if not key_file.exists():
            key_file.write_text(generate_kek())
        store = open_store(f"sqlite:///{path}", kek=parse_kek(key_file.read_text().strip()))
        build(store)
        mine = ReadRequest(agencies=frozenset({"tps"}))
        live = "withdrawn_at IS NULL AND agency_id = 'tps'"
        x0, y0, x1, y1 = VIEWPORT

        def bare(sql: str) -> Callable[[], Any]:
            def run() -> Any:
                with store.engine.connect() as conn:
                    return conn.execute(text(sql)).all()

            return run

        month = "strftime('%Y-%m', occurred_from, '-18000 seconds')"
        pairs = [
            ("count by h3_9", lambda: aggregate(store, ANALYST, mine, by=("h3_9",)),
             bare(f"SELECT h3_9, count(*) FROM incidents WHERE {live} GROUP BY h3_9")),
            ("count by month", lambda: aggregate(store, ANALYST, mine, by=("month",)),
             bare(f"SELECT {month}, count(*) FROM incidents WHERE {live} GROUP BY 1")),
            ("viewport page <= 5000",
             lambda: read_incidents(store, ANALYST, ReadRequest(
                 agencies=mine.agencies, bbox=VIEWPORT, limit=5000)),
             bare(f"SELECT * FROM incidents WHERE {live} AND lat BETWEEN {y0} AND {y1} "
                  f"AND lon BETWEEN {x0} AND {x1} ORDER BY public_id LIMIT 5000")),
        ]  # fmt: skip
        n = len(read_incidents(store, ANALYST, ReadRequest(bbox=VIEWPORT, limit=5000)).records)
        print(f"viewport page holds {n:,} incidents")
        print(f"ms, {args.repeat} runs each (p50 / p95):")
        for name, governed, plain in pairs:
            if args.only not in name:
                continue
            g, b = timed(governed, args.repeat), timed(plain, args.repeat)
            print(f"  {name:24} policy {statistics.median(g):8.1f} / {p95(g):8.1f}   "
                  f"bare {statistics.median(b):8.1f} / {p95(b):8.1f}   "
                  f"ratio {statistics.median(g) / statistics.median(b):5.2f}   "
                  f"load {os.getloadavg()[0]:.1f}",
                  flush=True)  # fmt: skip
        if args.reference:
            for by in (("h3_9",), ("month",)):
                t0 = time.perf_counter()
                aggregate(store, ANALYST, mine, by=by, path="reference")
                print(f"  count by {by[0]}, per-record reference path: "
                      f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
        store.dispose()


if __name__ == "__main__":
    main()
