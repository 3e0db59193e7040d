"""Pages of records compiled to SQL: viewport and list reads at map speed (issue #8).

:func:`crossbeat.sharing.reads.read_incidents` used to fetch every column of each
candidate row with its offences, jurisdictions and areas, and pass each record through
:meth:`ReadPlan.publish` (which rule covers it, the sensitivity re-check, the whole
generalised record, the request's filters, then the projection). Here the plan runs in
the database and Python only assembles the published values:

* **Which rule shows a record** is a ``CASE`` over the rules' SQL conditions in the
  order :meth:`ReadPlan.choose` tries them (sensitivity as the flags materialised under
  the current rules, :mod:`crossbeat.sharing.flags`); the ``WHERE`` clause is
  :meth:`crossbeat.sharing.compiled.RuleConditions.shown_by` of every rule, the
  conditions the SQL aggregates count with, and the spatial index (R*Tree on SQLite,
  GiST on PostGIS) finds the candidates of a box or polygon.
* **Field projection** is the ``SELECT`` list: only the stored columns that the page's
  rules publish (or filter on) are read. Offences and jurisdictions, when a rule shows
  them, come from the copies kept on the incident row (``offences_json``,
  ``jurisdiction_ids``: :mod:`crossbeat.store.children`), in the same query; area tags
  are one more query per page, only when an area layer exists.
* **Generalisation**: each rule's record is assembled by a list of steps prepared once
  per page (a plain copy for what the rule shows unchanged: exact points, shown H3
  cells, codes); the published anchors of generalised points come from
  :class:`~crossbeat.sharing.public.AnchorIndex` (one ``anchor_many`` call per batch and
  resolution) and coarsened times
  from :class:`Coarsener` (one floor computed per local hour, day or month).
* **Rows as tuples**: each statement's rows are fetched from the DB-API cursor
  (:class:`_Reader`: no ``Row`` objects) and only the columns published as values are
  converted, column by column, with their type's own result processor; the steps read
  the tuples by position.
* **Keyset pagination** on ``public_id``: a page of ``limit`` records reads ``limit + 1``
  rows in one query (up to :data:`crossbeat.sharing.reads.MAX_BATCH`).

Filters whose published value the SQL cannot see (a box or polygon on anchored points,
``jurisdictions``, ``statuses``, ``codes``, ``offences``, ``areas``, ``since``/``until``)
are applied by :meth:`ReadPlan._matches` to the assembled record of the rules they
concern, after the SQL has narrowed the candidates to a superset. Reads by
``changed_since`` (the live stream) keep the per-record path
(:func:`crossbeat.sharing.reads.published`), which stays the reference implementation:
``tests/test_sharing_pages.py`` requires both to return the same records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import ColumnElement, Connection, Select, and_, case, exists, literal, or_, select

from crossbeat.sharing.compiled import RuleConditions, reachable, spatial_filter
from crossbeat.sharing.policy import ReadPlan, _margin
from crossbeat.sharing.public import FLAG_COLUMNS, AnchorIndex
from crossbeat.sharing.rules import OWN_FIELDS, Rule, coarsen, coarser_time_precision
from crossbeat.sharing.scope import (
    CALL_FIELD,
    RECORD_FIELDS,
    TimeResolution,
    offence_matches,
    offence_name,
)
from crossbeat.store.children import parse_jurisdictions, parse_offences
from crossbeat.store.schema import area_layers, areas, incident_areas, incidents

#: Stored columns every page reads (ids, owner, the call category and the keyset).
_ALWAYS = ("id", "public_id", "agency_id", "call_category")
#: Fields published as the stored value whatever the rule's precision and time.
_PLAIN = frozenset(
    {
        "agency_id", "nibrs_code", "crime_against", "ucr_part1", "offence_local_code",
        "status", "disposition", "location_type", "attributes", "source_id",
    }
)  # fmt: skip
_TIMES = ("occurred_from", "occurred_to", "reported_at")
#: Request filters that :meth:`ReadPlan._matches` checks on the published record.
_PUBLISHED_FILTERS = (
    "offences", "areas", "since", "until", "polygon", "jurisdictions", "statuses", "codes",
)  # fmt: skip
#: Marks a value the rule does not publish at all (not even as None).
_ABSENT = object()

Row = dict[str, Any]
#: A raw page row (the DB-API tuple after the conversions its published columns need).
Raw = tuple[Any, ...]
#: The H3 anchor of a record's point (``None`` without a point or an anchor).
Point = tuple[float, float] | None
#: Area tags of a batch: incident id -> ``{"AGENCY/LAYER": [area names]}``.
Tags = Mapping[str, Mapping[str, Sequence[str]]]
#: ``(field, raw column index, fn(raw row, anchor point, area tags))``: the field is the
#: stored value at the index when ``fn`` is None (the index is 0 when ``fn`` is set).
Step = tuple[str, int, Callable[[Raw, Point, Tags], Any] | None]


def compilable(p: ReadPlan) -> bool:
    """Return whether :func:`page_records` can serve the plan (else the per-record path)."""
    req = p.request
    return req.changed_since is None and not req.aggregate


#: Planner settings of a page read by box or polygon on PostgreSQL (:func:`page_planner`).
BOX_PAGE_PLANNER: Mapping[str, str] = {"enable_bitmapscan": "off"}


def page_planner(conn: Connection, p: ReadPlan) -> dict[str, str]:
    """Return the planner settings a page read by box or polygon runs with (PostgreSQL).

    Under row-level security the PostGIS box test (``&&``, not leakproof) cannot use
    the GiST index, so the candidates come from the ``lat``/``lon`` index; and the
    policy's own condition on the owner (``agency_id = ANY(...)``, which PostgreSQL
    estimates with the read's visible owners) next to the rule's ``agency_id = owner``
    is counted twice, so the owner looks half as common as it is. The planner then
    ANDs a bitmap of *every* row of the owner (135,189 entries at 300,000 incidents,
    20-45 ms) with the box's 1,491 entries, where walking the box's index entries and
    testing the owner on each row takes 9 ms (``EXPLAIN ANALYZE``, docs/benchmarks.md).
    Bitmap scans are turned off for the page's statements only
    (:func:`crossbeat.sharing.rls.restricted` restores them). None on SQLite, without a
    box or polygon, or on the per-record path.
    """
    req = p.request
    if conn.dialect.name != "postgresql" or not compilable(p):
        return {}
    if req.bbox is None and req.polygon is None:
        return {}
    return dict(BOX_PAGE_PLANNER)


class Coarsener:
    """Times floored to an hour, day or month in a time zone, memoised per local period.

    Each time is converted to the zone once; the floored instant is computed once per
    local period (hour with its fold, day or month) and then looked up.

    Examples
    --------
    >>> from datetime import UTC
    >>> c = Coarsener(TimeResolution.DAY, "America/Los_Angeles")
    >>> c(datetime(2024, 3, 4, 21, 30, tzinfo=UTC)).isoformat()
    '2024-03-04T08:00:00+00:00'
    """

    def __init__(self, resolution: TimeResolution, timezone: str) -> None:
        self.resolution = resolution
        self.timezone = timezone
        self.zone = ZoneInfo(timezone)
        self._memo: dict[tuple[int, ...], datetime | None] = {}

    def __call__(self, when: datetime | None) -> datetime | None:
        """Return :func:`crossbeat.sharing.rules.coarsen` of ``when``."""
        if when is None:
            return None
        local = when.astimezone(self.zone)
        res = self.resolution
        if res is TimeResolution.HOUR:
            key: tuple[int, ...] = (local.year, local.month, local.day, local.hour, local.fold)
        elif res is TimeResolution.DAY:
            key = (local.year, local.month, local.day)
        else:
            key = (local.year, local.month)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = coarsen(when, res, self.timezone)
        return found


@dataclass
class _Shape:
    """How one rule's records are assembled on this page."""

    rule: Rule
    specs: list[_Spec]  # the steps by column name, bound to positions by :meth:`bind`
    shown: frozenset[str]
    check: bool  # apply the request's filters to the published record
    needs: frozenset[str]  # fields assembled (the rule's full record when checking)
    anchor: int | None  # H3 resolution of the published anchor point
    steps: list[Step] = field(default_factory=list)

    def bind(self, pos: Mapping[str, int]) -> None:
        """Resolve the steps' columns to positions in the page's raw rows."""
        self.steps = [
            (name, 0 if column is None else pos[column], None if make is None else make(pos))
            for name, column, make in self.specs
        ]


