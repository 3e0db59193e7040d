"""CSRF tokens are bound to the session and compared in constant time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossbeat.auth import sessions
from crossbeat.auth.csrf import check_csrf, csrf_token
from crossbeat.auth.errors import CsrfError, SessionExpired
from crossbeat.clock import FrozenClock
from tests.auth_support import START, add_agencies, make_user, sign_in


def test_token_of_the_session_is_accepted():
    check_csrf("cbs_session-one", csrf_token("cbs_session-one"))
    assert csrf_token("cbs_session-one") == csrf_token("cbs_session-one")
    assert len(csrf_token("cbs_session-one")) == 64


@pytest.mark.parametrize("presented", [None, "", "0" * 64, csrf_token("cbs_session-two")])
def test_other_or_missing_tokens_are_refused(presented):
    with pytest.raises(CsrfError, match="reload the page"):
        check_csrf("cbs_session-one", presented)


@given(st.text(max_size=80))
def test_no_made_up_token_passes(presented):
    with pytest.raises(CsrfError):
        check_csrf("cbs_session-one", presented)


def test_no_session_no_token():
    with pytest.raises(CsrfError):
        csrf_token("")


def test_real_sessions_get_different_tokens_and_logout_ends_them(store):
    clock = FrozenClock(START)
    add_agencies(store, clock)
    user = make_user(store, clock)
    first, second = sign_in(store, clock, user).token, sign_in(store, clock, user).token
    assert csrf_token(first) != csrf_token(second)
    with pytest.raises(CsrfError):
        check_csrf(second, csrf_token(first))
    assert csrf_token(first) not in first  # the form token does not reveal the cookie
    sessions.logout(store, first, clock=clock)
    with pytest.raises(SessionExpired):  # the web layer validates the session first
        sessions.validate_session(store, first, clock=clock)
