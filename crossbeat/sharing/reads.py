"""THE read entry points: every route, export, analysis and stream reads incidents here.

Each call plans the read with :func:`crossbeat.sharing.policy.plan` from the agreements
stored *now* (so a revocation applies to the very next call, live streams included),
runs the plan's filter inside one transaction under PostgreSQL row-level security,
passes every fetched record through the plan again (most specific rule, sensitivity
re-check, generalisation, request filters on the published values), and appends its
audit event in the same transaction.

Public API: :func:`read_incidents`, :func:`aggregate`, :func:`count_incidents`,
:func:`read_detail`; live streams are :class:`crossbeat.sharing.streams.LiveStream`
and previews :func:`crossbeat.sharing.preview.preview`, both built on these.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from shapely.geometry import shape
from sqlalchemy import Connection, select

from crossbeat.audit import Action, AuditEvent, Outcome, append_many, public_reads
from crossbeat.clock import Clock
from crossbeat.model import PersonalData
from crossbeat.sharing.compiled import RuleCounts, count_by_rule, spatial_filter
from crossbeat.sharing.flags import SensitivityRules, current_rules, flags_of, refresh
from crossbeat.sharing.model import Agreement
from crossbeat.sharing.noise import noisy_part, period_of, spend
from crossbeat.sharing.pages import area_tags, compilable, page_planner, page_records
from crossbeat.sharing.plan_inputs import plan_inputs
from crossbeat.sharing.policy import (
    Decision,
    PolicyContext,
    ReadPlan,
    ReadRequest,
    Viewer,
    ViewerKind,
    plan,
)
from crossbeat.sharing.public import AnchorIndex, Row
from crossbeat.sharing.release import BASE, NOISE, Part, base_key, combine, part_mode
from crossbeat.sharing.request import CallsFilter, area_dim_layer
from crossbeat.sharing.rls import restricted
from crossbeat.sharing.rules import Rule
from crossbeat.sharing.scope import DEFAULT_PURPOSE, Purpose, layer_key
from crossbeat.sharing.stamp import ReadStamp, jurisdictions_key, read_stamp
from crossbeat.store import Store
from crossbeat.store.schema import (
    incident_jurisdictions,
    incident_offences,
    incident_personal,
    incidents,
    jurisdictions,
)

BATCH = 1000
#: Most rows a page reads in one query (a page of ``limit`` rows reads ``limit + 1``).
MAX_BATCH = 10_000
#: Record ids per audit event (longer reads are logged as several events).
AUDIT_IDS_PER_EVENT = 2000


@dataclass(frozen=True)
class ReadResult:
    """Records as the viewer may see them, and the decision for every owner considered."""

    records: list[dict[str, Any]]
    decisions: tuple[Decision, ...]
    next_after: str | None = None
    rules: tuple[Rule, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data (times as ISO strings)."""
        return {
            "records": [_jsonable(r) for r in self.records],
            "decisions": [d.to_dict() for d in self.decisions],
            "next_after": self.next_after,
        }


