"""Shared set-up for the tests/test_auth_*.py modules: agencies, users, codes, snapshots."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select

from crossbeat.auth import accounts, login, totp
from crossbeat.auth.accounts import Enrolment
from crossbeat.auth.tables import (
    api_tokens,
    login_failures,
    mfa_challenges,
    user_roles,
    user_sessions,
    users,
)
from crossbeat.clock import FrozenClock
from crossbeat.store import Store
from crossbeat.store.schema import agencies

# On a 30-second step boundary, so "same step" and "next step" are easy to reach.
START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
PASSWORD = "violet kettle under the bridge"
AUTH_TABLES = (users, user_roles, login_failures, mfa_challenges, user_sessions, api_tokens)


def add_agencies(store: Store, clock: FrozenClock) -> None:
    """Register the agencies ``metro`` and ``county``."""
    with store.begin() as conn:
        conn.execute(
            insert(agencies),
            [
                {"id": "metro", "name": "Metro Police", "created_at": clock.now()},
                {"id": "county", "name": "County Sheriff", "created_at": clock.now()},
            ],
        )


def make_user(
    store: Store,
    clock: FrozenClock,
    username: str = "j.smith",
    *,
    roles: tuple[str, ...] = ("analyst",),
    agency: str = "metro",
    password: str = PASSWORD,
) -> Enrolment:
    """Create a user and return its enrolment (with the TOTP seed)."""
    return accounts.create_user(store, agency, username, password, roles, clock=clock)


def code(enrolment: Enrolment, clock: FrozenClock) -> str:
    """Return the current one-time code of a user."""
    return totp.code_at(enrolment.totp_secret, clock.now())


def sign_in(store: Store, clock: FrozenClock, enrolment: Enrolment, password: str = PASSWORD):
    """Sign a user in with password and current code, moving to a fresh 30 s step first."""
    clock.advance(seconds=30)
    return login.login(
        store, enrolment.user.username, password, code(enrolment, clock), clock=clock
    )


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Return every row of the auth tables, for 'nothing changed' assertions."""
    with store.connect() as conn:
        return {
            t.name: sorted(tuple(map(repr, row)) for row in conn.execute(select(t)))
            for t in AUTH_TABLES
        }


def count(store: Store, table) -> int:  # type: ignore[no-untyped-def]
    """Return how many rows a table holds."""
    with store.connect() as conn:
        return len(conn.execute(select(table)).all())
