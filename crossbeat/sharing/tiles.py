"""Vector tiles of the incidents a viewer may see, with the viewer's policy applied (issue #8).

:func:`tile` answers ``z/x/y`` with one Mapbox Vector Tile, planned like every other
read (:func:`crossbeat.sharing.reads.prepare`) and compiled to SQL like the aggregates
(:mod:`crossbeat.sharing.compiled`):

* **Points** (layer ``incidents``, at zoom :data:`POINT_ZOOM` and above): each record
  at the point its rule publishes — the stored point only at ``exact`` precision; at
  ``block`` or ``h3:N`` the stable anchor of its cell
  (:class:`crossbeat.sharing.public.AnchorIndex`, the public's snapped point); no
  point at all at ``area`` or ``jurisdiction`` precision, or without ``lat``/``lon``
  in the granted fields. Properties ``id`` (the public id, the owner's id only for
  its own readers), ``agency_id``, ``crime_against``, ``nibrs``, ``occurred_from``
  (coarsened to the granted time resolution), each only when the rule shows it. The
  points are exactly those :func:`crossbeat.sharing.reads.read_incidents` returns
  with the tile as bounding box.
* **The tile budget**: a point tile holds at most :data:`POINT_BUDGET` records. When
  the point query finds more near the tile (counted with ``LIMIT`` budget + 1 on the
  same compiled conditions, before any point is encoded) the tile carries the layer
  ``hexagons`` instead, at the finer resolution :func:`h3_column` gives its zoom: the
  same governed counts as below :data:`POINT_ZOOM`, so a dense view stays readable and
  fast, and zooming in (fewer records per tile) brings the points back.
* **Hexagons** (layer ``hexagons``, below :data:`POINT_ZOOM`): H3 cells of
  :func:`h3_column` whose centre lies in the tile, with ``count`` and one count per
  crime-against category. The counts are those of
  :func:`crossbeat.sharing.reads.aggregate` by ``h3_N`` (and by ``h3_N,
  crime_against``), released per owner and suppressed the same way
  (:mod:`crossbeat.sharing.release`): every cell is counted whole, whatever tile asks
  for it, so tiles cannot be subtracted from each other or from the aggregates to
  reveal a hidden count. A hidden count is left out and named in ``hidden``. Owners
  that publish differentially private counts only are left out of tiles (each tile
  would spend their privacy budget): their noisy counts come from the aggregates.

**ETag and cache.** The ETag hashes the viewer's effective rules, the data generation
(:mod:`crossbeat.store.generation`, bumped by every audited change: ingest, field
report, withdrawal, agreement or public-policy change), ``z/x/y``, the filters and,
when a rule has a publication delay, the minute (records are then released at the
start of the minute after their time). A matching ``If-None-Match`` gives
``not_modified``. Tiles are kept in an in-process LRU keyed by the ETag and the viewer
(:data:`CACHE_SIZE`, :data:`CACHE_BYTES`), so a pan back, a reload or a second map of
the same view is not drawn again until the data, the rules or the minute change; every
answer, kept or not, is audited.

**Audit.** One event per owner per tile request, with the count of that owner's records
in the tile (never one row per incident); anonymous tiles are counted per window like
every public read (:mod:`crossbeat.audit.public_reads`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

import h3
import numpy as np
from sqlalchemy import ColumnElement, Connection, Select, and_, false, func, literal, select, text

from crossbeat.audit import Action
from crossbeat.clock import Clock
from crossbeat.model import CrimeAgainst
from crossbeat.sharing.compiled import (
    RuleConditions,
    RuleCounts,
    count_by_rule,
    reachable,
)
from crossbeat.sharing.flags import SensitivityRules, current_rules
from crossbeat.sharing.mvt import Layer, encode
from crossbeat.sharing.pages import Coarsener
from crossbeat.sharing.plan_inputs import plan_inputs
from crossbeat.sharing.policy import Decision, ReadPlan, ReadRequest, Viewer, ViewerKind, _margin
from crossbeat.sharing.public import AnchorIndex
from crossbeat.sharing.reads import _audit, _request_summary, anchor_index, prepare
from crossbeat.sharing.release import BASE, NOISE, Combined, Part, combine, part_mode
from crossbeat.sharing.rls import restricted
from crossbeat.sharing.rules import Rule
from crossbeat.sharing.scope import TimeResolution
from crossbeat.sharing.stamp import CELL_INDEXES, ReadStamp, read_stamp
from crossbeat.store import Store
from crossbeat.store.schema import incidents
from crossbeat.store.spatial import in_box_sql

#: Highest zoom served (about 2 cm per tile unit at the equator).
MAX_ZOOM = 22
#: From this zoom up, tiles carry points (layer ``incidents``); below it, hexagons.
POINT_ZOOM = 13
#: Bumped when the content of a tile changes for the same inputs (new properties...).
FORMAT_VERSION = 2
#: Most records a point tile carries; above it the tile carries hexagons (the budget).
#: 5,000 points encode in about 0.2 s (some 37 us each with five attributes) and already
#: cover a 512-pixel tile with overlapping 5-pixel circles: more points cost time and
#: show nothing more, where counts by cell still read.
POINT_BUDGET = 5000
#: Crime-against categories counted per hexagon ("unmapped": no NIBRS mapping).
CATEGORIES: tuple[str, ...] = (*(c.value for c in CrimeAgainst), "unmapped")
#: Tiles kept in memory (per process), of every viewer: at most this many, and at most
#: :data:`CACHE_BYTES` of MVT. A tile is kept under its ETag and its viewer, so a pan
#: back or a reload is drawn once per data generation (issue #12).
CACHE_SIZE = 1024
CACHE_BYTES = 64 * 1024 * 1024
#: Seconds a public tile may be cached by browsers and proxies.
PUBLIC_MAX_AGE = 60

POINT_COLUMNS = {
    "id": "text",
    "agency_id": "text",
    "crime_against": "text",
    "nibrs": "text",
    "occurred_from": "text",
}
HEXAGON_COLUMNS = {"h3": "text", "count": "int", **dict.fromkeys(CATEGORIES, "int")}
HEXAGON_COLUMNS["hidden"] = "text"
#: Filters a tile request may carry (the rest of :class:`ReadRequest` is the tile's).
TILE_FILTERS = frozenset(
    {"since", "until", "offences", "agencies", "areas", "jurisdictions", "purpose"}
)


class TileError(ValueError):
    """A tile request that cannot be answered (bad z/x/y or filter); the message says why."""


@dataclass(frozen=True)
class TileResult:
    """One vector tile as the viewer may see it.

    ``data`` is the MVT (empty for an empty tile, and when ``not_modified``);
    ``owner_counts`` holds, per owner, the records drawn (points) or counted
    (hexagons); ``public`` says whether the tile may be cached by anyone.
    """

    data: bytes
    etag: str
    layer: str
    owner_counts: dict[str, int]
    public: bool
    not_modified: bool = False
    decisions: tuple[Decision, ...] = ()
    features: int = 0

    @property
    def cache_control(self) -> str:
        """Return the ``Cache-Control`` header value for this tile."""
        return f"public, max-age={PUBLIC_MAX_AGE}" if self.public else "private, no-store"


@dataclass
class _Cached:
    data: bytes
    owner_counts: dict[str, int]
    features: int
    extra: dict[str, Any] = field(default_factory=dict)


_CACHE: OrderedDict[tuple[str, str, str, str], _Cached] = OrderedDict()
_CACHE_BYTES = [0]
_CACHE_LOCK = threading.Lock()
#: Above this many cells a hexagon tile selects rows by box rather than by cell list.
MAX_CELL_LIST = 4000
#: Cell columns with an index (a list of cells of another column is read by box).
INDEXED_CELLS = frozenset({"h3_7", "h3_9"})


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Return ``(west, south, east, north)`` of tile ``z/x/y`` in WGS84 degrees.

    Raises
    ------
    TileError
        When ``z`` is outside 0..:data:`MAX_ZOOM` or ``x``/``y`` outside the zoom's grid.

    Examples
    --------
    >>> tile_bounds(0, 0, 0)[0], round(tile_bounds(0, 0, 0)[3], 4)
    (-180.0, 85.0511)
    """
    check_tile(z, x, y)
    n = 1 << z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return (x / n * 360.0 - 180.0, lat(y + 1), (x + 1) / n * 360.0 - 180.0, lat(y))


