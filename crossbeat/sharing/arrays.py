"""Analysis arrays: the viewer's visible incidents as numpy columns, in one query (issue #8).

For the analytics and forecasting code, which wants columns, not records.
:func:`analysis_arrays` plans the read like every other read, compiles the plan to one
SQL query (:class:`crossbeat.sharing.compiled.RuleConditions`: which rule shows each
record is a ``CASE`` in the SELECT list, the request's filters are in the WHERE clause),
reads the rows straight into numpy columns, applies each rule's generalisation to its
rows as array operations, and writes one audit event per owner with the count of that
owner's records (never one row per incident).

From a SQLite file the rows are read as Arrow by ADBC in a worker process
(:mod:`crossbeat.store.arrow`), in parts: one statement per owner (a single owner's in
two ranges of public ids), read on two worker connections side by side on one snapshot
of the database, each part sent back as soon as it is read and generalised here while
the worker reads the next, then the parts interleaved by public id (:func:`_merge`).
Elsewhere (PostgreSQL, or a transaction that wrote first) the rows come from the DB-API
cursor in large batches, in one statement whose owners the database merges.

The read is columnar end to end, with as little Python per row as the drivers allow:
times come out of the database as integer microseconds since the epoch (``unixepoch``
on SQLite's stored text, ``EXTRACT(EPOCH ...)`` on PostgreSQL; NaT's integer where
unknown), so no ``datetime`` object is built; the owner is the rule's, known from the
rule index the query returns; nothing passes through SQLAlchemy's row objects or result
processors.

Generalisation: ``exact`` points are the stored ones; anchored points (``block``,
``h3:N``) come from :meth:`crossbeat.sharing.public.AnchorIndex.anchor_many`, computed
once per distinct cell and set of covering jurisdiction polygons; a rule without a
point, or without ``lat``/``lon`` in its fields, gives NaN. Times are coarsened per rule
in the rule's time zone (:func:`coarsen_us`: by local date for days and months, among
the hour boundaries for hours); a rule without ``occurred_from`` gives NaT. Offence
columns are empty strings where the rule does not show them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Connection,
    Select,
    String,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    or_,
    select,
    union_all,
)

from crossbeat.audit import Action
from crossbeat.clock import Clock
from crossbeat.geo.cells import h3_cell_ints_from_text
from crossbeat.sharing.compiled import RuleConditions, offset_segments, reachable
from crossbeat.sharing.policy import Decision, ReadPlan, ReadRequest, Viewer, live
from crossbeat.sharing.public import AnchorIndex
from crossbeat.sharing.reads import _audit, anchor_index, prepare
from crossbeat.sharing.request import RequestError
from crossbeat.sharing.rls import restricted
from crossbeat.sharing.rules import Rule, coarsen
from crossbeat.sharing.scope import TimeResolution
from crossbeat.store import Store
from crossbeat.store.arrow import arrow_applies, read_arrow, read_arrow_parts
from crossbeat.store.schema import incidents

#: The index of live rows the arrays are read from (migration 0024a).
ARRAYS_INDEX = "ix_incidents_live_arrays"

#: Rows fetched from the database at a time.
CHUNK = 50_000


@dataclass(frozen=True)
class AnalysisArrays:
    """Visible incidents as columns (one position per incident, in public-id order).

    ``id`` is the id the viewer may see: the owner's id for its own readers, the
    public id for everyone else.

    ``lon``/``lat`` are float64 at the granted precision (NaN: not shown);
    ``occurred_from``/``occurred_to`` are ``datetime64[us]`` in UTC at the granted
    time resolution (NaT: unknown or not shown); ``nibrs_code``, ``crime_against`` and
    ``owner`` are string arrays (empty: unmapped or not shown); ``location_type`` is the
    NIBRS premise type (empty: unknown or not shown), a modus-operandi feature for series.

    ``period_end`` is, where the viewer's grant coarsens times (to the hour, day or
    month), the end of the period holding the latest shown time (``occurred_to``, else
    ``occurred_from``): the incident happened before it, so an analysis spreads it over
    ``[occurred_from, period_end)`` (:meth:`time_range`) instead of pinning it to the
    period's start. NaT where times are exact or not shown.

    ``precisions`` maps each owner to the name of the coarsest location precision of the
    rules that show its incidents here (among those that place points, if any do), e.g.
    ``{"clackmerco": "h3:9"}``: analyses refuse a spatial resolution finer than that
    (None: not known, arrays built elsewhere).
    """

    id: np.ndarray
    owner: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    occurred_from: np.ndarray
    occurred_to: np.ndarray
    nibrs_code: np.ndarray
    crime_against: np.ndarray
    location_type: np.ndarray
    decisions: tuple[Decision, ...]
    period_end: np.ndarray | None = None
    precisions: Mapping[str, str] | None = None

    def __len__(self) -> int:
        return int(self.id.shape[0])

    def time_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(start, end)`` of each incident's time as an analysis must read it.

        The shown ``occurred_from`` and ``occurred_to``, except where the grant coarsened
        the times: there the range runs to the last microsecond of the period holding the
        latest shown time (a time shown as "that day" is anywhere in that day).
        """
        end = self.occurred_to
        if self.period_end is not None:
            coarse = ~np.isnat(self.period_end)
            if coarse.any():
                end = end.copy()
                end[coarse] = self.period_end[coarse] - np.timedelta64(1, "us")
        return self.occurred_from, end

    def owner_counts(self) -> dict[str, int]:
        """Return how many incidents of each owner the arrays hold."""
        names, counts = np.unique(self.owner, return_counts=True)
        return {str(n): int(c) for n, c in zip(names, counts, strict=True)}


