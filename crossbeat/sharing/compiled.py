"""The read plan compiled to SQL: aggregates counted by the database (issue #8).

:func:`crossbeat.sharing.reads.aggregate` used to load every visible incident with its
offences and jurisdictions and pass each through :meth:`ReadPlan.publish` in Python
before counting it. Here the same plan runs as SQL, one ``GROUP BY`` query per rule
(a rule is one generalisation: precision, time resolution, delay, time zone):

* **Which rule shows a record** is written as SQL: rule ``i`` of an owner counts the
  live records its filter covers that no earlier (more revealing) rule of that owner
  covers, exactly the "first rule that covers it" of :meth:`ReadPlan.choose`.
* **Sensitivity, including the read-time keyword re-check**, is one test of the flags
  materialised on each row under the current rules (``sens_served``,
  :mod:`crossbeat.sharing.flags`): every read re-derives the rows derived under other
  rules (a changed crosswalk, keyword list or lexicon) before it reads any incident.
* **Generalisation** as SQL expressions: H3 cells are the stored ``h3_*`` columns
  (shown only when the rule's precision allows, as the policy already requires for
  grouping); local months, days and hours in the owner's time zone are ``to_char(...
  AT TIME ZONE ...)`` on PostgreSQL and, on SQLite (no time zones), ``strftime`` with
  the owner's UTC offset chosen by a ``CASE`` over the zone's transitions in the data's
  time range; ``since``/``until`` on the coarsened time become bounds on the stored
  time (the first period boundary at or after each); the publication delay is
  :meth:`Rule.sql`.
* Only the small count table is suppressed in Python
  (:func:`crossbeat.sharing.suppression.suppress_table`, unchanged).

Not yet compiled, and therefore run through the per-record reference path for the
owners concerned (:func:`count_by_rule` says which): a bounding box on a generalised
point (the public's anchor points are computed, not stored), and grouping dimensions
other than those in :data:`SQL_DIMS`. The per-record path stays the reference
implementation; ``tests/test_sharing_compiled.py`` requires both to agree.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
)

from crossbeat.sharing.policy import ReadPlan, _margin, live
from crossbeat.sharing.release import BASE, part_mode
from crossbeat.sharing.request import TIME_DIMS, CallsFilter
from crossbeat.sharing.rules import Rule, _matches_sql, coarsen, in_areas_sql
from crossbeat.sharing.scope import TimeResolution
from crossbeat.store.schema import agencies, incident_jurisdictions, incidents
from crossbeat.store.spatial import in_box_sql

#: Grouping dimensions the SQL path computes in the database.
SQL_DIMS = frozenset(
    {
        "agency", "jurisdiction", "h3_7", "h3_9", "h3_11", "nibrs", "crime_against",
        "call_category", *TIME_DIMS,
    }
)  # fmt: skip
_PG_FORMAT = {"month": "YYYY-MM", "day": "YYYY-MM-DD", "hour": 'YYYY-MM-DD"T"HH24'}
_SQLITE_FORMAT = {"month": "%Y-%m", "day": "%Y-%m-%d", "hour": "%Y-%m-%dT%H"}


@dataclass
class RuleCounts:
    """Counts of the records one rule shows, by group key, and how they were counted."""

    rule: Rule
    counts: Counter[tuple[str, ...]] = field(default_factory=Counter)
    path: str = "sql"  # "sql" or "reference"
    #: For a counts-only public release (``base`` part): counts by (base cell, key).
    base: Counter[tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        """Records this rule counted."""
        return sum(self.counts.values())


#: The per-record reference counter: ``(conn, plan) -> counts per rule``.
ReferenceCounter = Callable[[Connection, ReadPlan], list[RuleCounts]]


def fallback_reason(p: ReadPlan, rule: Rule) -> str | None:
    """Return why a rule's records cannot yet be counted in SQL, or None when they can."""
    req = p.request
    for dim in req.group_by:
        if dim not in SQL_DIMS:
            return f"grouping by {dim} is not compiled to SQL"
    if req.bbox is not None and rule.precision.name != "exact":
        return f"a bounding box on {rule.precision} points (anchors are not stored)"
    for name in ("polygon", "statuses", "codes"):
        if getattr(req, name) is not None:
            return f"the {name} filter is not compiled to SQL"
    return None


