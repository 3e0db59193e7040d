"""Sharing agreements: list, read, create, revoke, and preview what a partner sees (issue #3).

For agency admins of the owner agency, and platform admins. Permission is checked
(and a refusal audited) by :mod:`crossbeat.sharing`; every change is audited there
in the same transaction. A revocation applies to the very next read, because every
read loads the agreements stored at that moment.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from crossbeat.api.deps import ActorDep, ClockDep, CsrfDep, StoreDep
from crossbeat.api.errors import ApiError
from crossbeat.api.schemas import (
    ERRORS,
    AgreementIn,
    AgreementListOut,
    AgreementOut,
    DraftPreviewIn,
    DraftPreviewOut,
    PreviewOut,
    RevokeIn,
)
from crossbeat.auth.roles import Actor
from crossbeat.clock import Clock
from crossbeat.sharing.agreements import (
    AgreementError,
    approve_agreement,
    create_agreement,
    draft_agreement,
    get_agreement,
    list_agreements,
    revoke_agreement,
)
from crossbeat.sharing.model import Agreement
from crossbeat.sharing.permissions import check_permission
from crossbeat.sharing.preview import preview
from crossbeat.store import Store

router = APIRouter(prefix="/agreements", tags=["agreements"])

Owner = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        description="Owner agency (default: yours; others: platform_admin).",
    ),
]


@router.get("", response_model=AgreementListOut, responses=ERRORS, summary="List agreements")
def get_agreements(
    store: StoreDep,
    clock: ClockDep,
    actor: ActorDep,
    owner: Owner = None,
    grantee: Annotated[str | None, Query(description="AGENCY_ID, group:ID or public.")] = None,
    status: Annotated[
        str | None,
        Query(
            pattern="^(active|awaiting_approval|pending|expired|revoked)$",
            description="Status now.",
        ),
    ] = None,
) -> AgreementListOut:
    """Return an owner agency's agreements (every status unless filtered), oldest first."""
    agency = _owner(actor, owner)
    check_permission(store, actor, agency, "list sharing agreements")
    found = list_agreements(store, owner=agency, grantee=grantee, status=status)
    return AgreementListOut(agreements=[_out(a, clock) for a in found])


@router.post(
    "",
    response_model=AgreementOut,
    status_code=201,
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Create an agreement",
)
def post_agreement(
    body: AgreementIn, store: StoreDep, clock: ClockDep, actor: ActorDep
) -> AgreementOut:
    """Create a sharing agreement; 400 lists every problem and nothing is stored.

    It applies once admins of the owner agency approved it: the caller's approval counts
    when they are one; personal data fields need a second, different admin
    (``POST /api/v1/agreements/{id}/approve``). Until then its status is ``awaiting_approval``.
    """
    values = body.model_dump(exclude={"owner"})
    created = create_agreement(store, _owner(actor, body.owner), by=actor, **values)
    return _out(created, clock)


@router.get(
    "/preview",
    response_model=PreviewOut,
    responses=ERRORS,
    summary="Preview what a grantee sees of your data",
)
def get_preview(
    store: StoreDep,
    actor: ActorDep,
    grantee: Annotated[str, Query(description="AGENCY_ID, group:ID or public.")],
    owner: Owner = None,
    purpose: Annotated[str | None, Query(description="The grantee's purpose.")] = None,
    sample: Annotated[int, Query(ge=0, le=100)] = 10,
) -> PreviewOut:
    """Run the real policy for a stand-in viewer of the grantee over your records.

    Returns how many records are visible and hidden, why (grouped), the decisions
    and a sample as the grantee would see it: real records only for an officer,
    analyst or supervisor of the owner; for agency and platform admins (who have no
    access to incident data) synthetic stand-ins of the same shape
    (``sample_kind``).
    """
    result = preview(store, _owner(actor, owner), grantee, purpose=purpose, sample=sample, by=actor)
    return PreviewOut.model_validate(result.to_dict())