#: ``fn(raw row, anchor point, area tags)``: one published value of a record.
Fn = Callable[[Raw, Point, Tags], Any]
#: ``(field, stored column or None, make(column positions) -> Fn, or None)``.
_Spec = tuple[str, str | None, Callable[[Mapping[str, int]], Fn] | None]


def _needs_check(p: ReadPlan, rule: Rule) -> bool:
    """Whether the request filters what SQL cannot see of ``rule``'s published values."""
    req = p.request
    if any(getattr(req, name) is not None for name in _PUBLISHED_FILTERS):
        return True
    if req.bbox is None:
        return False
    return not (rule.precision.name == "exact" and {"lat", "lon"} <= rule.shown_fields(None))


def _shape(p: ReadPlan, rule: Rule, anchors: AnchorIndex) -> _Shape:
    check = _needs_check(p, rule)
    full = rule.shown_fields(None)
    shown = rule.shown_fields(p.request.fields)
    needs = full if check else shown
    prec = rule.precision
    own = rule.via == "own"
    local_codes = "offence_local_code" in full
    specs: list[_Spec] = []

    def add(
        name: str, column: str | None, make: Callable[[Mapping[str, int]], Fn] | None = None
    ) -> None:
        if name in needs:
            specs.append((name, column, make))

    anchor = prec.resolution if prec.name != "exact" and prec.has_point else None
    for name in (*RECORD_FIELDS, *OWN_FIELDS):
        if name == "id":
            add(name, "id" if own else "public_id")
        elif name in _PLAIN:
            add(name, name)
        elif name == "offence_name":
            add(name, None, _offence_name)
        elif name == "offences":
            add(name, None, partial(_offences, rule, local_codes))
        elif name in _TIMES:
            if rule.time_resolution is TimeResolution.EXACT:
                add(name, name)
            else:
                co = Coarsener(rule.time_resolution, rule.timezone)
                add(name, None, partial(_coarse, co, name))
        elif name == "time_precision":
            res = rule.time_resolution
            add(name, None, partial(_time_precision, res))
        elif name in ("lat", "lon"):
            if prec.name == "exact":
                add(name, name)
            elif anchor is not None:
                add(name, None, partial(_anchored, 0 if name == "lat" else 1))
        elif name == "location_precision":
            if prec.name == "exact":
                add(name, name)
            else:
                add(name, None, partial(_location_precision, prec.name))
        elif name == "block_address":
            if prec.name in ("exact", "block"):
                add(name, name)
        elif name.startswith("h3_"):
            if prec.shows_cell(name):
                add(name, name)
        elif name == "jurisdictions":
            add(name, None, _places)
        elif name == "areas":
            add(name, None, partial(_areas, rule))
        elif name == "sensitivity":
            add(name, None, _sensitivity)
    return _Shape(rule, specs, shown, check, needs, anchor)