def analysis_arrays(
    store: Store,
    viewer: Viewer,
    request: ReadRequest | None = None,
    *,
    clock: Clock | None = None,
) -> AnalysisArrays:
    """Return the incidents a viewer may see as numpy columns, and audit the read.

    Parameters
    ----------
    store
        The store.
    viewer
        Who reads.
    request
        Filters and purpose (``fields``, ``limit`` and ``after`` do not apply: the
        arrays hold every visible incident, with the columns listed on
        :class:`AnalysisArrays`).
    clock
        Clock for "now" (default: the store's clock).

    Returns
    -------
    AnalysisArrays
        The same incidents :func:`crossbeat.sharing.reads.read_incidents` returns for
        the request, with the same generalised values.
    """
    request = request or ReadRequest()
    if request.limit is not None or request.after is not None or request.personal_data:
        raise ValueError("analysis arrays take no page (limit, after) and no personal data")
    unsupported = [n for n in ("statuses", "codes") if getattr(request, n)]
    if unsupported:
        raise RequestError([f"{n}: not a filter of analyses (yet)" for n in unsupported])
    now = (clock or store.clock).now()
    with store.begin() as conn:
        p = prepare(conn, viewer, request, now)
        with restricted(conn, p.owners):
            rules = reachable(p.rules, p)
            anchors = anchor_index(conn, store.url) if _needs_anchors(p.rules) else None
            read = _read_parts(conn, p, rules, anchors) if rules else None
            if read is None:
                read = _columns(p.rules, _read(conn, p, rules) if rules else _empty(), anchors)
        arrays, rule_of = read
        keep = _in_bbox(arrays, request.bbox)
        if request.polygon is not None:
            with np.errstate(invalid="ignore"):
                keep &= shapely.intersects_xy(request.polygon, arrays["lon"], arrays["lat"])
        if not keep.all():
            arrays = {k: v[keep] for k, v in arrays.items()}
            rule_of = rule_of[keep]
        by_owner: Counter[str] = Counter()
        showing: list[Rule] = []  # the rules that show a row
        for i, n in enumerate(np.bincount(rule_of, minlength=len(p.rules)).tolist()):
            if n:
                by_owner[p.rules[i].owner] += n
                showing.append(p.rules[i])
        _audit(
            store, conn, p, Action.READ, "incident_arrays", owner_counts=by_owner,
            extra={"columns": sorted(arrays)},
        )  # fmt: skip
    return AnalysisArrays(decisions=p.decisions, precisions=_coarsest_precisions(showing), **arrays)


def _coarsest_precisions(rules: Sequence[Rule]) -> dict[str, str]:
    """Return each owner's coarsest location precision among ``rules`` (by name).

    Among an owner's rules that place points (a precision with a point and ``lat`` and
    ``lon`` shown) if it has any, else among all its rules: a rule without points adds
    nothing to a point's detail, and must not hide a coarser-than-exact point rule.

    Examples
    --------
    >>> from crossbeat.sharing.scope import parse_precision
    >>> def rule(owner, precision):
    ...     return Rule(owner, "agency", "x", None, frozenset(), frozenset(),
    ...                 frozenset({"id", "agency_id", "lat", "lon"}),
    ...                 parse_precision(precision), TimeResolution.DAY, timedelta(0),
    ...                 False, "UTC")
    >>> _coarsest_precisions([rule("a", "exact"), rule("a", "h3:9"), rule("b", "block")])
    {'a': 'h3:9', 'b': 'block'}
    """
    out: dict[str, tuple[bool, int, str]] = {}
    for r in rules:
        points = r.precision.has_point and {"lat", "lon"} <= r.shown_fields(None)
        key = (points, r.precision.rank, r.precision.name)
        if r.owner not in out or key > out[r.owner]:
            out[r.owner] = key
    return {owner: name for owner, (_points, _rank, name) in out.items()}


