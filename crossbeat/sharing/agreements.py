"""Sharing agreements as data: create, revoke, list; named groups of agencies (issue #3).

An agreement says that an *owner* agency shares some of its incidents with a
*grantee*: another agency, a named group (a task force), or the public. Nothing is
shared without one (deny by default). Every management operation validates all of its
input first and lists every problem in one :class:`AgreementError`; it then changes the
database in one transaction together with its audit event, or not at all.

The overlap rule
    For one owner and one grantee, at most one agreement may cover a given offence at
    any moment: a new agreement whose validity period and offences overlap those of an
    agreement that is not revoked is refused (as a *duplicate* when the scopes are the
    same, as *contradictory* otherwise), naming the agreement to revoke first. Grants
    to different grantees may overlap (a city agreement and a task-force agreement
    both reaching one officer); reads then use the most specific one (see
    :mod:`crossbeat.sharing.policy`).

Approval by the owner (issue #7, finding 5)
    Only the owner agency puts its data in force: an agreement applies only once
    :attr:`~crossbeat.sharing.model.Agreement.required_approvals` distinct admins
    (agency_admin or platform_admin) *of the owner agency* approved it, each recorded
    as a user (one; two when personal data fields are shared). Until then its status
    is ``awaiting_approval`` and no read uses it. A signed-in owner admin who creates
    an agreement approves it by doing so; other owner admins approve with
    :func:`approve_agreement`. An admin of another agency (a platform_admin) may
    propose an agreement, never approve one. The local operator (the ``crossbeat``
    command, with database access) names the approving admins.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from crossbeat.auth.accounts import find_user_row, user_from_row
from crossbeat.auth.roles import Actor
from crossbeat.clock import Clock
from crossbeat.sharing._manage import (
    AgreementError,
    actor_name,
    audit_change,
    check_area_layer,
)
from crossbeat.sharing.groups import get_group
from crossbeat.sharing.model import (
    Agreement,
    Approval,
    Grantee,
    GranteeKind,
    Scope,
    agreement_from_row,
    agreement_row,
    approval_from_row,
)
from crossbeat.sharing.overrides import public_policy_of
from crossbeat.sharing.permissions import (
    APPROVER_ROLES,
    check_approver,
    check_permission,
    may_approve,
)
from crossbeat.sharing.public import DEFAULT_PUBLIC_POLICY, PublicPolicy
from crossbeat.sharing.scope import (
    PERSONAL_FIELDS,
    Precision,
    Purpose,
    ScopeError,
    TimeResolution,
    expand_fields,
    is_call_token,
    offences_overlap,
    parse_delay,
    parse_offences,
    parse_precision,
    parse_sensitivity,
    parse_time_resolution,
)
from crossbeat.sharing.tables import (
    sharing_agreement_approvals,
    sharing_agreement_versions,
    sharing_agreements,
)
from crossbeat.store import Store
from crossbeat.store.schema import agencies

__all__ = [
    "Agreement",
    "AgreementError",
    "Grantee",
    "GranteeKind",
    "Scope",
    "agreement_history",
    "approve_agreement",
    "create_agreement",
    "draft_agreement",
    "get_agreement",
    "list_agreements",
    "load_agreements",
    "revoke_agreement",
]


def create_agreement(
    store: Store,
    owner: str,
    grantee: str | Grantee,
    *,
    offences: Iterable[str] | None = None,
    fields: Iterable[str] | None = None,
    precision: str | Precision | None = None,
    time_resolution: str | TimeResolution | None = None,
    delay: str | int | timedelta | None = None,
    purposes: Iterable[str] | None = None,
    include_sensitive: Iterable[str] = (),
    approved_by: str | Iterable[str] = (),
    reference: str = "",
    purpose_note: str = "",
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
    by: Actor | None = None,
    clock: Clock | None = None,
) -> Agreement:
    """Create a sharing agreement after validating every field.

    Parameters
    ----------
    store
        The store.
    owner
        The agency whose data is shared.
    grantee
        ``AGENCY_ID``, ``group:GROUP_ID`` or ``public``.
    offences
        ``all``, categories (``person``, ``property``, ``society``), ``part1`` or NIBRS
        codes. Required except for the public.
    fields
        Field and group names from the allow-list (:mod:`crossbeat.sharing.scope`).
        Required except for the public (default: every public field).
    precision
        ``exact``, ``block``, ``h3:6`` ... ``h3:9`` or ``jurisdiction``. Required except
        for the public (default: the owner's public policy).
    time_resolution
        ``exact``, ``hour``, ``day`` or ``month`` (default ``exact``; public: policy).
    delay
        Publication delay such as ``24h`` (default none; public: policy).
    purposes
        Purposes served: ``analysis``, ``operations``, ``investigation``. The public
        always gets ``public_information``. Required except for the public.
    include_sensitive
        Sensitivity flags whose incidents are still shared (never for the public).
    approved_by
        Usernames of the owner's admins who approved it; only the local operator
        (``by`` None) names them, and must name at least one. A signed-in ``by``
        approves for themself only (when they are an admin of the owner); other admins
        approve with :func:`approve_agreement`.
    reference
        Free text: the decision the agreement rests on (MoU, minute, reference).
    purpose_note
        Free text: why the data is shared.
    valid_from, valid_to
        Validity (aware datetimes); ``valid_from`` defaults to now, ``valid_to`` to open.
    by
        The signed-in user (agency_admin of the owner or platform_admin), or None for
        the local operator.
    clock
        Clock for "now" (default: the store's clock).

    Returns
    -------
    Agreement
        The stored agreement; ``awaiting_approval`` until enough owner admins approved.

    Raises
    ------
    AgreementError
        Listing every problem; nothing was stored.
    PermissionDenied
        When ``by`` may not manage the owner's agreements (the attempt is audited).
    """
    now = (clock or store.clock).now()
    check_permission(store, by, owner, "create sharing agreements")
    with store.begin() as conn:
        _lock_owner(conn, owner)
        agreement = _validated(
            conn,
            owner=owner,
            grantee=grantee,
            offences=offences,
            fields=fields,
            precision=precision,
            time_resolution=time_resolution,
            delay=delay,
            purposes=purposes,
            include_sensitive=include_sensitive,
            approved_by=approved_by,
            reference=reference,
            purpose_note=purpose_note,
            valid_from=valid_from if valid_from is not None else now,
            valid_to=valid_to,
            now=now,
            created_by=actor_name(by),
            by=by,
        )
        conn.execute(insert(sharing_agreements).values(**agreement_row(agreement)))
        _insert_approvals(conn, agreement)
        _save_version(conn, agreement, "created", now, actor_name(by))
        _audit_change(store, conn, by, agreement, "created")
    return agreement


def draft_agreement(
    store: Store,
    owner: str,
    grantee: str | Grantee,
    *,
    replaces: str | None = None,
    by: Actor | None = None,
    clock: Clock | None = None,
    **fields: Any,
) -> Agreement:
    """Validate an agreement as :func:`create_agreement` would, and store nothing.

    The draft is what the sharing-agreement editor previews
    (:func:`crossbeat.sharing.preview.preview` with ``draft``) before it is saved. It
    has no approvals (nobody approved it yet) and its own random id.

    Parameters
    ----------
    owner, grantee
        As for :func:`create_agreement`.
    replaces
        The id of one of the owner's agreements with this grantee that the draft would
        take the place of (revoked before the draft is created): overlapping it is not a
        problem, and the preview leaves it out.
    by
        The signed-in user (agency_admin of the owner or platform_admin), or None for
        the local operator.
    **fields
        ``offences``, ``fields``, ``precision``, ``time_resolution``, ``delay``,
        ``purposes``, ``include_sensitive``, ``reference``, ``purpose_note``,
        ``valid_from``, ``valid_to``: as for :func:`create_agreement`.

    Raises
    ------
    AgreementError
        Listing every problem the creation would raise (but approvals).
    PermissionDenied
        When ``by`` may not manage the owner's agreements (the attempt is audited).
    """
    unknown = set(fields) - _DRAFT_FIELDS
    if unknown:
        raise TypeError(f"draft_agreement() got unexpected fields {sorted(unknown)}")
    now = (clock or store.clock).now()
    check_permission(store, by, owner, "preview sharing agreements")
    raw = dict.fromkeys(_DRAFT_FIELDS) | {"include_sensitive": ()} | fields
    valid_from = raw.pop("valid_from")
    with store.connect() as conn:
        if replaces is not None:
            found = get_agreement(store, replaces)
            if found is None or found.owner != owner:
                raise AgreementError([f"replaces: {owner} has no agreement {replaces!r}"])
        return _validated(
            conn,
            owner=owner,
            grantee=grantee,
            approved_by=(),
            valid_from=valid_from if valid_from is not None else now,
            now=now,
            created_by=actor_name(by),
            by=by,
            draft=True,
            replaces=replaces,
            **{k: ("" if v is None and k in _TEXT_FIELDS else v) for k, v in raw.items()},
        )


_TEXT_FIELDS = ("reference", "purpose_note")
#: The scope and validity fields of a draft (:func:`draft_agreement`).
_DRAFT_FIELDS = frozenset(
    {
        "offences", "fields", "precision", "time_resolution", "delay", "purposes",
        "include_sensitive", "reference", "purpose_note", "valid_from", "valid_to",
    }
)  # fmt: skip


def _lock_owner(conn: Connection, owner: str) -> None:
    # Serialise agreement changes per owner so two concurrent creations cannot both
    # pass the overlap check (SQLite serialises writers anyway).
    conn.execute(select(agencies.c.id).where(agencies.c.id == owner).with_for_update())


def _validated(
    conn: Connection,
    *,
    now: datetime,
    created_by: str,
    by: Actor | None,
    draft: bool = False,
    replaces: str | None = None,
    **raw: Any,
) -> Agreement:
    problems: list[str] = []
    owner = str(raw["owner"] or "").strip()
    known = set(conn.execute(select(agencies.c.id)).scalars())
    if owner not in known:
        problems.append(f"owner: unknown agency {owner!r} (register it with crossbeat agency add)")
    try:
        grantee = Grantee.parse(raw["grantee"])
    except ValueError:
        grantee = Grantee(GranteeKind.AGENCY, str(raw["grantee"]))
    public = grantee.kind is GranteeKind.PUBLIC
    if grantee.kind is GranteeKind.AGENCY:
        if grantee.id not in known:
            problems.append(f"grantee: unknown agency {grantee.id!r} (use public or group:ID)")
        elif grantee.id == owner:
            problems.append("grantee: an agency always sees its own data; name another grantee")
    elif grantee.kind is GranteeKind.GROUP and get_group(conn, grantee.id) is None:
        problems.append(f"grantee: unknown group {grantee.id!r} (create it with group add)")
    policy = public_policy_of(conn, owner) if public else DEFAULT_PUBLIC_POLICY

    def parse(name: str, parser: Any, value: Any, default: Any) -> Any:
        if value is None:
            if default is None:
                problems.append(f"{name}: required for an agreement with {grantee}")
            return default
        try:
            return parser(value)
        except ScopeError as exc:
            problems.append(f"{name}: {exc}")
            return default

    offences = parse("offences", parse_offences, raw["offences"], None if not public else "all")
    offences = None if offences == "all" else offences
    if public and offences is not None and any(is_call_token(t) for t in offences):
        problems.append(
            "offences: the public never receives calls for service (alarms, welfare checks "
            "...): a public map must not present them as crimes; remove calls/call:..."
        )
    fields = parse(
        "fields",
        lambda v: expand_fields(v, personal=not public),
        raw["fields"],
        policy.fields if public else None,
    )
    precision = parse(
        "precision", parse_precision, raw["precision"], policy.precision if public else None
    )
    if isinstance(precision, Precision) and precision.layer is not None and owner in known:
        precision, problem = check_area_layer(conn, precision, owner)
        problems += [problem] if problem else []
    time_res = parse(
        "time_resolution",
        parse_time_resolution,
        raw["time_resolution"],
        policy.time_resolution if public else TimeResolution.EXACT,
    )
    delay = parse("delay", parse_delay, raw["delay"], policy.delay if public else timedelta(0))
    purposes = parse(
        "purposes",
        _parse_purposes,
        raw["purposes"],
        frozenset({Purpose.PUBLIC_INFORMATION}) if public else None,
    )
    if public:
        if purposes and purposes != {Purpose.PUBLIC_INFORMATION}:
            problems.append("purposes: the public grantee is always public_information")
        purposes = frozenset({Purpose.PUBLIC_INFORMATION})
    elif purposes and Purpose.PUBLIC_INFORMATION in purposes:
        problems.append("purposes: public_information is only for the public grantee")
    sensitive = parse("include_sensitive", parse_sensitivity, raw["include_sensitive"], ())
    if public and sensitive:
        problems.append("include_sensitive: sensitive incidents are never published")
    if public and None not in (fields, precision, time_res, delay):
        scope_policy = PublicPolicy(
            precision=precision, time_resolution=time_res, delay=delay, fields=fields
        )
        for p in scope_policy.looser_than(policy):
            problems.append(f"public policy of {owner}: {p}; the public can only get less")
    if fields and set(PERSONAL_FIELDS) & fields and not (purposes or ()):
        problems.append("fields: personal data needs at least one purpose")
    approvals = (
        ()
        if draft  # a draft is previewed, never stored: nobody approves it yet
        else _approvals_at_creation(conn, owner, raw["approved_by"], by, now, problems)
    )
    valid_from, valid_to = raw["valid_from"], raw["valid_to"]
    problems += _check_validity(valid_from, valid_to, now)
    if not problems:
        agreement = Agreement(
            id=str(uuid.uuid4()),
            owner=owner,
            grantee=grantee,
            scope=Scope(offences, fields, precision, time_res, delay, purposes, sensitive),
            valid_from=valid_from,
            valid_to=valid_to,
            reference=str(raw["reference"] or "").strip(),
            purpose_note=str(raw["purpose_note"] or "").strip(),
            created_at=now,
            created_by=created_by,
            approvals=approvals,
        )
        problems += _overlaps(conn, agreement, now, replaces)
        if not problems:
            return agreement
    raise AgreementError(problems)


def _names(value: str | Iterable[str] | None) -> list[str]:
    items = [value] if isinstance(value, str) else list(value or ())
    return [t.strip() for v in items for t in str(v).split(",") if t.strip()]


def _approvals_at_creation(
    conn: Connection,
    owner: str,
    approved_by: str | Iterable[str] | None,
    by: Actor | None,
    now: datetime,
    problems: list[str],
) -> tuple[Approval, ...]:
    names = _names(approved_by)
    if by is not None:
        # A signed-in user speaks only for themself: naming other approvers would let
        # one admin record a second approval (or another agency's) in their name.
        if any(n.lower() != by.username for n in names):
            problems.append(
                "approved_by: each admin of the owner approves for themself "
                "(POST /api/v1/agreements/{id}/approve); you cannot record others' approval"
            )
        return (
            (Approval(by.user_id, by.username, by.agency_id, now),)
            if may_approve(by, owner)
            else ()
        )
    if not names:
        problems.append(
            f"approved_by: name the admin(s) of {owner} who approved the agreement "
            "(usernames of its agency_admin or platform_admin accounts)"
        )
    found: dict[str, Approval] = {}
    for name in names:
        approval, why = _approver(conn, owner, name, now)
        if approval is None:
            problems.append(f"approved_by: {why}")
        elif approval.user_id in found:
            problems.append(f"approved_by: {name} is named twice; approvers must be different")
        else:
            found[approval.user_id] = approval
    return tuple(found.values())


def _approver(
    conn: Connection, owner: str, username: str, now: datetime
) -> tuple[Approval | None, str]:
    """Return the approval of the account ``username``, or None and why it cannot approve."""
    row = find_user_row(conn, username)
    if row is None:
        return None, f"no user account {username!r} (approvers are users, not text)"
    user = user_from_row(conn, row)
    if user.agency_id != owner:
        return None, f"{user.username} belongs to {user.agency_id}, not the owner {owner}"
    if not APPROVER_ROLES & user.roles:
        return None, f"{user.username} is not an agency_admin or platform_admin of {owner}"
    if row["status"] != "active":
        return None, f"{user.username} is disabled"
    return Approval(user.id, user.username, owner, now), ""


def _parse_purposes(value: Iterable[str]) -> frozenset[Purpose]:
    names = [t.strip().lower() for v in value for t in str(v).split(",") if t.strip()]
    if not names:
        raise ScopeError("name at least one purpose: analysis, operations, investigation")
    out, bad = set(), []
    for name in names:
        try:
            out.add(Purpose(name))
        except ValueError:
            bad.append(name)
    if bad:
        valid = ", ".join(p.value for p in Purpose)
        raise ScopeError(f"unknown purpose(s) {', '.join(bad)}: use {valid}")
    return frozenset(out)


def _check_validity(valid_from: Any, valid_to: Any, now: datetime) -> list[str]:
    problems = []
    for name, value in (("valid_from", valid_from), ("valid_to", valid_to)):
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            problems.append(f"{name}: give a date and time with a time zone (e.g. ...Z)")
    if problems:
        return problems
    if valid_from < now - timedelta(minutes=5):
        problems.append(
            f"valid_from: {valid_from.isoformat()} is in the past; an agreement starts now "
            "or later (omit valid_from to start now)"
        )
    if valid_to is not None:
        if valid_to <= now:
            problems.append(f"valid_to: {valid_to.isoformat()} has already passed")
        elif valid_to <= valid_from:
            problems.append("valid_to: must be after valid_from")
    return problems


def _overlaps(
    conn: Connection, draft: Agreement, now: datetime, replaces: str | None = None
) -> list[str]:
    """Return the problems of the agreements ``draft`` would contradict (but ``replaces``)."""
    t = sharing_agreements.c
    rows = conn.execute(
        select(sharing_agreements).where(
            (t.owner_id == draft.owner)
            & (t.grantee_kind == draft.grantee.kind.value)
            & (t.grantee_id == draft.grantee.id)
            & t.revoked_at.is_(None)
        )
    ).mappings()
    problems = []
    for row in rows:
        other = agreement_from_row(row)
        if other.id == replaces or other.status(now) == "expired":
            continue
        ends_a, ends_b = draft.valid_to, other.valid_to
        if (ends_b is not None and ends_b <= draft.valid_from) or (
            ends_a is not None and ends_a <= other.valid_from
        ):
            continue
        if not offences_overlap(draft.scope.offences, other.scope.offences):
            continue
        kind = "duplicates" if other.scope == draft.scope else "contradicts"
        problems.append(
            f"{kind} agreement {other.id} ({other.owner} -> {other.grantee}, offences "
            f"{', '.join(sorted(other.scope.offences or {'all'}))}, precision "
            f"{other.scope.precision}): one owner and grantee may have only one agreement "
            f"per offence at a time; revoke it first (crossbeat agreement revoke {other.id} "
            "--reason ...) or narrow the offences or validity"
        )
    return problems


def revoke_agreement(
    store: Store,
    agreement_id: str,
    *,
    reason: str,
    by: Actor | None = None,
    clock: Clock | None = None,
) -> Agreement:
    """Revoke an agreement at once: no read after this call uses it, streams included.

    Raises
    ------
    AgreementError
        For an unknown or already revoked agreement or an empty reason.
    PermissionDenied
        When ``by`` may not manage the owner's agreements.
    """
    now = (clock or store.clock).now()
    current = get_agreement(store, agreement_id)
    problems = []
    if current is None:
        problems.append(f"unknown agreement {agreement_id!r} (see crossbeat agreement list)")
    elif current.revoked_at is not None:
        problems.append(f"agreement {agreement_id} was already revoked at {current.revoked_at}")
    if not (reason or "").strip():
        problems.append("reason: say why the agreement is revoked")
    if problems:
        raise AgreementError(problems)
    assert current is not None
    check_permission(store, by, current.owner, "revoke sharing agreements")
    with store.begin() as conn:
        _lock_owner(conn, current.owner)
        result = conn.execute(
            update(sharing_agreements)
            .where(
                (sharing_agreements.c.id == agreement_id)
                & sharing_agreements.c.revoked_at.is_(None)
            )
            .values(
                revoked_at=now,
                revoked_by=actor_name(by),
                revoke_reason=reason.strip(),
                version=current.version + 1,
            )
        )
        if result.rowcount != 1:
            raise AgreementError([f"agreement {agreement_id} was revoked meanwhile"])
        revoked = _load(conn, agreement_id)
        _save_version(conn, revoked, "revoked", now, actor_name(by))
        _audit_change(store, conn, by, revoked, "revoked")
    return revoked


def approve_agreement(
    store: Store,
    agreement_id: str,
    *,
    approver: str | None = None,
    by: Actor | None = None,
    clock: Clock | None = None,
) -> Agreement:
    """Record the approval of one admin of the owner agency.

    Parameters
    ----------
    agreement_id
        The agreement.
    approver
        Username of the approving admin; only for the local operator (``by`` None).
    by
        The signed-in admin who approves (an agency_admin or platform_admin of the
        owner agency), or None for the local operator.

    Raises
    ------
    AgreementError
        Unknown or revoked agreement, an approver who is not an active admin of the
        owner, or one who approved already (approvers must be different people).
    PermissionDenied
        When ``by`` is not an admin of the owner agency (audited).
    """
    now = (clock or store.clock).now()
    current = get_agreement(store, agreement_id)
    if current is None:
        raise AgreementError([f"unknown agreement {agreement_id!r} (see crossbeat agreement list)"])
    if by is not None:
        check_approver(store, by, current.owner, "approve sharing agreements")
        if approver is not None and approver.strip().lower() != by.username:
            raise AgreementError(["approver: you can only approve for yourself"])
    with store.begin() as conn:
        _lock_owner(conn, current.owner)
        current = _load(conn, agreement_id)
        problems = []
        if current.revoked_at is not None:
            problems.append(f"agreement {agreement_id} was revoked at {current.revoked_at}")
        if by is not None:
            approval: Approval | None = Approval(by.user_id, by.username, by.agency_id, now)
        elif not (approver or "").strip():
            approval = None
            problems.append("approver: name the admin of the owner who approves (--by USER)")
        else:
            approval, why = _approver(conn, current.owner, approver or "", now)
            if approval is None:
                problems.append(f"approver: {why}")
        if approval is not None and approval.user_id in {a.user_id for a in current.approvals}:
            problems.append(
                f"{approval.username} approved agreement {agreement_id} already; a second "
                "approval must come from a different admin of the owner"
            )
        if problems:
            raise AgreementError(problems)
        assert approval is not None
        conn.execute(
            insert(sharing_agreement_approvals).values(
                agreement_id=agreement_id,
                user_id=approval.user_id,
                username=approval.username,
                agency_id=approval.agency_id,
                approved_at=now,
            )
        )
        conn.execute(
            update(sharing_agreements)
            .where(sharing_agreements.c.id == agreement_id)
            .values(version=current.version + 1)
        )
        approved = _load(conn, agreement_id)
        _save_version(conn, approved, "approved", now, actor_name(by))
        _audit_change(store, conn, by, approved, "approved")
    return approved


def get_agreement(store: Store, agreement_id: str) -> Agreement | None:
    """Return an agreement by id, or None."""
    with store.connect() as conn:
        row = (
            conn.execute(select(sharing_agreements).where(sharing_agreements.c.id == agreement_id))
            .mappings()
            .first()
        )
        return agreement_from_row(row, _approvals(conn, agreement_id)) if row else None


def list_agreements(
    store: Store,
    *,
    owner: str | None = None,
    grantee: str | Grantee | None = None,
    status: str | None = None,
    clock: Clock | None = None,
) -> list[Agreement]:
    """Return agreements, optionally of one owner, grantee or status, oldest first.

    Parameters
    ----------
    status
        ``active``, ``pending``, ``expired`` or ``revoked`` (None: all).
    """
    now = (clock or store.clock).now()
    q = select(sharing_agreements).order_by(
        sharing_agreements.c.created_at, sharing_agreements.c.id
    )
    if owner is not None:
        q = q.where(sharing_agreements.c.owner_id == owner)
    if grantee is not None:
        g = Grantee.parse(grantee)
        q = q.where(
            (sharing_agreements.c.grantee_kind == g.kind.value)
            & (sharing_agreements.c.grantee_id == g.id)
        )
    with store.connect() as conn:
        found = _with_approvals(conn, conn.execute(q).mappings())
    return [a for a in found if status is None or a.status(now) == status]


def load_agreements(conn: Connection) -> list[Agreement]:
    """Return every agreement (for the policy; revoked ones explain denials)."""
    q = select(sharing_agreements).order_by(sharing_agreements.c.id)
    return _with_approvals(conn, conn.execute(q).mappings())


def _load(conn: Connection, agreement_id: str) -> Agreement:
    row = (
        conn.execute(select(sharing_agreements).where(sharing_agreements.c.id == agreement_id))
        .mappings()
        .one()
    )
    return agreement_from_row(row, _approvals(conn, agreement_id))


def _approvals(conn: Connection, agreement_id: str) -> tuple[Approval, ...]:
    t = sharing_agreement_approvals.c
    rows = conn.execute(
        select(sharing_agreement_approvals)
        .where(t.agreement_id == agreement_id)
        .order_by(t.approved_at, t.user_id)
    ).mappings()
    return tuple(approval_from_row(r) for r in rows)


def _with_approvals(conn: Connection, rows: Iterable[Any]) -> list[Agreement]:
    rows = list(rows)
    t = sharing_agreement_approvals.c
    by_agreement: dict[str, list[Approval]] = {}
    for r in conn.execute(
        select(sharing_agreement_approvals).order_by(t.approved_at, t.user_id)
    ).mappings():
        by_agreement.setdefault(r["agreement_id"], []).append(approval_from_row(r))
    return [agreement_from_row(r, tuple(by_agreement.get(r["id"], ()))) for r in rows]


def _insert_approvals(conn: Connection, a: Agreement) -> None:
    for approval in a.approvals:
        conn.execute(
            insert(sharing_agreement_approvals).values(
                agreement_id=a.id,
                user_id=approval.user_id,
                username=approval.username,
                agency_id=approval.agency_id,
                approved_at=approval.approved_at,
            )
        )


def _save_version(
    conn: Connection, a: Agreement, change: str, now: datetime, by: str | None
) -> None:
    conn.execute(
        insert(sharing_agreement_versions).values(
            agreement_id=a.id,
            version=a.version,
            change=change,
            snapshot=a.to_dict(),
            changed_at=now,
            changed_by=by,
        )
    )


def _audit_change(
    store: Store, conn: Connection, by: Actor | None, a: Agreement, change: str
) -> None:
    owners = {a.owner}
    if a.grantee.kind is GranteeKind.AGENCY:
        owners.add(a.grantee.id)
    details = {"change": change, "agreement": a.to_dict()}
    audit_change(store, conn, by, "agreement", owners, details)


def agreement_history(store: Store, agreement_id: str) -> list[dict[str, Any]]:
    """Return the stored versions of an agreement, oldest first."""
    v = sharing_agreement_versions.c
    with store.connect() as conn:
        rows = conn.execute(
            select(sharing_agreement_versions)
            .where(v.agreement_id == agreement_id)
            .order_by(v.version)
        ).mappings()
        return [dict(r) for r in rows]