@router.post(
    "/preview",
    response_model=DraftPreviewOut,
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Preview what a grantee would see under a draft agreement (nothing is saved)",
)
def post_preview(body: DraftPreviewIn, store: StoreDep, actor: ActorDep) -> DraftPreviewOut:
    """Run the real policy for a stand-in viewer of the draft's grantee, the draft in force.

    The draft is validated as ``POST /api/v1/agreements`` would and never stored; a
    draft that creation would refuse is answered with ``valid`` false and every
    problem (200: the editor shows them while the admin types). ``replaces`` names an
    agreement the draft would take the place of. ``preview`` is the answer of
    ``GET /api/v1/agreements/preview`` with the draft in force; it is audited with
    the draft's scope. 403 (audited) when you may not manage the owner's agreements.
    """
    values = body.model_dump(exclude={"owner", "grantee", "replaces", "sample", "purpose"})
    owner = _owner(actor, body.owner)
    check_permission(store, actor, owner, "preview sharing agreements")
    try:
        draft = draft_agreement(
            store, owner, body.grantee, replaces=body.replaces, by=actor, **values
        )
    except AgreementError as exc:
        return DraftPreviewOut(valid=False, problems=list(exc.problems), preview=None)
    result = preview(
        store,
        owner,
        body.grantee,
        purpose=body.purpose,
        sample=body.sample,
        by=actor,
        draft=draft,
        replaces=body.replaces,
    )
    return DraftPreviewOut(
        valid=True, problems=[], preview=PreviewOut.model_validate(result.to_dict())
    )


@router.get(
    "/{agreement_id}",
    response_model=AgreementOut,
    responses=ERRORS,
    summary="Read one agreement",
)
def get_one(agreement_id: str, store: StoreDep, clock: ClockDep, actor: ActorDep) -> AgreementOut:
    """Return one agreement of an agency you administer."""
    found = _find(store, actor, agreement_id, "read sharing agreements")
    return _out(found, clock)


@router.post(
    "/{agreement_id}/revoke",
    response_model=AgreementOut,
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Revoke an agreement",
)
def post_revoke(
    agreement_id: str, body: RevokeIn, store: StoreDep, clock: ClockDep, actor: ActorDep
) -> AgreementOut:
    """Revoke an agreement at once: the next read no longer uses it."""
    _find(store, actor, agreement_id, "revoke sharing agreements")
    revoked = revoke_agreement(store, agreement_id, reason=body.reason, by=actor)
    return _out(revoked, clock)


@router.post(
    "/{agreement_id}/approve",
    response_model=AgreementOut,
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Approve an agreement (admins of the owner agency)",
)
def post_approve(
    agreement_id: str, store: StoreDep, clock: ClockDep, actor: ActorDep
) -> AgreementOut:
    """Record your approval; only an agency_admin or platform_admin of the owner may approve.

    Each admin approves once: the second approval that personal data fields need must
    come from a different admin.
    """
    _find(store, actor, agreement_id, "approve sharing agreements")
    approved = approve_agreement(store, agreement_id, by=actor)
    return _out(approved, clock)


def _owner(actor: Actor, owner: str | None) -> str:
    """Return the owner agency a request is about (the caller's unless named)."""
    return owner if owner is not None else actor.agency_id


def _find(store: Store, actor: Actor, agreement_id: str, what: str) -> Agreement:
    """Return an agreement the actor may manage; 404 if unknown, 403 (audited) if not theirs."""
    found = get_agreement(store, agreement_id)
    if found is None:
        raise ApiError(404, f"no agreement {agreement_id!r}: see GET /api/v1/agreements")
    check_permission(store, actor, found.owner, what)
    return found


def _out(agreement: Agreement, clock: Clock) -> AgreementOut:
    return AgreementOut.model_validate(
        {**agreement.to_dict(), "status": agreement.status(clock.now())}
    )