def _query(
    conn: Connection, p: ReadPlan, rules: list[Rule], *, text_times: bool = False
) -> Select[Any] | CompoundSelect:
    """Return the query of the arrays: one SELECT per owner, merged in public-id order.

    Times are integer microseconds computed in SQL, or with ``text_times`` the stored
    text (SQLite), for the Arrow reader to convert in bulk. ``cell`` is the stored
    :data:`STORED_CELL` of the owners with a rule anchored at its resolution (NULL for
    the others).

    Each owner's part is a range of ``ix_incidents_live_arrays`` (migration 0024a) read
    in public-id order, so the database merges the parts instead of sorting the rows
    (SQLite's merge of a compound SELECT, PostgreSQL's Merge Append).
    """
    exact = RuleConditions(conn, p, rules)
    owners = sorted({r.owner for r in rules})
    parts = [
        _owner_select(conn, p, exact, owner, text_times=text_times, sort_key=len(owners) > 1)
        for owner in owners
    ]
    if len(parts) == 1:
        return parts[0].order_by(incidents.c.public_id)
    merged = union_all(*parts)
    return merged.order_by(merged.selected_columns.sort_key)


#: Whether a SQLite file is read as Arrow in parts (:func:`_read_parts`); False: in one
#: statement (the path of session 5, kept for ``benchmarks/reads.py`` to compare with).
IN_PARTS = True

#: Where the Arrow path splits the public ids of a single owner's rows (random UUIDs:
#: about in halves), so that the worker's two connections read side by side for one
#: owner too (several owners are read side by side already).
SPLIT: tuple[str, ...] = ("8",)


@dataclass(frozen=True)
class _Part:
    """One statement of the Arrow path: an owner's rows in one range of public ids."""

    range: int  # the position of the range among those of SPLIT
    query: Select[Any]
    key: str  # the column holding the public id, the order of the arrays
    rule: int | None  # the rule of every row (not selected), or None: the ``rule`` column
    cell: bool  # whether ``cell`` is selected (else NULL on every row, not selected)

    def complete(self, table: pa.Table) -> pa.Table:
        """Return the part's table with the columns left out of its SELECT (constants)."""
        n = table.num_rows
        if self.rule is not None:
            table = table.add_column(1, "rule", pa.array(np.full(n, self.rule, dtype=np.int64)))
        if not self.cell:
            table = table.add_column(9, "cell", pa.nulls(n, pa.string()))
        return table


def _parts(conn: Connection, p: ReadPlan, rules: list[Rule]) -> list[_Part]:
    """Return the Arrow path's statements: per owner, per range of public ids.

    Each is a range of ``ix_incidents_live_arrays`` in public-id order, nothing merged
    or sorted by the database; :func:`_merge` interleaves the owners' parts.
    """
    c = incidents.c
    exact = RuleConditions(conn, p, rules)
    owners = sorted({r.owner for r in rules})
    bounds = [None, *SPLIT, None] if len(owners) == 1 else [None, None]
    out = []
    for owner in owners:
        mine = [r for r in rules if r.owner == owner]
        own = any(r.via == "own" for r in mine)
        base = _owner_select(conn, p, exact, owner, text_times=True, sort_key=own, lean=True)
        rule = p.rules.index(mine[0]) if len(mine) == 1 else None
        cell = any(_stored_cell(r) for r in mine)
        key = "sort_key" if own else "shown_id"
        for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            q = base
            if lo is not None:
                q = q.where(c.public_id >= lo)
            if hi is not None:
                q = q.where(c.public_id < hi)
            out.append(_Part(k, q.order_by(c.public_id), key, rule, cell))
    return out


def _owner_select(
    conn: Connection,
    p: ReadPlan,
    exact: RuleConditions,
    owner: str,
    *,
    text_times: bool,
    sort_key: bool,
    lean: bool = False,
) -> Select[Any]:
    """Return the SELECT of one owner's visible rows (the columns of :data:`_KINDS`).

    With ``sort_key``, the public id again as a last column (the order of the arrays,
    where the shown id is the owner's). With ``lean``, ``rule`` is left out where the
    owner has one rule and ``cell`` where it is NULL (:meth:`_Part.complete` adds them):
    each column the worker reads costs about a tenth of its work.
    """
    c = incidents.c
    pg = conn.dialect.name == "postgresql"
    mine = [r for r in exact.rules if r.owner == owner]
    # Which rule shows a row: with one rule no test (the WHERE clause requires it).
    which: ColumnElement[Any] = literal(p.rules.index(mine[0]))
    if len(mine) > 1:
        which = case(
            *((exact.covers(r), literal(p.rules.index(r))) for r in mine),
            else_=literal(-1),
        )
    # The id each rule shows: the owner's own readers see the id, everyone else the
    # random public id; rows come in public-id order (issue #7).
    shown_id = c.id if any(r.via == "own" for r in mine) else c.public_id
    columns = [shown_id.label("shown_id"), which.label("rule"), c.lon, c.lat]
    if lean and len(mine) == 1:
        columns.pop(1)
    if text_times:
        columns += [c.occurred_from, c.occurred_to]
    else:
        columns += [
            _epoch_us(c.occurred_from, pg).label("occurred_from"),
            _epoch_us(c.occurred_to, pg).label("occurred_to"),
        ]
    columns += [func.coalesce(col, "").label(col.name) for col in (
        c.nibrs_code, c.crime_against, c.location_type)]  # fmt: skip
    stored = any(_stored_cell(r) for r in mine)
    if stored or not lean:
        columns.append((c[STORED_CELL[0]] if stored else literal(None, String)).label("cell"))
    if sort_key:
        columns.append(c.public_id.label("sort_key"))
    # Live rows of the owner outside the OR of its rules: one range of the index.
    shown = or_(*(exact.shown_by(r, bbox=False) for r in mine))
    part = select(*columns).where(and_(live(), c.agency_id == owner, shown))
    # SQLite's planner may prefer scanning the public-id index (no sort) over the
    # range: the range is read in that order already.
    return part.with_hint(incidents, f"INDEXED BY {ARRAYS_INDEX}", "sqlite")


