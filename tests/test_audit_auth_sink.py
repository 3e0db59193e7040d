"""Sign-ins, refusals and account changes land in the audit log with their agency."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from crossbeat.audit import Action, Outcome, events_for_owner, verify
from crossbeat.audit.auth_sink import audit_event_for, auth_sink
from crossbeat.auth import accounts, login
from crossbeat.auth.errors import AuthError
from crossbeat.auth.events import AuthEvent
from crossbeat.clock import FrozenClock
from crossbeat.store.schema import agencies

START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
PASSWORD = "violet kettle under the bridge"


def test_logins_and_account_changes_are_audited(store):
    clock = FrozenClock(START)
    store.clock = clock
    with store.begin() as conn:
        conn.execute(insert(agencies).values(id="metro", name="Metro", created_at=START))
    sink = auth_sink(store, source_ip="198.51.100.20")
    accounts.create_user(store, "metro", "j.smith", PASSWORD, ["analyst"], clock=clock, events=sink)
    with pytest.raises(AuthError):
        login.begin_login(store, "j.smith", "wrong password", clock=clock, events=sink)
    with pytest.raises(AuthError):
        login.begin_login(store, "nobody", "wrong password", clock=clock, events=sink)
    login.begin_login(store, "j.smith", PASSWORD, clock=clock, events=sink)

    metro = events_for_owner(store, "metro")
    assert [(e.action, e.outcome) for e in metro] == [
        (Action.LOGIN, Outcome.ALLOWED),
        (Action.LOGIN_FAILED, Outcome.DENIED),
        (Action.ACCOUNT_CHANGE, Outcome.ALLOWED),
    ]
    created = metro[-1]
    assert created.actor == "system"  # the local operator
    assert created.details["auth_action"] == "account.created"
    assert created.details["username"] == "j.smith"
    assert created.source_ip == "198.51.100.20"
    failed = metro[1]
    assert failed.actor == "public" and failed.details["stage"] == "password"
    assert failed.record_ids == metro[0].record_ids  # the account concerned
    assert verify(store).ok
    assert verify(store).tree_size == 4  # the unknown-user attempt has no owner agency


def test_odd_detail_values_never_abort_the_change():
    event = AuthEvent(
        action="account.roles_changed",
        at=START,
        detail={"ratio": 0.5, "when": START, "roles": frozenset({"officer"}), "x": b"\x00"},
    )
    audit = audit_event_for(event)
    assert audit.details["ratio"] == "0.5"
    assert audit.details["when"] == START.isoformat()
    assert audit.details["roles"] == ["officer"]
    assert audit.actor == "system" and audit.owner_agencies == ()