def check_tile(z: int, x: int, y: int) -> None:
    """Raise :class:`TileError` unless ``z/x/y`` names a tile."""
    if not 0 <= z <= MAX_ZOOM:
        raise TileError(f"zoom {z} is outside 0..{MAX_ZOOM}")
    n = 1 << z
    for name, value in (("x", x), ("y", y)):
        if not 0 <= value < n:
            raise TileError(f"{name} {value} is outside 0..{n - 1} at zoom {z}")


def h3_column(z: int) -> str:
    """Return the stored H3 column whose cells a hexagon tile at zoom ``z`` shows.

    Resolution 7 (about 1.2 km edge) up to zoom 11, resolution 9 (about 170 m) from
    zoom 12, resolution 11 (about 25 m) from zoom 15: a hexagon is then about 10 to 40
    pixels across on a 256-pixel tile. From :data:`POINT_ZOOM` these are the cells of
    a tile over the budget (:data:`POINT_BUDGET`).

    Examples
    --------
    >>> [h3_column(z) for z in (11, 12, 14, 15)]
    ['h3_7', 'h3_9', 'h3_9', 'h3_11']
    """
    return "h3_7" if z <= 11 else "h3_9" if z <= 14 else "h3_11"


def tile(
    store: Store,
    viewer: Viewer,
    z: int,
    x: int,
    y: int,
    request: ReadRequest | None = None,
    *,
    if_none_match: str | None = None,
    clock: Clock | None = None,
) -> TileResult:
    """Return vector tile ``z/x/y`` of the incidents a viewer may see, and audit the read.

    Parameters
    ----------
    store
        The store.
    viewer
        Who reads.
    z, x, y
        The tile (Web Mercator, XYZ scheme as ``ST_TileEnvelope``).
    request
        Filters: ``since``, ``until``, ``offences``, ``agencies``, ``areas``,
        ``jurisdictions`` (and ``purpose``); each is compiled to SQL and part of the ETag.
    if_none_match
        The client's ``If-None-Match`` header: when it names this tile's ETag the
        result is ``not_modified`` and carries no data.
    clock
        Clock for "now" (default: the store's clock).

    Returns
    -------
    TileResult
        The MVT, its ETag and the counts per owner that were audited.

    Raises
    ------
    TileError
        For a bad ``z/x/y`` or a filter a tile does not take.
    """
    bounds = tile_bounds(z, x, y)
    request = _tile_request(request)
    now = (clock or store.clock).now()
    public = viewer.kind is ViewerKind.PUBLIC
    points = z >= POINT_ZOOM
    with store.begin() as conn:
        # The store's state, the sensitivity rules and the owners' fresh flags, each
        # read once for the tile's one to three plans (and its ETag).
        stamp = read_stamp(conn)
        read = _Planning(stamp, current_rules(conn, stamp.sources), set())
        plans = _plans(conn, viewer, request, now, z, read)
        etag, bucket = _etag(plans, stamp.generation, read.sensitivity.key, z, x, y, request)
        plans = [dataclasses.replace(p, now=bucket) for p in plans]
        p = plans[0]
        extra: dict[str, Any] = {"tile": f"{z}/{x}/{y}"}
        # Kept per viewer (the public is one viewer): the ETag holds everything the tile
        # is drawn from (rules, data generation, sensitivity rules, filters, minute).
        key = (store.url, etag, viewer.kind.value, viewer.id)
        cached = _cache_get(key)
        if if_none_match is not None and etag in _etags(if_none_match):
            counts = cached.owner_counts if cached else {}
            layer = cached.extra["layer"] if cached else "incidents" if points else "hexagons"
            _audit(store, conn, p, Action.READ, "incident_tile", owner_counts=counts,
                   extra={**extra, "layer": layer, "not_modified": True})  # fmt: skip
            return TileResult(b"", etag, layer, counts, public, True, p.decisions)
        if cached is None:
            found = None
            if points:
                # Each owner's stored zone, from the plan inputs the plans were made
                # from (read outside the restricted role).
                zones = plan_inputs(conn, stamp).zones
                with restricted(conn, p.owners):
                    found = _points(store, conn, p, bounds, POINT_BUDGET, stamp, zones)
            if found is not None:
                built, counts, more = found
                more = {"layer": "incidents"}
            else:  # below the point zoom, or over the budget: counts by cell
                col = h3_column(z)
                if points:  # planned outside the restricted role, as every plan
                    hex_plans = _plans(conn, viewer, request, now, z, read, hexagons=True)
                    plans = [dataclasses.replace(q, now=bucket) for q in hex_plans]
                with restricted(conn, plans[0].owners):
                    built, counts, more = _hexagons(conn, plans, bounds, col)
                more = {**more, "layer": "hexagons"}
                if points:
                    more["over_budget"] = POINT_BUDGET
            cached = _Cached(encode(conn, z, x, y, [built]), dict(counts), len(built), more)
            _cache_put(key, cached)
        _audit(store, conn, p, Action.READ, "incident_tile", owner_counts=cached.owner_counts,
               extra={**extra, **cached.extra})  # fmt: skip
    return TileResult(
        cached.data, etag, cached.extra["layer"], dict(cached.owner_counts), public, False,
        p.decisions, cached.features,
    )  # fmt: skip