def count_by_rule(
    conn: Connection,
    p: ReadPlan,
    reference: ReferenceCounter,
    *,
    within: ColumnElement[bool] | None = None,
) -> list[RuleCounts]:
    """Count the records each rule of the plan shows, by the request's group key, in SQL.

    Owners with a rule that cannot be compiled (:func:`fallback_reason`) are counted by
    ``reference`` (the per-record path) on a plan holding only their rules. ``within``
    is an extra condition on the stored rows (vector tiles pass a box around whole
    H3 cells, :mod:`crossbeat.sharing.tiles`); the reference path ignores it.

    Returns
    -------
    list[RuleCounts]
        One entry per rule of the plan that counted at least one record.
    """
    slow = sorted({r.owner for r in p.rules if fallback_reason(p, r) is not None})
    out: list[RuleCounts] = []
    if slow:
        sub = dataclasses.replace(p, rules=tuple(r for r in p.rules if r.owner in slow))
        out += [dataclasses.replace(rc, path="reference") for rc in reference(conn, sub)]
    fast = reachable([r for r in p.rules if r.owner not in slow], p)
    if not fast:
        return out
    exact = RuleConditions(conn, p, fast)
    near = spatial_filter(conn, p)
    for rule in fast:
        where = and_(exact.shown_by(rule), *near)
        if within is not None:
            where = and_(where, within)
        dims = list(p.request.group_by)
        keys, kinds = _group_keys(conn, dims, rule)
        base = part_mode(rule) == BASE
        if base:
            keys += _base_sql(conn, rule)
            kinds += ["", "", "", ""]
        q = select(*(k.label(f"k{i}") for i, k in enumerate(keys)), func.count().label("n"))
        q = q.where(where)
        if keys:
            q = _periods(q.group_by(*(literal_column(str(i + 1)) for i in range(len(keys)))), kinds)
        rc = RuleCounts(rule)
        rows = conn.execute(q).all()
        counts, by_base, width = rc.counts, rc.base, len(dims)
        by_cell: dict[tuple[str, ...], int] | None = None
        if not base and kinds == ["cell"]:
            # The common count by cell (thousands of cells city-wide) in one pass, without
            # the general loop's calls per value. The cells are distinct (GROUP BY), but a
            # NULL and an empty cell both become "none": then the general loop adds them.
            pairs = [((str(row[0] or "none"),), int(row[1])) for row in rows if row[1]]
            by_cell = dict(pairs)
            if len(by_cell) != len(pairs):
                by_cell = None
        if by_cell is not None:
            counts.update(by_cell)
        else:
            for row in rows:
                n = int(row[-1])
                if not n:
                    continue
                values = tuple(_text(v, kinds[i]) for i, v in enumerate(row[:-1]))
                key = values[:width]
                counts[key] = counts.get(key, 0) + n
                if base:
                    bkey = (values[width:], key)
                    by_base[bkey] = by_base.get(bkey, 0) + n
        if rc.counts:
            out.append(rc)
    return out


def _group_keys(
    conn: Connection, dims: Sequence[str], rule: Rule
) -> tuple[list[ColumnElement[Any]], list[str]]:
    """Return the SQL group keys of ``dims`` and how :func:`_text` turns each into text.

    H3 cells are grouped by the bare column (so that an index on it serves the
    ``GROUP BY``) and a missing cell becomes "none" in Python. On SQLite, local months,
    days and hours are grouped by the bare ``occurred_local`` and cut to the period in
    Python: grouped on ``substr(...)``, SQLite's planner took a covering cell index
    without that column and read every counted row from the table (a daily series of
    500,000 rows: 1.9 s of CPU against 0.1 s on ``ix_incidents_live_agency_local``).
    """
    keys: list[ColumnElement[Any]] = []
    kinds: list[str] = []
    sqlite = conn.dialect.name == "sqlite"
    for d in dims:
        if d.startswith("h3_"):
            keys.append(incidents.c[d])
            kinds.append("cell")
        elif d == "crime_against":
            # The bare column, "unmapped" for a missing one in Python: behind the cell
            # and the call category in the cell indexes, so that SQLite groups a hexagon
            # tile's counts by cell and category in index order. Grouped on the CASE
            # of _dim_sql, it sorted every counted row in a temporary B-tree (an owner's
            # count of one tile: 48 ms of CPU against 20 ms, issue #12).
            keys.append(incidents.c.crime_against)
            kinds.append("category")
        elif sqlite and d in _LOCAL_PREFIX and _owner_zone(conn, rule.owner) == rule.timezone:
            keys.append(incidents.c.occurred_local)
            kinds.append(f"local:{_LOCAL_PREFIX[d]}")
        else:
            keys.append(_dim_sql(conn, d, rule))
            kinds.append("")
    return keys, kinds


