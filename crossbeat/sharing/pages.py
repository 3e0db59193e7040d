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
  cells, codes); the published anchor of a generalised point comes from
  :class:`~crossbeat.sharing.public.AnchorIndex` (cached per cell) and coarsened times
  from :class:`Coarsener` (one floor computed per local hour, day or month).
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
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, and_, case, exists, literal, or_, select

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
Step = tuple[str, str | None, Callable[[Row, "_Kids"], Any] | None]


def compilable(p: ReadPlan) -> bool:
    """Return whether :func:`page_records` can serve the plan (else the per-record path)."""
    req = p.request
    return req.changed_since is None and not req.aggregate


@dataclass
class _Kids:
    """One record's child rows: offences, jurisdictions and areas (as needed)."""

    offences: Sequence[Mapping[str, Any]]
    places: Sequence[str]
    areas: Mapping[str, Sequence[str]]


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
    steps: list[Step]
    shown: frozenset[str]
    check: bool  # apply the request's filters to the published record
    needs: frozenset[str]  # fields assembled (the rule's full record when checking)
    anchor: int | None  # H3 resolution of the published anchor point


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
    steps: list[Step] = []

    def add(name: str, column: str | None, fn: Callable[[Row, _Kids], Any] | None = None) -> None:
        if name in needs:
            steps.append((name, column, fn))

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
                add(name, None, partial(_anchored, "_" + name))
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
    return _Shape(rule, steps, shown, check, needs, anchor)


_FLAGS = sorted((flag.value, column) for flag, column in FLAG_COLUMNS.items())


def _offence_name(row: Row, _kids: _Kids) -> str | None:
    return offence_name(row["nibrs_code"])


def _coarse(coarsener: Coarsener, column: str, row: Row, _kids: _Kids) -> datetime | None:
    return coarsener(row[column])


def _time_precision(res: TimeResolution, row: Row, _kids: _Kids) -> str:
    return coarser_time_precision(row["time_precision"] or "unknown", res)


def _anchored(column: str, row: Row, _kids: _Kids) -> Any:
    return row[column] if row["lat"] is not None else _ABSENT


def _location_precision(name: str, row: Row, _kids: _Kids) -> str:
    return name if row["lat"] is not None else "none"


def _places(_row: Row, kids: _Kids) -> list[str]:
    return sorted(kids.places)


def _areas(rule: Rule, _row: Row, kids: _Kids) -> dict[str, list[str]]:
    return {key: sorted(names) for key, names in sorted(kids.areas.items())
            if rule.shows_layer(key)}  # fmt: skip


def _sensitivity(row: Row, _kids: _Kids) -> list[str]:
    return [value for value, column in _FLAGS if row[column]]


def _offences(rule: Rule, local: bool, _row: Row, kids: _Kids) -> list[dict[str, Any]]:
    out = []
    for o in kids.offences:
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


def _columns(shapes: Sequence[_Shape]) -> list[str]:
    """Return the stored columns the page's rules publish or filter on."""
    cols = dict.fromkeys(_ALWAYS)
    for s in shapes:
        for _name, column, _fn in s.steps:
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
    conn: Connection, p: ReadPlan, anchors: AnchorIndex, batch: int
) -> Iterator[tuple[Rule, dict[str, Any], Row]]:
    """Yield ``(rule, record, row)`` for every record the plan shows, in public-id order.

    The same records, in the same order, as :func:`crossbeat.sharing.reads.published`
    with ``materialised`` (the caller has checked :func:`compilable`); ``row`` holds the
    stored ``id``, ``public_id`` and ``agency_id``. Rows are read ``batch`` at a time.
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
    want_offences = any("offences" in s.needs for s in shapes)
    want_places = any("jurisdictions" in s.needs for s in shapes)
    want_areas = any("areas" in s.needs for s in shapes)
    # Offences and jurisdictions as kept on the incident row (crossbeat.store.children).
    kept = [c[n] for n, want in (("offences_json", want_offences),
                                 ("jurisdiction_ids", want_places)) if want]  # fmt: skip
    keys = ["_rule", *names, *(k.name for k in kept)]
    base = select(chosen.label("_rule"), *(c[n] for n in names), *kept).where(
        or_(*shown), *spatial_filter(conn, p)
    )
    empty = _Kids((), (), {})
    # Parsed once per distinct value on this read (a city's records share a few hundred
    # offence lists and jurisdiction sets); the parsed values are only read.
    offences_of = _Memo(parse_offences)
    places_of = _Memo(parse_jurisdictions)
    after: str | None = None
    while True:
        q = base if after is None else base.where(c.public_id > after)
        result = conn.execute(q.order_by(c.public_id).limit(batch))
        rows = [dict(zip(keys, r, strict=True)) for r in result.all()]
        if not rows:
            return
        tags = area_tags(conn, [r["id"] for r in rows]) if want_areas else {}
        for row in rows:
            s = shapes[row["_rule"]]
            if want_offences or want_places or want_areas:
                kids = _Kids(
                    offences_of(row["offences_json"]) if want_offences else (),
                    places_of(row["jurisdiction_ids"]) if want_places else (),
                    tags.get(row["id"], {}),
                )
            else:
                kids = empty
            if s.anchor is not None and row["lat"] is not None:
                row["_lat"], row["_lon"] = anchors.anchor(row["lat"], row["lon"], s.anchor)
            if s.anchor is None:  # no step can leave its field out: one comprehension
                record = {name: row[column] if fn is None else fn(row, kids)
                          for name, column, fn in s.steps}  # fmt: skip
            else:
                record = {}
                for name, column, fn in s.steps:
                    if fn is None:
                        record[name] = row[column]
                    else:
                        value = fn(row, kids)
                        if value is not _ABSENT:  # an anchored point of a record without one
                            record[name] = value
            if row["call_category"]:
                record[CALL_FIELD] = row["call_category"]
            if s.check:
                if not p._matches(row, record, s.rule):
                    continue
                if s.needs != s.shown:
                    record = {k: v for k, v in record.items() if k in s.shown}
            yield s.rule, record, row
        if len(rows) < batch:
            return
        after = rows[-1]["public_id"]


#: Whether any area layer is registered (without one no incident has an area tag).
_ANY_LAYER = select(exists(select(area_layers.c.id)))


def area_tags(conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    """Return each incident's areas: incident id -> ``{"AGENCY/LAYER": [area names]}``.

    One probe first: without any area layer no incident has an area tag, and the
    join is not run.
    """
    if not ids or not conn.execute(_ANY_LAYER).scalar():
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
