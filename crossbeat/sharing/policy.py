"""The one sharing policy every read goes through: pure decision logic, no I/O (issue #3).

:func:`plan` turns a :class:`Viewer` and a :class:`ReadRequest` (plus the stored
agreements and a little context) into a :class:`ReadPlan`: a SQL filter over
``incidents``, the :class:`~crossbeat.sharing.rules.Rule` that shows each owner's
records, and a :class:`Decision` with reasons for every owner agency considered.
:mod:`crossbeat.sharing.reads` runs the plan; nothing else reads incidents.

Who sees what
    * Deny by default: no rule, no record.
    * Own data: officers, analysts and supervisors of the owner see its records in full;
      officers and supervisors also see personal data when they state a legal basis.
      agency_admin, auditor and platform_admin roles give no access to incident data.
    * Partners: officers, analysts and supervisors (and API read tokens, like an
      analyst) of a grantee agency, or of a member agency of a grantee group, see what
      an active agreement allows, when the read's purpose is one the agreement serves.
    * The public, and everyone else too: what the owner's public agreement allows,
      capped by the public release policy.
    * When several grants reach one record, the most revealing one is used, as each
      grant is a permission the viewer holds anyway: the finest precision, then the
      most fields, then the finest time resolution, then the shortest delay, then the
      most specific grantee (own agency, agency, group, public), then the lowest id.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import h3
import shapely
from sqlalchemy import ColumnElement, and_, false, or_

from crossbeat.model import Sensitivity
from crossbeat.sharing.model import Agreement, GranteeKind
from crossbeat.sharing.public import DEFAULT_PUBLIC_POLICY, AnchorIndex, PublicPolicy, Row
from crossbeat.sharing.release import base_refusal
from crossbeat.sharing.request import (
    DATA_ROLES,
    GROUP_BY,
    PERSONAL_ROLES,
    TIME_DIMS,
    CallsFilter,
    ReadRequest,
    RequestError,
    Viewer,
    ViewerKind,
    area_dim_layer,
)
from crossbeat.sharing.rules import Rule, _matches_sql, in_areas_sql
from crossbeat.sharing.scope import (
    DEFAULT_PURPOSE,
    PERSONAL_FIELDS,
    RECORD_FIELDS,
    Precision,
    TimeResolution,
    call_scope,
    layer_key,
    offence_matches,
    parse_precision,
)
from crossbeat.store.schema import incidents

__all__ = [
    "DATA_ROLES",
    "GROUP_BY",
    "PERSONAL_ROLES",
    "Decision",
    "PolicyContext",
    "ReadPlan",
    "ReadRequest",
    "RequestError",
    "Viewer",
    "ViewerKind",
    "plan",
    "priority",
]

_VIA_ORDER = {"own": 0, "agency": 1, "group": 2, "public": 3}


@dataclass(frozen=True)
class Decision:
    """Whether the viewer gets an owner's records, under which agreement, and why."""

    allow: bool
    owner: str
    agreement_id: str | None
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the decision as JSON-ready data."""
        return {
            "allow": self.allow,
            "owner": self.owner,
            "agreement_id": self.agreement_id,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class PolicyContext:
    """What the pure policy needs to know besides the agreements.

    Parameters
    ----------
    agencies
        Every registered agency id and its IANA time zone.
    public_policies
        Effective public policy of owners that tightened it (others: the default).
    """

    agencies: Mapping[str, str]
    public_policies: Mapping[str, PublicPolicy] = field(default_factory=dict)


@dataclass(frozen=True)
class ReadPlan:
    """A planned read: per-owner decisions and rules, a SQL filter, a record pipeline."""

    viewer: Viewer
    request: ReadRequest
    now: datetime
    decisions: tuple[Decision, ...]
    rules: tuple[Rule, ...]

    @property
    def owners(self) -> tuple[str, ...]:
        """Owners whose records may be returned (what row-level security allows)."""
        return tuple(sorted({r.owner for r in self.rules}))

    @property
    def personal_owners(self) -> tuple[str, ...]:
        """Owners whose personal data may be returned."""
        return tuple(sorted({r.owner for r in self.rules if r.personal}))

    def where(self) -> ColumnElement[bool]:
        """Return the SQL filter: live records covered by a rule and matching the request."""
        if not self.rules:
            return false()
        req = self.request
        conds = [live(), or_(*(self._rule_sql(r) for r in self.rules))]
        if req.ids is not None:
            ids = sorted(req.ids)
            own = sorted({r.owner for r in self.rules if r.via == "own"})
            by_id = and_(incidents.c.id.in_(ids), incidents.c.agency_id.in_(own))
            conds.append(or_(incidents.c.public_id.in_(ids), by_id) if own else
                         incidents.c.public_id.in_(ids))  # fmt: skip
        if req.agencies is not None:
            conds.append(incidents.c.agency_id.in_(sorted(req.agencies)))
        if req.offences is not None:
            # The offence filter is on offences; calls are chosen by ``calls``.
            conds.append(
                or_(incidents.c.call_category.is_not(None), _matches_sql(req.offences, incidents.c))
            )
        if req.areas is not None:
            conds.append(in_areas_sql(req.areas))
        if req.calls is CallsFilter.EXCLUDE:
            conds.append(incidents.c.call_category.is_(None))
        elif req.calls is CallsFilter.ONLY:
            conds.append(incidents.c.call_category.is_not(None))
        if req.after is not None:
            conds.append(incidents.c.public_id > req.after)
        return and_(*conds)

    def _rule_sql(self, rule: Rule) -> ColumnElement[bool]:
        req = self.request
        cond = rule.sql(self.now, req.changed_since)
        extra: list[ColumnElement[bool]] = []
        span = _TIME_SPAN[rule.time_resolution]
        if req.since is not None:
            extra.append(incidents.c.occurred_from >= req.since - span)
        if req.until is not None:
            extra.append(incidents.c.occurred_from < req.until + span)
        boxes = [req.bbox] if req.bbox is not None else []
        if req.polygon is not None:
            boxes.append(tuple(req.polygon.bounds))
        for box in boxes:
            lat_m, lon_m = _margin(rule.precision, box)
            min_lon, min_lat, max_lon, max_lat = box
            extra += [
                incidents.c.lat.between(min_lat - lat_m, max_lat + lat_m),
                incidents.c.lon.between(min_lon - lon_m, max_lon + lon_m),
            ]
        return and_(cond, *extra) if extra else cond

    def choose(
        self,
        row: Row,
        offences: Sequence[Row],
        flags: frozenset[Sensitivity],
    ) -> Rule | None:
        """Return the rule that shows a record (the most specific that covers it), or None."""
        if row.get("withdrawn_at") is not None:
            return None
        for rule in self.rules:
            if rule.check(row, offences, flags, self.now) is None:
                return rule
        return None

    def publish(
        self,
        row: Row,
        offences: Sequence[Row],
        jurisdictions: Sequence[str],
        flags: frozenset[Sensitivity],
        anchors: AnchorIndex,
        areas: Mapping[str, Sequence[str]] | None = None,
    ) -> tuple[Rule, dict[str, Any]] | None:
        """Return the record as the viewer sees it with its rule, or None if not shown.

        ``areas`` maps each area layer (``AGENCY/LAYER``) to the record's areas in it.
        """
        rule = self.choose(row, offences, flags)
        if rule is None:
            return None
        req = self.request
        if req.changed_since is not None and not rule.changed(row, req.changed_since):
            return None
        full = rule.transform(row, offences, jurisdictions, anchors, areas=areas)
        if not self._matches(row, full, rule):
            return None
        wanted = req.fields
        if req.aggregate:
            return rule, full
        shown = rule.shown_fields(wanted)
        record = {k: v for k, v in full.items() if k in shown}
        return rule, record

    def _matches(self, row: Row, rec: Mapping[str, Any], rule: Rule) -> bool:
        req = self.request
        # By id: the public id for anyone; the owner's own id only for the owner's own
        # readers, so that an id derived from a case number finds nothing (issue #7).
        if req.ids is not None and not (
            row["public_id"] in req.ids or (rule.via == "own" and row["id"] in req.ids)
        ):
            return False
        if req.agencies is not None and row["agency_id"] not in req.agencies:
            return False
        if req.after is not None and not row["public_id"] > req.after:
            return False
        is_call = row.get("call_category") is not None
        if (
            req.calls is CallsFilter.EXCLUDE
            and is_call
            or req.calls is CallsFilter.ONLY
            and not is_call
        ):
            return False
        if (
            req.offences is not None
            and not is_call
            and not offence_matches(
                req.offences, rec.get("nibrs_code"), rec.get("crime_against"), rec.get("ucr_part1")
            )
        ):
            return False
        if req.areas is not None:
            shown = rec.get("areas") or {}
            if not any(
                name in shown.get(layer_key(layer, row["agency_id"]), ())
                for layer, name in req.areas
            ):
                return False
        if req.since is not None or req.until is not None:
            t = rec.get("occurred_from")
            if t is None or (req.since and t < req.since) or (req.until and t >= req.until):
                return False
        if req.bbox is not None:
            lat, lon = rec.get("lat"), rec.get("lon")
            if lat is None or lon is None:
                return False
            min_lon, min_lat, max_lon, max_lat = req.bbox
            if not (min_lon <= lon <= max_lon and min_lat <= lat <= max_lat):
                return False
        return self._matches_more(rec)

    def _matches_more(self, rec: Mapping[str, Any]) -> bool:
        """Apply the polygon, jurisdiction, status and code filters to a published record."""
        req = self.request
        if req.polygon is not None:
            lat, lon = rec.get("lat"), rec.get("lon")
            if lat is None or lon is None or not shapely.intersects_xy(req.polygon, lon, lat):
                return False
        if req.jurisdictions is not None and not req.jurisdictions & set(
            rec.get("jurisdictions") or ()
        ):
            return False
        if req.statuses is not None:
            status = rec.get("status")
            if status is None or str(status).strip().casefold() not in req.statuses:
                return False
        return req.codes is None or bool(
            {rec.get("offence_local_code"), rec.get("nibrs_code")} & req.codes
        )


def live() -> ColumnElement[bool]:
    """Return the filter every read applies: the record is not withdrawn."""
    return incidents.c.withdrawn_at.is_(None)


_TIME_SPAN = {
    TimeResolution.EXACT: timedelta(0),
    TimeResolution.HOUR: timedelta(hours=1),
    TimeResolution.DAY: timedelta(days=2),
    TimeResolution.MONTH: timedelta(days=32),
}


def _margin(precision: Precision, bbox: tuple[float, ...]) -> tuple[float, float]:
    """Return (lat, lon) degrees by which an anchor can be away from its true point."""
    if precision.resolution is None:
        return (0.0, 0.0)
    km = 3 * h3.average_hexagon_edge_length(precision.resolution, unit="km")
    lat = km / 110.0
    widest = max(abs(bbox[1]), abs(bbox[3])) + lat
    lon = lat / max(math.cos(math.radians(min(widest, 89.0))), 0.01)
    return (lat, lon)


def plan(
    viewer: Viewer,
    request: ReadRequest,
    agreements: Sequence[Agreement],
    now: datetime,
    context: PolicyContext,
) -> ReadPlan:
    """Decide, for every owner agency, what the viewer may read and how it is shown.

    Parameters
    ----------
    viewer
        Who reads (its ``groups`` must hold the stored memberships).
    request
        What is asked for.
    agreements
        Every stored agreement (revoked and expired ones only explain denials).
    now
        The current time.
    context
        Registered agencies with their time zones, and tightened public policies.

    Returns
    -------
    ReadPlan
        Decisions (one per owner considered, each with reasons) and the rules.
    """
    owners = sorted(context.agencies)
    if request.agencies is not None:
        owners = sorted(set(owners) | set(request.agencies))
        owners = [o for o in owners if o in request.agencies]
    decisions: list[Decision] = []
    rules: list[Rule] = []
    for owner in owners:
        decision, owner_rules = _decide(owner, viewer, request, agreements, now, context)
        decisions.append(decision)
        rules.extend(owner_rules)
    return ReadPlan(viewer, request, now, tuple(decisions), tuple(rules))


def _decide(
    owner: str,
    viewer: Viewer,
    request: ReadRequest,
    agreements: Sequence[Agreement],
    now: datetime,
    ctx: PolicyContext,
) -> tuple[Decision, list[Rule]]:
    if owner not in ctx.agencies:
        return Decision(False, owner, None, (f"unknown agency {owner!r}",)), []
    tz = ctx.agencies[owner]
    reasons: list[str] = []
    rules: list[Rule] = []
    purpose = request.purpose or viewer.purpose or DEFAULT_PURPOSE
    data_roles = viewer.data_roles
    personal_ok = (
        request.personal_data
        and viewer.kind is ViewerKind.USER
        and bool(viewer.roles & PERSONAL_ROLES)
    )
    own = viewer.kind is not ViewerKind.PUBLIC and viewer.agency_id == owner
    if own and data_roles:
        rule = Rule(
            owner, "own", None, None, frozenset(), frozenset(),
            frozenset(RECORD_FIELDS) | frozenset(PERSONAL_FIELDS),
            parse_precision("exact"), TimeResolution.EXACT, timedelta(0), personal_ok, tz,
            calls=None,
        )  # fmt: skip
        _add(rule, request, reasons, rules, f"own data: {viewer.label()} sees its records in full")
    elif own:
        reasons.append(
            f"{viewer.label()}: these roles give no access to incident data "
            "(officer, analyst or supervisor needed)"
        )
    for a in sorted(agreements, key=lambda a: a.id):
        if a.owner != owner or own and a.grantee.kind is not GranteeKind.PUBLIC:
            continue
        via = _via(a, viewer)
        if via is None:
            continue
        label = f"agreement {a.id} ({owner} -> {a.grantee})"
        status = a.status(now)
        if status == "awaiting_approval":
            reasons.append(
                f"{label} is awaiting approval by the owner's admins "
                f"({len(a.approvals)} of {a.required_approvals})"
            )
            continue
        if status != "active":
            when = {"revoked": a.revoked_at, "pending": a.valid_from, "expired": a.valid_to}
            reasons.append(f"{label} is {status} ({when[status]})")
            continue
        if via != "public":
            if not data_roles:
                reasons.append(f"{label}: {viewer.label()} has no role that reads incident data")
                continue
            if purpose not in a.scope.purposes:
                served = ", ".join(sorted(p.value for p in a.scope.purposes))
                reasons.append(f"{label} serves {served}, not {purpose.value}")
                continue
        granted, why = _agreement_rule(a, via, viewer, request, personal_ok, tz, ctx)
        if granted is None:
            reasons.append(f"{label}: {why}")
            continue
        _add(granted, request, reasons, rules, f"{label}: {granted.describe()}")
    if request.personal_data and rules and not any(r.personal for r in rules):
        reasons.append(
            f"personal data of {owner} is not shown: it needs an officer or supervisor of "
            "the owner, or an agreement that includes personal fields for this purpose"
        )
    rules.sort(key=priority)
    if not rules and not reasons:
        reasons.append(
            f"no agreement shares {owner}'s data with {viewer.label()} (deny by default)"
        )
    chosen = rules[0].agreement_id if rules else None
    return Decision(bool(rules), owner, chosen, tuple(reasons)), rules


def priority(rule: Rule) -> tuple[Any, ...]:
    """Return the sort key that puts the most revealing rule first."""
    return (
        rule.precision.rank,
        -len(rule.shown_fields(None)),
        rule.time_resolution.rank,
        rule.delay,
        _VIA_ORDER[rule.via.split(":")[0]],
        rule.agreement_id or "",
    )


def _via(a: Agreement, viewer: Viewer) -> str | None:
    g = a.grantee
    if g.kind is GranteeKind.PUBLIC:
        return "public"
    if viewer.kind is ViewerKind.PUBLIC:
        return None
    if g.kind is GranteeKind.AGENCY and g.id == viewer.agency_id:
        return "agency"
    if g.kind is GranteeKind.GROUP and g.id in viewer.groups:
        return f"group:{g.id}"
    return None


def _agreement_rule(
    a: Agreement,
    via: str,
    viewer: Viewer,
    request: ReadRequest,
    personal_ok: bool,
    tz: str,
    ctx: PolicyContext,
) -> tuple[Rule | None, str]:
    s = a.scope
    if via == "public":
        policy = ctx.public_policies.get(a.owner, DEFAULT_PUBLIC_POLICY).merge(s.as_public_policy())
        if not request.aggregate and not policy.publishes_records:
            return None, "the owner publishes aggregate counts only"
        if request.aggregate and not policy.publishes_records and policy.noise_epsilon is None:
            # Counts only, without noise: every answer must come from the base table.
            why = base_refusal(request, tz)
            if why is not None:
                return None, why
        return (
            Rule(
                a.owner, via, a.id, s.offences, policy.suppressed_flags,
                policy.suppress_offences, s.fields & policy.fields, policy.precision,
                policy.time_resolution, policy.delay, False, tz, policy.threshold,
                publishes_records=policy.publishes_records,
                noise_epsilon=policy.noise_epsilon, noise_budget=policy.noise_budget,
            ),
            "",
        )  # fmt: skip
    personal = personal_ok and bool(s.fields & set(PERSONAL_FIELDS))
    excluded = frozenset(Sensitivity) - s.include_sensitive
    # Calls for service reach a partner only when the agreement names them ("calls",
    # "call:alarm"): "all offences" or "property" never shares a call.
    rule = Rule(
        a.owner, via, a.id, s.offences, excluded, frozenset(), s.fields, s.precision,
        s.time_resolution, s.delay, personal, tz, calls=call_scope(s.offences),
    )  # fmt: skip
    return rule, ""


def _add(rule: Rule, request: ReadRequest, reasons: list[str], rules: list[Rule], why: str) -> None:
    """Add a rule unless the request filters or groups on something it does not show."""
    missing = _unmet(rule, request)
    if missing:
        reasons.append(f"{why} — but not for this request: {missing}")
        return
    reasons.append(why)
    rules.append(rule)


def _unmet(rule: Rule, req: ReadRequest) -> str | None:
    """Return why a request needs more than the rule shows, or None."""
    f = rule.fields
    if req.offences is not None and not {"nibrs_code", "crime_against", "ucr_part1"} <= f:
        return "filtering by offence needs the offence fields"
    if (req.since or req.until) and "occurred_from" not in f:
        return "filtering by time needs occurred_from"
    if req.bbox is not None and not ({"lat", "lon"} <= f and rule.precision.has_point):
        return "filtering by area needs a published point"
    if req.polygon is not None and not ({"lat", "lon"} <= f and rule.precision.has_point):
        return "filtering by polygon needs a published point"
    if req.jurisdictions is not None and "jurisdictions" not in f:
        return "filtering by jurisdiction needs the jurisdictions field"
    if req.statuses is not None and "status" not in f:
        return "filtering by status needs the status field"
    if req.codes is not None and not {"offence_local_code", "nibrs_code"} & f:
        return "filtering by offence code needs offence_local_code or nibrs_code"
    for layer in sorted({layer for layer, _ in req.areas or ()}):
        if not rule.shows_layer(layer_key(layer, rule.owner)):
            return (
                f"filtering by area layer {layer} needs the areas field at precision exact "
                f"or area:{layer}, not {rule.precision}"
            )
    for dim in req.group_by if req.aggregate else ():
        dim_layer = area_dim_layer(dim)
        if dim_layer is not None:
            if not rule.shows_layer(layer_key(dim_layer, rule.owner)):
                return (
                    f"grouping by {dim} needs the areas field at precision exact or {dim}, "
                    f"not {rule.precision}"
                )
            continue
        need = set(GROUP_BY[dim])
        if not need <= f:
            return f"grouping by {dim} needs {', '.join(sorted(need))}"
        if dim.startswith("h3_") and not rule.precision.shows_cell(dim):
            return f"grouping by {dim} is finer than precision {rule.precision}"
        if dim in TIME_DIMS and rule.time_resolution.rank > TIME_DIMS[dim].rank:
            return f"grouping by {dim} is finer than time resolution {rule.time_resolution}"
    return None