def _periods(q: Select[Any], kinds: Sequence[str]) -> Select[Any]:
    """Sum the hourly groups of a local month or day into their period, in the database.

    ``q`` is grouped on the bare ``occurred_local`` (the local hour, see
    :func:`_group_keys`), so that SQLite reads it in the order of
    ``ix_incidents_live_agency_local``; that returned one row per owner and hour, about a
    third of the rows counted (34,524 rows for 96,545 incidents, 0.25 of the 0.45 s of a
    panel's month-by-agency count spent fetching and cutting them in Python; issue #12).
    Wrapped here, the inner query keeps its plan (SQLite does not flatten an aggregate
    into an aggregate) and only the periods' rows come back. Other kinds are unchanged.
    """
    cut = {
        i: int(k.removeprefix("local:"))
        for i, k in enumerate(kinds)
        if k.startswith("local:") and int(k.removeprefix("local:")) < _LOCAL_PREFIX["hour"]
    }
    if not cut:
        return q
    inner = q.subquery()
    columns = [
        (func.substr(inner.c[f"k{i}"], 1, cut[i]) if i in cut else inner.c[f"k{i}"]).label(f"k{i}")
        for i in range(len(kinds))
    ]
    return select(*columns, func.sum(inner.c.n).label("n")).group_by(
        *(literal_column(str(i + 1)) for i in range(len(kinds)))
    )


def _text(value: object, kind: str) -> str:
    if kind == "cell":
        return str(value or "none")
    if kind == "category":  # as _dim_sql's CASE: a NULL or empty category is "unmapped"
        return str(value or "unmapped")
    if kind.startswith("local:"):  # as coalesce(substr(occurred_local, 1, n), 'unknown')
        return "unknown" if value is None else str(value)[: int(kind[6:])]
    return str(value)


def spatial_filter(conn: Connection, p: ReadPlan) -> list[ColumnElement[bool]]:
    """Return the spatial-index condition of a read with a box or polygon (else ``[]``).

    The R*Tree (SQLite) or GiST index (PostgreSQL) of live incidents
    (:mod:`crossbeat.store.spatial`) is asked for the request's box, widened by the
    largest anchor margin of the rules that can show a record of the owners asked for
    (:func:`reachable`): a superset of what every rule's exact ``lat``/``lon`` filter
    keeps, so that the index, not a scan, finds the candidates.
    """
    req = p.request
    boxes = [req.bbox] if req.bbox is not None else []
    if req.polygon is not None:
        boxes.append(tuple(req.polygon.bounds))
    # Only the rules that can show a record of an owner asked for: another's, or one
    # after a rule covering all of its owner, would only widen the box.
    rules = [r for r in reachable(p.rules, p) if req.agencies is None or r.owner in req.agencies]
    if not boxes or not rules:
        return []
    out = []
    for box in boxes:
        margins = [_margin(r.precision, box) for r in rules]
        lat_m = max(m[0] for m in margins)
        lon_m = max(m[1] for m in margins)
        min_lon, min_lat, max_lon, max_lat = box
        out.append(
            in_box_sql(
                conn.dialect.name,
                min_lon - lon_m,
                min_lat - lat_m,
                max_lon + lon_m,
                max_lat + lat_m,
            )
        )
    return out


# -- which rule shows a record -------------------------------------------------------------
def reachable(rules: Sequence[Rule], p: ReadPlan) -> list[Rule]:
    """Drop the rules that can show nothing: those whose records an earlier rule covers.

    A record is shown by the first rule of its owner that covers it
    (:meth:`~crossbeat.sharing.policy.ReadPlan.choose`, rules sorted most revealing
    first), so a rule every record of which an earlier rule of the same owner covers
    (:func:`covers_all_of`) is never chosen: the per-record reference path never
    chooses it either, and its SQL query (a scan of the owner's rows that counts
    nothing) is left out. Two cases are common: after a rule covering *all* of its
    owner (the viewer's own data), and a partner's view of an owner's public release
    after an agreement with no longer delay and no more exclusions (the agreement is
    then first: no coarser precision, time or fewer fields, or it would sort after).
    Only for reads without ``changed_since`` (the live stream's "changed since" test
    depends on each rule's delay).
    """
    if p.request.changed_since is not None:
        return list(rules)
    out: list[Rule] = []
    for rule in rules:
        if any(earlier.owner == rule.owner and covers_all_of(earlier, rule) for earlier in out):
            continue
        out.append(rule)
    return out