def _tile_request(request: ReadRequest | None) -> ReadRequest:
    request = request or ReadRequest()
    default = ReadRequest()
    for f in dataclasses.fields(ReadRequest):
        if f.name in TILE_FILTERS:
            continue
        if getattr(request, f.name) != getattr(default, f.name):
            allowed = ", ".join(sorted(TILE_FILTERS))
            raise TileError(f"a tile takes no {f.name} (only {allowed})")
    return request


def _plans(
    conn: Connection,
    viewer: Viewer,
    request: ReadRequest,
    now: datetime,
    z: int,
    read: _Planning,
    *,
    hexagons: bool = False,
) -> list[ReadPlan]:
    """Plan the read: records for points; by cell, and by cell and category, for hexagons.

    Hexagons from :data:`POINT_ZOOM` up (``hexagons``) are those of a tile over the budget.
    """
    plan = partial(prepare, conn, viewer, now=now, stamp=read.stamp,
                   sensitivity=read.sensitivity, refreshed=read.refreshed)  # fmt: skip
    if z >= POINT_ZOOM and not hexagons:
        return [plan(request)]
    col = h3_column(z)
    by_cell = dataclasses.replace(request, aggregate=True, group_by=(col,))
    by_both = dataclasses.replace(request, aggregate=True, group_by=(col, "crime_against"))
    return [plan(by_cell), plan(by_both)]


@dataclass(frozen=True)
class _Planning:
    """What a tile's plans share: the read's stamp, the sensitivity rules, fresh owners."""

    stamp: ReadStamp
    sensitivity: SensitivityRules
    refreshed: set[str]