_FLAGS = sorted((flag.value, column) for flag, column in FLAG_COLUMNS.items())


def _offence_name(pos: Mapping[str, int]) -> Fn:
    i = pos["nibrs_code"]
    return lambda row, _pt, _tags: offence_name(row[i])


def _coarse(coarsener: Coarsener, column: str, pos: Mapping[str, int]) -> Fn:
    i = pos[column]
    return lambda row, _pt, _tags: coarsener(row[i])


def _time_precision(res: TimeResolution, pos: Mapping[str, int]) -> Fn:
    i = pos["time_precision"]
    return lambda row, _pt, _tags: coarser_time_precision(row[i] or "unknown", res)


def _anchored(k: int, _pos: Mapping[str, int]) -> Fn:
    # The anchor point of a record without a stored point is None: the field is absent.
    return lambda _row, pt, _tags: _ABSENT if pt is None else pt[k]


def _location_precision(name: str, pos: Mapping[str, int]) -> Fn:
    i = pos["lat"]
    return lambda row, _pt, _tags: name if row[i] is not None else "none"


def _places(pos: Mapping[str, int]) -> Fn:
    i = pos["jurisdiction_ids"]  # parsed once per distinct value (page_records)
    return lambda row, _pt, _tags: sorted(row[i])


def _areas(rule: Rule, pos: Mapping[str, int]) -> Fn:
    i = pos["id"]

    def fn(row: Raw, _pt: Point, tags: Tags) -> dict[str, list[str]]:
        found = tags.get(row[i])
        if not found:
            return {}
        return {key: sorted(names) for key, names in sorted(found.items())
                if rule.shows_layer(key)}  # fmt: skip

    return fn