def _tokens_within(inner: frozenset[str] | None, outer: frozenset[str] | None) -> bool:
    """Whether every offence ``inner`` matches, ``outer`` matches (``None``/``all``: every)."""
    if outer is None or "all" in outer:
        return True
    return inner is not None and "all" not in inner and inner <= outer


def covers_all_of(a: Rule, b: Rule) -> bool:
    """Return whether rule ``a`` covers every record rule ``b`` covers (same owner).

    Sufficient conditions on each test of :meth:`Rule.check` (and :meth:`Rule.sql`),
    each of which only adds records as its tokens, categories or delay allow more: the
    offences ``b`` matches are matched by ``a``, the call categories too; ``a``
    excludes no offence token and no sensitivity flag that ``b`` does not; ``a``'s
    delay is no longer. A record ``b`` covers then passes every test of ``a``.

    Examples
    --------
    >>> from datetime import timedelta
    >>> from crossbeat.model import Sensitivity
    >>> from crossbeat.sharing.scope import TimeResolution, parse_precision
    >>> def rule(delay, flags, offences=None):
    ...     return Rule("metro", "x", None, offences, frozenset(flags), frozenset(),
    ...                 frozenset({"id"}), parse_precision("h3:9"), TimeResolution.DAY,
    ...                 timedelta(hours=delay), False, "UTC")
    >>> agreement = rule(24, {Sensitivity.SEXUAL_OFFENCE})
    >>> public = rule(72, set(Sensitivity))
    >>> covers_all_of(agreement, public), covers_all_of(public, agreement)
    (True, False)
    >>> covers_all_of(rule(24, (), frozenset({"13A"})), rule(72, ()))
    False
    """
    if a.owner != b.owner:
        return False
    if not _tokens_within(b.offences, a.offences):
        return False
    if a.calls is not None and (b.calls is None or not b.calls <= a.calls):
        return False
    if not a.excluded_offences <= b.excluded_offences:
        return False
    if not a.excluded_flags <= b.excluded_flags:
        return False
    return a.delay <= b.delay


class RuleConditions:
    """Exact SQL conditions of the plan's rules (the keyword re-check included)."""

    def __init__(
        self,
        conn: Connection,
        p: ReadPlan,
        rules: Sequence[Rule],
    ) -> None:
        self.p = p
        self.rules = list(rules)

    def covers(self, rule: Rule) -> ColumnElement[bool]:
        """Return SQL for ``rule.check(...) is None`` (the rule covers the record).

        Sensitivity is the materialised mask (:mod:`crossbeat.sharing.flags`), which
        :func:`crossbeat.sharing.reads.prepare` re-derived under the current rules.
        """
        return rule.sql(self.p.now, self.p.request.changed_since, materialised=True)

    def shown_by(self, rule: Rule, *, bbox: bool = True) -> ColumnElement[bool]:
        """Return SQL for "this rule shows the record", request filters included."""
        filters = request_filters(self.p, rule, bbox=bbox)
        earlier = []
        for other in self.p.rules:
            if other is rule:
                break
            if other.owner == rule.owner:
                earlier.append(not_(func.coalesce(self.covers(other), false())))
        return and_(live(), self.covers(rule), *earlier, *filters)


