"""Shared plumbing of the sharing-management operations: errors and the audit of changes.

The permission check is public: :mod:`crossbeat.sharing.permissions`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection

from crossbeat.audit import Action, AuditEvent, append
from crossbeat.auth.roles import Actor
from crossbeat.store import Store


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