@dataclass(frozen=True)
class AggregateResult:
    """Counts by one or two dimensions; ``None`` marks a suppressed (hidden) value.

    ``rows``, ``columns`` and ``total`` are sums of the published cells of their line,
    so they never contain a hidden count.
    """

    by: tuple[str, ...]
    cells: dict[tuple[str, ...], int | None]
    rows: dict[str, int | None]
    columns: dict[str, int | None]
    total: int | None
    threshold: int | None
    suppressed: int
    decisions: tuple[Decision, ...]
    #: False when a count was hidden, a small base cell dropped or noise added: then
    #: the total and margins are sums of the published cells, not of every incident.
    complete: bool = True
    #: Owners whose counts were released with differential-privacy noise.
    noisy: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data; cells as ``{"key": [...], "count": n|null}``."""
        return {
            "complete": self.complete,
            "noisy": list(self.noisy),
            "by": list(self.by),
            "cells": [{"key": list(k), "count": v} for k, v in sorted(self.cells.items())],
            "rows": self.rows,
            "columns": self.columns,
            "total": self.total,
            "threshold": self.threshold,
            "suppressed": self.suppressed,
            "decisions": [d.to_dict() for d in self.decisions],
        }


@dataclass(frozen=True)
class DetailResult:
    """One record (None when not visible to the viewer) and its personal data if allowed."""

    record: dict[str, Any] | None
    personal: PersonalData | None
    decisions: tuple[Decision, ...] = field(default_factory=tuple)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# -- planning and running --------------------------------------------------------------------
def prepare(
    conn: Connection,
    viewer: Viewer,
    request: ReadRequest,
    now: datetime,
    *,
    groups: frozenset[str] | None = None,
    agreements: Sequence[Agreement] | None = None,
    stamp: ReadStamp | None = None,
    sensitivity: SensitivityRules | None = None,
    refreshed: set[str] | None = None,
) -> ReadPlan:
    """Plan the read from the stored agreements, memberships, time zones and policies.

    The stored inputs are kept per data generation (:mod:`crossbeat.sharing.plan_inputs`:
    every change to them is audited and bumps it, so the first read after a change
    loads them again). The viewer's groups are replaced by the stored membership of its
    agency (or by ``groups``), and the stored agreements by ``agreements`` (a draft in
    place of an agreement): only :func:`crossbeat.sharing.preview.preview` passes them.
    ``stamp`` is the read's :func:`~crossbeat.sharing.stamp.read_stamp`, when the caller
    has read it in this transaction (default: read here): the generation and the
    crosswalk folders come from it, in one statement. ``sensitivity`` is the current
    sensitivity rules (:func:`~crossbeat.sharing.flags.current_rules`), when the caller
    needs them too (vector tiles put their key in the ETag): computed once per read.
    ``refreshed`` holds the owners whose flags this transaction has already brought up
    to date (a read that plans twice, as a hexagon tile does, probes them once); the
    owners refreshed here are added to it.
    """
    stamp = stamp or read_stamp(conn)
    stored = plan_inputs(conn, stamp)
    if groups is None:
        public = viewer.kind is ViewerKind.PUBLIC
        groups = None if public else stored.groups_of(viewer.agency_id)
    viewer = dataclasses.replace(viewer, groups=groups or frozenset())
    context = PolicyContext(stored.zones, stored.policies)
    found = stored.agreements if agreements is None else list(agreements)
    p = plan(viewer, request, found, now, context)
    # Before any incident is read: rows whose served flags were derived under other
    # rules (or not yet) are re-derived now, in this transaction (issue #8).
    owners = [o for o in p.owners if refreshed is None or o not in refreshed]
    if owners:
        refresh(conn, owners, sources=stamp.sources, rules=sensitivity)
    if refreshed is not None:
        refreshed.update(owners)
    return p


_ANCHORS: OrderedDict[tuple[Any, ...], AnchorIndex] = OrderedDict()


def anchor_index(conn: Connection, url: str, stamp: ReadStamp | None = None) -> AnchorIndex:
    """Return the anchor index over every jurisdiction polygon (cached per boundary set).

    The boundary set is known by the jurisdictions' count, newest id and newest time:
    from ``stamp`` (the read's :func:`~crossbeat.sharing.stamp.read_stamp`) or, read
    the same way, :func:`~crossbeat.sharing.stamp.jurisdictions_key`.
    """
    j = jurisdictions.c
    n, last, changed = stamp.jurisdictions if stamp is not None else jurisdictions_key(conn)
    key = (url, n, last, str(changed))
    found = _ANCHORS.get(key)
    if found is None:
        rows = conn.execute(select(j.geojson).order_by(j.id)).scalars()
        found = AnchorIndex([shape(json.loads(g)) for g in rows])
        _ANCHORS[key] = found
        while len(_ANCHORS) > 8:
            _ANCHORS.popitem(last=False)
    return found


def published(
    conn: Connection, p: ReadPlan, anchors: AnchorIndex, *, materialised: bool = False
) -> Iterator[tuple[Rule, dict[str, Any], Row]]:
    """Yield ``(rule, record, row)`` for every record the plan shows, in public-id order.

    Public-id order (random) rather than ``id`` order, so that neither the order of a
    page nor its cursor says anything about the owners' ids (issue #7). A page is read
    in one query (up to :data:`MAX_BATCH` rows), longer reads in batches.

    With ``materialised``, each record's flags are the ones stored under the current
    rules (:mod:`crossbeat.sharing.flags`; :func:`prepare` re-derived stale rows);
    without it (the reference path), they are derived again from the record.
    """
    after = p.request.after
    rules = current_rules(conn)
    limit = p.request.limit
    batch = min(limit + 1, MAX_BATCH) if limit is not None else BATCH
    near = spatial_filter(conn, p)
    while True:
        q = select(incidents).where(p.where(), *near)
        if after is not None:
            q = q.where(incidents.c.public_id > after)
        result = conn.execute(q.order_by(incidents.c.public_id).limit(batch))
        keys = list(result.keys())
        # Plain dicts: the per-record path reads each row's values many times, and a
        # dict lookup is several times cheaper than a ``RowMapping`` one.
        rows = [dict(zip(keys, r, strict=True)) for r in result]
        if not rows:
            return
        offences, places = _children(conn, [r["id"] for r in rows])
        tags = area_tags(conn, [r["id"] for r in rows])
        for row in rows:
            offs = offences.get(row["id"], [])
            if materialised and row["sens_rules"] == rules.key:
                flags = flags_of(row["sens_served"])
            else:
                flags = rules.flags(row, offs)
            here = places.get(row["id"], [])
            out = p.publish(row, offs, here, flags, anchors, areas=tags.get(row["id"]))
            if out is not None:
                yield out[0], out[1], row
        if len(rows) < batch:
            return
        after = rows[-1]["public_id"]


def _records(
    conn: Connection, p: ReadPlan, anchors: AnchorIndex, path: str, layers: bool | None = None
) -> Iterator[tuple[Rule, dict[str, Any], str, str]]:
    """Yield the plan's records: compiled to SQL (:mod:`crossbeat.sharing.pages`) or per record.

    ``path`` is ``"sql"`` (the compiled page wherever :func:`~crossbeat.sharing.pages.compilable`)
    or ``"reference"`` (:func:`published`, the per-record reference implementation).
    """
    if path not in ("sql", "reference"):
        raise ValueError(f"unknown read path {path!r} (sql or reference)")
    if path == "sql" and compilable(p):
        limit = p.request.limit
        batch = min(limit + 1, MAX_BATCH) if limit is not None else BATCH
        return page_records(conn, p, anchors, batch, layers=layers)
    return (
        (rule, record, row["id"], row["public_id"])
        for rule, record, row in published(conn, p, anchors, materialised=True)
    )


def _children(
    conn: Connection, ids: Sequence[str]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[str]]]:
    offences: dict[str, list[dict[str, Any]]] = {}
    q = (
        select(incident_offences)
        .where(incident_offences.c.incident_id.in_(ids))
        .order_by(incident_offences.c.incident_id, incident_offences.c.seq)
    )
    for o in conn.execute(q).mappings():
        offences.setdefault(o["incident_id"], []).append(dict(o))
    places: dict[str, list[str]] = {}
    q2 = select(incident_jurisdictions).where(incident_jurisdictions.c.incident_id.in_(ids))
    for j in conn.execute(q2).mappings():
        places.setdefault(j["incident_id"], []).append(j["agency_id"])
    return offences, places


def _personal_rows(conn: Connection, ids: Sequence[str]) -> list[Any]:
    if not ids:
        return []
    q = select(incident_personal).where(incident_personal.c.incident_id.in_(sorted(ids)))
    return list(conn.execute(q))


def _decode(store: Store, conn: Connection, rows: Sequence[Any]) -> dict[str, PersonalData]:
    from crossbeat.vault.cipher import PLAIN_CODEC
    from crossbeat.vault.keys import require_vault
    from crossbeat.vault.personal import decode_personal

    out: dict[str, PersonalData] = {}
    for row in rows:
        vault = getattr(store, "vault", None)
        if vault is None and row.codec != PLAIN_CODEC:
            vault = require_vault(store)  # raises, naming how to configure the key
        out[row.incident_id] = decode_personal(vault, conn, row)  # type: ignore[arg-type]
    return out


# -- audit ----------------------------------------------------------------------------------
def _audit(
    store: Store,
    conn: Connection,
    p: ReadPlan,
    action: Action,
    resource: str,
    records: Sequence[Mapping[str, Any]] = (),
    extra: Mapping[str, Any] | None = None,
    owner_counts: Mapping[str, int] | None = None,
) -> None:
    """Append the read's event(s) in the caller's transaction.

    One event per owner agency whose records were returned (``records``) or counted
    (``owner_counts``): each owner's auditors see only their own agency's record ids
    and decisions, with the reader's purpose or legal basis and address.
    """
    v, req = p.viewer, p.request
    if v.kind is ViewerKind.PUBLIC:
        stated = Purpose.PUBLIC_INFORMATION
    else:
        stated = req.purpose or v.purpose or DEFAULT_PURPOSE
    template = AuditEvent(
        action=action,
        actor=v.id,
        actor_agency=v.agency_id,
        source_ip=v.source_ip,
        purpose=req.legal_basis or stated.value,
        resource_type=resource,
    )
    summary = _request_summary(req)
    by_owner: dict[str, list[str]] = {}
    for r in records:
        by_owner.setdefault(r["agency_id"], []).append(r["id"])
    counts = dict(owner_counts or {})
    events = []
    for owner in sorted(set(by_owner) | set(counts)):
        details = {
            "request": summary,
            "decisions": [d.to_dict() for d in p.decisions if d.owner == owner],
            **(extra or {}),
        }
        base = dataclasses.replace(template, owner_agencies=(owner,), details=details)
        ids = by_owner.get(owner, [])
        if owner in counts or v.kind is ViewerKind.PUBLIC:
            events.append(dataclasses.replace(base, record_count=counts.get(owner, len(ids))))
            continue
        for k in range(0, len(ids), AUDIT_IDS_PER_EVENT):
            chunk = tuple(ids[k : k + AUDIT_IDS_PER_EVENT])
            events.append(dataclasses.replace(base, record_ids=chunk, record_count=len(chunk)))
    if not events:  # a read that returned nothing is still an access by this viewer
        events.append(
            dataclasses.replace(
                template, record_count=0, details={"request": summary, **(extra or {})}
            )
        )
    asked = set(req.agencies or ())
    for d in p.decisions:
        if not d.allow and d.owner in asked:
            events.append(
                dataclasses.replace(
                    template,
                    action=Action.DENIED,
                    outcome=Outcome.DENIED,
                    owner_agencies=(d.owner,),
                    record_count=0,
                    details={"denied": {d.owner: list(d.reasons)}},
                )
            )
    if v.kind is ViewerKind.PUBLIC:
        # Counted per window and address, written as one event when the window closes
        # (crossbeat.audit.public_reads; issue #7: the log grew with every request).
        public_reads.tally(store, conn, events, store.now())
        return
    append_many(store, events, conn=conn)


def _request_summary(req: ReadRequest) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(req):
        value = getattr(req, f.name)
        if value in (None, False, ()) or f.name == "legal_basis":
            continue
        if f.name == "calls" and value is CallsFilter.EXCLUDE:
            continue  # the default
        if f.name == "areas":
            value = sorted(f"{layer}:{name}" for layer, name in value)
        elif isinstance(value, frozenset | set | tuple):
            value = sorted(str(v) for v in value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        out[f.name] = value if isinstance(value, str | int | bool | list) else str(value)
    if req.bbox is not None:
        out["bbox"] = [repr(v) for v in req.bbox]
    return out


# -- entry points ------------------------------------------------------------------------------
def read_incidents(
    store: Store,
    viewer: Viewer,
    request: ReadRequest | None = None,
    *,
    clock: Clock | None = None,
    export: bool = False,
    path: str = "sql",
) -> ReadResult:
    """Return the incidents a viewer may see, as they may see them, and audit the read.

    Parameters
    ----------
    store
        The store.
    viewer
        Who reads (:class:`~crossbeat.sharing.policy.Viewer`).
    request
        Filters, fields, purpose, page (:class:`~crossbeat.sharing.policy.ReadRequest`).
    clock
        Clock for "now" (default: the store's clock).
    export
        Record the read as an export (bulk download) in the audit log.
    path
        ``"sql"`` (default): the page compiled to SQL (:mod:`crossbeat.sharing.pages`);
        ``"reference"``: the per-record path it is tested against.

    Returns
    -------
    ReadResult
        Records in public-id order (at most ``request.limit``; ``next_after`` is the
        cursor for the next page) and the decision, with reasons, for every owner
        considered. Records reached through an agreement or the public release carry
        their ``public_id`` as ``id``; only the owner's own readers see its ids.
    """
    request = request or ReadRequest()
    now = (clock or store.clock).now()
    with store.begin() as conn:
        records, p, next_after, personal = _read(store, conn, viewer, request, now, path)
        action = Action.EXPORT if export else Action.READ
        if personal:
            action = Action.PERSONAL_DATA_VIEW
        _audit(store, conn, p, action, "incident", records)
    return ReadResult(records, p.decisions, next_after, p.rules)


def _read(
    store: Store,
    conn: Connection,
    viewer: Viewer,
    request: ReadRequest,
    now: datetime,
    path: str = "sql",
) -> tuple[list[dict[str, Any]], ReadPlan, str | None, bool]:
    """Plan and run a read in ``conn``, without auditing it (the caller audits).

    Returns the records, the plan, the next page's cursor and whether personal data
    was returned. Only :func:`read_incidents` and the live stream's summarised audit
    (:mod:`crossbeat.sharing.live`) call it.
    """
    stamp = read_stamp(conn)
    p = prepare(conn, viewer, request, now, stamp=stamp)
    anchors = anchor_index(conn, store.url, stamp)
    records: list[dict[str, Any]] = []
    personal_ids: list[str] = []
    shown_as: dict[str, str] = {}  # stored id -> id as shown
    next_after = last = None
    personal = p.personal_owners if request.personal_data else ()
    planner = page_planner(conn, p) if path == "sql" else None
    with restricted(conn, p.owners, personal, planner=planner):
        page = _records(conn, p, anchors, path, stamp.layers)
        for rule, record, stored_id, public_id in page:
            if request.limit is not None and len(records) == request.limit:
                next_after = last
                break
            records.append(record)
            last = public_id
            if request.personal_data and rule.personal:
                personal_ids.append(stored_id)
                shown_as[stored_id] = record["id"]
        rows = _personal_rows(conn, personal_ids)
    if rows:
        wanted = request.fields
        found = {shown_as[k]: v for k, v in _decode(store, conn, rows).items()}
        for record in records:
            data = found.get(record["id"])
            if data is not None:
                for name, value in dataclasses.asdict(data).items():
                    if wanted is None or name in wanted:
                        record[name] = value
    return records, p, next_after, bool(rows)


def aggregate(
    store: Store,
    viewer: Viewer,
    request: ReadRequest | None = None,
    *,
    by: Sequence[str] = ("h3_9",),
    clock: Clock | None = None,
    path: str = "sql",
) -> AggregateResult:
    """Count the incidents a viewer may see by up to two dimensions, and audit the read.

    Counts are of exactly the records :func:`read_incidents` would show (same rules,
    same generalised values). Each owner's share is released on its own before the
    shares are combined (:mod:`crossbeat.sharing.release`): exact for the viewer's
    own agency and partners; for a public release that publishes records, counts below
    the owner's threshold hidden; for one that publishes counts only, computed from its
    base table with cells below the threshold dropped; for one that chose noise,
    released with differential privacy and paid from its monthly privacy budget
    (:mod:`crossbeat.sharing.noise`). Totals and margins are sums of the published
    cells.

    Parameters
    ----------
    by
        Dimensions from :data:`crossbeat.sharing.policy.GROUP_BY` (empty: a total only).
    path
        ``sql`` (default): counted by the database, one ``GROUP BY`` per rule
        (:mod:`crossbeat.sharing.compiled`); ``reference``: every record passed through
        the plan in Python (the reference implementation the tests compare against).

    Returns
    -------
    AggregateResult
        Cells, margins and total; ``None`` marks a suppressed value.
    """
    if path not in ("sql", "reference"):
        raise ValueError(f"unknown aggregate path {path!r} (use sql or reference)")
    request = dataclasses.replace(
        request or ReadRequest(), aggregate=True, group_by=tuple(by), limit=None, after=None
    )
    now = (clock or store.clock).now()
    parts: dict[tuple[str, str], Part] = {}
    rules_of: dict[tuple[str, str], Rule] = {}
    owners: Counter[str] = Counter()
    with store.begin() as conn:
        p = prepare(conn, viewer, request, now)

        def reference(conn: Connection, sub: ReadPlan) -> list[RuleCounts]:
            return reference_counts(conn, sub, anchor_index(conn, store.url))

        with restricted(conn, p.owners):
            if path == "sql":
                per_rule = count_by_rule(conn, p, reference)
            else:
                per_rule = reference(conn, p)
        for rc in per_rule:
            rule = rc.rule
            mode = part_mode(rule)
            slot = (rule.owner, mode)
            part = parts.get(slot)
            if part is None:
                part = parts[slot] = Part(rule.owner, mode, rule.threshold)
                rules_of[slot] = rule
            if mode == BASE:
                for (base, key), n in rc.base.items():
                    part.add(key, base, n)
            elif not part.counts:  # Part.add of every cell, without a call per cell
                part.counts = dict(rc.counts)
            else:
                into = part.counts
                for key, n in rc.counts.items():
                    into[key] = into.get(key, 0) + n
            owners[rule.owner] += rc.total
        decisions = list(p.decisions)
        noisy: dict[str, float] = {}
        for slot, part in sorted(parts.items()):
            if part.mode != NOISE:
                continue
            rule = rules_of[slot]
            eps, budget = rule.noise_epsilon or 0.0, rule.noise_budget or 0.0
            if spend(store, conn, part.owner, eps, budget, now):
                part.counts = {
                    k: n
                    for k, n in noisy_part(Counter(part.counts), eps).items()
                    if n >= (part.threshold or 1)
                }
                noisy[part.owner] = eps
                continue
            part.counts = {}
            why = (
                f"{part.owner}'s privacy budget for {period_of(now)} (ε {budget:g}) is spent: "
                "its noisy public counts resume next month"
            )
            decisions = [
                Decision(False, d.owner, d.agreement_id, (*d.reasons, why))
                if d.owner == part.owner
                else d
                for d in decisions
            ]
        table = combine(list(parts.values()), len(request.group_by))
        thresholds = {part.threshold for part in parts.values() if part.threshold is not None}
        k = max(thresholds) if thresholds else None
        extra = {"noise_epsilon": {o: f"{e:g}" for o, e in noisy.items()}} if noisy else None
        _audit(store, conn, p, Action.READ, "incident_aggregate", extra=extra, owner_counts=owners)
    return AggregateResult(
        tuple(request.group_by),
        table.cells,
        table.rows,
        table.columns,
        table.total,
        k,
        table.hidden,
        tuple(decisions),
        table.complete,
        tuple(sorted(noisy)),
    )


def reference_counts(conn: Connection, p: ReadPlan, anchors: AnchorIndex) -> list[RuleCounts]:
    """Count, per rule, the records the plan shows, each passed through it in Python.

    The reference implementation of :func:`crossbeat.sharing.compiled.count_by_rule`.
    """
    found: dict[int, RuleCounts] = {}
    for rule, record, _row in published(conn, p, anchors):
        rc = found.setdefault(id(rule), RuleCounts(rule, path="reference"))
        key = tuple(_key(d, record, rule) for d in p.request.group_by)
        rc.counts[key] += 1
        if part_mode(rule) == BASE:
            rc.base[(base_key(record, rule.timezone), key)] += 1
    return [found[id(r)] for r in p.rules if id(r) in found]


def count_incidents(
    store: Store, viewer: Viewer, request: ReadRequest | None = None, *, clock: Clock | None = None
) -> int | None:
    """Return how many incidents the viewer may see (None when the count is suppressed)."""
    return aggregate(store, viewer, request, by=(), clock=clock).total


def _key(dim: str, rec: Mapping[str, Any], rule: Rule) -> str:
    if dim == "agency":
        return str(rec["agency_id"])
    if dim == "jurisdiction":
        return "+".join(rec.get("jurisdictions") or []) or "none"
    layer = area_dim_layer(dim)
    if layer is not None:
        names = (rec.get("areas") or {}).get(layer_key(layer, rec["agency_id"]))
        return "+".join(sorted(names or [])) or "none"
    if dim == "nibrs" and rec.get("call_category"):
        return f"call:{rec['call_category']}"
    if dim == "call_category":
        return str(rec.get("call_category") or "none")
    if dim in ("nibrs", "crime_against"):
        value = rec.get("nibrs_code" if dim == "nibrs" else dim)
        return str(value) if value else "unmapped"
    if dim.startswith("h3_"):
        return str(rec.get(dim) or "none")
    when = rec.get("occurred_from")
    if when is None:
        return "unknown"
    local = when.astimezone(ZoneInfo(rule.timezone))
    return str(local.strftime({"month": "%Y-%m", "day": "%Y-%m-%d", "hour": "%Y-%m-%dT%H"}[dim]))


def _owner_of(conn: Connection, viewer: Viewer, incident_id: str) -> str | None:
    """Return the owner of an incident named by its public id, or by its id for the owner.

    Only an owner's own readers may name its incidents by their ids; for anyone else
    an id derived from a case number names nothing (issue #7).
    """
    i = incidents.c
    found = conn.execute(select(i.agency_id).where(i.public_id == incident_id)).scalar()
    if found is None and viewer.kind is not ViewerKind.PUBLIC and viewer.agency_id:
        found = conn.execute(
            select(i.agency_id).where((i.id == incident_id) & (i.agency_id == viewer.agency_id))
        ).scalar()
    return str(found) if found is not None else None


def read_detail(
    store: Store,
    viewer: Viewer,
    incident_id: str,
    *,
    purpose: str | None = None,
    clock: Clock | None = None,
) -> DetailResult:
    """Return one incident as the viewer may see it, with personal data if allowed.

    Personal data is returned only when ``purpose`` (the legal basis: case number,
    warrant...) is given and the viewer is an officer or supervisor of the owner, or of
    a grantee whose agreement includes personal fields for the investigation purpose.
    Every call is audited: a detail view, a personal-data view, or a denied attempt.

    Returns
    -------
    DetailResult
        ``record`` is None when the incident is unknown or not visible (the two are
        not told apart, so that existence does not leak).
    """
    wants = bool(purpose and purpose.strip())
    request = ReadRequest(
        ids=frozenset({incident_id}),
        personal_data=wants,
        legal_basis=purpose.strip() if wants and purpose else None,
        purpose=Purpose.INVESTIGATION if wants else None,
        # One incident asked for by id: a call for service is shown if visible.
        calls=CallsFilter.INCLUDE,
    )
    now = (clock or store.clock).now()
    with store.begin() as conn:
        p = prepare(conn, viewer, request, now)
        anchors = anchor_index(conn, store.url)
        record = rule = stored = None
        rows: list[Any] = []
        with restricted(conn, p.owners, p.personal_owners if wants else ()):
            first = next(published(conn, p, anchors), None)
            if first is not None:
                rule, record, stored = first
            if stored is not None and rule is not None and wants and rule.personal:
                rows = _personal_rows(conn, [stored["id"]])
        owner = _owner_of(conn, viewer, incident_id)
        personal = None
        if stored is not None and rule is not None and wants and rule.personal:
            personal = _decode(store, conn, rows).get(stored["id"], PersonalData())
        if record is None or (wants and personal is None):
            event = AuditEvent(
                action=Action.DENIED,
                outcome=Outcome.DENIED,
                actor=viewer.id,
                actor_agency=viewer.agency_id,
                purpose=request.legal_basis,
                resource_type="personal_data" if record is not None else "incident",
                owner_agencies=(owner,) if owner else (),
                record_ids=(incident_id,),
                details={"decisions": [d.to_dict() for d in p.decisions if d.owner == owner]},
            )
            append_many(store, [event], conn=conn)
        if record is not None:
            action = Action.PERSONAL_DATA_VIEW if personal is not None else Action.DETAIL_VIEW
            _audit(store, conn, p, action, "incident", [record])
    decisions = tuple(d for d in p.decisions if d.owner == owner)
    return DetailResult(record, personal, decisions)


def sharing_owners(store: Store, viewer: Viewer, *, clock: Clock | None = None) -> tuple[str, ...]:
    """Return the agencies whose records the viewer may see now (its own included).

    Decided by the same plan as every read, from the agreements stored now; no record is
    read, so nothing is audited. OGC API collections use it to offer the area layers of
    the agencies that share with the caller.
    """
    now = (clock or store.clock).now()
    with store.connect() as conn:
        p = prepare(conn, viewer, ReadRequest(), now)
    return tuple(sorted({d.owner for d in p.decisions if d.allow}))