def request_filters(p: ReadPlan, rule: Rule, *, bbox: bool = True) -> list[ColumnElement[bool]]:
    """Return SQL for the request's filters on the values ``rule`` publishes.

    To be combined with the rule's own condition (:meth:`RuleConditions.covers`), which
    holds the owner. The bounding box is compared with the stored point, which is the
    published one only at ``exact`` precision: with ``bbox=False`` it is left out, for
    the caller to apply to the published points.
    """
    req = p.request
    c = incidents.c
    out: list[ColumnElement[bool]] = []
    if req.ids is not None:
        ids = sorted(req.ids)
        by_id = c.public_id.in_(ids)
        out.append(or_(by_id, c.id.in_(ids)) if rule.via == "own" else by_id)
    if req.agencies is not None and rule.owner not in req.agencies:
        # An owner asked for needs no condition: the rule's own (``Rule.sql``, which every
        # caller adds) already holds ``agency_id = owner``, and a repeated ``IN`` costs
        # SQLite a test per counted row (a tenth of a city-wide count at 1 M rows).
        out.append(false())
    if req.offences is not None:  # calls are chosen by ``calls``, not by offence
        out.append(or_(c.call_category.is_not(None), _matches_sql(req.offences, c)))
    if req.areas is not None:
        out.append(in_areas_sql(req.areas))
    if req.jurisdictions is not None:  # the rule publishes them (policy._unmet)
        out.append(in_jurisdictions_sql(req.jurisdictions))
    if req.calls is CallsFilter.EXCLUDE:
        out.append(c.call_category.is_(None))
    elif req.calls is CallsFilter.ONLY:
        out.append(c.call_category.is_not(None))
    if req.after is not None:
        out.append(c.public_id > req.after)
    if req.since is not None:
        out.append(c.occurred_from >= period_start(req.since, rule))
    if req.until is not None:
        out.append(c.occurred_from < period_start(req.until, rule))
    if req.bbox is not None and bbox:  # stored points are published at exact precision
        min_lon, min_lat, max_lon, max_lat = req.bbox
        out += [c.lat.between(min_lat, max_lat), c.lon.between(min_lon, max_lon)]
    return out


def in_jurisdictions_sql(agency_ids: frozenset[str]) -> ColumnElement[bool]:
    """Return SQL for "the incident lies in one of these agencies' jurisdictions".

    The stored tags are the published ``jurisdictions`` field (every agency whose
    polygon holds the point, or the reporter's), as the per-record path compares them.
    """
    j = incident_jurisdictions.c
    return exists(
        select(j.incident_id).where(
            (j.incident_id == incidents.c.id) & j.agency_id.in_(sorted(agency_ids))
        )
    )


def period_start(when: datetime, rule: Rule) -> datetime:
    """Return the first boundary at or after ``when`` of the rule's time periods.

    ``coarsen(t) >= when`` exactly when ``t >= period_start(when)``: the coarsened time
    is the last boundary at or before ``t``.
    """
    res = rule.time_resolution
    if res is TimeResolution.EXACT:
        return when
    floor = coarsen(when, res, rule.timezone)
    assert floor is not None
    if floor == when:
        return when
    step = {
        TimeResolution.HOUR: timedelta(minutes=61),
        TimeResolution.DAY: timedelta(hours=26),
        TimeResolution.MONTH: timedelta(days=32),
    }[res]
    nxt = coarsen(floor + step, res, rule.timezone)
    assert nxt is not None and nxt > when
    return nxt


# -- group keys as SQL -----------------------------------------------------------------------
def _dim_sql(conn: Connection, dim: str, rule: Rule) -> ColumnElement[str]:
    """Return SQL for the group key :func:`crossbeat.sharing.reads._key` computes."""
    c = incidents.c
    pg = conn.dialect.name == "postgresql"
    if dim == "agency":
        return c.agency_id
    if dim == "call_category":
        return func.coalesce(c.call_category, literal("none"))
    if dim in ("nibrs", "crime_against"):
        col = c.nibrs_code if dim == "nibrs" else c.crime_against
        plain = case((or_(col.is_(None), col == ""), literal("unmapped")), else_=col)
        if dim == "crime_against":
            return plain
        return case((c.call_category.is_not(None), literal("call:") + c.call_category), else_=plain)
    if dim.startswith("h3_"):
        return func.coalesce(c[dim], literal("none"))
    if dim == "jurisdiction":
        if pg:
            sql = (
                "COALESCE((SELECT string_agg(agency_id, '+' ORDER BY agency_id COLLATE \"C\") "
                "FROM incident_jurisdictions WHERE incident_id = incidents.id), 'none')"
            )
        else:
            sql = (
                "COALESCE((SELECT group_concat(j.agency_id, '+') FROM (SELECT agency_id "
                "FROM incident_jurisdictions WHERE incident_id = incidents.id "
                "ORDER BY agency_id) AS j), 'none')"
            )
        return literal_column(sql)
    if dim in _LOCAL_PREFIX and _owner_zone(conn, rule.owner) == rule.timezone:
        # The local time derived at write time in the owner's zone (migration 0021):
        # a month or day is a prefix of it, grouped on an index of live rows.
        n = _LOCAL_PREFIX[dim]
        stored = c.occurred_local if n == 13 else func.substr(c.occurred_local, 1, n)
        return func.coalesce(stored, literal("unknown"))
    if pg:
        local = func.timezone(literal(rule.timezone), c.occurred_from)
        return func.coalesce(func.to_char(local, literal(_PG_FORMAT[dim])), literal("unknown"))
    lo, hi = conn.execute(
        select(func.min(c.occurred_from), func.max(c.occurred_from)).where(
            c.agency_id == rule.owner
        )
    ).one()
    modifier = _sqlite_offset(rule.timezone, lo, hi)
    return func.coalesce(
        func.strftime(literal(_SQLITE_FORMAT[dim]), c.occurred_from, modifier), literal("unknown")
    )


