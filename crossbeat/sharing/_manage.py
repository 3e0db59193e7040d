"""Shared plumbing of the sharing-management operations: errors and the audit of changes.

The permission check is public: :mod:`crossbeat.sharing.permissions`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, select

from crossbeat.audit import Action, AuditEvent, append
from crossbeat.auth.roles import Actor
from crossbeat.sharing.scope import Precision, parse_precision
from crossbeat.store import Store
from crossbeat.store.schema import area_layers


class AgreementError(ValueError):
    """A sharing-management operation was given bad input; nothing was changed.

    Attributes
    ----------
    problems
        Every problem found, each naming the field and what to do.
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


def actor_name(by: Actor | None) -> str:
    """Return how a change's author is recorded (username, or the local operator)."""
    return "local-operator" if by is None else by.username


def audit_change(
    store: Store,
    conn: Connection,
    by: Actor | None,
    resource_type: str,
    owners: Iterable[str],
    details: Mapping[str, Any],
) -> None:
    """Append an ``agreement_change`` event inside the caller's transaction."""
    append(
        store,
        AuditEvent(
            action=Action.AGREEMENT_CHANGE,
            actor=by.user_id if by else "system",
            actor_agency=by.agency_id if by else None,
            source_ip=by.source_ip if by else None,
            resource_type=resource_type,
            owner_agencies=tuple(sorted(set(owners))),
            details=dict(details),
        ),
        conn=conn,
    )


def check_area_layer(
    conn: Connection, precision: Precision, owner: str
) -> tuple[Precision, str | None]:
    """Check an ``area:LAYER`` precision of an owner's agreement or public policy.

    Returns
    -------
    tuple
        The precision written one way (the owner's own layer as ``area:LAYER``, so
        that policies compare equal), and a problem when no such layer is registered.
    """
    if precision.layer is None:
        return precision, None
    if precision.layer.startswith(f"{owner}/"):
        precision = parse_precision(f"area:{precision.layer.split('/', 1)[1]}")
    key = precision.layer_key(owner) or ""
    agency, _, name = key.partition("/")
    found = conn.execute(
        select(area_layers.c.id).where(
            (area_layers.c.agency_id == agency) & (area_layers.c.name == name)
        )
    ).first()
    if found is None:
        return precision, (
            f"precision: {precision} names no area layer {key!r} "
            "(register it with crossbeat area add)"
        )
    return precision, None
