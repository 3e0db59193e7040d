"""Bytes per stored incident, table by table and index by index (issue #9).

Usage::

    python benchmarks/store_size.py                      # 20,000 rows into SQLite
    python benchmarks/store_size.py --rows 100000 --db postgresql://postgres@127.0.0.1:5432/postgres

Ingests the synthetic export of ``benchmarks/run.py`` through the full pipeline into a
fresh store, then prints for every table holding incident data (the incident rows, their
offences, jurisdiction and area tags, versions, sealed personal data, the live event
log) the bytes it and each of its indexes take, divided by the number of incidents:
SQLite's ``dbstat`` (pages, so including free space in them) or PostgreSQL's
``pg_relation_size``. The total is given with and without personal data (the sealed
``incident_personal`` rows), which the issue's ≤ 600 bytes target leaves out.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import PROFILE, generate  # noqa: E402  (the benchmark's own export and profile)

#: Tables whose size grows with the incidents.
TABLES = (
    "incidents",
    "incident_offences",
    "incident_jurisdictions",
    "incident_areas",
    "incident_versions",
    "incident_personal",
    "live_events",
)
PERSONAL = ("incident_personal",)


def _sqlite_sizes(path: Path) -> dict[str, dict[str, int]]:
    import sqlite3

    con = sqlite3.connect(path)
    indexes = dict(con.execute("SELECT name, tbl_name FROM sqlite_schema WHERE type='index'"))
    out: dict[str, dict[str, int]] = {}
    for name, size in con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
        table = indexes.get(name, name)
        out.setdefault(table, {})[name if name in indexes else "(rows)"] = int(size)
    con.close()
    return out


def _postgres_sizes(url: str) -> dict[str, dict[str, int]]:
    import psycopg

    out: dict[str, dict[str, int]] = {}
    with psycopg.connect(url) as con:
        for (table,) in con.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall():
            heap = con.execute(
                "SELECT pg_relation_size(%s) + COALESCE(pg_relation_size("
                "(SELECT reltoastrelid FROM pg_class WHERE oid = %s::regclass)), 0)",
                (table, table),
            ).fetchone()
            out.setdefault(table, {})["(rows)"] = int(heap[0]) if heap else 0
            for index, size in con.execute(
                "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) "
                "FROM pg_index WHERE indrelid = %s::regclass",
                (table,),
            ).fetchall():
                out[table][index] = int(size)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--db", default="sqlite", help="sqlite, or a PostgreSQL admin URL")
    args = ap.parse_args()

    from crossbeat.agencies import register_agency
    from crossbeat.ingest.pipeline import ingest_files
    from crossbeat.ingest.profile import load_profile
    from crossbeat.model import Agency
    from crossbeat.store import open_store
    from crossbeat.store.base import close_all
    from crossbeat.vault.kek import generate_kek, parse_kek

    with tempfile.TemporaryDirectory(prefix="crossbeat-size-") as tmp:
        work = Path(tmp)
        (work / "bench.toml").write_text(PROFILE, encoding="utf-8")
        csv_path = work / "rows.csv"
        generate(csv_path, args.rows)
        admin = None
        if args.db == "sqlite":
            url = f"sqlite:///{work / 'size.db'}"
        else:
            import psycopg

            admin = psycopg.connect(args.db, autocommit=True)
            name = f"cb_size_{uuid.uuid4().hex[:10]}"
            admin.execute(f'CREATE DATABASE "{name}"')
            url = f"{args.db.rpartition('/')[0]}/{name}"
        try:
            store = open_store(url, kek=parse_kek(generate_kek()))
            profile = load_profile(work / "bench.toml")
            register_agency(store, Agency("benchpd", "Bench PD", timezone=profile.source.timezone))
            summary = ingest_files(store, "benchpd", profile, [csv_path])
            close_all()
            n = summary.new
            if args.db == "sqlite":
                sizes = _sqlite_sizes(work / "size.db")
            else:
                sizes = _postgres_sizes(url)
        finally:
            if admin is not None:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.close()
    print(f"{args.db.split(':')[0]}: {n:,} incidents, load average {os.getloadavg()}")
    total = personal = 0
    for table in TABLES:
        parts = sizes.get(table, {})
        table_total = sum(parts.values())
        total += table_total
        if table in PERSONAL:
            personal += table_total
        print(f"  {table:<24} {table_total / n:8.1f} B/incident")
        for part, size in sorted(parts.items(), key=lambda kv: -kv[1]):
            print(f"    {part:<44} {size / n:8.1f}")
    print(f"  total                    {total / n:8.1f} B/incident")
    print(f"  without personal data    {(total - personal) / n:8.1f} B/incident")


if __name__ == "__main__":
    main()
