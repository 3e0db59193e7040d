"""Authentication events, handed to an optional sink for the audit log.

Every function in :mod:`crossbeat.auth` that signs someone in, refuses them, or
changes an account, session or token takes ``events: AuthEventSink | None``. The sink
is called inside the same database transaction as the change, so an audit record
and the change it describes commit (or roll back) together; a failing sink aborts the
change. :mod:`crossbeat.auth` does not import the audit log; the application wires a
sink that writes to it.

Event actions
-------------
``login.password_ok`` (password accepted, one-time code pending), ``login.succeeded``,
``login.failed`` (detail ``stage``: password, totp, replay, locked, disabled,
challenge), ``account.locked``, ``account.unlocked``, ``account.created``,
``account.disabled`` (detail ``reason``: admin, inactive), ``account.enabled``,
``account.roles_changed``, ``account.password_changed``, ``account.totp_reset``,
``session.ended`` (detail ``reason``: logout, idle, absolute, disabled, password),
``token.created``, ``token.revoked``, ``token.refused``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection


@dataclass(frozen=True)
class AuthEvent:
    """One thing that happened in authentication or account management.

    Attributes
    ----------
    action
        What happened, e.g. ``login.failed`` (see the module docstring for the list).
    at
        When (from the clock the operation used).
    outcome
        ``success`` or ``failure``.
    actor_user_id
        Who did it: the signed-in administrator, the user signing in, or None for the
        local operator / an unknown username.
    subject_user_id
        The account affected, if any.
    username
        The username concerned, as stored (or as typed, cut to 64 characters, when
        no such account exists).
    agency_id
        The agency of the account or token concerned.
    detail
        Extra facts (never a secret).
    """

    action: str
    at: datetime
    outcome: str = "success"
    actor_user_id: str | None = None
    subject_user_id: str | None = None
    username: str | None = None
    agency_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


class AuthEventSink(Protocol):
    """Receives each :class:`AuthEvent` inside the transaction of the change."""

    def __call__(self, conn: Connection, event: AuthEvent) -> None:
        """Record ``event`` using ``conn`` (the open transaction)."""
        ...


def emit(sink: AuthEventSink | None, conn: Connection, event: AuthEvent) -> None:
    """Pass ``event`` to ``sink`` if there is one."""
    if sink is not None:
        sink(conn, event)