def _sensitivity(pos: Mapping[str, int]) -> Fn:
    flags = [(value, pos[column]) for value, column in _FLAGS]
    return lambda row, _pt, _tags: [value for value, i in flags if row[i]]


def _offences(rule: Rule, local: bool, pos: Mapping[str, int]) -> Fn:
    i = pos["offences_json"]  # the raw kept value (page_records does not convert it)

    def published(value: str | None) -> list[dict[str, Any]]:
        out = []
        for o in parse_offences(value):
            call = o["call_category"]
            if call:
                if not rule.covers_call(call):
                    continue
            elif not offence_matches(rule.offences, o["nibrs_code"], o["crime_against"],
                                     o["ucr_part1"]):  # fmt: skip
                continue
            item = {
                "nibrs_code": o["nibrs_code"],
                "offence_name": offence_name(o["nibrs_code"]),
                "crime_against": o["crime_against"],
                "ucr_part1": o["ucr_part1"],
            }
            if call:
                item["call_category"] = call
            if local:
                item["local_code"] = o["local_code"]
            out.append(item)
        return out

    # The rule's published offences are computed once per distinct kept value (a city's
    # records share a few hundred offence lists); each record gets its own copies.
    memo = _Memo(published)

    def fn(row: Raw, _pt: Point, _tags: Tags) -> list[dict[str, Any]]:
        return [item.copy() for item in memo(row[i])]

    return fn


def _columns(shapes: Sequence[_Shape]) -> list[str]:
    """Return the stored columns the page's rules publish or filter on."""
    cols = dict.fromkeys(_ALWAYS)
    for s in shapes:
        for _name, column, _make in s.specs:
            if column is not None:
                cols[column] = None
        if s.needs & {"offence_name"}:
            cols["nibrs_code"] = None
        if s.needs & set(_TIMES):
            cols.update(dict.fromkeys(n for n in _TIMES if n in s.needs))
        if "time_precision" in s.needs:
            cols["time_precision"] = None
        if s.anchor is not None or s.needs & {"location_precision", "lat", "lon"}:
            cols.update(dict.fromkeys(("lat", "lon")))
        if "sensitivity" in s.needs:
            cols.update(dict.fromkeys(c for _v, c in _FLAGS))
        # Offences and jurisdictions as kept on the incident row (crossbeat.store.children).
        if "offences" in s.needs:
            cols["offences_json"] = None
        if "jurisdictions" in s.needs:
            cols["jurisdiction_ids"] = None
    return list(cols)


def _near(p: ReadPlan, rule: Rule) -> list[ColumnElement[bool]]:
    """Return the box around the request's box/polygon a rule's stored points can be in."""
    req = p.request
    boxes = [req.bbox] if req.bbox is not None else []
    if req.polygon is not None:
        boxes.append(tuple(req.polygon.bounds))
    out: list[ColumnElement[bool]] = []
    c = incidents.c
    for box in boxes:
        lat_m, lon_m = _margin(rule.precision, box)
        min_lon, min_lat, max_lon, max_lat = box
        out += [
            c.lat.between(min_lat - lat_m, max_lat + lat_m),
            c.lon.between(min_lon - lon_m, max_lon + lon_m),
        ]
    return out


