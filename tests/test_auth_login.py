"""Signing in on a controlled clock: MFA required, TOTP replay, lockout and unlock, inactivity."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from crossbeat.auth import accounts, login, sessions, totp
from crossbeat.auth.errors import (
    AccountDisabled,
    AccountLocked,
    InvalidCredentials,
    MfaChallengeExpired,
    MfaRequired,
    SessionExpired,
    TotpReplay,
)
from crossbeat.auth.events import AuthEvent
from crossbeat.auth.tables import login_failures, user_sessions
from crossbeat.clock import FrozenClock
from tests.auth_support import PASSWORD, START, add_agencies, code, count, make_user, sign_in


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def auth(store, clock):
    add_agencies(store, clock)
    return store


def failures(store) -> list[str]:
    with store.connect() as conn:
        return list(
            conn.execute(select(login_failures.c.stage).order_by(login_failures.c.id)).scalars()
        )


# -- MFA required ------------------------------------------------------------------------
def test_password_alone_issues_no_session(auth, clock):
    user = make_user(auth, clock)
    challenge = login.begin_login(auth, "j.smith", PASSWORD, clock=clock)
    assert count(auth, user_sessions) == 0
    with pytest.raises(SessionExpired):
        sessions.validate_session(auth, challenge.ticket, clock=clock)
    with pytest.raises(MfaRequired) as info:
        login.login(auth, "j.smith", PASSWORD, None, clock=clock)
    assert count(auth, user_sessions) == 0
    # The challenge carried by MfaRequired completes with the code.
    result = login.complete_login(auth, info.value.challenge.ticket, code(user, clock), clock=clock)
    assert sessions.validate_session(auth, result.token, clock=clock).username == "j.smith"


def test_full_sign_in_gives_session_with_agency_and_roles(auth, clock):
    user = make_user(auth, clock, "Ann.Lee", roles=("analyst", "supervisor"))
    result = sign_in(auth, clock, user)
    session = sessions.validate_session(auth, result.token, clock=clock)
    assert (session.username, session.agency_id) == ("ann.lee", "metro")
    assert {r.value for r in session.roles} == {"analyst", "supervisor"}
    assert accounts.get_user(auth, "ann.lee").last_login_at == clock.now()


def test_challenge_is_single_use(auth, clock):
    user = make_user(auth, clock)
    challenge = login.begin_login(auth, "j.smith", PASSWORD, clock=clock)
    login.complete_login(auth, challenge.ticket, code(user, clock), clock=clock)
    clock.advance(seconds=30)
    with pytest.raises(MfaChallengeExpired):
        login.complete_login(auth, challenge.ticket, code(user, clock), clock=clock)


@pytest.mark.parametrize(("minutes", "ok"), [(4, True), (5, False)])
def test_challenge_expires_after_five_minutes(auth, clock, minutes, ok):
    user = make_user(auth, clock)
    challenge = login.begin_login(auth, "j.smith", PASSWORD, clock=clock)
    clock.advance(minutes=minutes)
    if ok:
        login.complete_login(auth, challenge.ticket, code(user, clock), clock=clock)
    else:
        with pytest.raises(MfaChallengeExpired):
            login.complete_login(auth, challenge.ticket, code(user, clock), clock=clock)
        assert count(auth, user_sessions) == 0


# -- TOTP ------------------------------------------------------------------------------------
def test_same_code_twice_in_one_step_is_refused(auth, clock):
    user = make_user(auth, clock)
    first = code(user, clock)
    login.login(auth, "j.smith", PASSWORD, first, clock=clock)
    clock.advance(seconds=10)  # still the same 30-second step
    assert code(user, clock) == first
    with pytest.raises(TotpReplay):
        login.login(auth, "j.smith", PASSWORD, first, clock=clock)
    assert failures(auth) == ["replay"]
    assert count(auth, user_sessions) == 1


def test_older_code_is_refused_after_a_newer_one(auth, clock):
    user = make_user(auth, clock)
    other = make_user(auth, clock, "b.jones")
    old_user_code, old_other_code = code(user, clock), code(other, clock)
    clock.advance(seconds=30)
    login.login(auth, "j.smith", PASSWORD, code(user, clock), clock=clock)
    # One step old is inside the drift window: a user who has not used a newer code
    # may still use it ...
    login.login(auth, "b.jones", PASSWORD, old_other_code, clock=clock)
    # ... but not one who already used the newer step.
    with pytest.raises(TotpReplay):
        login.login(auth, "j.smith", PASSWORD, old_user_code, clock=clock)


def test_code_two_steps_old_is_wrong(auth, clock):
    user = make_user(auth, clock)
    stale = code(user, clock)
    clock.advance(seconds=60)
    with pytest.raises(InvalidCredentials) as info:
        login.login(auth, "j.smith", PASSWORD, stale, clock=clock)
    assert type(info.value) is InvalidCredentials


def test_wrong_code_counts_as_failure_and_keeps_challenge(auth, clock):
    user = make_user(auth, clock)
    challenge = login.begin_login(auth, "j.smith", PASSWORD, clock=clock)
    right = code(user, clock)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    with pytest.raises(InvalidCredentials):
        login.complete_login(auth, challenge.ticket, wrong, clock=clock)
    assert failures(auth) == ["totp"]
    login.complete_login(auth, challenge.ticket, right, clock=clock)
    assert failures(auth) == []  # a successful sign-in clears the counter


SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
WINDOW = {totp.code_at(SECRET, START + timedelta(seconds=30 * d)) for d in (-1, 0, 1)}


@given(
    st.one_of(
        st.text(max_size=12),
        st.integers(0, 999_999).map(lambda n: f"{n:06d}"),
        st.sampled_from(sorted(WINDOW)),
    )
)
def test_only_codes_of_the_drift_window_match(typed):
    step = totp.matching_step(SECRET, typed, START)
    assert (step is not None) == (typed.strip().replace(" ", "") in WINDOW)


# -- lockout -----------------------------------------------------------------------------------
def test_five_failures_within_fifteen_minutes_lock(auth, clock):
    user = make_user(auth, clock)
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            login.login(auth, "j.smith", "wrong password!", "000000", clock=clock)
        clock.advance(minutes=3)
    # The 5th, 12 minutes after the first, locks; the password step says so no more
    # than it says whether the account exists (issue #7, finding 8).
    with pytest.raises(InvalidCredentials):
        login.login(auth, "j.smith", "wrong password!", "000000", clock=clock)
    assert accounts.get_user(auth, "j.smith").locked
    clock.advance(days=2)  # no automatic unlock
    with pytest.raises(InvalidCredentials):
        sign_in(auth, clock, user)
    assert count(auth, user_sessions) == 0


def test_five_failures_spread_over_twenty_minutes_do_not_lock(auth, clock):
    user = make_user(auth, clock)
    for i in range(5):
        if i:
            clock.advance(minutes=5)
        with pytest.raises(InvalidCredentials) as info:
            login.login(auth, "j.smith", "wrong password!", "000000", clock=clock)
        assert not isinstance(info.value, AccountLocked)
    assert not accounts.get_user(auth, "j.smith").locked
    sign_in(auth, clock, user)


def test_wrong_codes_and_passwords_count_together(auth, clock):
    user = make_user(auth, clock)
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            login.begin_login(auth, "j.smith", "not the password", clock=clock)
    challenge = login.begin_login(auth, "j.smith", PASSWORD, clock=clock)
    with pytest.raises(InvalidCredentials):
        login.complete_login(auth, challenge.ticket, "123456x", clock=clock)
    bad = f"{(int(code(user, clock)) + 7) % 1_000_000:06d}"
    with pytest.raises(AccountLocked):
        login.complete_login(auth, challenge.ticket, bad, clock=clock)
    assert failures(auth) == ["password"] * 3 + ["totp"] * 2
    with pytest.raises(AccountLocked):  # even the right code on the open challenge
        login.complete_login(auth, challenge.ticket, code(user, clock), clock=clock)


def test_locked_account_does_not_reveal_the_password(auth, clock):
    user = make_user(auth, clock)
    for _ in range(5):
        with pytest.raises((InvalidCredentials, AccountLocked)):
            login.begin_login(auth, "j.smith", "not the password", clock=clock)
    with pytest.raises(InvalidCredentials) as wrong:
        login.login(auth, "j.smith", "still not it", "000000", clock=clock)
    with pytest.raises(InvalidCredentials) as right:
        login.login(auth, "j.smith", PASSWORD, code(user, clock), clock=clock)
    with pytest.raises(InvalidCredentials) as unknown:
        login.login(auth, "no.such.user", PASSWORD, "000000", clock=clock)
    assert str(wrong.value) == str(right.value) == str(unknown.value)
    assert len(failures(auth)) == 5  # attempts on a locked account are not counted again


def test_admin_unlock(auth, clock):
    user = make_user(auth, clock)
    for _ in range(5):
        with pytest.raises((InvalidCredentials, AccountLocked)):
            login.begin_login(auth, "j.smith", "not the password", clock=clock)
    assert accounts.get_user(auth, "j.smith").locked
    unlocked = accounts.unlock_user(auth, "J.Smith", clock=clock)
    assert not unlocked.locked
    # The old failures no longer count: one more failure does not lock again.
    with pytest.raises(InvalidCredentials) as info:
        login.begin_login(auth, "j.smith", "not the password", clock=clock)
    assert not isinstance(info.value, AccountLocked)
    sign_in(auth, clock, user)


def test_success_resets_the_failure_count(auth, clock):
    user = make_user(auth, clock)
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            login.begin_login(auth, "j.smith", "not the password", clock=clock)
    sign_in(auth, clock, user)
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            login.begin_login(auth, "j.smith", "not the password", clock=clock)
    assert not accounts.get_user(auth, "j.smith").locked


def test_unknown_user_and_wrong_password_look_the_same(auth, clock):
    make_user(auth, clock)
    with pytest.raises(InvalidCredentials) as unknown:
        login.begin_login(auth, "nobody", PASSWORD, clock=clock)
    with pytest.raises(InvalidCredentials) as wrong:
        login.begin_login(auth, "j.smith", "not the password", clock=clock)
    assert type(unknown.value) is type(wrong.value)
    assert str(unknown.value) == str(wrong.value)
    assert "username" in str(unknown.value) and "password" in str(unknown.value)


def test_events_are_emitted_inside_the_transaction(auth, clock):
    user = make_user(auth, clock)
    seen: list[AuthEvent] = []
    sink = lambda conn, event: seen.append(event)  # noqa: E731
    with pytest.raises(InvalidCredentials):
        login.begin_login(auth, "j.smith", "not the password", clock=clock, events=sink)
    sign_in(auth, clock, user)  # no sink: nothing recorded
    clock.advance(seconds=30)
    login.login(auth, "j.smith", PASSWORD, code(user, clock), clock=clock, events=sink)
    assert [e.action for e in seen] == [
        "login.failed",
        "login.password_ok",
        "login.succeeded",
    ]
    assert seen[0].detail == {"stage": "password"} and seen[0].outcome == "failure"
    assert all(e.subject_user_id == user.user.id for e in seen)


def test_failing_event_sink_rolls_back_the_change(auth, clock):
    user = make_user(auth, clock)

    def broken(conn, event):
        raise RuntimeError("audit log unavailable")

    clock.advance(seconds=30)
    with pytest.raises(RuntimeError):
        login.login(auth, "j.smith", PASSWORD, code(user, clock), clock=clock, events=broken)
    assert count(auth, user_sessions) == 0


# -- disabled and inactive accounts --------------------------------------------------------------
def test_disabled_account_cannot_sign_in(auth, clock):
    user = make_user(auth, clock)
    accounts.disable_user(auth, "j.smith", clock=clock)
    with pytest.raises(AccountDisabled):
        sign_in(auth, clock, user)
    with pytest.raises(InvalidCredentials):  # a wrong password still says only that
        login.begin_login(auth, "j.smith", "not the password", clock=clock)
    accounts.enable_user(auth, "j.smith", clock=clock)
    sign_in(auth, clock, user)


def test_ninety_days_unused_disables_at_sign_in(auth, clock):
    user = make_user(auth, clock)
    clock.advance(days=89)
    sign_in(auth, clock, user)  # 89 days after creation: fine, and the period restarts
    clock.advance(days=89, hours=23)
    sign_in(auth, clock, user)
    clock.advance(days=90)
    with pytest.raises(AccountDisabled):
        sign_in(auth, clock, user)
    disabled = accounts.get_user(auth, "j.smith")
    assert (disabled.status, disabled.disabled_reason) == ("disabled", "inactive")
    accounts.enable_user(auth, "j.smith", clock=clock)
    sign_in(auth, clock, user)


def test_disable_inactive_sweep(auth, clock):
    idle = make_user(auth, clock, "idle.user")
    busy = make_user(auth, clock, "busy.user")
    clock.advance(days=60)
    result = sign_in(auth, clock, busy)
    clock.advance(days=30)
    assert [u.username for u in accounts.disable_inactive(auth, clock=clock)] == ["idle.user"]
    assert accounts.get_user(auth, "busy.user").active
    with pytest.raises(AccountDisabled):
        sign_in(auth, clock, idle)
    clock.advance(days=60)
    assert [u.username for u in accounts.disable_inactive(auth, clock=clock)] == ["busy.user"]
    assert accounts.disable_inactive(auth, clock=clock) == []
    with pytest.raises(SessionExpired):
        sessions.validate_session(auth, result.token, clock=clock)


def test_lockout_counts_failures_from_every_process(auth, clock):
    make_user(auth, clock)
    other = type(auth).from_url(auth.url)  # a second engine, as another worker process has
    try:
        for i in range(5):
            with pytest.raises((InvalidCredentials, AccountLocked)) as info:
                login.begin_login((auth, other)[i % 2], "j.smith", "not the password", clock=clock)
        assert not isinstance(info.value, AccountLocked)  # the lock is not told
        assert accounts.get_user(other, "j.smith").locked
    finally:
        other.dispose()