#: NaT as an integer: a time that is unknown (NULL) comes out of the query as this.
_NAT = int(np.iinfo(np.int64).min)


def _epoch_us(column: Any, pg: bool) -> ColumnElement[int]:
    """Return SQL for a stored UTC time as integer microseconds since the epoch (NaT: NULL).

    SQLite stores ``YYYY-MM-DD HH:MM:SS.ffffff`` (:class:`crossbeat.store.schema.UTCDateTime`):
    whole seconds by ``unixepoch``, the fraction as an integer; PostgreSQL's ``EXTRACT``
    gives an exact numeric.
    """
    us: ColumnElement[Any]
    if pg:
        us = cast(extract("epoch", column) * 1_000_000, BigInteger)
    else:
        whole = func.unixepoch(func.substr(column, 1, 19)) * 1_000_000
        fraction = func.substr(column.op("||")(literal("000000", String)), 21, 6)
        us = whole + cast(fraction, BigInteger)
    return func.coalesce(us, literal(_NAT, BigInteger))


#: The kinds of the columns the query selects, in its order (``sort_key`` is not kept);
#: the last, ``cell``, is read as text and kept as H3 integers (0: none).
_KINDS: tuple[Any, ...] = (
    object, np.int64, np.float64, np.float64, np.int64, np.int64, object, object, object,
    np.uint64,
)  # fmt: skip
#: The stored cell column the arrays read, and its resolution (migration 0025a).
STORED_CELL = ("h3_9", 9)


def _stored_cell(rule: Rule) -> bool:
    """Whether the rule's points are anchored in the stored cell's resolution."""
    p = rule.precision
    return p.name != "exact" and p.has_point and p.resolution == STORED_CELL[1]


def _read(conn: Connection, p: ReadPlan, rules: list[Rule]) -> list[np.ndarray]:
    """Return the columns of the arrays' query, read as Arrow where possible.

    From a SQLite file, the rows come as Arrow columns from ADBC in a worker process
    (:func:`crossbeat.store.arrow.read_arrow`), times as the stored text converted by
    Arrow; otherwise (PostgreSQL, or a transaction that wrote first) from the DB-API
    cursor in batches, times as integers computed in SQL.
    """
    if not IN_PARTS and arrow_applies(conn):
        table = read_arrow(conn, _query(conn, p, rules, text_times=True))
        if table is not None:
            return _from_arrow(table)
    parts: list[list[np.ndarray]] = []
    result = conn.execute(_query(conn, p, rules))
    try:
        # The DB-API cursor itself: no row objects, no result processors (every
        # selected column is already what the arrays hold).
        cursor = result.cursor
        while part := cursor.fetchmany(CHUNK):
            cols = list(zip(*part, strict=True))
            parts.append([np.array(cols[k], dtype=kind) for k, kind in enumerate(_KINDS[:-1])])
            parts[-1].append(h3_cell_ints_from_text(np.array(cols[len(_KINDS) - 1], dtype=object)))
    finally:
        result.close()
    if not parts:
        return _empty()
    return [np.concatenate([part[k] for part in parts]) for k in range(len(_KINDS))]


