"""Sessions on a controlled clock: idle and absolute timeouts, logout, ending on account changes."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from crossbeat.auth import accounts, sessions
from crossbeat.auth.errors import SessionExpired
from crossbeat.auth.tables import user_sessions
from crossbeat.clock import FrozenClock
from tests.auth_support import START, add_agencies, make_user, sign_in


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def auth(store, clock):
    add_agencies(store, clock)
    return store


@pytest.fixture
def user(auth, clock):
    return make_user(auth, clock)


def expect_end(store, token, clock, reason):
    with pytest.raises(SessionExpired) as info:
        sessions.validate_session(store, token, clock=clock)
    assert info.value.reason == reason
    return info.value


@pytest.mark.parametrize(("idle", "alive"), [(29, True), (30, False), (31, False)])
def test_idle_timeout(auth, clock, user, idle, alive):
    token = sign_in(auth, clock, user).token
    clock.advance(minutes=idle)
    if alive:
        sessions.validate_session(auth, token, clock=clock)
    else:
        error = expect_end(auth, token, clock, "idle")
        assert "30 minutes" in str(error) and "sign in again" in str(error)
        clock.advance(seconds=1)
        expect_end(auth, token, clock, "idle")  # stays ended, with its reason


def test_activity_restarts_the_idle_timer(auth, clock, user):
    token = sign_in(auth, clock, user).token
    for _ in range(5):
        clock.advance(minutes=29)
        session = sessions.validate_session(auth, token, clock=clock)
        assert session.idle_expires_at == clock.now() + sessions.IDLE_TIMEOUT


def test_polling_without_touch_does_not_keep_a_session_alive(auth, clock, user):
    token = sign_in(auth, clock, user).token
    clock.advance(minutes=20)
    sessions.validate_session(auth, token, touch=False, clock=clock)
    clock.advance(minutes=10)
    expect_end(auth, token, clock, "idle")


def test_absolute_timeout_despite_activity(auth, clock, user):
    result = sign_in(auth, clock, user)
    started = clock.now()
    assert result.session.expires_at == started + sessions.ABSOLUTE_TIMEOUT
    while clock.now() < started + sessions.ABSOLUTE_TIMEOUT - sessions.IDLE_TIMEOUT:
        clock.advance(minutes=20)
        sessions.validate_session(auth, result.token, clock=clock)
    clock.set(started + sessions.ABSOLUTE_TIMEOUT - timedelta(minutes=1))  # 11:59 in
    sessions.validate_session(auth, result.token, clock=clock)
    clock.set(started + sessions.ABSOLUTE_TIMEOUT)
    expect_end(auth, result.token, clock, "absolute")


def test_logout_invalidates_only_that_session(auth, clock, user):
    first = sign_in(auth, clock, user).token
    second = sign_in(auth, clock, user).token
    assert sessions.logout(auth, first, clock=clock) is True
    expect_end(auth, first, clock, "logout")
    sessions.validate_session(auth, second, clock=clock)
    assert sessions.logout(auth, first, clock=clock) is False  # twice is not an error
    assert sessions.logout(auth, "cbs_not-a-session", clock=clock) is False


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda s, c: accounts.disable_user(s, "j.smith", clock=c), "disabled"),
        (
            lambda s, c: accounts.set_password(s, "j.smith", "a new long passphrase", clock=c),
            "password",
        ),
        (lambda s, c: accounts.reset_totp(s, "j.smith", clock=c), "totp_reset"),
    ],
    ids=["disable", "password", "totp"],
)
def test_account_changes_end_sessions(auth, clock, user, change, reason):
    token = sign_in(auth, clock, user).token
    change(auth, clock)
    expect_end(auth, token, clock, reason)


def test_only_the_hash_of_the_token_is_stored(auth, clock, user):
    result = sign_in(auth, clock, user)
    with auth.connect() as conn:
        rows = conn.execute(select(user_sessions)).mappings().all()
    assert len(rows) == 1
    assert rows[0]["id"] == hashlib.sha256(result.token.encode()).hexdigest()
    assert result.token not in repr(dict(rows[0]))
    assert result.session.id == rows[0]["id"]


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.one_of(st.text(max_size=80), st.text(max_size=60).map("cbs_".__add__)))
def test_made_up_tokens_are_refused(auth, clock, token):
    with pytest.raises(SessionExpired) as info:
        sessions.validate_session(auth, token, clock=clock)
    assert info.value.reason == "unknown"


def test_session_gives_the_actor(auth, clock):
    admin = make_user(auth, clock, "boss", roles=("agency_admin",))
    session = sessions.validate_session(auth, sign_in(auth, clock, admin).token, clock=clock)
    actor = session.actor()
    assert (actor.username, actor.agency_id, actor.user_id) == ("boss", "metro", admin.user.id)
    # the actor can manage its own agency's users
    accounts.create_user(auth, "metro", "new.officer", "blue heron at dawn", ["officer"], by=actor)