_LOCAL_PREFIX = {"month": 7, "day": 10, "hour": 13}


def _owner_zone(conn: Connection, owner: str) -> str | None:
    """Return the stored time zone of an agency (what ``occurred_local`` was derived in)."""
    return conn.execute(select(agencies.c.timezone).where(agencies.c.id == owner)).scalar()


def _base_sql(conn: Connection, rule: Rule) -> list[ColumnElement[str]]:
    """Return SQL for :func:`crossbeat.sharing.release.base_key` of the records ``rule`` shows.

    Values the rule does not show count as missing, as on the published record.
    """
    shown = rule.shown_fields(None)
    category = _dim_sql(conn, "crime_against", rule)
    month = _dim_sql(conn, "month", rule)
    cell = _dim_sql(conn, "h3_7", rule)
    return [
        category if "crime_against" in shown else literal("unmapped"),
        month if "occurred_from" in shown else literal("unknown"),
        cell if "h3_7" in shown and rule.precision.shows_cell("h3_7") else literal("none"),
        _dim_sql(conn, "jurisdiction", rule) if "jurisdictions" in shown else literal("none"),
    ]


def _sqlite_offset(tz: str, lo: datetime | None, hi: datetime | None) -> ColumnElement[str]:
    """Return SQL for the ``strftime`` modifier that turns a stored UTC time into local time."""
    segments = offset_segments(tz, lo or datetime(2000, 1, 1, tzinfo=UTC), hi or lo)
    first = literal(f"{segments[0][1]:+d} seconds")
    if len(segments) == 1:
        return first
    c = incidents.c
    whens = [(c.occurred_from < start, literal(f"{segments[i][1]:+d} seconds"))
             for i, (start, _off) in enumerate(segments[1:])]  # fmt: skip
    return case(*whens, else_=literal(f"{segments[-1][1]:+d} seconds"))


def offset_segments(tz: str, lo: datetime, hi: datetime | None) -> list[tuple[datetime, int]]:
    """Return ``[(start, offset seconds), ...]``: the zone's UTC offsets from ``lo`` to ``hi``.

    The range is widened by a day on each side (local keys of times near its ends); the
    first segment starts at the widened ``lo``, each later one at a transition (to the
    second).

    Examples
    --------
    >>> segs = offset_segments("Europe/London", datetime(2024, 1, 1, tzinfo=UTC),
    ...                        datetime(2024, 12, 31, tzinfo=UTC))
    >>> [(s.isoformat(), off) for s, off in segs]  # doctest: +NORMALIZE_WHITESPACE
    [('2023-12-31T00:00:00+00:00', 0), ('2024-03-31T01:00:00+00:00', 3600),
     ('2024-10-27T01:00:00+00:00', 0)]
    """
    zone = ZoneInfo(tz)
    hi = hi or lo

    def off(t: datetime) -> int:
        delta = t.astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    lo, hi = lo - timedelta(days=1), hi + timedelta(days=1)
    out = [(lo, off(lo))]
    step = timedelta(hours=6)
    t = lo
    while t < hi:
        nxt = t + step
        if off(nxt) != out[-1][1]:
            a, b = t, nxt  # off(a) == current, off(b) differs: bisect to the second
            while b - a > timedelta(seconds=1):
                mid = a + (b - a) / 2
                mid = mid.replace(microsecond=0)
                if mid <= a:
                    break
                if off(mid) == out[-1][1]:
                    a = mid
                else:
                    b = mid
            out.append((b, off(b)))
        t = nxt
    return out