# -- ETag and cache --------------------------------------------------------------------------
def _etag(
    plans: Sequence[ReadPlan],
    gen: int,
    sensitivity: str,
    z: int,
    x: int,
    y: int,
    request: ReadRequest,
) -> tuple[str, datetime]:
    """Return the ETag and the "now" the tile is drawn at (the minute, with delays).

    ``sensitivity`` is the key of the sensitivity rules in force
    (:func:`crossbeat.sharing.flags.current_rules`): a changed crosswalk or keyword list
    re-derives flags without an audited write, so the generation alone would not move.
    """
    now = plans[0].now
    delayed = any(r.delay for p in plans for r in p.rules)
    if delayed:
        now = now.replace(second=0, microsecond=0)
    payload = {
        "v": FORMAT_VERSION,
        "rules": [[_rule_key(r) for r in p.rules] for p in plans],
        "generation": gen,
        "sensitivity": sensitivity,
        "tile": [z, x, y],
        "budget": POINT_BUDGET,
        "request": _request_summary(request),
        "minute": now.isoformat() if delayed else None,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return f'"{digest[:32]}"', now


def _rule_key(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(rule):
        value = getattr(rule, f.name)
        if isinstance(value, frozenset):
            value = sorted(str(v) for v in value)
        elif isinstance(value, timedelta):
            value = value.total_seconds()
        elif value is not None and not isinstance(value, str | int | float | bool):
            value = str(value)
        out[f.name] = value
    return out


def _etags(header: str) -> set[str]:
    """Return the ETags listed in an ``If-None-Match`` header (weak ones as strong)."""
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}


def _cache_get(key: tuple[str, str, str, str]) -> _Cached | None:
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
        return found


def _cache_put(key: tuple[str, str, str, str], value: _Cached) -> None:
    with _CACHE_LOCK:
        old = _CACHE.pop(key, None)
        if old is not None:
            _CACHE_BYTES[0] -= len(old.data)
        _CACHE[key] = value
        _CACHE_BYTES[0] += len(value.data)
        while len(_CACHE) > CACHE_SIZE or (_CACHE_BYTES[0] > CACHE_BYTES and len(_CACHE) > 1):
            _, dropped = _CACHE.popitem(last=False)
            _CACHE_BYTES[0] -= len(dropped.data)


def clear_cache() -> None:
    """Forget every kept tile (tests and benchmarks; a new ETag never needs this)."""
    with _CACHE_LOCK:
        _CACHE.clear()
        _CACHE_BYTES[0] = 0


# -- points ----------------------------------------------------------------------------------
#: The stored cell column whose cells hold the records anchored at each H3 resolution: the
#: anchor of a point at ``h3:9`` lies in the point's own ``h3_9`` cell (its stored cell,
#: derived at write time by :func:`crossbeat.ingest.items.derive`), so the records whose
#: anchor may be in a tile are those of the cells meeting it, read on the cell index
#: rather than from a box widened by the anchor margin (issue #8).
ANCHOR_CELLS: dict[int, str] = {7: "h3_7", 9: "h3_9", 10: "h3_9"}
#: Above this many cells, the records near a tile are read by box instead.
MAX_NEAR_CELLS = 1500


def _points(
    store: Store,
    conn: Connection,
    p: ReadPlan,
    bounds: tuple[float, float, float, float],
    budget: int,
    stamp: ReadStamp,
    zones: Mapping[str, str],
) -> tuple[Layer, Counter[str], dict[str, Any]] | None:
    """Return the points layer: every record the plan shows at a point inside the tile.

    ``stamp`` is the read's :func:`~crossbeat.sharing.stamp.read_stamp` (the anchor
    index's key comes from it); ``zones`` each agency's stored time zone (the read's
    plan inputs).

    Return ``None`` when more than ``budget`` records are near the tile: exact points
    in it; snapped points in the cells whose anchor may fall in it (or in the box
    widened by the anchor margin where no cell list serves). They are counted first,
    every rule's count in one statement, each with ``LIMIT`` the budget plus one, on the
    cell index alone, which covers every condition a rule tests and, for ``h3_9``, the
    point (the tile's box for exact points). An over-budget tile brings no row into
    Python and encodes nothing. The rows are then read on the same index (only those in
    the box, for exact points) as DB-API tuples. Anchors are computed for all of a
    rule's records at once (:meth:`crossbeat.sharing.public.AnchorIndex.anchor_many`).
    """
    west, south, east, north = bounds
    layer = Layer("incidents", "point", POINT_COLUMNS)
    counts: Counter[str] = Counter()
    rules = reachable(p.rules, p)
    if not rules:
        return layer, counts, {}
    exact = RuleConditions(conn, p, rules)
    # The anchors of generalised points: their records are chosen by the cells whose
    # anchors may lie in the tile, and published at their anchors.
    anchors = (
        anchor_index(conn, store.url, stamp)
        if any(_anchored(r) is not None for r in rules)
        else None
    )
    candidates: list[tuple[Rule, ColumnElement[bool], str | None]] = []
    for rule in rules:
        shown = rule.shown_fields(None)
        if not ({"lat", "lon"} <= shown and rule.precision.has_point):
            continue  # shown by this rule without a point: not in the tile
        near, within, by_cells = _near(conn, rule, bounds, anchors)
        condition = and_(exact.shown_by(rule, bbox=False), near)
        if within is not None:  # tested on the cell index, which holds the point
            condition = and_(condition, within)
        candidates.append((rule, condition, _cell_index(conn, by_cells, stamp)))
    # Every rule's count in one statement, each up to the budget plus one: the tile is
    # over the budget exactly when their sum is.
    counted = _counts(conn, [(c, index) for _r, c, index in candidates], budget + 1)
    if sum(counted) > budget:
        return None
    found = [candidate for candidate, n in zip(candidates, counted, strict=True) if n]
    near_rows: list[tuple[Rule, list[tuple[Any, ...]]]] = []
    for rule, condition, index in found:
        q = _on(select(*_POINT_READ).where(condition), index)
        rows = _tuples(conn, q)
        if rows:
            near_rows.append((rule, rows))
    ids: list[str] = []
    lons: list[np.ndarray] = []
    lats: list[np.ndarray] = []
    values: dict[str, list[Any]] = {name: [] for name in POINT_COLUMNS}
    when = _TimeText(conn, zones)
    for rule, rows in near_rows:
        (id_, public_id, agency, lat_, lon_, nibrs, against, occurred, local) = zip(
            *rows, strict=True
        )
        # None becomes NaN in a float array: a record without a point is in no tile.
        lat = np.array(lat_, dtype=np.float64)
        lon = np.array(lon_, dtype=np.float64)
        resolution = _anchored(rule)
        if resolution is not None and anchors is not None:
            lat, lon = anchors.anchor_many(lat, lon, resolution)
        inside = (west <= lon) & (lon <= east) & (south <= lat) & (lat <= north)
        kept = np.flatnonzero(inside).tolist()
        if not kept:
            continue
        shown = rule.shown_fields(None)
        lons.append(lon[inside])
        lats.append(lat[inside])
        pick = partial(_pick, at=None if len(kept) == len(rows) else kept)
        ids += pick(id_ if rule.via == "own" else public_id)
        owners = pick(agency)
        values["agency_id"] += owners
        none = [None] * len(kept)
        values["crime_against"] += pick(against) if "crime_against" in shown else none
        values["nibrs"] += pick(nibrs) if "nibrs_code" in shown else none
        values["occurred_from"] += (
            when(pick(occurred), rule, pick(local)) if "occurred_from" in shown else none
        )
        counts.update(owners)
    if ids:
        order = sorted(range(len(ids)), key=ids.__getitem__)
        values["id"] = ids
        coords = np.stack([np.concatenate(lons), np.concatenate(lats)], axis=1)[order]
        layer.extend(coords, {name: _pick(v, order) for name, v in values.items()})
    return layer, counts, {}


def _anchored(rule: Rule) -> int | None:
    """Return the H3 resolution of the anchors ``rule`` publishes points at (None: exact)."""
    return rule.precision.resolution if rule.precision.name != "exact" else None


def _pick(values: Sequence[Any], at: list[int] | None) -> list[Any]:
    """Return ``values`` at positions ``at`` (all of them when None), as a list."""
    if at is None:
        return list(values)
    if len(at) == 1:
        return [values[at[0]]]
    return list(itemgetter(*at)(values))


def _counts(
    conn: Connection, conditions: Sequence[tuple[ColumnElement[bool], str | None]], limit: int
) -> list[int]:
    """Return how many rows meet each condition (on its index), counting at most ``limit``.

    One statement for all of them (a scalar subquery each), one round trip.
    """
    if not conditions:
        return []
    counts = [
        select(func.count())
        .select_from(_on(select(literal(1)).where(condition).limit(limit), index).subquery())
        .scalar_subquery()
        for condition, index in conditions
    ]
    return [int(n) for n in conn.execute(select(*counts)).one()]


def _cell_index(conn: Connection, column: str | None, stamp: ReadStamp | None = None) -> str | None:
    """Return the owner's index of ``column`` (a cell list chose the records), on SQLite.

    SQLite's planner, with the sampled statistics of
    :func:`crossbeat.store.spatial.refresh_statistics` (about 500 rows per owner where a
    1 M store holds 500,000), took ``ix_incidents_live_arrays`` for a tile's counts and
    rows: it covers every column they name, but holds the cell after the public id, so
    each count walked all of the owner's entries (22 ms for an owner of 50,000 rows,
    about ten times that at 1 M; a z13 tile runs two to four counts), where the cell
    index seeks the tile's cells (1 ms; issue #12). The index is named only when it
    exists: a first load drops secondary indexes until it ends
    (:func:`crossbeat.store.spatial.deferrable`), and the schema a read sees is that of
    its transaction; the read's ``stamp`` says which exist (read with it, no statement
    of its own), else they are looked up here.
    """
    if column is None or conn.dialect.name != "sqlite":
        return None
    name = CELL_INDEXES[column]
    if stamp is not None:
        return name if name in stamp.cell_indexes else None
    present = conn.execute(
        text("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = :name"), {"name": name}
    ).first()
    return name if present else None


def _on(q: Select[Any], index: str | None) -> Select[Any]:
    """Return ``q`` read on ``index`` (``INDEXED BY``, SQLite only), or unchanged."""
    return q.with_hint(incidents, f"INDEXED BY {index}", "sqlite") if index else q


#: The columns a point tile reads of each record (:func:`_points`), in this order.
_POINT_READ = (
    incidents.c.id, incidents.c.public_id, incidents.c.agency_id, incidents.c.lat,
    incidents.c.lon, incidents.c.nibrs_code, incidents.c.crime_against, incidents.c.occurred_from,
    incidents.c.occurred_local,
)  # fmt: skip


def _tuples(conn: Connection, q: Select[Any]) -> list[tuple[Any, ...]]:
    """Return the rows of ``q`` as the DB-API cursor gives them (no ``Row``, no conversion).

    Only ``occurred_from`` needs its type's conversion, and only where it is shown
    (:class:`_TimeText` applies it once per distinct value).
    """
    result = conn.execute(q)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


class _TimeText:
    """``occurred_from`` as a tile publishes it: raw stored value -> ISO text, coarsened.

    A day or month in the owner's own zone is a prefix of ``occurred_local``, the local
    hour derived at write time in the zone the agency stores (``zones``, the read's
    plan inputs; as the compiled counts read it, :mod:`crossbeat.sharing.compiled`): its
    floor's text is looked up by that prefix (:func:`_local_floor`). Otherwise the
    column's own result processor for the dialect (what SQLAlchemy applies) turns the
    raw value into an aware UTC time, which :func:`_floor_text` floors to the rule's
    resolution in its zone and writes as text. Each distinct value is converted once per
    tile and rule's resolution and zone.
    """

    def __init__(self, conn: Connection, zones: Mapping[str, str]) -> None:
        dialect = conn.dialect
        typ = incidents.c.occurred_from.type.dialect_impl(dialect)
        self._parse = typ.result_processor(dialect, None) or (lambda v: v)
        self._memo: dict[tuple[Any, str, bool], dict[Any, str | None]] = {}
        #: Each agency's stored zone (what its ``occurred_local`` was derived in), from
        #: the read's plan inputs.
        self._zones = zones

    def __call__(
        self, raw: Sequence[Any], rule: Rule, local: Sequence[str | None] | None = None
    ) -> list[str | None]:
        """Return the published text of each raw ``occurred_from`` under ``rule``.

        ``local`` are the same records' ``occurred_local`` values, where read.
        """
        res = rule.time_resolution
        prefix = _LOCAL_PREFIX.get(res)
        if prefix and local is not None and self._zones.get(rule.owner) == rule.timezone:
            memo = self._memo.setdefault((res, rule.timezone, True), {})
            out: list[str | None] = []
            for value, at in zip(raw, local, strict=True):
                if at is None or value is None:  # no local time stored: converted in full
                    out += self([value], rule)
                    continue
                key = at[:prefix]
                found = memo.get(key)
                if found is None:
                    found = memo[key] = _local_floor(res, rule.timezone, key)
                out.append(found)
            return out
        memo = self._memo.setdefault((res, rule.timezone, False), {})
        exact = res is TimeResolution.EXACT
        floor = None if exact else _floor_text(res, rule.timezone)
        out = []
        for value in raw:
            found = memo.get(value, memo)  # type: ignore[arg-type]
            if found is memo:
                found = memo[value] = _stored_iso(value) if exact else None
                if found is None and value is not None:
                    when = self._parse(value)
                    if when is None:
                        found = None
                    elif floor is None:
                        found = when.isoformat()
                    else:
                        found = floor(when)
                    memo[value] = found
            out.append(found)
        return out


#: The length of the prefix of ``occurred_local`` (``YYYY-MM-DDTHH``) naming a local day
#: or month (an hour is not enough: the repeated hour when clocks go back is ambiguous).
_LOCAL_PREFIX = {TimeResolution.DAY: 10, TimeResolution.MONTH: 7}


@functools.lru_cache(maxsize=65536)
def _local_floor(resolution: TimeResolution, timezone: str, key: str) -> str:
    """Return the ISO text (UTC) of the start of a local day (``YYYY-MM-DD``) or month
    (``YYYY-MM``) in a zone: :func:`crossbeat.sharing.rules.coarsen`'s floor, by its key.

    Examples
    --------
    >>> _local_floor(TimeResolution.DAY, "America/Los_Angeles", "2024-03-04")
    '2024-03-04T08:00:00+00:00'
    """
    year, month = int(key[:4]), int(key[5:7])
    day = int(key[8:10]) if resolution is TimeResolution.DAY else 1
    start = datetime(year, month, day, tzinfo=ZoneInfo(timezone))
    return start.astimezone(UTC).isoformat()


#: Most floored times :func:`_floor_text` keeps per resolution and zone (then it starts over).
_FLOORS_KEPT = 100_000


@functools.lru_cache(maxsize=64)
def _floor_text(resolution: TimeResolution, timezone: str) -> Callable[[datetime], str]:
    """Return a function: a UTC time -> its floor's ISO text (hour, day or month in a zone).

    :class:`~crossbeat.sharing.pages.Coarsener` floors (once per local period) and each
    floor is written as text once; both are kept for the process, per resolution and
    zone, since a map's tiles publish the same days over and over (at most
    :data:`_FLOORS_KEPT` floors each, then they start over).
    """
    state: list[Any] = [Coarsener(resolution, timezone), {}]

    def text(when: datetime) -> str:
        coarsener, texts = state
        floored = coarsener(when)
        found = texts.get(floored)
        if found is None:
            if len(texts) >= _FLOORS_KEPT:
                state[:] = [Coarsener(resolution, timezone), {}]
                texts = state[1]
            found = texts[floored] = floored.isoformat()
        return found

    return text


def _stored_iso(value: Any) -> str | None:
    """Return the ISO text of a time stored by SQLite (UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``).

    What ``UTCDateTime``'s result processor followed by ``isoformat()`` gives (no
    microseconds when they are zero), by slicing the text; None for any other value (a
    ``datetime`` from PostgreSQL, another text), which is then converted in full.

    Examples
    --------
    >>> _stored_iso("2024-03-04 21:30:05.000000")
    '2024-03-04T21:30:05+00:00'
    >>> _stored_iso("2024-03-04 21:30:05.250000")
    '2024-03-04T21:30:05.250000+00:00'
    """
    if type(value) is not str or len(value) != 26 or value[10] != " " or value[19] != ".":
        return None
    fraction = "" if value.endswith(".000000") else value[19:]
    return f"{value[:10]}T{value[11:19]}{fraction}+00:00"


def _near(
    conn: Connection,
    rule: Rule,
    bounds: tuple[float, float, float, float],
    anchors: AnchorIndex | None = None,
) -> tuple[ColumnElement[bool], ColumnElement[bool] | None, str | None]:
    """Return SQL for the records near the tile for ``rule``, the exact test if any, and
    the cell column ``near`` lists cells of (None: a box).

    ``near`` chooses the records whose point, as ``rule`` publishes it, may be in the
    tile; ``within`` (or None) narrows them to the stored point in the tile. At
    ``exact`` precision, in a tile of at least a cell: the ``h3_9`` cells meeting the
    tile (the owner's rows on the cell index, not every owner's points of the box on
    the R*Tree), then the box; in a smaller tile the R*Tree or GiST box. For an
    anchored precision the cells of :data:`ANCHOR_CELLS` meeting the tile widened by
    the distance between a point and its anchor (none when the cell is the anchor's
    own), read on the cell index, less the cells no record of which has its anchor in
    the tile (:func:`_anchored_in`, given the read's ``anchors``); else, or when they
    would be too many, the box widened by the anchor margin.
    """
    west, south, east, north = bounds
    c = incidents.c
    resolution = rule.precision.resolution
    lat_m, lon_m = _margin(rule.precision, bounds)
    if rule.precision.name == "exact" and _km2(bounds) >= h3.average_hexagon_area(9, unit="km^2"):
        cells = _cells_meeting(bounds, 9)
        if cells is not None:
            box = and_(c.lat.between(south, north), c.lon.between(west, east))
            return (c.h3_9.in_(cells), box, "h3_9") if cells else (false(), box, None)
    if resolution is not None and resolution in ANCHOR_CELLS:
        column = ANCHOR_CELLS[resolution]
        own_cell = int(column.removeprefix("h3_")) == resolution
        widened = bounds if own_cell else (west - lon_m, south - lat_m, east + lon_m, north + lat_m)
        cells = _cells_meeting(widened, int(column.removeprefix("h3_")))
        if cells is not None and anchors is not None:
            cells = _anchored_in(cells, anchors, resolution, bounds)
        if cells is not None:
            return (c[column].in_(cells), None, column) if cells else (false(), None, None)
    near = and_(
        c.lat.between(south - lat_m, north + lat_m),
        c.lon.between(west - lon_m, east + lon_m),
        in_box_sql(conn.dialect.name, west - lon_m, south - lat_m, east + lon_m, north + lat_m),
    )
    return near, None, None


def _anchored_in(
    cells: Sequence[str],
    anchors: AnchorIndex,
    resolution: int,
    bounds: tuple[float, float, float, float],
) -> tuple[str, ...]:
    """Return the cells that may hold a record whose anchor lies in the tile (``bounds``).

    A cell is kept when one of its cells at the anchors' ``resolution`` (itself, or its
    children) is crossed by a jurisdiction boundary (its anchors depend on each point)
    or has its one anchor in the tile, boundary included (as :func:`_points` tests the
    anchors it computes). The others hold no record the tile shows: their records are
    not read. Each anchor is computed once and kept by the index.
    """
    west, south, east, north = bounds
    kept = []
    for cell in cells:
        if h3.get_resolution(cell) == resolution:
            parts = [h3.str_to_int(cell)]
        else:
            parts = [h3.str_to_int(child) for child in h3.cell_to_children(cell, resolution)]
        for anchor in anchors.whole_anchors(parts):
            if anchor is None or (south <= anchor[0] <= north and west <= anchor[1] <= east):
                kept.append(cell)
                break
    return tuple(kept)


def _km2(bounds: tuple[float, float, float, float]) -> float:
    """Return the area of a box in square kilometres (roughly: for choosing a query)."""
    west, south, east, north = bounds
    return (north - south) * 111.0 * (east - west) * 111.0 * math.cos(math.radians(south))


@functools.lru_cache(maxsize=4096)
def _cells_meeting(
    bounds: tuple[float, float, float, float], resolution: int
) -> tuple[str, ...] | None:
    """Return the H3 cells whose box of vertices meets a box (None: more than allowed).

    Every point of a cell, and so its anchor, lies in the box of the cell's vertices
    (widened by a micro-degree for the geodesic edges); the candidates are the cells
    whose centre lies within twice the average edge of the box (cells vary in size by
    less than a factor of two), checked one by one.
    """
    west, south, east, north = bounds
    if _km2(bounds) / h3.average_hexagon_area(resolution, unit="km^2") > MAX_NEAR_CELLS:
        return None
    eps = 1e-6
    pad = 2 * h3.average_hexagon_edge_length(resolution, unit="km") / 110.0
    widest = min(max(abs(south), abs(north)) + pad, 89.0)
    pad_lon = pad / max(math.cos(math.radians(widest)), 0.01)
    ring = [(south - pad, west - pad_lon), (south - pad, east + pad_lon),
            (north + pad, east + pad_lon), (north + pad, west - pad_lon)]  # fmt: skip
    out = []
    for cell in h3.polygon_to_cells(h3.LatLngPoly(ring), resolution):
        vertices = h3.cell_to_boundary(cell)
        lats = [v[0] for v in vertices]
        lngs = [v[1] for v in vertices]
        if (
            min(lats) - eps <= north
            and max(lats) + eps >= south
            and min(lngs) - eps <= east
            and max(lngs) + eps >= west
        ):
            out.append(cell)
    return tuple(sorted(out))


# -- hexagons --------------------------------------------------------------------------------
def _hexagons(
    conn: Connection, plans: Sequence[ReadPlan], bounds: tuple[float, float, float, float],
    column: str,
) -> tuple[Layer, Counter[str], dict[str, Any]]:  # fmt: skip
    """Return the hexagons layer: whole cells whose centre is in the tile, with counts."""
    by_cell, by_both = plans
    resolution = int(column.removeprefix("h3_"))
    keep = _centre_in(bounds)
    within = _cells_sql(bounds, column, resolution, keep)
    both = count_by_rule(conn, by_both, _no_reference, within=within)
    if by_cell.rules == by_both.rules:
        single = [_sum_categories(rc) for rc in both]
    else:
        single = count_by_rule(conn, by_cell, _no_reference, within=within)
    cells, owners, noisy = _release(single, 1, keep)
    cats, _, _ = _release(both, 2, keep)
    per_cell: dict[str, dict[str, Any]] = {}
    for (cell,), n in cells.cells.items():
        per_cell.setdefault(cell, {"hidden": []})["count"] = n
    for (cell, category), n in cats.cells.items():
        props = per_cell.setdefault(cell, {"hidden": []})
        props[category if category in CATEGORIES else "unmapped"] = n
    layer = Layer("hexagons", "polygon", HEXAGON_COLUMNS)
    for cell in sorted(per_cell):
        props = per_cell[cell]
        hidden = sorted(k for k, v in props.items() if v is None)
        shown = {k: v for k, v in props.items() if k != "hidden" and v is not None}
        ring = [(lng, lat) for lat, lng in h3.cell_to_boundary(cell)]
        ring.append(ring[0])
        layer.add(ring, {"h3": cell, **shown, "hidden": ",".join(hidden) or None})
    extra: dict[str, Any] = {"h3": column}
    if noisy:
        extra["left_out_noisy_owners"] = sorted(noisy)
    return layer, owners, extra


def _no_reference(conn: Connection, p: ReadPlan) -> list[RuleCounts]:
    raise AssertionError("hexagon tiles group by H3 cell and category only: always SQL")


def _sum_categories(rc: RuleCounts) -> RuleCounts:
    """Return a rule's counts by (cell, category) summed to counts by cell."""
    out = RuleCounts(rc.rule, path=rc.path)
    for key, n in rc.counts.items():
        out.counts[key[:1]] += n
    for (base, key), n in rc.base.items():
        out.base[(base, key[:1])] += n
    return out


def _cells_sql(
    bounds: tuple[float, float, float, float], column: str, resolution: int, keep: Any
) -> ColumnElement[bool]:
    """Return SQL choosing the rows of the tile's cells: by cell list, or by box when large.

    The list holds the cells whose centre is in the tile (found in a box widened by a
    cell, then checked with ``keep``), so an index on the cell column serves it.
    """
    west, south, east, north = bounds
    if column not in INDEXED_CELLS:
        return _around(bounds, resolution)
    km2 = (north - south) * 111.0 * (east - west) * 111.0 * math.cos(math.radians(south))
    if km2 / h3.average_hexagon_area(resolution, unit="km^2") > MAX_CELL_LIST:
        return _around(bounds, resolution)
    pad = 2 * h3.average_hexagon_edge_length(resolution, unit="km") / 110.0
    widened = [(south - pad, west - pad), (south - pad, east + pad),
               (north + pad, east + pad), (north + pad, west - pad)]  # fmt: skip
    cells = sorted(c for c in h3.polygon_to_cells(h3.LatLngPoly(widened), resolution) if keep(c))
    if not cells:
        return false()
    return incidents.c[column].in_(cells)


def _around(bounds: tuple[float, float, float, float], resolution: int) -> ColumnElement[bool]:
    """Return SQL for "the stored point is near the tile": every point of a kept cell is.

    A cell whose centre is in the tile lies within twice the average edge length of
    it (H3 cells vary in size by less than a factor of two).
    """
    west, south, east, north = bounds
    km = 2 * h3.average_hexagon_edge_length(resolution, unit="km")
    lat_m = km / 110.0
    widest = min(max(abs(south), abs(north)) + lat_m, 89.0)
    lon_m = lat_m / max(math.cos(math.radians(widest)), 0.01)
    c = incidents.c
    return and_(
        c.lat.between(south - lat_m, north + lat_m), c.lon.between(west - lon_m, east + lon_m)
    )


def _centre_in(bounds: tuple[float, float, float, float]) -> Any:
    """Return ``keep(cell)``: the cell's centre is in the tile (half-open, so one tile)."""
    west, south, east, north = bounds

    def keep(cell: str) -> bool:
        if cell == "none":
            return False
        lat, lng = h3.cell_to_latlng(cell)
        return bool(west <= lng < east and south <= lat < north)

    return keep


def _release(
    per_rule: Sequence[RuleCounts], dims: int, keep: Any
) -> tuple[Combined, Counter[str], set[str]]:
    """Release the kept cells' counts per owner and combine them, as the aggregates do.

    Returns the combined table, the records counted per owner and the owners left
    out because they publish noisy counts only.
    """
    parts: dict[tuple[str, str], Part] = {}
    owners: Counter[str] = Counter()
    noisy: set[str] = set()
    for rc in per_rule:
        rule = rc.rule
        mode = part_mode(rule)
        if mode == NOISE:
            noisy.add(rule.owner)
            continue
        part = parts.get((rule.owner, mode))
        if part is None:
            part = parts[(rule.owner, mode)] = Part(rule.owner, mode, rule.threshold)
        if mode == BASE:
            for (base, key), n in rc.base.items():
                if keep(key[0]):
                    part.add(key, base, n)
        for key, n in rc.counts.items():
            if keep(key[0]):
                if mode != BASE:
                    part.add(key, n=n)
                owners[rule.owner] += n
    return combine(list(parts.values()), dims), owners, noisy
