"""Vector tile benchmark: policy-applied tiles beside the bare SQL, same run (issue #8).

Usage::

    python benchmarks/tiles.py                      # 1 M incidents, SQLite
    python benchmarks/tiles.py --rows 100000 --repeat 11
    python benchmarks/tiles.py --db postgresql://postgres@127.0.0.1:5432/postgres --rows 10000000

The population and agreements are those of ``benchmarks/reads.py`` (imported): four
agencies over a city, clustered points, a partner grant at ``h3:9`` by day after 24 h
without sensitive records, the default public release. For each tile it prints p50/p95
(milliseconds) of :func:`crossbeat.sharing.tiles.tile` (plan, policy, suppression,
encoding and audit event; the public tile cache is cleared before every call, so each
figure is a tile drawn from the database) beside the bare query without the policy,
measured alternately in the same run. The bare query selects the same owners' live rows
in the same box (z10: ``GROUP BY h3_7, crime_against``; z15: the points) and encodes
them with the same encoder (``ST_AsMVT`` on PostgreSQL, mapbox-vector-tile on SQLite),
so the ratio is the cost of the policy.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import h3  # noqa: E402
from reads import NOW, agreements, p, populate, server_process, set_indexes, timed  # noqa: E402
from run import machine  # noqa: E402
from sqlalchemy import make_url, text  # noqa: E402

from crossbeat.clock import FrozenClock  # noqa: E402
from crossbeat.sharing.mvt import Layer, encode  # noqa: E402
from crossbeat.sharing.policy import ReadRequest, Viewer  # noqa: E402
from crossbeat.sharing.tiles import (  # noqa: E402
    HEXAGON_COLUMNS,
    POINT_COLUMNS,
    _centre_in,
    clear_cache,
    h3_column,
    tile,
    tile_bounds,
)
from crossbeat.store import Store, open_store  # noqa: E402

#: The tiles' centre: downtown, where the population is densest.
CENTRE = (-79.45, 43.68)


def xy(z: int, lon: float, lat: float) -> tuple[int, int]:
    """Return the column and row of the tile holding a point."""
    n = 1 << z
    r = math.radians(lat)
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(r)) / math.pi) / 2 * n)


def bare_tile(store: Store, z: int, x: int, y: int, owners: list[str]) -> Callable[[], Any]:
    """Return the bare query of a tile: the owners' live rows in the box, encoded."""
    west, south, east, north = tile_bounds(z, x, y)
    names = ", ".join(f"'{o}'" for o in owners)
    box = f"lat BETWEEN {south} AND {north} AND lon BETWEEN {west} AND {east}"
    live = f"withdrawn_at IS NULL AND call_category IS NULL AND agency_id IN ({names})"
    if z >= 13:
        sql = (
            "SELECT public_id, agency_id, lon, lat, crime_against, nibrs_code, occurred_from "
            f"FROM incidents WHERE {live} AND {box}"
        )
    else:
        col = h3_column(z)
        keep = _centre_in((west, south, east, north))
        cells = sorted(c for c in h3.polygon_to_cells(h3.LatLngPoly(
            [(south - 0.1, west - 0.1), (south - 0.1, east + 0.1), (north + 0.1, east + 0.1),
             (north + 0.1, west - 0.1)]), int(col[3:])) if keep(c))  # fmt: skip
        listed = ", ".join(f"'{c}'" for c in cells)
        sql = (
            f"SELECT {col}, crime_against, count(*) FROM incidents WHERE {live} "
            f"AND {col} IN ({listed}) GROUP BY 1, 2"
        )

    def run() -> bytes:
        with store.engine.connect() as conn:
            rows = conn.execute(text(sql)).all()
            if z >= 13:
                layer = Layer("incidents", "point", POINT_COLUMNS)
                for r in rows:
                    props = {"id": r[0], "agency_id": r[1], "crime_against": r[4],
                             "nibrs": r[5], "occurred_from": str(r[6])}  # fmt: skip
                    layer.add((r[2], r[3]), props)
            else:
                cells: dict[str, dict[str, Any]] = {}
                for cell, cat, n in rows:
                    props = cells.setdefault(cell, {"h3": cell, "count": 0})
                    props["count"] += n
                    props[cat or "unmapped"] = n
                layer = Layer("hexagons", "polygon", HEXAGON_COLUMNS)
                for cell, props in cells.items():
                    ring = [(lng, lat) for lat, lng in h3.cell_to_boundary(cell)]
                    layer.add([*ring, ring[0]], props)
            return encode(conn, z, x, y, [layer])

    return run


def governed_tile(
    store: Store, viewer: Viewer, z: int, x: int, y: int, owners: list[str]
) -> Callable[[], Any]:
    """Return the policy-applied tile of the owners' data, drawn from the database every time."""
    request = ReadRequest(agencies=frozenset(owners))

    def run() -> Any:
        clear_cache()
        return tile(store, viewer, z, x, y, request)

    return run


