"""Read benchmark: governed reads beside the same queries as bare SQL, same run (issue #8).

Usage::

    python benchmarks/reads.py                      # 1 M incidents, SQLite
    python benchmarks/reads.py --rows 100000 --repeat 5
    python benchmarks/reads.py --db postgresql://postgres@127.0.0.1:5432/postgres
    python benchmarks/reads.py --rows 100000 --reference   # + the per-record path once
    python benchmarks/reads.py --keep /tmp/reads-1m.db     # build once, keep, reuse next time

It builds a synthetic population straight into the store's tables (bulk
``executemany`` on SQLite; on PostgreSQL generated column by column with its flags and
loaded by ``COPY``, ``benchmarks/reads_columns.py``; not through the ingest): four
agencies with jurisdiction boxes over a city, clustered points with their H3 cells,
offences from a local code list mapped to NIBRS (some sensitive by code, some only by
their description: keyword canaries), stored sensitivity flags, attributes, report and
end times, and withdrawn rows. Agreements: a partner sees the city at ``h3:9`` by day
after 24 h without sensitive records; the public sees every agency by default.

For each query it prints p50/p95 (milliseconds) of the policy-applied read
(``crossbeat.sharing``, audit included) and of the same query as bare SQL without the
policy, measured alternately in the same run, first without and then with the partial
indexes on live rows (migration 0014); on SQLite also both CPU-time medians and their
ratio (the database runs in this process, so on a loaded machine that is the cost of
the work without the waits for a core):

* viewport page: ``read_incidents`` with a bounding box, ``limit=5000``;
* hexagon aggregate: ``aggregate(by=("h3_9",))`` city-wide (own analyst, partner,
  public);
* daily time series: ``aggregate(by=("day",))``;
* arrays: ``analysis_arrays`` (numpy columns) of every visible incident (own analyst,
  partner, public), beside the same columns read without the policy the same columnar
  way (on a SQLite file: ADBC in the worker process of ``crossbeat.store.arrow``, into
  Arrow, then numpy; times as epoch microseconds computed in SQL), with the CPU time of
  this process and of the worker; again as "arrays 1-statement", the policy read by the
  Arrow reader in one statement (session 5's path; the default reads it in parts on two
  worker connections side by side); and as "arrays DB-API", both sides through the
  DB-API cursor (the path on PostgreSQL, and on SQLite before the Arrow reader).

Building 1 M rows takes 10-20 minutes on SQLite (the flags derivation dominates; on
PostgreSQL about 11 minutes under load, flags derived at generation): ``--keep PATH``
keeps the population (a SQLite file, or with ``--db`` a PostgreSQL database of that
name) and reuses it on the next run with the same ``--rows`` and ``--seed``; one built
at another schema revision is refused.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import h3  # noqa: E402
import numpy as np  # noqa: E402
from run import machine  # noqa: E402
from shapely.geometry import box, mapping  # noqa: E402
from sqlalchemy import make_url, text  # noqa: E402

from crossbeat.agencies import set_jurisdiction  # noqa: E402
from crossbeat.clock import FrozenClock  # noqa: E402
from crossbeat.model import Agency  # noqa: E402
from crossbeat.store import Store, open_store  # noqa: E402
from crossbeat.store.schema import ARRAY_COLUMNS  # noqa: E402
from crossbeat.store.spatial import SQLITE_TRIGGERS, create_spatial_index  # noqa: E402
from crossbeat.taxonomy.nibrs import nibrs_offences  # noqa: E402

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CITY = (-79.64, 43.58, -79.12, 43.86)
#: agency -> (time zone, jurisdiction box, share of the points inside it it owns)
AGENCIES: dict[str, tuple[str, tuple[float, float, float, float]]] = {
    "metro": ("America/Toronto", (-79.64, 43.58, -79.38, 43.86)),
    "east": ("America/Toronto", (-79.38, 43.58, -79.12, 43.86)),
    "transit": ("UTC", (-79.60, 43.64, -79.16, 43.66)),
    "campus": ("America/New_York", (-79.41, 43.65, -79.38, 43.67)),
}
#: (local code, description, NIBRS code, weight)
OFFENCES = [
    ("THEFT UNDER", "Theft Under $5000", "23H", 30),
    ("ASSAULT", "Assault", "13B", 18),
    ("B&E", "Break and Enter - House", "220", 12),
    ("AUTO THEFT", "Theft of Motor Vehicle", "240", 8),
    ("THEFT FROM MV", "Theft From Motor Vehicle", "23F", 10),
    ("MISCHIEF", "Mischief To Property", "290", 8),
    ("ROBBERY", "Robbery - Mugging", "120", 4),
    ("AGG ASSAULT", "Assault With Weapon", "13A", 4),
    ("DRUGS", "Possession of Cocaine", "35A", 3),
    ("FRAUD", "Fraud Under", "26A", 2),
    ("DOM ASSAULT", "Assault - Domestic", "13B", 1),  # flagged only by its wording
    ("SEX ASSAULT", "Sexual Assault", "11A", 1),  # flagged by its NIBRS code
]
PREMISES = ["Apartment", "House", "Commercial", "Outside", "Transit", "Educational"]
STREETS = ["YONGE ST", "BLOOR ST W", "QUEEN ST E", "KING ST W", "DUNDAS ST", "EGLINTON AVE"]
TS = "%Y-%m-%d %H:%M:%S.%f"

INCIDENT_COLUMNS = (
    "id agency_id source_id version record_hash offence_local_code nibrs_code crime_against "
    "ucr_part1 unmapped occurred_from occurred_to time_precision reported_at status lat lon "
    "location_precision block_address location_type h3_7 h3_9 h3_11 sens_sexual sens_domestic "
    "sens_juvenile sens_victim_identifying sens_informant attributes withdrawn_at batch_id "
    "source_file row_number raw_hash created_at updated_at public_id offences_json jurisdiction_ids"
).split()
OFFENCE_COLUMNS = (
    "incident_id seq local_code local_description scheme nibrs_code crime_against ucr_part1 match"
).split()
#: The covering columns of the cell indexes (migrations 0021, 0027d and 0027f).
_COUNTED = (
    "call_category, crime_against, sens_served, occurred_from, occurred_to, reported_at, created_at"
)
LIVE_INDEXES = {
    "ix_incidents_live_agency_h3_9": f"(agency_id, h3_9, {_COUNTED}, withdrawn_at, lat, lon)",
    "ix_incidents_live_agency_h3_7": f"(agency_id, h3_7, {_COUNTED}, withdrawn_at)",
    "ix_incidents_live_agency_occurred": "(agency_id, occurred_from, call_category)",
    "ix_incidents_live_lat_lon": "(lat, lon)",
    "ix_incidents_live_agency_local": f"(agency_id, occurred_local, {_COUNTED}, withdrawn_at)",
    "ix_incidents_live_arrays": f"({', '.join(ARRAY_COLUMNS)})",  # migration 0024a
}


# -- the population ----------------------------------------------------------------------
def owner_of(lon: float, lat: float, rng: random.Random) -> str:
    """Return the agency that reported a point (the smaller ones first, some of the time)."""
    for agency, share in (("campus", 0.7), ("transit", 0.3)):
        x0, y0, x1, y1 = AGENCIES[agency][1]
        if x0 <= lon <= x1 and y0 <= lat <= y1 and rng.random() < share:
            return agency
    return "metro" if lon < AGENCIES["metro"][1][2] else "east"


def rows(n: int, seed: int) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...], list[str]]]:
    """Yield ``(incident row, offence row, jurisdiction agencies)`` for ``n`` incidents."""
    rng = random.Random(seed)
    table = nibrs_offences()
    weights = [w for *_x, w in OFFENCES]
    centres = [(rng.uniform(CITY[0], CITY[2]), rng.uniform(CITY[1], CITY[3])) for _ in range(2000)]
    start = NOW - timedelta(days=730)
    created = NOW.strftime(TS)
    for i in range(n):
        cx, cy = centres[int(len(centres) * rng.random() ** 3)]  # a few hot spots
        lon = min(max(rng.gauss(cx, 0.004), CITY[0]), CITY[2])
        lat = min(max(rng.gauss(cy, 0.003), CITY[1]), CITY[3])
        owner = owner_of(lon, lat, rng)
        local, desc, code, _w = rng.choices(OFFENCES, weights)[0]
        entry = table[code]
        cell = h3.latlng_to_cell(lat, lon, 11)
        occurred = start + timedelta(seconds=rng.randrange(730 * 86400))
        ended = occurred + timedelta(minutes=rng.randrange(720)) if rng.random() < 0.5 else None
        reported = occurred + timedelta(minutes=rng.randrange(2880))
        attributes = json.dumps({"premises": rng.choice(PREMISES)}) if rng.random() < 0.2 else None
        iid = str(uuid.UUID(int=rng.getrandbits(128)))
        crime_against = entry.crime_against.value if entry.crime_against else None
        incident = (
            iid, owner, f"S{i}", 1, "0" * 64, local, code, crime_against, entry.ucr_part1,
            False, occurred.strftime(TS), ended.strftime(TS) if ended else None, "minute",
            reported.strftime(TS), "closed" if rng.random() < 0.6 else "open", lat, lon,
            "exact", f"{rng.randrange(1, 99)}00 BLOCK {rng.choice(STREETS)}", "20",
            h3.latlng_to_cell(lat, lon, 7), h3.latlng_to_cell(lat, lon, 9), cell,
            code == "11A", local == "DOM ASSAULT", rng.random() < 0.01, False, False,
            attributes, (NOW - timedelta(days=3)).strftime(TS) if rng.random() < 0.02 else None,
            "bench", "bench.csv", i, "0" * 64, created, created,
            str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        )  # fmt: skip
        offence = (iid, 0, local, desc, "bench", code, crime_against, entry.ucr_part1, "exact")
        inside = {
            a
            for a, (_tz, (x0, y0, x1, y1)) in AGENCIES.items()
            if x0 <= lon <= x1 and y0 <= lat <= y1
        }
        places = sorted(inside | {owner})
        # The child rows kept on the incident row, as the ingest writes them.
        row = [[local, code, crime_against, entry.ucr_part1, None]]
        kept = (json.dumps(row, separators=(",", ":")), ",".join(places))
        yield incident + kept, offence, places


def register(store: Store) -> None:
    """Register the agencies with their jurisdiction boxes."""
    from crossbeat.agencies import register_agency

    for agency, (tz, bounds) in AGENCIES.items():
        register_agency(store, Agency(id=agency, name=agency.title(), timezone=tz))
        set_jurisdiction(store, agency, f"{agency} area", mapping(box(*bounds)))


def populate(store: Store, n: int, seed: int = 1) -> float:
    """Register the agencies and write ``n`` incidents in bulk; return the seconds taken."""
    t0 = time.perf_counter()
    register(store)
    pg = store.engine.dialect.name == "postgresql"
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        indexes: list[str] = []
        if not pg:  # build the secondary indexes once, after the load
            cur.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                "AND tbl_name IN ('incidents', 'incident_offences', 'incident_jurisdictions')"
            )
            for name, sql in cur.fetchall():
                indexes.append(sql)
                cur.execute(f"DROP INDEX {name}")
            for name in SQLITE_TRIGGERS:  # the R*Tree is filled once, after the load
                cur.execute(f"DROP TRIGGER {name}")
        batch: list[Any] = []
        for item in rows(n, seed):
            batch.append(item)
            if len(batch) == 50_000:
                _write(cur, batch, pg)
                batch = []
        if batch:
            _write(cur, batch, pg)
        for sql in indexes:
            cur.execute(sql)
        raw.commit()
    finally:
        raw.close()
    if not pg:
        with store.engine.begin() as conn:
            create_spatial_index(conn)  # the triggers again, and the R*Tree filled
    return time.perf_counter() - t0


def _write(cur: Any, batch: list[Any], pg: bool) -> None:
    incidents = [b[0] for b in batch]
    offences = [b[1] for b in batch]
    places = [
        (b[0][0], a, "polygon" if a != b[0][1] or _inside(b[0], a) else "reporter")
        for b in batch
        for a in b[2]
    ]
    if pg:
        for name, cols, data in (
            ("incidents", INCIDENT_COLUMNS, incidents),
            ("incident_offences", OFFENCE_COLUMNS, offences),
            ("incident_jurisdictions", ["incident_id", "agency_id", "basis"], places),
        ):
            with cur.copy(f"COPY {name} ({', '.join(cols)}) FROM STDIN") as copy:
                for row in data:
                    copy.write_row([_pg(v) for v in row])
        return
    for name, cols, data in (
        ("incidents", INCIDENT_COLUMNS, incidents),
        ("incident_offences", OFFENCE_COLUMNS, offences),
        ("incident_jurisdictions", ["incident_id", "agency_id", "basis"], places),
    ):
        marks = ", ".join("?" * len(cols))
        cur.executemany(f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({marks})", data)


def _inside(row: tuple[Any, ...], agency: str) -> bool:
    lat, lon = row[15], row[16]
    x0, y0, x1, y1 = AGENCIES[agency][1]
    return x0 <= lon <= x1 and y0 <= lat <= y1


def _pg(value: Any) -> Any:
    if isinstance(value, str) and len(value) == 26 and value[4] == "-" and value[10] == " ":
        return value + "+00"
    return value


def agreements(store: Store) -> None:
    """The partner agreement and the public releases."""
    from crossbeat.auth.accounts import create_user
    from crossbeat.sharing.agreements import create_agreement

    for agency in AGENCIES:  # an owner's admin approves its agreements
        create_user(store, agency, f"{agency}.admin", "bench horse battery staple 7",
                    ["agency_admin"])  # fmt: skip
    create_agreement(
        store, "metro", "east", offences=["all"], fields=["all"], precision="h3:9",
        time_resolution="day", delay="24h", purposes=["analysis"], approved_by="metro.admin",
    )  # fmt: skip
    for agency in AGENCIES:
        create_agreement(store, agency, "public", approved_by=f"{agency}.admin")


def visible_totals(store: Store) -> dict[str, int | None]:
    """Return how many incidents each benchmark viewer counts (so no query is empty)."""
    from crossbeat.sharing.policy import ReadRequest, Viewer
    from crossbeat.sharing.reads import aggregate

    viewers = {
        "own (metro)": (Viewer.user("bench-own", "metro", ["analyst"]), {"metro"}),
        "partner (east)": (Viewer.user("bench-partner", "east", ["analyst"]), {"metro", "east"}),
        "public": (Viewer.public(), set(AGENCIES)),
    }
    return {
        name: aggregate(store, v, ReadRequest(agencies=frozenset(a)), by=()).total
        for name, (v, a) in viewers.items()
    }


# -- timing ----------------------------------------------------------------------------------
def timed(fn: Callable[[], Any], repeat: int, cpu: list[float] | None = None) -> list[float]:
    """Return the wall times (ms) of ``repeat`` calls (their CPU times appended to ``cpu``)."""
    out = []
    for _ in range(repeat):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
        if cpu is not None:
            cpu.append((time.process_time() - c0) * 1000)
    return out


def cpu_seconds() -> float:
    """Return the CPU time of this process and of the Arrow reader's worker process.

    The worker's (``crossbeat.store.arrow``) from ``/proc`` (Linux; elsewhere this
    process's only).
    """
    from crossbeat.store.arrow import WORKER

    total = time.process_time()
    pid = WORKER.pid
    if pid is not None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def p(values: list[float], q: float) -> float:
    """Return the ``q`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


@contextmanager
def bare(store: Store) -> Iterator[Any]:
    """A plain connection for the bare SQL queries."""
    with store.engine.connect() as conn:
        yield conn


def queries(store: Store, pg: bool) -> list[tuple[str, Callable[[], Any], Callable[[], Any]]]:
    """Return ``(name, policy-applied read, bare SQL)`` for every measured query."""
    from crossbeat.sharing.arrays import analysis_arrays
    from crossbeat.sharing.policy import ReadRequest, Viewer
    from crossbeat.sharing.reads import aggregate, read_incidents

    own = Viewer.user("bench-own", "metro", ["analyst"])
    partner = Viewer.user("bench-partner", "east", ["analyst"])
    public = Viewer.public()
    # The same owners as the bare query (a viewer also sees other owners' public data).
    mine = ReadRequest(agencies=frozenset({"metro"}))
    ours = ReadRequest(agencies=frozenset({"metro", "east"}))
    viewport = (-79.42, 43.64, -79.39, 43.66)  # downtown, about 2.4 km x 2.2 km
    day = (
        "to_char(occurred_from AT TIME ZONE 'America/Toronto', 'YYYY-MM-DD')"
        if pg
        else "strftime('%Y-%m-%d', occurred_from, '-18000 seconds')"
    )
    live = "withdrawn_at IS NULL"
    # The bare viewport query uses the spatial index too (crossbeat.store.spatial).
    near = (
        "geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)"
        if pg
        else "id IN (SELECT incident_id FROM incidents_rtree WHERE max_lat >= :y0 "
        "AND min_lat <= :y1 AND max_lon >= :x0 AND min_lon <= :x1)"
    )

    def sql(statement: str, **params: Any) -> Callable[[], Any]:
        def run() -> Any:
            with bare(store) as conn:
                return conn.execute(text(statement), params).all()

        return run

    epoch = (
        "CAST(EXTRACT(EPOCH FROM {c}) * 1000000 AS BIGINT)"
        if pg
        else "unixepoch(substr({c}, 1, 19)) * 1000000 + CAST(substr({c} || '000000', 21, 6) "
        "AS INTEGER)"
    )

    KINDS = {2: np.float64, 3: np.float64, 4: np.int64, 5: np.int64}

    def arrays_bare(owners: str | None = "'metro'", way: str = "arrow") -> Any:
        """The same columns without the policy, read the same columnar way into numpy.

        ``arrow``: as the arrays are read from a SQLite file (ADBC in the worker process,
        into Arrow, then numpy); ``dbapi``: through the DB-API cursor in batches, as they
        are read on PostgreSQL (and were before, on SQLite).
        """
        from crossbeat.sharing.arrays import _from_arrow
        from crossbeat.store.arrow import read_arrow

        among = f"AND agency_id IN ({owners})" if owners else ""
        nat = "(-9223372036854775807 - 1)"  # NaT's integer where a time is unknown
        times = ", ".join(
            f"COALESCE({epoch.format(c=c)}, {nat})" for c in ("occurred_from", "occurred_to")
        )
        statement = (
            "SELECT id, 0, lon, lat, {times}, COALESCE(nibrs_code, ''), "
            "COALESCE(crime_against, ''), COALESCE(location_type, ''), h3_9 FROM incidents "
            f"WHERE {live} {among} ORDER BY public_id"
        )
        with bare(store) as conn:
            if way == "arrow":  # times as the stored text, converted by Arrow
                arrow_sql = statement.format(times="occurred_from, occurred_to")
                table = read_arrow(conn, text(arrow_sql))
                if table is not None:
                    return _from_arrow(table)
            statement = statement.format(times=times)
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cur.execute(statement)
            parts = []
            while part := cur.fetchmany(50_000):
                cols = list(zip(*part, strict=True))
                parts.append([np.array(c, dtype=KINDS.get(k, object)) for k, c in enumerate(cols)])
            cur.close()
            return [np.concatenate(c) for c in zip(*parts, strict=True)] if parts else []

    def dbapi(read: Callable[[], Any]) -> Callable[[], Any]:
        """The same read with the Arrow reader turned off (the DB-API cursor's path)."""
        from crossbeat.sharing import arrays

        def run() -> Any:
            real = arrays.arrow_applies
            arrays.arrow_applies = lambda conn: False  # type: ignore[assignment]
            try:
                return read()
            finally:
                arrays.arrow_applies = real

        return run

    def one_statement(read: Callable[[], Any]) -> Callable[[], Any]:
        """The same read by the Arrow reader in one statement (session 5's path)."""
        from crossbeat.sharing import arrays

        def run() -> Any:
            arrays.IN_PARTS = False
            try:
                return read()
            finally:
                arrays.IN_PARTS = True

        return run

    arrays_reads = [
        ("own, all visible", lambda: analysis_arrays(store, own, mine), "'metro'"),
        ("partner: own + agreement", lambda: analysis_arrays(store, partner, ours),
         "'metro', 'east'"),
        ("public: every agency", lambda: analysis_arrays(store, public), None),
    ]  # fmt: skip
    arrays_queries: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = []
    for label, read, owners in arrays_reads:
        arrays_queries.append(
            (f"arrays ({label})", read, lambda owners=owners: arrays_bare(owners))
        )
        arrays_queries.append(
            (f"arrays 1-statement ({label})", one_statement(read),
             lambda owners=owners: arrays_bare(owners))
        )  # fmt: skip
        arrays_queries.append(
            (f"arrays DB-API ({label})", dbapi(read),
             lambda owners=owners: arrays_bare(owners, "dbapi"))
        )  # fmt: skip

    from tiles import queries as tile_queries  # the tiles at z10 and z15 (benchmarks/tiles.py)

    return [
        (
            "viewport page (own, <= 5000)",
            lambda: read_incidents(
                store, own, ReadRequest(bbox=viewport, limit=5000, agencies=mine.agencies)
            ),
            sql(
                f"SELECT * FROM incidents WHERE {live} AND agency_id = 'metro' AND {near} "
                "AND lat BETWEEN :y0 AND :y1 AND lon BETWEEN :x0 AND :x1 "
                "ORDER BY public_id LIMIT 5000",
                x0=viewport[0],
                y0=viewport[1],
                x1=viewport[2],
                y1=viewport[3],
            ),  # fmt: skip
        ),
        (
            "h3_9 aggregate (own)",
            lambda: aggregate(store, own, mine, by=("h3_9",)),
            sql(
                f"SELECT h3_9, count(*) FROM incidents WHERE {live} AND agency_id = 'metro' "
                "GROUP BY h3_9"
            ),
        ),
        (
            "h3_9 aggregate (partner)",
            lambda: aggregate(store, partner, ours, by=("h3_9",)),
            sql(
                f"SELECT h3_9, count(*) FROM incidents WHERE {live} AND agency_id IN "
                "('metro', 'east') GROUP BY h3_9"
            ),
        ),
        (
            "h3_9 aggregate (public)",
            lambda: aggregate(store, public, by=("h3_9",)),
            sql(f"SELECT h3_9, count(*) FROM incidents WHERE {live} GROUP BY h3_9"),
        ),
        (
            "daily series (own)",
            lambda: aggregate(store, own, mine, by=("day",)),
            sql(
                f"SELECT {day}, count(*) FROM incidents WHERE {live} AND agency_id = 'metro' "
                "GROUP BY 1"
            ),
        ),
        (
            "daily series (public)",
            lambda: aggregate(store, public, by=("day",)),
            sql(f"SELECT {day}, count(*) FROM incidents WHERE {live} GROUP BY 1"),
        ),
        *arrays_queries,
        *tile_queries(store),
    ]


def server_process() -> None:
    """Hold this process's objects as a server's worker holds them once it has started.

    ``crossbeat serve`` moves what a worker holds after its start into the collector's
    permanent generation (:func:`crossbeat.api.lifespan.freeze`), so that a full
    collection does not walk it during a read; this process measures reads as that
    worker serves them (and the bare queries alike).
    """
    from crossbeat.api.lifespan import freeze

    print(f"objects frozen as a server's worker freezes them: {freeze():,}")


def measure(
    store: Store, pg: bool, repeat: int, only: str | None = None, skip: list[str] | None = None
) -> list[tuple[str, list[float], list[float]]]:
    """Run every query (or those whose name contains ``only``) ``repeat`` times, alternately."""
    out = []
    for name, governed, plain in queries(store, pg):
        if only and only not in name or any(k in name for k in skip or ()):
            continue
        governed()  # warm caches (plan, anchors, keyword flags of texts)
        plain()
        g: list[float] = []
        b: list[float] = []
        gc: list[float] = []
        bc: list[float] = []
        for _ in range(repeat):
            c0 = cpu_seconds()
            g += timed(governed, 1)
            c1 = cpu_seconds()
            b += timed(plain, 1)
            gc.append((c1 - c0) * 1000)
            bc.append((cpu_seconds() - c1) * 1000)
        out.append((name, g, b))
        # On SQLite the database works in this process (and, for the arrays, in the Arrow
        # reader's worker, counted too): its CPU time is the query's cost without the waits
        # for a core, the figure to compare on a loaded machine.
        cpu = (
            ""
            if pg
            else f"   cpu p50 {p(gc, 0.5):8.1f} / {p(bc, 0.5):8.1f} "
            f"({p(gc, 0.5) / max(p(bc, 0.5), 1e-6):.2f})"
        )
        print(
            f"  {name:32} policy p50 {p(g, 0.5):9.1f} p95 {p(g, 0.95):9.1f}   "
            f"bare p50 {p(b, 0.5):8.1f} p95 {p(b, 0.95):8.1f}   "
            f"ratio {p(g, 0.5) / max(p(b, 0.5), 1e-6):6.1f}{cpu}   "
            f"load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    return out


def set_indexes(store: Store, present: bool) -> None:
    """Drop or create the partial indexes on live rows, then refresh the statistics."""
    with store.engine.begin() as conn:
        for name, cols in LIVE_INDEXES.items():
            if present:
                conn.execute(
                    text(
                        f"CREATE INDEX IF NOT EXISTS {name} ON incidents {cols} "
                        "WHERE withdrawn_at IS NULL"
                    )  # fmt: skip
                )
            else:
                conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
        if store.engine.dialect.name != "postgresql":
            conn.execute(text("ANALYZE"))
    if store.engine.dialect.name == "postgresql":
        # VACUUM as well: the flags' derivation rewrote every row, and until the
        # visibility map is set again PostgreSQL cannot read the covering partial
        # indexes alone (index-only scans) and scans the table instead, for the bare
        # queries too (autovacuum would do it, later).
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE) incidents"))


#: The table a kept population is described in (rows, seed, schema revision). Its name
#: changes with the generator, so that a population another generator built is refused:
#: ``_v2`` derives each H3 column as the cell containing the point (before, the parents
#: of the res-11 cell, which H3 does not nest: about 2 % of the points stored a
#: neighbouring ``h3_9``).
KEPT = "bench_reads_population_v2"
#: The table the first generator described its populations in: still measured, with a
#: line saying so (the costs of the reads do not depend on which cell a point's H3
#: columns name; which points a tile shows does, by about 2 %).
KEPT_V1 = "bench_reads_population"


def build(store: Store, n: int, seed: int) -> None:
    """Write the population, derive its sensitivity flags and add the agreements.

    On PostgreSQL the population is generated column by column with its flags
    (``benchmarks/reads_columns.py``) and a sample is checked against the store's own
    derivation; on SQLite it is written row by row and the flags derived after.
    """
    if store.engine.dialect.name == "postgresql":
        from reads_columns import check_sample, populate_pg

        t0 = time.perf_counter()
        register(store)
        steps = populate_pg(store, n, seed)
        seconds = time.perf_counter() - t0
        parts = ", ".join(f"{k} {v:.0f} s" for k, v in steps.items())
        print(f"population written in {seconds:.1f} s ({n / seconds:,.0f} rows/s; {parts}), "
              f"flags derived at generation; load {os.getloadavg()[0]:.1f}")  # fmt: skip
        t0 = time.perf_counter()
        checked = check_sample(store)
        print(f"a sample of {checked:,} rows re-derived the store's way: the same "
              f"({time.perf_counter() - t0:.1f} s)")  # fmt: skip
        agreements(store)
        print("visible (aggregate totals):", visible_totals(store))
        return
    seconds = populate(store, n, seed)
    print(f"population written in {seconds:.1f} s ({n / seconds:,.0f} rows/s)")
    from crossbeat.sharing.flags import refresh_flags

    t0 = time.perf_counter()
    derived = refresh_flags(store)
    seconds = time.perf_counter() - t0
    print(
        f"sensitivity flags materialised for {derived:,} rows in {seconds:.1f} s "
        f"({derived / max(seconds, 1e-9):,.0f} rows/s; what `crossbeat ingest` does at its end)"
    )
    agreements(store)
    print("visible (aggregate totals):", visible_totals(store))


def mark_kept(store: Store, n: int, seed: int) -> None:
    """Record what a kept population is, for :func:`check_kept` on the next run."""
    with store.engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {KEPT} (rows BIGINT, seed BIGINT, revision TEXT)"))
        conn.execute(
            text(f"INSERT INTO {KEPT} VALUES (:n, :s, :r)"),
            {"n": n, "s": seed, "r": store.current_revision()},
        )


def check_kept(store: Store, n: int, seed: int) -> None:
    """Refuse a kept population of another size or seed, or at another schema revision.

    A population built at an earlier revision and upgraded since by the migrations
    (what a user's store goes through) is measured, with a line saying so.
    """
    head, current = store.head_revision(), store.current_revision()
    kept = None
    for table in (KEPT, KEPT_V1):
        with store.engine.connect() as conn:
            try:
                kept = conn.execute(text(f"SELECT rows, seed, revision FROM {table}")).one()
            except Exception as e:  # noqa: BLE001 - any failure means: not a kept population
                error = e
                continue
        if table == KEPT_V1:
            print(
                "--keep: a population of the first generator (its h3_7 and h3_9 are the "
                "parents of the res-11 cell, not always the cells holding the point)"
            )
        break
    if kept is None:
        raise SystemExit(f"--keep: not a population this benchmark kept ({error})") from None
    if (kept[0], kept[1]) != (n, seed):
        raise SystemExit(f"--keep: holds {kept[0]:,} rows of seed {kept[1]}, not {n:,}/{seed}")
    if current != head:
        raise SystemExit(
            f"--keep: built at schema {kept[2]} (database at {current}), this code is at "
            f"{head}: upgrade it (`crossbeat db upgrade --db URL`) or delete it and build again"
        )
    if kept[2] != head:
        print(f"--keep: built at schema {kept[2]}, upgraded by the migrations to {head}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--db", default="sqlite", help="sqlite (a temporary file) or a PostgreSQL URL")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--reference", action="store_true", help="also time the per-record path once (slow)"
    )
    ap.add_argument("--only", help="only the queries whose name contains this, e.g. arrays")
    ap.add_argument(
        "--skip", action="append", default=[], help="skip the queries whose name contains this"
    )
    ap.add_argument(
        "--indexed-only",
        action="store_true",
        help="measure only with the partial indexes on live rows (skip the pass without)",
    )
    ap.add_argument(
        "--keep",
        metavar="PATH",
        help="keep the population in this SQLite file (or, with --db, this PostgreSQL database) "
        "and reuse it on the next run with the same --rows and --seed; one of another schema "
        "revision or size is refused",
    )
    args = ap.parse_args()
    print("machine:", json.dumps(machine()))
    with tempfile.TemporaryDirectory() as tmp:
        reuse = False
        if args.db == "sqlite":
            path = Path(args.keep).resolve() if args.keep else Path(tmp) / "reads.db"
            reuse = path.exists()
            url = f"sqlite:///{path}"
        else:
            from sqlalchemy import create_engine

            name = args.keep or f"crossbeat_bench_reads_{uuid.uuid4().hex[:8]}"
            admin = create_engine(args.db, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                reuse = bool(
                    conn.execute(
                        text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                    ).first()
                )
                if not reuse:
                    conn.execute(text(f"CREATE DATABASE {name}"))
            url = make_url(args.db).set(database=name).render_as_string(hide_password=False)
        from crossbeat.vault.kek import generate_kek, parse_kek

        if reuse:
            store = open_store(url, create=False)  # never migrated: checked just below
            check_kept(store, args.rows, args.seed)
        else:
            store = open_store(url, kek=parse_kek(generate_kek()))  # admin accounts seal seeds
        store.clock = FrozenClock(NOW)
        pg = store.engine.dialect.name == "postgresql"
        print(f"backend: {store.engine.dialect.name}; incidents: {args.rows:,}")
        if reuse:
            print(f"population reused from {args.keep} (schema {store.current_revision()})")
        else:
            build(store, args.rows, args.seed)
            if args.keep:
                mark_kept(store, args.rows, args.seed)
        if args.reference:
            from crossbeat.sharing.policy import ReadRequest, Viewer
            from crossbeat.sharing.reads import aggregate

            own = Viewer.user("bench-own", "metro", ["analyst"])
            for way in ("reference", "sql"):
                t0 = time.perf_counter()
                aggregate(
                    store, own, ReadRequest(agencies=frozenset({"metro"})), by=("h3_9",), path=way
                )
                print(f"  h3_9 aggregate (own), {way} path: {time.perf_counter() - t0:.2f} s")
        for present in (True,) if args.indexed_only else (False, True):
            set_indexes(store, present)
            label = "with" if present else "without"
            print(f"{label} the partial indexes on live rows (ms, {args.repeat} runs each):")
            server_process()
            measure(store, pg, args.repeat, args.only, args.skip)
        store.dispose()
        if pg and not args.keep:
            from crossbeat.store.base import close_all

            close_all()
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))


if __name__ == "__main__":
    main()
