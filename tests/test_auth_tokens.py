"""API tokens: shown once, stored hashed, scoped to one agency and purpose, revocable."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from crossbeat.auth import sessions, tokens
from crossbeat.auth.errors import SessionExpired, TokenInvalid, TokenScopeError
from crossbeat.auth.tables import api_tokens
from crossbeat.clock import FrozenClock
from tests.auth_support import START, add_agencies, make_user, sign_in


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def auth(store, clock):
    add_agencies(store, clock)
    return store


def test_secret_is_shown_once_and_stored_hashed(auth, clock):
    new = tokens.create_token(auth, "metro", "ingest", label=" RMS nightly ", clock=clock)
    assert new.secret.startswith("cbt_") and len(new.secret) >= 40
    assert (new.token.agency_id, new.token.purpose, new.token.label) == (
        "metro",
        "ingest",
        "RMS nightly",
    )
    with auth.connect() as conn:
        row = conn.execute(select(api_tokens)).mappings().one()
    assert row["secret_hash"] == hashlib.sha256(new.secret.encode()).hexdigest()
    assert all(new.secret not in str(value) for value in row.values())
    assert "secret" not in str(new.token.as_dict()).replace("secret_hash", "")


def test_token_works_for_its_agency_and_purpose(auth, clock):
    new = tokens.create_token(auth, "metro", "ingest", clock=clock)
    clock.advance(minutes=5)
    used = tokens.authenticate_token(
        auth, new.secret, purpose="ingest", agency_id="metro", clock=clock
    )
    assert used.id == new.token.id and used.last_used_at == clock.now()
    assert tokens.authenticate_token(auth, new.secret, purpose="ingest", clock=clock).active


@pytest.mark.parametrize(
    ("purpose", "agency", "message"),
    [
        ("read", None, "for ingest, not read"),
        ("ingest", "county", "acts for agency 'metro', not 'county'"),
    ],
)
def test_token_out_of_scope_is_refused(auth, clock, purpose, agency, message):
    new = tokens.create_token(auth, "metro", "ingest", clock=clock)
    with pytest.raises(TokenScopeError, match=message):
        tokens.authenticate_token(auth, new.secret, purpose=purpose, agency_id=agency, clock=clock)
    assert tokens.list_tokens(auth)[0].last_used_at is None


def test_revoked_token_stops_working_at_once(auth, clock):
    keep = tokens.create_token(auth, "metro", "read", clock=clock)
    new = tokens.create_token(auth, "metro", "ingest", clock=clock)
    tokens.authenticate_token(auth, new.secret, purpose="ingest", clock=clock)
    clock.advance(hours=1)
    revoked = tokens.revoke_token(auth, new.token.id, clock=clock)
    assert revoked.revoked_at == clock.now() and not revoked.active
    with pytest.raises(TokenInvalid):
        tokens.authenticate_token(auth, new.secret, purpose="ingest", clock=clock)
    clock.advance(hours=1)
    again = tokens.revoke_token(auth, new.token.id, clock=clock)  # changes nothing
    assert again.revoked_at == revoked.revoked_at
    tokens.authenticate_token(auth, keep.secret, purpose="read", clock=clock)


@pytest.mark.parametrize("secret", ["", "cbt_", "cbt_made-up", "cbs_x", "Bearer cbt_x", "x" * 500])
def test_made_up_secrets_are_refused(auth, clock, secret):
    tokens.create_token(auth, "metro", "ingest", clock=clock)
    with pytest.raises(TokenInvalid):
        tokens.authenticate_token(auth, secret, purpose="ingest", clock=clock)


def test_tokens_and_sessions_are_not_interchangeable(auth, clock):
    new = tokens.create_token(auth, "metro", "read", clock=clock)
    with pytest.raises(SessionExpired):
        sessions.validate_session(auth, new.secret, clock=clock)
    session = sign_in(auth, clock, make_user(auth, clock))
    with pytest.raises(TokenInvalid):
        tokens.authenticate_token(auth, session.token, purpose="read", clock=clock)


def test_list_tokens_by_agency(auth, clock):
    a = tokens.create_token(auth, "metro", "ingest", clock=clock)
    clock.advance(seconds=1)
    b = tokens.create_token(auth, "county", "read", clock=clock)
    clock.advance(seconds=1)
    c = tokens.create_token(auth, "metro", "read", clock=clock)
    assert [t.id for t in tokens.list_tokens(auth)] == [c.token.id, b.token.id, a.token.id]
    assert [t.id for t in tokens.list_tokens(auth, agency_id="metro")] == [c.token.id, a.token.id]


def test_last_used_is_recorded_at_most_once_a_minute(auth, clock):
    new = tokens.create_token(auth, "metro", "ingest", clock=clock)
    first = tokens.authenticate_token(auth, new.secret, purpose="ingest", clock=clock).last_used_at
    clock.advance(seconds=20)
    assert (
        tokens.authenticate_token(auth, new.secret, purpose="ingest", clock=clock).last_used_at
        == first
    )
    clock.advance(seconds=40)
    later = tokens.authenticate_token(auth, new.secret, purpose="ingest", clock=clock).last_used_at
    assert later == clock.now()