def queries(store: Store) -> list[tuple[str, Callable[[], Any], Callable[[], Any]]]:
    """Return ``(name, policy-applied tile, bare tile)`` for every measured tile."""
    own = Viewer.user("bench-own", "metro", ["analyst"])
    partner = Viewer.user("bench-partner", "east", ["analyst"])
    public = Viewer.public()
    viewers = [
        ("own (metro)", own, ["metro"]),
        ("partner (east)", partner, ["metro", "east"]),
        ("public", public, ["metro", "east", "transit", "campus"]),
    ]
    out = []
    for z in (10, 15):
        x, y = xy(z, *CENTRE)
        for label, viewer, owners in viewers:
            # Filtered by owner, as the bare query (a viewer also sees others' public data).
            governed = governed_tile(store, viewer, z, x, y, owners)
            out.append((f"z{z} tile, {label}", governed, bare_tile(store, z, x, y, owners)))
    return out


def measure(store: Store, repeat: int) -> None:
    """Run every tile ``repeat`` times, policy and bare alternately, and print figures."""
    for name, governed, plain in queries(store):
        result = governed()  # warm caches (plan, anchors, keyword flags of texts)
        plain()
        g: list[float] = []
        b: list[float] = []
        for _ in range(repeat):
            g += timed(governed, 1)
            b += timed(plain, 1)
        print(
            f"  {name:26} policy p50 {p(g, 0.5):7.1f} p95 {p(g, 0.95):7.1f}   "
            f"bare p50 {p(b, 0.5):7.1f} p95 {p(b, 0.95):7.1f}   "
            f"ratio {p(g, 0.5) / max(p(b, 0.5), 1e-6):5.2f}   "
            f"features {result.features:,} ({len(result.data):,} bytes)",
            flush=True,
        )


def encoders(points: int = 5000, repeat: int = 7) -> None:
    """Print the point encoder's time beside mapbox-vector-tile's, same layer, same run.

    A z14 tile's worth of points (``points``, the tile budget by default) with the five
    properties of the ``incidents`` layer (a distinct id and time each, few agencies and
    categories); median of ``repeat`` encodings each, alternately, and the load average.
    """
    import os
    import random
    import statistics
    import time

    from crossbeat.sharing.mvt import _point_layer, _python

    rng = random.Random(1)
    z, tx, ty = 14, *xy(14, *CENTRE)
    west, south, east, north = tile_bounds(z, tx, ty)
    layer = Layer("incidents", "point", POINT_COLUMNS)
    for i in range(points):
        props = {
            "id": f"{rng.getrandbits(128):032x}",
            "agency_id": rng.choice(["metro", "east", "transit", "campus"]),
            "crime_against": rng.choice(["property", "person", "society"]),
            "nibrs": rng.choice(["13A", "23H", "290", "35A", "120"]),
            "occurred_from": f"2026-0{rng.randint(1, 5)}-{rng.randint(10, 28)}T0{i % 10}:00:00Z",
        }
        layer.add((rng.uniform(west, east), rng.uniform(south, north)), props)
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(repeat):
        for out, encode_ in ((ours, _point_layer), (theirs, lambda *a: _python(*a[:3], [a[3]]))):
            t0 = time.perf_counter()
            encode_(z, tx, ty, layer)
            out.append((time.perf_counter() - t0) * 1000)
    a, b = statistics.median(ours), statistics.median(theirs)
    print(
        f"point encoder, {points:,} points with five properties (median of {repeat}, ms): "
        f"arrays {a:.1f} ({a * 1000 / points:.1f} us a point), mapbox-vector-tile {b:.1f} "
        f"({b * 1000 / points:.1f} us a point), x{b / a:.1f}; load {os.getloadavg()[0]:.1f}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--db", default="sqlite", help="sqlite (a temporary file) or a PostgreSQL URL")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--encoder-only",
        action="store_true",
        help="time the point encoder beside mapbox-vector-tile and stop (no database)",
    )
    args = ap.parse_args()
    print("machine:", json.dumps(machine()))
    encoders()
    if args.encoder_only:
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.db == "sqlite":
            url = f"sqlite:///{tmp}/tiles.db"
        else:
            from sqlalchemy import create_engine

            name = f"crossbeat_bench_tiles_{uuid.uuid4().hex[:8]}"
            admin = create_engine(args.db, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f"CREATE DATABASE {name}"))
            url = make_url(args.db).set(database=name).render_as_string(hide_password=False)
        from crossbeat.vault.kek import generate_kek, parse_kek

        store = open_store(url, kek=parse_kek(generate_kek()))
        store.clock = FrozenClock(NOW)
        print(f"backend: {store.engine.dialect.name}; incidents: {args.rows:,}")
        seconds = populate(store, args.rows, args.seed)
        print(f"population written in {seconds:.1f} s ({args.rows / seconds:,.0f} rows/s)")
        agreements(store)
        set_indexes(store, True)
        print(f"tiles (ms, {args.repeat} runs each; the public tile cache cleared every time):")
        server_process()
        measure(store, args.repeat)
        store.engine.dispose()
        if args.db != "sqlite":
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE {name}"))


if __name__ == "__main__":
    main()