class _Memo(dict[Any, Any]):
    """``fn(value)`` computed once per distinct value (a dict with a default)."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        super().__init__()
        self.fn = fn

    def __missing__(self, key: Any) -> Any:
        found = self[key] = self.fn(key)
        return found

    def __call__(self, key: Any) -> Any:
        return self[key]


def page_records(
    conn: Connection, p: ReadPlan, anchors: AnchorIndex, batch: int, *, layers: bool | None = None
) -> Iterator[tuple[Rule, dict[str, Any], str, str]]:
    """Yield ``(rule, record, stored id, public id)`` for every record the plan shows.

    The same records, in the same order (public-id order), as
    :func:`crossbeat.sharing.reads.published` with ``materialised`` (the caller has
    checked :func:`compilable`). Rows are read ``batch`` at a time through the DB-API
    cursor, converted only where a published or checked column needs it.
    ``layers`` says whether an area layer exists (``None``: probe it when a rule
    shows areas).
    """
    asked = p.request.agencies
    rules = [r for r in reachable(p.rules, p) if asked is None or r.owner in asked]
    if not rules:
        return
    shapes = [_shape(p, r, anchors) for r in rules]
    exact = RuleConditions(conn, p, rules)
    shown = [
        and_(exact.shown_by(s.rule, bbox=not s.check), *(_near(p, s.rule) if s.check else ()))
        for s in shapes
    ]
    chosen = case(*((exact.covers(r), literal(i)) for i, r in enumerate(rules)), else_=None)
    names = _columns(shapes)
    c = incidents.c
    pos = {name: i for i, name in enumerate(names, start=1)}  # 0 is the chosen rule
    for s in shapes:
        s.bind(pos)
    want_areas = any("areas" in s.needs for s in shapes)
    if want_areas and layers is None:
        layers = bool(conn.execute(_ANY_LAYER).scalar())
    base = select(chosen.label("_rule"), *(c[n] for n in names)).where(
        or_(*shown), *spatial_filter(conn, p)
    )
    fetch = _Reader(conn, names, pos)
    i_id, i_public, i_agency, i_call = (pos[n] for n in _ALWAYS)
    i_lat, i_lon = pos.get("lat", 0), pos.get("lon", 0)
    no_tags: Tags = {}
    anchored = any(s.anchor is not None for s in shapes)
    after: str | None = None
    while True:
        q = base if after is None else base.where(c.public_id > after)
        rows = fetch(q.order_by(c.public_id).limit(batch))
        if not rows:
            return
        tags = area_tags(conn, [r[i_id] for r in rows], layers=layers) if want_areas else no_tags
        points = _anchor_points(rows, shapes, anchors, i_lat, i_lon) if anchored else None
        for j, row in enumerate(rows):
            s = shapes[row[0]]
            pt: Point = None
            if s.anchor is None:  # no step can leave its field out: one comprehension
                record = {name: row[i] if fn is None else fn(row, pt, tags)
                          for name, i, fn in s.steps}  # fmt: skip
            else:
                pt = points[j] if points is not None else None
                record = {}
                for name, i, fn in s.steps:
                    if fn is None:
                        record[name] = row[i]
                    else:
                        value = fn(row, pt, tags)
                        if value is not _ABSENT:  # an anchored point of a record without one
                            record[name] = value
            if row[i_call]:
                record[CALL_FIELD] = row[i_call]
            if s.check:
                stored = {"id": row[i_id], "public_id": row[i_public],
                          "agency_id": row[i_agency], "call_category": row[i_call]}  # fmt: skip
                if not p._matches(stored, record, s.rule):
                    continue
                if s.needs != s.shown:
                    record = {k: v for k, v in record.items() if k in s.shown}
            yield s.rule, record, row[i_id], row[i_public]
        if len(rows) < batch:
            return
        after = rows[-1][i_public]


def _anchor_points(
    rows: Sequence[Raw], shapes: Sequence[_Shape], anchors: AnchorIndex, i_lat: int, i_lon: int
) -> list[Point]:
    """Return each row's published anchor point (None: exact rule, or no stored point).

    One :meth:`~crossbeat.sharing.public.AnchorIndex.anchor_many` call per anchor
    resolution on the batch (the same anchors as :meth:`AnchorIndex.anchor` point by
    point): anchoring record by record cost a partner's viewport page of 686 records
    about 50 ms of its 90 ms (idle: a tree query per point in cells a boundary crosses).
    """
    out: list[Point] = [None] * len(rows)
    wanted: dict[int, list[int]] = {}
    for j, row in enumerate(rows):
        resolution = shapes[row[0]].anchor
        if resolution is not None and row[i_lat] is not None:
            wanted.setdefault(resolution, []).append(j)
    for resolution, at in wanted.items():
        lat = np.fromiter((rows[j][i_lat] for j in at), dtype=np.float64, count=len(at))
        lon = np.fromiter((rows[j][i_lon] for j in at), dtype=np.float64, count=len(at))
        ys, xs = anchors.anchor_many(lat, lon, resolution)
        for j, y, x in zip(at, ys.tolist(), xs.tolist(), strict=True):
            out[j] = (y, x)
    return out


#: Stored columns a page reads but never publishes as such: no type conversion needed.
_UNCONVERTED = frozenset(c for _v, c in _FLAGS)  # only their truth is read (sensitivity)


class _Reader:
    """Run a page's statements and return their rows as tuples, converted column by column.

    SQLAlchemy compiles each statement and binds its parameters; the rows are read
    from the DB-API cursor itself (no ``Row`` objects) and only the columns whose raw
    values need it are converted, each in one pass: with the column's own result
    processor for this dialect (what SQLAlchemy would apply: times as aware UTC
    datetimes, JSON parsed, SQLite's booleans), except the flag columns, whose truth
    is all a page reads, and the kept offences, which each rule's step publishes once
    per distinct value; the kept jurisdictions are parsed once per distinct value on
    the read (a city's records share a few hundred jurisdiction sets; the parsed
    values are only read).
    """

    def __init__(self, conn: Connection, names: Sequence[str], pos: Mapping[str, int]) -> None:
        self.conn = conn
        self.names = names
        self.pos = pos
        self.convert: list[tuple[int, Callable[[Any], Any]]] | None = None

    def _converters(self, description: Sequence[Any]) -> list[tuple[int, Callable[[Any], Any]]]:
        dialect = self.conn.dialect
        out: list[tuple[int, Callable[[Any], Any]]] = []
        for name in self.names:
            i = self.pos[name]
            if name == "offences_json":
                continue  # read raw: each rule's published offences are memoised by it
            if name == "jurisdiction_ids":
                out.append((i, _Memo(parse_jurisdictions)))
            elif name not in _UNCONVERTED:
                typ = incidents.c[name].type.dialect_impl(dialect)
                proc = typ.result_processor(dialect, description[i][1])
                if proc is not None:
                    out.append((i, proc))
        return out

    def __call__(self, q: Select[Any]) -> list[Raw]:
        result = self.conn.execute(q)
        try:
            cursor = result.cursor
            if self.convert is None:
                self.convert = self._converters(cursor.description)
            raw: list[Raw] = list(cursor.fetchall())
        finally:
            result.close()
        if not raw or not self.convert:
            return raw
        columns: list[Any] = list(zip(*raw, strict=True))
        for i, fn in self.convert:
            columns[i] = map(fn, columns[i])
        return list(zip(*columns, strict=True))


#: Whether any area layer is registered (without one no incident has an area tag).
_ANY_LAYER = select(exists(select(area_layers.c.id)))


def area_tags(
    conn: Connection, ids: Sequence[str], *, layers: bool | None = None
) -> dict[str, dict[str, list[str]]]:
    """Return each incident's areas: incident id -> ``{"AGENCY/LAYER": [area names]}``.

    Without any area layer no incident has an area tag, and the join is not run:
    ``layers`` says whether one exists (``None``: one probe first).
    """
    if not ids:
        return {}
    if layers is None:
        layers = bool(conn.execute(_ANY_LAYER).scalar())
    if not layers:
        return {}
    q = (
        select(
            incident_areas.c.incident_id, area_layers.c.agency_id, area_layers.c.name, areas.c.name
        )
        .select_from(
            incident_areas.join(areas, areas.c.id == incident_areas.c.area_id).join(
                area_layers, area_layers.c.id == areas.c.layer_id
            )
        )
        .where(incident_areas.c.incident_id.in_(ids))
    )
    out: dict[str, dict[str, list[str]]] = {}
    for incident_id, agency_id, layer, name in conn.execute(q):
        out.setdefault(incident_id, {}).setdefault(f"{agency_id}/{layer}", []).append(name)
    return out
