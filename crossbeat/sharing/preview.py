"""Preview: "what does partner X (or the public) see of my data?" (issue #3).

The preview runs the very same policy as a real read, for a stand-in viewer of the
grantee (an officer, analyst and supervisor at once, or the public), over the owner's
records only, and explains every record it leaves out.

Who sees real records in the sample (issue #7): only a user entitled to read the
owner's records in full (an officer, analyst or supervisor *of the owner*), or the
local operator calling the library with ``real_sample=True``. Agency and platform
admins — the roles that manage agreements, and have no access to incident data —
get the counts, the reasons and the decisions, with a sample of synthetic stand-ins
(:mod:`crossbeat.sharing.standins`): generated records with exactly the fields,
precision and time resolution the grantee would get, and made-up values.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shapely.geometry import shape
from sqlalchemy import select

from crossbeat.audit import Action, AuditEvent, append
from crossbeat.auth.roles import Actor
from crossbeat.clock import Clock
from crossbeat.sharing._manage import AgreementError
from crossbeat.sharing.agreements import load_agreements
from crossbeat.sharing.flags import current_rules
from crossbeat.sharing.model import Agreement, Approval, Grantee, GranteeKind
from crossbeat.sharing.pages import area_tags
from crossbeat.sharing.permissions import check_permission
from crossbeat.sharing.policy import DATA_ROLES, Decision, ReadRequest, Viewer, ViewerKind, live
from crossbeat.sharing.reads import _children, _jsonable, anchor_index, prepare
from crossbeat.sharing.request import CallsFilter
from crossbeat.sharing.rls import restricted
from crossbeat.sharing.scope import Purpose
from crossbeat.sharing.standins import stand_ins
from crossbeat.store import Store
from crossbeat.store.schema import agencies, incidents, jurisdictions

#: ``Preview.sample_kind``: real records as the grantee sees them, or synthetic stand-ins.
SAMPLE_RECORDS = "records"
SAMPLE_STAND_INS = "stand-ins"


@dataclass(frozen=True)
class Preview:
    """What a grantee sees of an owner's live records, and why the rest is hidden."""

    owner: str
    grantee: str
    purpose: str
    decisions: tuple[Decision, ...]
    total: int
    visible: int
    hidden: dict[str, int]
    sample: list[dict[str, Any]]
    sample_kind: str = SAMPLE_RECORDS

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data."""
        return {
            "owner": self.owner,
            "grantee": self.grantee,
            "purpose": self.purpose,
            "decisions": [d.to_dict() for d in self.decisions],
            "total": self.total,
            "visible": self.visible,
            "hidden": self.hidden,
            "sample": [_jsonable(r) for r in self.sample],
            "sample_kind": self.sample_kind,
        }


def entitled_to_records(by: Actor | None, owner: str, real_sample: bool) -> bool:
    """Return whether a preview may show ``by`` real records of ``owner``.

    Only a user who may read the owner's records in full (an officer, analyst or
    supervisor of the owner), or the local operator (``by`` None) who asks for them
    with ``real_sample``. Agency and platform admins get synthetic stand-ins.
    """
    if by is None:
        return real_sample
    return by.agency_id == owner and bool(by.roles & DATA_ROLES)


def preview(
    store: Store,
    owner: str,
    grantee: str | Grantee,
    *,
    purpose: str | Purpose | None = None,
    sample: int = 10,
    by: Actor | None = None,
    clock: Clock | None = None,
    real_sample: bool = False,
    draft: Agreement | None = None,
    replaces: str | None = None,
) -> Preview:
    """Show what a grantee sees of an owner's data under the agreements in force now.

    With ``draft`` (:func:`crossbeat.sharing.agreements.draft_agreement`, not yet
    saved), what the grantee would see once it is saved and approved: the draft is
    planned as if in force, ``replaces`` (an agreement it would take the place of) as
    if revoked, every other stored agreement as it stands.

    Parameters
    ----------
    owner
        The agency whose data is previewed.
    grantee
        ``AGENCY_ID``, ``group:GROUP_ID`` or ``public``.
    purpose
        The grantee's purpose (default ``analysis``; the public's is fixed).
    sample
        How many records (as the grantee would see them) to include.
    by
        agency_admin of the owner or platform_admin; None for the local operator.
    real_sample
        For the local operator (``by`` None): sample real records instead of
        stand-ins. A signed-in ``by`` gets real records only when it is an officer,
        analyst or supervisor of the owner (:func:`entitled_to_records`).
    draft, replaces
        An unsaved agreement of ``owner`` with ``grantee`` to preview, and the id of the
        stored agreement it would replace. The audit event records the draft's scope.

    Returns
    -------
    Preview
        Counts of visible and hidden records, the reason for each hidden one (grouped),
        the decisions and a sample (``sample_kind`` says whether it is real records
        or synthetic stand-ins).

    Raises
    ------
    AgreementError
        For an unknown owner or grantee.
    """
    check_permission(store, by, owner, "preview what partners see")
    g = Grantee.parse(grantee)
    now = (clock or store.clock).now()
    if draft is not None and (draft.owner, draft.grantee) != (owner, g):
        raise AgreementError([f"the draft is {draft.owner} -> {draft.grantee}, not {owner} -> {g}"])
    with store.begin() as conn:
        known = set(conn.execute(select(agencies.c.id)).scalars())
        problems = [] if owner in known else [f"unknown agency {owner!r}"]
        if g.kind is GranteeKind.AGENCY and g.id not in known:
            problems.append(f"unknown grantee agency {g.id!r}")
        if problems:
            raise AgreementError(problems)
        groups: frozenset[str] | None = None
        if g.kind is GranteeKind.PUBLIC:
            viewer = Viewer.public()
        elif g.kind is GranteeKind.GROUP:
            viewer = Viewer(ViewerKind.USER, f"group:{g.id}", DATA_ROLES, id="preview")
            groups = frozenset({g.id})
        else:
            viewer = Viewer(ViewerKind.USER, g.id, DATA_ROLES, id="preview")
        p_purpose = Purpose(purpose) if purpose is not None else None
        # Calls for service too: the preview shows everything the grantee could see.
        request = ReadRequest(
            agencies=frozenset({owner}), purpose=p_purpose, calls=CallsFilter.INCLUDE
        )
        planned = None
        if draft is not None:
            stored = [a for a in load_agreements(conn) if a.id != replaces]
            planned = [*stored, in_force(draft, now)]
        p = prepare(conn, viewer, request, now, groups=groups, agreements=planned)
        anchors = anchor_index(conn, store.url)
        sensitivity = current_rules(conn)
        real = entitled_to_records(by, owner, real_sample)
        hidden: Counter[str] = Counter()
        shown: list[dict[str, Any]] = []
        total = visible = 0
        with restricted(conn, [owner]):
            q = select(incidents).where(live() & (incidents.c.agency_id == owner))
            rows = conn.execute(q.order_by(incidents.c.public_id)).mappings().all()
            offences, places = _children(conn, [r["id"] for r in rows])
            tags = area_tags(conn, [r["id"] for r in rows])
        for row in rows:
            total += 1
            offs = offences.get(row["id"], [])
            flags = sensitivity.flags(row, offs)
            here = places.get(row["id"], [])
            out = p.publish(row, offs, here, flags, anchors, areas=tags.get(row["id"]))
            if out is not None:
                visible += 1
                if real and len(shown) < sample:
                    shown.append(out[1])
                continue
            hidden[_why(p, row, offs, flags)] += 1
        if not real:
            shown = stand_ins(p.rules, sample, now, anchors, _boxes(conn, owner))
        append(
            store,
            AuditEvent(
                action=Action.SHARING_DECISION,
                actor=by.user_id if by else "system",
                actor_agency=by.agency_id if by else None,
                source_ip=by.source_ip if by else None,
                resource_type="preview",
                owner_agencies=(owner,),
                record_ids=tuple(r["id"] for r in shown) if real else (),
                details={
                    "grantee": str(g),
                    "sample_kind": SAMPLE_RECORDS if real else SAMPLE_STAND_INS,
                    "decisions": [d.to_dict() for d in p.decisions],
                    "visible": visible,
                    "total": total,
                    **(
                        {"draft": draft.to_dict(), "replaces": replaces}
                        if draft is not None
                        else {}
                    ),
                },
            ),
            conn=conn,
        )
    if viewer.kind is ViewerKind.PUBLIC:
        stated = Purpose.PUBLIC_INFORMATION
    else:
        stated = p_purpose or Purpose.ANALYSIS
    return Preview(
        owner,
        str(g),
        stated.value,
        p.decisions,
        total,
        visible,
        dict(sorted(hidden.items())),
        shown,
        SAMPLE_RECORDS if real else SAMPLE_STAND_INS,
    )


def in_force(draft: Agreement, now: datetime) -> Agreement:
    """Return the draft as the plan sees it once saved and approved, from ``now`` at latest.

    Its approvals are stand-ins (``draft-preview-N``, as many as it needs); a draft
    valid from a later date is previewed as valid from ``now``.
    """
    approvals = tuple(
        Approval(f"draft-preview-{k}", "draft-preview", draft.owner, now)
        for k in range(draft.required_approvals)
    )
    return dataclasses.replace(
        draft, approvals=approvals, valid_from=min(draft.valid_from, now), revoked_at=None
    )


def _boxes(conn: Any, owner: str) -> list[tuple[float, float, float, float]]:
    """Return the bounding boxes of the owner's jurisdiction polygons (lon/lat)."""
    q = select(jurisdictions.c.geojson).where(jurisdictions.c.agency_id == owner)
    return [tuple(shape(json.loads(g)).bounds) for g in conn.execute(q).scalars()]


def _why(p: Any, row: Any, offences: Any, flags: Any) -> str:
    """Return why no rule shows a record, preferring reasons other than the offence scope.

    A narrow grant (say, vehicle crime only) says "outside the offences shared" for most
    records; a broader grant's reason (sensitive, delayed) says more.
    """
    if not p.rules:
        return "no agreement in force"
    reasons = [r.check(row, offences, flags, p.now) for r in p.rules]
    reasons = [r for r in reasons if r is not None] or ["outside the read's filters"]
    reason = next((r for r in reasons if not r.startswith("offence ")), reasons[0])
    # Group reasons that carry a per-record time by their kind.
    return str(reason.split(" until ")[0] if reason.startswith("delayed") else reason)
