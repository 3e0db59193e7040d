"""Analysis arrays: the viewer's visible incidents as numpy columns, in one query (issue #8).

For the analytics and forecasting code, which wants columns, not records.
:func:`analysis_arrays` plans the read like every other read, compiles the plan to one
SQL query (:class:`crossbeat.sharing.compiled.RuleConditions`: which rule shows each
record is a ``CASE`` in the SELECT list, the request's filters are in the WHERE clause),
streams the rows into numpy arrays, applies each rule's generalisation to its rows, and
writes one audit event per owner with the count of that owner's records (never one row
per incident).

Generalisation: ``exact`` points are the stored ones; anchored points (``block``,
``h3:N``) come from :class:`crossbeat.sharing.public.AnchorIndex`, computed once per
distinct cell and jurisdiction set (anchors are not yet stored: issue #8); a rule
without a point, or without ``lat``/``lon`` in its fields, gives NaN. Times are
coarsened per rule in the owner's time zone, once per distinct stored value; a rule
without ``occurred_from`` gives NaT. Offence columns are empty strings where the rule
does not show them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from sqlalchemy import ColumnElement, case, literal, or_, select

from crossbeat.audit import Action
from crossbeat.clock import Clock
from crossbeat.sharing.compiled import RuleConditions, reachable
from crossbeat.sharing.policy import Decision, ReadRequest, Viewer
from crossbeat.sharing.reads import _audit, anchor_index, prepare
from crossbeat.sharing.request import RequestError
from crossbeat.sharing.rls import restricted
from crossbeat.sharing.rules import Rule, coarsen
from crossbeat.store import Store
from crossbeat.store.schema import incidents

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

    def __len__(self) -> int:
        return int(self.id.shape[0])

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
    unsupported = [n for n in ("jurisdictions", "statuses", "codes") if getattr(request, n)]
    if unsupported:
        raise RequestError([f"{n}: not a filter of analyses (yet)" for n in unsupported])
    now = (clock or store.clock).now()
    c = incidents.c
    with store.begin() as conn:
        p = prepare(conn, viewer, request, now)
        ids: list[str] = []
        owners: list[str] = []
        rule_of: list[int] = []
        names = ("lon", "lat", "from", "to", "code", "cat", "premise")
        raw: dict[str, list[Any]] = {k: [] for k in names}
        with restricted(conn, p.owners):
            rules = reachable(p.rules, p)
            if rules:
                exact = RuleConditions(conn, p, rules)
                which = case(
                    *((exact.covers(r), literal(p.rules.index(r))) for r in rules),
                    else_=literal(-1),
                )
                where = or_(*(exact.shown_by(r, bbox=False) for r in rules))
                # The id each rule shows: the owner's own readers see the id, everyone
                # else the random public id; rows come in public-id order (issue #7).
                own = sorted({r.owner for r in rules if r.via == "own"})
                shown_id: ColumnElement[Any] = c.public_id
                if own:
                    shown_id = case((c.agency_id.in_(own), c.id), else_=c.public_id)
                columns = [shown_id, c.agency_id, which, c.lon, c.lat, c.occurred_from]
                columns += [c.occurred_to, c.nibrs_code, c.crime_against, c.location_type]
                q = select(*columns).where(where).order_by(c.public_id)
                result = conn.execute(q.execution_options(stream_results=True, yield_per=CHUNK))
                for part in result.partitions(CHUNK):
                    cols = list(zip(*part, strict=True))
                    ids.extend(cols[0])
                    owners.extend(cols[1])
                    rule_of.extend(cols[2])
                    for name, col in zip(raw, cols[3:], strict=True):
                        raw[name].extend(col)
            anchors = anchor_index(conn, store.url) if _needs_anchors(p.rules) else None
        arrays = _columns(p.rules, ids, owners, np.asarray(rule_of, dtype=np.int64), raw, anchors)
        keep = _in_bbox(arrays, request.bbox)
        if request.polygon is not None:
            with np.errstate(invalid="ignore"):
                keep &= shapely.intersects_xy(request.polygon, arrays["lon"], arrays["lat"])
        arrays = {k: v[keep] for k, v in arrays.items()}
        counts = Counter(str(o) for o in arrays["owner"])
        _audit(
            store, conn, p, Action.READ, "incident_arrays", owner_counts=counts,
            extra={"columns": sorted(arrays)},
        )  # fmt: skip
    return AnalysisArrays(decisions=p.decisions, **arrays)


def _needs_anchors(rules: tuple[Rule, ...]) -> bool:
    return any(r.precision.name != "exact" and r.precision.resolution is not None for r in rules)


def _columns(
    rules: tuple[Rule, ...],
    ids: list[str],
    owners: list[str],
    rule_of: np.ndarray,
    raw: dict[str, list[Any]],
    anchors: Any,
) -> dict[str, np.ndarray]:
    n = len(ids)
    lon = np.array(raw["lon"], dtype=np.float64) if n else np.empty(0)
    lat = np.array(raw["lat"], dtype=np.float64) if n else np.empty(0)
    out_from = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    out_to = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    code = np.array([v or "" for v in raw["code"]], dtype=object)
    cat = np.array([v or "" for v in raw["cat"]], dtype=object)
    premise = np.array([v or "" for v in raw["premise"]], dtype=object)
    for i, rule in enumerate(rules):
        mine = np.flatnonzero(rule_of == i)
        if not mine.size:
            continue
        shown = rule.shown_fields(None)
        p = rule.precision
        if not ({"lat", "lon"} <= shown and p.has_point):
            lon[mine] = lat[mine] = np.nan
        elif p.name != "exact":
            cache: dict[tuple[float, float], tuple[float, float]] = {}
            for j in mine:
                if np.isnan(lat[j]) or np.isnan(lon[j]):
                    continue
                key = (float(lat[j]), float(lon[j]))
                found = cache.get(key)
                if found is None:
                    found = anchors.anchor(key[0], key[1], p.resolution)
                    cache[key] = found
                lat[j], lon[j] = found
        for name, src, dst in (
            ("occurred_from", raw["from"], out_from),
            ("occurred_to", raw["to"], out_to),
        ):
            if name not in shown:
                continue
            dst[mine] = _times([src[j] for j in mine], rule)
        if "nibrs_code" not in shown:
            code[mine] = ""
        if "crime_against" not in shown:
            cat[mine] = ""
        if "location_type" not in shown:
            premise[mine] = ""
    return {
        "id": np.array(ids, dtype=object),
        "owner": np.array(owners, dtype=object),
        "lon": lon,
        "lat": lat,
        "occurred_from": out_from,
        "occurred_to": out_to,
        "nibrs_code": code,
        "crime_against": cat,
        "location_type": premise,
    }


def _times(values: list[datetime | None], rule: Rule) -> np.ndarray:
    """Return the coarsened times as ``datetime64[us]`` (each distinct value once)."""
    memo: dict[datetime | None, np.datetime64] = {}
    out = np.empty(len(values), dtype="datetime64[us]")
    nat = np.datetime64("NaT")
    for k, t in enumerate(values):
        found = memo.get(t)
        if found is None:
            shown = coarsen(t, rule.time_resolution, rule.timezone)
            found = nat if shown is None else np.datetime64(shown.replace(tzinfo=None), "us")
            memo[t] = found
        out[k] = found
    return out


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
