"""Where the first view of a fresh server goes: its tiles timed and profiled in process (#12).

Usage::

    python benchmarks/web_cold.py --store /work/bench/web-1m          # as a worker starts
    python benchmarks/web_cold.py --store /work/bench/web-1m --warm   # after the warm-up

Run in a new Python process over a store kept by ``benchmarks/web.py --store DIR``, it
does what one ``crossbeat serve`` worker does for the first view of the analyst map
(the analyst of ``benchmarks/web.py``), calling the library as the routes do:

* with ``--warm``, first what the server's lifespan does when a worker starts
  (:func:`crossbeat.sharing.warm.warm`), timed on its own;
* the **overview**: the tiles of the 1440x900 view fitted to the jurisdictions (as
  MapLibre asks for them: 512-pixel tiles at the whole zoom below the view's), then
  the side panel's counts by month and agency;
* the **viewport**: the tiles of the 1440x900 view around the densest place, at the
  zoom ``benchmarks/web.py`` chooses (about 100 k incidents in view);
* each tile once more (what a second view of the same worker reads from its cache).

It prints each step's wall time, then the functions that took the most cumulative time
over the overview and viewport (cProfile), so the cold time can be seen per cause:
sensitivity rules, plan inputs, anchors, SQL, encoding. The times are one process's,
without HTTP or the browser; the benchmark in the browser is ``benchmarks/web.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from run import machine  # noqa: E402

from web import ANALYST, WORLD_PIXELS, in_view_box  # noqa: E402

WIDTH, HEIGHT, PADDING = 1440, 900, 20


def view_tiles(
    west: float, south: float, east: float, north: float, zoom: float
) -> list[tuple[int, int, int]]:
    """Return the tiles MapLibre asks for to draw a box at a zoom (512-pixel tiles)."""
    z = max(0, math.floor(zoom))
    n = 1 << z

    def x_of(lon: float) -> int:
        return min(n - 1, max(0, math.floor((lon + 180) / 360 * n)))

    def y_of(lat: float) -> int:
        s = math.sin(math.radians(lat))
        y = (0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * n
        return min(n - 1, max(0, math.floor(y)))

    return [
        (z, x, y)
        for x in range(x_of(west), x_of(east) + 1)
        for y in range(y_of(north), y_of(south) + 1)
    ]


def _mercator_y(lat: float) -> float:
    s = math.sin(math.radians(lat))
    return 0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)


def fitted_zoom(west: float, south: float, east: float, north: float) -> float:
    """Return the zoom at which MapLibre's ``fitBounds`` (20-pixel padding) shows a box."""
    dx = (east - west) / 360
    dy = abs(_mercator_y(south) - _mercator_y(north))
    return math.log2(
        min(
            (WIDTH - 2 * PADDING) / (dx * WORLD_PIXELS),
            (HEIGHT - 2 * PADDING) / (dy * WORLD_PIXELS),
        )
    )


def around(lon: float, lat: float, zoom: float) -> tuple[float, float, float, float]:
    """Return the box of a 1440x900 view centred on a point at a zoom."""
    deg = 360 / (WORLD_PIXELS * 2**zoom)
    half_w, half_h = WIDTH / 2 * deg, HEIGHT / 2 * deg * math.cos(math.radians(lat))
    return lon - half_w, lat - half_h, lon + half_w, lat + half_h


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--store", type=Path, required=True, help="a store kept by benchmarks/web.py")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--in-view", type=int, default=100_000)
    ap.add_argument(
        "--zoom",
        type=float,
        help="the viewport at this zoom over the densest place (as benchmarks/web.py --zoom; "
        "on a 100 k store the 100 k view is the whole city at z10, without point tiles)",
    )
    ap.add_argument("--warm", action="store_true", help="warm the process first, as a worker does")
    ap.add_argument("--top", type=int, default=30, help="functions listed from the profile")
    args = ap.parse_args()
    print("machine:", json.dumps(machine()))
    print(f"load average (1, 5, 15 min) at the start: {os.getloadavg()}", flush=True)
    t0 = time.perf_counter()
    from sqlalchemy import select

    from crossbeat.auth.tables import users
    from crossbeat.sharing.policy import ReadRequest, Viewer
    from crossbeat.sharing.reads import aggregate
    from crossbeat.sharing.tiles import tile
    from crossbeat.store import open_store
    from crossbeat.store.schema import jurisdictions
    from crossbeat.vault.kek import parse_kek

    saved = json.loads((args.store / f"web-{args.rows}.json").read_text())
    store = open_store(f"sqlite:///{args.store}/web.db", kek=parse_kek(saved["kek"]))
    print(f"imported and opened in {time.perf_counter() - t0:.2f} s", flush=True)
    with store.connect() as conn:
        user = conn.execute(
            select(users.c.id, users.c.agency_id).where(users.c.username == ANALYST)
        ).one()
        shapes = [json.loads(g) for g in conn.execute(select(jurisdictions.c.geojson)).scalars()]
    viewer = Viewer.user(user.id, user.agency_id, ["analyst"])
    coords = [c for g in shapes for ring in g["coordinates"] for c in ring]
    box = (min(c[0] for c in coords), min(c[1] for c in coords),
           max(c[0] for c in coords), max(c[1] for c in coords))  # fmt: skip
    overview = view_tiles(*box, fitted_zoom(*box))
    lon, lat, zoom, held = in_view_box(store, args.in_view, args.zoom)
    viewport = view_tiles(*around(lon, lat, zoom), zoom)
    print(f"overview: {len(overview)} tiles at z{overview[0][0]}; viewport: {len(viewport)} "
          f"tiles at z{viewport[0][0]} ({held:,} incidents in view at z{zoom})")  # fmt: skip

    def step(label: str, fn: Callable[..., Any], *args: Any) -> Any:
        t = time.perf_counter()
        out = fn(*args)
        print(f"  {label:<34} {1000 * (time.perf_counter() - t):8.0f} ms", flush=True)
        return out

    if args.warm:
        from crossbeat.sharing.warm import warm

        warmed = step("warm-up (the worker's lifespan)", lambda: warm(store))
        print(f"    {warmed.summary()}")
    profile = cProfile.Profile()
    total = time.perf_counter()
    profile.enable()
    for z, x, y in overview:
        res = step(f"overview tile {z}/{x}/{y}", tile, store, viewer, z, x, y)
        print(f"    {res.layer}, {res.features} features, {len(res.data):,} bytes")
    step("panel: counts by month and agency",
         lambda: aggregate(store, viewer, ReadRequest(), by=("month", "agency")))  # fmt: skip
    for z, x, y in viewport:
        res = step(f"viewport tile {z}/{x}/{y}", tile, store, viewer, z, x, y)
        print(f"    {res.layer}, {res.features} features, {len(res.data):,} bytes")
    profile.disable()
    print(f"  {'first view, all of the above':<34} {1000 * (time.perf_counter() - total):8.0f} ms")
    again = time.perf_counter()
    for z, x, y in overview + viewport:
        tile(store, viewer, z, x, y)
    print(f"  {'the same tiles again (kept)':<34} {1000 * (time.perf_counter() - again):8.0f} ms")
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("cumulative").print_stats(
        r"crossbeat|sqlalchemy.*execute\b|h3|shapely", args.top
    )
    print(out.getvalue())


if __name__ == "__main__":
    main()