def _read_parts(
    conn: Connection, p: ReadPlan, rules: list[Rule], anchors: AnchorIndex | None
) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """Return the arrays read as Arrow in parts, or None where the worker cannot read.

    The worker reads the parts (:func:`_parts`) on two connections side by side, on one
    snapshot (:func:`crossbeat.store.arrow.read_arrow_parts`), and sends each as soon as
    it is read: this process generalises one part (:func:`_columns`: anchors, coarsened
    times, hidden fields) while the worker reads the next, then interleaves the parts in
    public-id order (:func:`_merge`).
    """
    if not (IN_PARTS and arrow_applies(conn)):
        return None
    parts = _parts(conn, p, rules)
    tables = read_arrow_parts(conn, [part.query for part in parts])
    if tables is None:
        return None
    done = []
    with closing(tables):
        for k, table in tables:
            if table.num_rows:
                table = parts[k].complete(table)
                arrays, rule_of = _columns(p.rules, _from_arrow(table), anchors)
                done.append((parts[k].range, table.column(parts[k].key), arrays, rule_of))
    if not done:
        return _columns(p.rules, _empty(), anchors)
    return _merge(done)


def _merge(
    done: list[tuple[int, pa.ChunkedArray, dict[str, np.ndarray], np.ndarray]],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Interleave parts, each in public-id order, into one public-id order.

    ``done`` holds per part its range of public ids (ranges ordered, disjoint), its
    public ids, its arrays and rule indexes. Within a range, a row's position is its
    position in its part plus, for every other part, how many of that part's public ids
    are smaller (public ids are unique).
    """
    done = sorted(done, key=lambda d: d[0])
    total = sum(d[3].shape[0] for d in done)
    positions: list[np.ndarray] = []
    offset = 0
    for r in sorted({d[0] for d in done}):
        group = [d for d in done if d[0] == r]
        keys = _sort_keys([d[1] for d in group]) if len(group) > 1 else []
        for i, d in enumerate(group):
            pos = np.arange(offset, offset + d[3].shape[0], dtype=np.int64)
            for j, other in enumerate(keys):
                if j != i:
                    pos += _count_below(other, keys[i])
            positions.append(pos)
        offset += sum(d[3].shape[0] for d in group)
    first = done[0][2]
    out = {name: np.empty(total, dtype=col.dtype) for name, col in first.items()}
    rule_of = np.empty(total, dtype=done[0][3].dtype)
    for pos, (_r, _key, arrays, rules_of) in zip(positions, done, strict=True):
        for name, col in arrays.items():
            out[name][pos] = col
        rule_of[pos] = rules_of
    return out, rule_of


#: Sort keys: the first eight bytes as a big-endian integer (exact where they differ),
#: and the whole text, compared where two prefixes are equal.
SortKey = tuple[np.ndarray, np.ndarray]


def _sort_keys(columns: list[pa.ChunkedArray]) -> list[SortKey]:
    """Return text columns as keys that compare as SQLite's ``BINARY`` collation (bytes).

    Public ids (UUIDs) all have one length: their bytes are viewed in place as
    fixed-width ``S`` strings, and their first eight bytes read as a big-endian integer,
    which orders them as their bytes do, except where two are equal (then the whole
    texts are compared, :func:`_count_below`). Other texts: Python strings (compared by
    code point, UTF-8's byte order too).
    """
    arrays = [c.combine_chunks() for c in columns]
    fixed: list[SortKey] = []
    for a in arrays:
        large = pa.types.is_large_string(a.type)
        if not (large or pa.types.is_string(a.type)) or a.null_count:
            break
        kind = np.int64 if large else np.int32
        offsets = np.frombuffer(a.buffers()[1], dtype=kind)[a.offset : a.offset + len(a) + 1]
        widths = np.diff(offsets)
        if not widths.size or widths[0] < 8 or (widths != widths[0]).any():
            break
        width = int(widths[0])
        data = np.frombuffer(a.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
        # Each text's first eight bytes, read in place as big-endian integers.
        prefix = np.ndarray((len(a),), dtype=">u8", buffer=data, strides=(width,))
        fixed.append((prefix.astype(np.uint64), data.view(f"S{width}")))
    if len(fixed) == len(arrays) and len({f[1].dtype for f in fixed}) == 1:
        return fixed
    texts = [a.to_numpy(zero_copy_only=False).astype(object) for a in arrays]
    return [(t, t) for t in texts]


def _count_below(other: SortKey, mine: SortKey) -> np.ndarray:
    """Return, for each of ``mine``'s keys, how many of ``other``'s are smaller (both sorted)."""
    below = np.searchsorted(other[0], mine[0], side="left")
    if other[0] is other[1] or not other[0].size:  # whole texts already, or nothing
        return below
    tied = np.flatnonzero(other[0][np.minimum(below, other[0].size - 1)] == mine[0])
    for k in tied.tolist():  # equal prefixes: those keys of ``other`` by their whole texts
        lo = int(below[k])
        hi = int(np.searchsorted(other[0], mine[0][k], side="right"))
        below[k] = lo + int(np.searchsorted(other[1][lo:hi], mine[1][k]))
    return below


def _from_arrow(table: pa.Table) -> list[np.ndarray]:
    """Return an Arrow table of the query as the arrays' columns (NULL points: NaN)."""
    if not table.num_rows:
        return _empty()
    out = []
    for k, kind in enumerate(_KINDS):
        col = table.column(k)
        if kind is np.uint64:
            out.append(h3_cell_ints_from_text(col))
        elif kind is object and k > 0:  # a few distinct texts: each made once, then shared
            codes = col.dictionary_encode().combine_chunks()
            names = codes.dictionary.to_numpy(zero_copy_only=False)
            out.append(names[codes.indices.to_numpy(zero_copy_only=False)])
        elif kind is object:
            out.append(col.to_numpy(zero_copy_only=False).astype(object, copy=False))
        elif kind is np.int64 and k in (4, 5):  # times: stored text or microseconds
            out.append(_times_us(col))
        else:
            arrow_kind = pa.float64() if kind is np.float64 else pa.int64()
            values = col.cast(arrow_kind).to_numpy(zero_copy_only=False)
            out.append(np.require(values, dtype=kind, requirements="W"))
    return out


def _times_us(col: pa.ChunkedArray) -> np.ndarray:
    """Return stored times (SQLite's text, or microseconds) as integers, NaT's where NULL."""
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        col = pc.cast(col, pa.timestamp("us"))
    col = pc.fill_null(col.cast(pa.int64()), _NAT)
    return np.require(col.to_numpy(), dtype=np.int64, requirements="W")


def _empty() -> list[np.ndarray]:
    return [np.empty(0, dtype=kind) for kind in _KINDS]


def _needs_anchors(rules: tuple[Rule, ...]) -> bool:
    return any(r.precision.name != "exact" and r.precision.resolution is not None for r in rules)


def _columns(
    rules: tuple[Rule, ...], cols: list[np.ndarray], anchors: AnchorIndex | None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Return the arrays of the rows read, generalised per rule, and each row's rule."""
    ids, rule_of, lon, lat, t_from, t_to, code, cat, premise, cells = cols
    n = ids.shape[0]
    out_from = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    out_to = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    out_end = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    owner_names = np.array([r.owner for r in rules], dtype=object)
    for i, rule in enumerate(rules):
        mine = np.flatnonzero(rule_of == i)
        if not mine.size:
            continue
        shown = rule.shown_fields(None)
        p = rule.precision
        if not ({"lat", "lon"} <= shown and p.has_point):
            lon[mine] = lat[mine] = np.nan
        elif p.name != "exact" and p.resolution is not None and anchors is not None:
            known = cells[mine] if _stored_cell(rule) else None
            lat[mine], lon[mine] = anchors.anchor_many(lat[mine], lon[mine], p.resolution, known)
        if "occurred_from" in shown:
            out_from[mine] = coarsen_us(t_from[mine], rule)
        if "occurred_to" in shown:
            out_to[mine] = coarsen_us(t_to[mine], rule)
        if rule.time_resolution is not TimeResolution.EXACT:
            last = np.where(np.isnat(out_to[mine]), out_from[mine], out_to[mine])
            out_end[mine] = period_after(last, rule)
        if "nibrs_code" not in shown:
            code[mine] = ""
        if "crime_against" not in shown:
            cat[mine] = ""
        if "location_type" not in shown:
            premise[mine] = ""
    if (rule_of < 0).any():  # never: every row the query returns is shown by a rule
        raise AssertionError("a row shown by no rule")
    arrays = {
        "id": ids,
        "owner": owner_names[rule_of],
        "lon": lon,
        "lat": lat,
        "occurred_from": out_from,
        "occurred_to": out_to,
        "nibrs_code": code,
        "crime_against": cat,
        "location_type": premise,
        "period_end": out_end,
    }
    return arrays, rule_of


#: How far past a period's start the next period's start lies, at most (plus a margin for
#: a change of UTC offset): coarsening that instant gives the next period's start.
_NEXT = {
    TimeResolution.DAY: np.timedelta64(36, "h"),
    TimeResolution.MONTH: np.timedelta64(32 * 24, "h"),
}


def period_after(starts: np.ndarray, rule: Rule) -> np.ndarray:
    """Return the start of the period after each coarsened time (NaT stays NaT).

    ``starts`` are times as ``rule`` publishes them (:func:`coarsen_us`): period starts
    in the rule's time zone. An hour ends an hour later; a day or a month ends where the
    next one starts, found by coarsening a time inside it (local midnights and month
    starts, whatever the changes of UTC offset).

    Examples
    --------
    >>> from crossbeat.sharing.scope import parse_precision
    >>> rule = Rule("a", "agency", "x", None, frozenset(), frozenset(), frozenset(),
    ...             parse_precision("exact"), TimeResolution.DAY, timedelta(0), False,
    ...             "America/Toronto")
    >>> period_after(np.array(["2024-03-09T05:00"], dtype="datetime64[us]"), rule)
    array(['2024-03-10T05:00:00.000000'], dtype='datetime64[us]')
    """
    starts = starts.astype("datetime64[us]")
    res = rule.time_resolution
    if res is TimeResolution.EXACT:
        return np.full(starts.shape, np.datetime64("NaT"), dtype="datetime64[us]")
    if res is TimeResolution.HOUR:
        return starts + np.timedelta64(1, "h")
    return coarsen_us((starts + _NEXT[res]).view(np.int64), rule)


def coarsen_us(values: np.ndarray, rule: Rule) -> np.ndarray:
    """Return stored times (integer microseconds, NaT's integer where unknown) as published.

    The same values as :func:`crossbeat.sharing.rules.coarsen` time by time. Days and
    months: ``coarsen`` depends on a time's local date (or month) only, so each time's
    local date is computed from the zone's UTC offset at that instant (the offsets'
    segments listed once per zone and year) and ``coarsen`` is called once per distinct
    date (:func:`_by_local_period`). Hours (where ``coarsen`` also keeps the fold of a
    repeated hour): each time is placed among the boundaries of the rule's hours, the
    coarsened time is the last boundary at or before it, and the times near a change of
    UTC offset are coarsened by ``coarsen`` itself.

    Examples
    --------
    >>> from crossbeat.sharing.scope import parse_precision
    >>> rule = Rule("a", "agency", "x", None, frozenset(), frozenset(), frozenset(),
    ...             parse_precision("exact"), TimeResolution.DAY, timedelta(0), False,
    ...             "America/Toronto")
    >>> t = np.array(["2024-03-10T03:30"], dtype="datetime64[us]").view(np.int64)
    >>> coarsen_us(t, rule)
    array(['2024-03-09T05:00:00.000000'], dtype='datetime64[us]')
    """
    out = values.astype(np.int64, copy=True)
    res = rule.time_resolution
    known = out != _NAT
    if res is TimeResolution.EXACT or not known.any():
        return out.view("datetime64[us]")
    seen = out[known]
    first = datetime(1970, 1, 1) + timedelta(microseconds=int(seen.min()))
    last = datetime(1970, 1, 1) + timedelta(microseconds=int(seen.max()))
    if res is not TimeResolution.HOUR:
        out[known] = _by_local_period(seen, rule, first.year, last.year)
        return out.view("datetime64[us]")
    bounds = np.concatenate(
        [_year_bounds(rule.timezone, res, y) for y in range(first.year, last.year + 1)]
    )
    bounds = np.unique(bounds)
    shown = bounds[np.searchsorted(bounds, seen, side="right") - 1]
    # Near a change of UTC offset the local clock can go back, and ``coarsen`` with it
    # (a fall-back around midnight, or by a part of an hour): there the times are
    # coarsened one by one by ``coarsen`` itself.
    years = range(first.year - 1, last.year + 2)
    changes = np.unique(np.concatenate([_year_changes(rule.timezone, y) for y in years]))
    if changes.size:
        pad = _PAD[res] // timedelta(microseconds=1)
        at = np.searchsorted(changes, seen)
        after = changes[np.minimum(at, changes.size - 1)]
        before = changes[np.maximum(at - 1, 0)]
        near = (np.abs(after - seen) <= pad) | (np.abs(seen - before) <= pad)
        memo: dict[int, int] = {}
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        for j in np.flatnonzero(near).tolist():
            t = int(seen[j])
            found = memo.get(t)
            if found is None:
                c = coarsen(epoch + timedelta(microseconds=t), res, rule.timezone)
                assert c is not None
                found = memo[t] = (c - epoch) // timedelta(microseconds=1)
            shown[j] = found
    out[known] = shown
    return out.view("datetime64[us]")


#: Microseconds in a day.
_DAY_US = 86_400_000_000


def _by_local_period(seen: np.ndarray, rule: Rule, first: int, last: int) -> np.ndarray:
    """Return known times (UTC microseconds) coarsened to their local day or month.

    ``coarsen`` floors a time's local date (or month) and converts that local midnight
    back to UTC, so its value depends on the local date alone: it is called once per
    distinct local date (or month) of the times, on one time of that date, and the
    result shared by every time of it. The local date is the UTC time plus the zone's
    offset at that instant (:func:`_year_offsets`, years ``first`` to ``last``).
    """
    parts = [_year_offsets(rule.timezone, y) for y in range(first, last + 1)]
    starts = np.concatenate([p[0] for p in parts])
    offsets = np.concatenate([p[1] for p in parts])
    local = seen + offsets[np.searchsorted(starts, seen, side="right") - 1]
    key = local // _DAY_US  # the local date, in days since the epoch
    if rule.time_resolution is TimeResolution.MONTH:
        key = key.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    low = int(key.min())
    slot = key - low
    one = np.full(int(slot.max()) + 1, -1, dtype=np.int64)
    one[slot] = np.arange(seen.shape[0])  # one time of each local date (any)
    table = np.zeros(one.shape[0], dtype=np.int64)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for k in np.flatnonzero(one >= 0).tolist():
        c = coarsen(epoch + timedelta(microseconds=int(seen[one[k]])), rule.time_resolution,
                    rule.timezone)  # fmt: skip
        assert c is not None
        table[k] = (c - epoch) // timedelta(microseconds=1)
    return table[slot]


@lru_cache(maxsize=512)
def _year_offsets(timezone: str, year: int) -> tuple[np.ndarray, np.ndarray]:
    """Return a zone's UTC offsets in a year: segment starts and offsets (UTC microseconds).

    The first segment starts on 1 January (UTC) with the offset then in force, the
    others at the year's changes of offset (:func:`crossbeat.sharing.compiled.offset_segments`).
    """
    lo = datetime(year, 1, 1, tzinfo=UTC)
    hi = datetime(year + 1, 1, 1, tzinfo=UTC)
    segments = offset_segments(timezone, lo, hi)
    at_lo = [off for start, off in segments if start <= lo][-1]
    inside = [(start, off) for start, off in segments if lo < start < hi]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    us = timedelta(microseconds=1)
    starts = [(lo - epoch) // us] + [(start - epoch) // us for start, _off in inside]
    offsets = [at_lo * 1_000_000] + [off * 1_000_000 for _start, off in inside]
    return np.array(starts, dtype=np.int64), np.array(offsets, dtype=np.int64)


#: How far from a change of UTC offset a time is coarsened by ``coarsen`` itself.
_PAD = {
    TimeResolution.HOUR: timedelta(hours=3),
    TimeResolution.DAY: timedelta(hours=27),
    TimeResolution.MONTH: timedelta(days=33),
}


@lru_cache(maxsize=512)
def _year_changes(timezone: str, year: int) -> np.ndarray:
    """Return the instants (UTC microseconds) a zone changes its UTC offset in a year."""
    lo = datetime(year, 1, 1, tzinfo=UTC)
    segments = offset_segments(timezone, lo, datetime(year + 1, 1, 1, tzinfo=UTC))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return np.array(
        [(start - epoch) // timedelta(microseconds=1) for start, _off in segments[1:]],
        dtype=np.int64,
    )


#: Longer than any period of each resolution, shorter than two.
_STEP = {
    TimeResolution.HOUR: timedelta(minutes=61),
    TimeResolution.DAY: timedelta(hours=26),
    TimeResolution.MONTH: timedelta(days=32),
}


@lru_cache(maxsize=512)
def _year_bounds(timezone: str, res: TimeResolution, year: int) -> np.ndarray:
    """Return the period boundaries (UTC microseconds) of a zone from before to after a year."""
    lo = datetime(year, 1, 1, tzinfo=UTC) - timedelta(days=35)
    hi = datetime(year + 1, 1, 1, tzinfo=UTC) + timedelta(days=2)
    b = coarsen(lo, res, timezone)
    out: list[int] = []
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    while b is not None and b <= hi:
        out.append((b - epoch) // timedelta(microseconds=1))
        step = _STEP[res]
        nxt = coarsen(b + step, res, timezone)
        while nxt is not None and nxt <= b:  # a period longer than the step (never seen)
            step *= 2
            nxt = coarsen(b + step, res, timezone)
        b = nxt
    return np.array(out, dtype=np.int64)


def _in_bbox(arrays: dict[str, np.ndarray], bbox: tuple[float, ...] | None) -> np.ndarray:
    n = arrays["id"].shape[0]
    if bbox is None:
        return np.ones(n, dtype=bool)
    min_lon, min_lat, max_lon, max_lat = bbox
    lon, lat = arrays["lon"], arrays["lat"]
    with np.errstate(invalid="ignore"):
        return (lon >= min_lon) & (lon <= max_lon) & (lat >= min_lat) & (lat <= max_lat)


def stored_ids(conn: Any, shown: list[str]) -> dict[str, tuple[str, str]]:
    """Map ids as a viewer was shown them (own ids or public ids) to ``(id, public_id)``.

    For records that refer to incidents the viewer saw in :func:`analysis_arrays`, such
    as cross-agency duplicate links (:mod:`crossbeat.analytics.links`): the link stores
    both ids, the viewer keeps seeing only the one it was shown. Reads no incident data.
    """
    c = incidents.c
    out: dict[str, tuple[str, str]] = {}
    for k in range(0, len(shown), 500):
        part = shown[k : k + 500]
        q = select(c.id, c.public_id).where(or_(c.id.in_(part), c.public_id.in_(part)))
        for iid, pub in conn.execute(q):
            out[iid] = out[pub] = (iid, pub)
    return out
