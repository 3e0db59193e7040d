"""Account management: what it stores, who may do it, and bad input that changes nothing."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from crossbeat.auth import accounts, tokens
from crossbeat.auth.errors import (
    AccountError,
    DuplicateUsername,
    InvalidPurpose,
    InvalidUsername,
    PermissionDenied,
    UnknownAgency,
    UnknownRole,
    UnknownToken,
    UnknownUser,
    WeakPassword,
)
from crossbeat.auth.roles import Action, Actor, Role, decide
from crossbeat.clock import FrozenClock
from tests.auth_support import PASSWORD, START, add_agencies, make_user, sign_in, snapshot


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def auth(store, clock):
    add_agencies(store, clock)
    make_user(store, clock, "j.smith", roles=("analyst",))
    return store


def test_create_user_stores_roles_and_enrols_totp(auth, clock):
    enrolment = accounts.create_user(
        auth, "county", "  Deputy.Ray ", PASSWORD, ["officer", "Supervisor"], display_name="Ray"
    )
    user = enrolment.user
    assert (user.username, user.agency_id, user.display_name) == ("deputy.ray", "county", "Ray")
    assert user.roles == {Role.OFFICER, Role.SUPERVISOR}
    assert user.active and not user.locked
    uri = urlparse(enrolment.provisioning_uri)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert parse_qs(uri.query)["secret"] == [enrolment.totp_secret]
    assert parse_qs(uri.query)["issuer"] == ["CrossBeat"]
    assert len(enrolment.totp_secret) == 32
    assert [u.username for u in accounts.list_users(auth)] == ["deputy.ray", "j.smith"]
    assert [u.username for u in accounts.list_users(auth, agency_id="county")] == ["deputy.ray"]


def test_set_roles_replaces_them(auth, clock):
    changed = accounts.set_roles(auth, "J.SMITH", ["auditor", "analyst"], clock=clock)
    assert changed.roles == {Role.AUDITOR, Role.ANALYST}
    assert accounts.get_user(auth, "j.smith").roles == {Role.AUDITOR, Role.ANALYST}


def test_reset_totp_gives_a_new_secret(auth, clock):
    first = accounts.get_user(auth, "j.smith")
    enrolment = accounts.reset_totp(auth, "j.smith", clock=clock)
    assert enrolment.user.id == first.id
    assert enrolment.totp_secret in enrolment.provisioning_uri
    sign_in(auth, clock, enrolment)


# -- bad input changes nothing ----------------------------------------------------------
BAD_INPUT = [
    ("create: unknown agency", UnknownAgency, "crossbeat agency add",
     lambda s: accounts.create_user(s, "nowhere", "a.b", PASSWORD, ["officer"])),
    ("create: duplicate", DuplicateUsername, "choose another",
     lambda s: accounts.create_user(s, "county", "J.Smith", PASSWORD, ["officer"])),
    ("create: unknown role", UnknownRole, "use one of officer, analyst",
     lambda s: accounts.create_user(s, "metro", "a.b", PASSWORD, ["officer", "sheriff"])),
    ("create: no role", UnknownRole, "at least one role",
     lambda s: accounts.create_user(s, "metro", "a.b", PASSWORD, [])),
    ("create: empty username", InvalidUsername, "username is empty",
     lambda s: accounts.create_user(s, "metro", "", PASSWORD, ["officer"])),
    ("create: blank username", InvalidUsername, "username is empty",
     lambda s: accounts.create_user(s, "metro", "   ", PASSWORD, ["officer"])),
    ("create: bad characters", InvalidUsername, "letters, digits",
     lambda s: accounts.create_user(s, "metro", "a b;drop", PASSWORD, ["officer"])),
    ("create: too long", InvalidUsername, "1-64",
     lambda s: accounts.create_user(s, "metro", "a" * 65, PASSWORD, ["officer"])),
    ("create: weak password", WeakPassword, "Choose another",
     lambda s: accounts.create_user(s, "metro", "a.b", "password1", ["officer"])),
    ("roles: unknown user", UnknownUser, "crossbeat user list",
     lambda s: accounts.set_roles(s, "nobody", ["officer"])),
    ("roles: unknown role", UnknownRole, "use one of",
     lambda s: accounts.set_roles(s, "j.smith", ["chief"])),
    ("roles: none", UnknownRole, "at least one role",
     lambda s: accounts.set_roles(s, "j.smith", [])),
    ("roles: empty username", InvalidUsername, "empty",
     lambda s: accounts.set_roles(s, "", ["officer"])),
    ("password: weak", WeakPassword, "shorter than 8",
     lambda s: accounts.set_password(s, "j.smith", "short")),
    ("password: unknown user", UnknownUser, "crossbeat user list",
     lambda s: accounts.set_password(s, "nobody", "a fine long passphrase")),
    ("totp: unknown user", UnknownUser, "crossbeat user list",
     lambda s: accounts.reset_totp(s, "nobody")),
    ("disable: unknown user", UnknownUser, "crossbeat user list",
     lambda s: accounts.disable_user(s, "nobody")),
    ("enable: empty username", InvalidUsername, "empty",
     lambda s: accounts.enable_user(s, "")),
    ("unlock: unknown user", UnknownUser, "crossbeat user list",
     lambda s: accounts.unlock_user(s, "nobody")),
    ("list: unknown agency", UnknownAgency, "crossbeat agency list",
     lambda s: accounts.list_users(s, agency_id="nowhere")),
    ("token: unknown agency", UnknownAgency, "crossbeat agency add",
     lambda s: tokens.create_token(s, "nowhere", "ingest")),
    ("token: unknown purpose", InvalidPurpose, "use one of ingest, read",
     lambda s: tokens.create_token(s, "metro", "everything")),
    ("token: revoke unknown", UnknownToken, "crossbeat token list",
     lambda s: tokens.revoke_token(s, "no-such-token")),
    ("token: list unknown agency", UnknownAgency, "crossbeat agency",
     lambda s: tokens.list_tokens(s, agency_id="nowhere")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("error", "hint", "operation"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT]
)
def test_bad_input_is_a_clear_error_and_changes_nothing(auth, error, hint, operation):
    before = snapshot(auth)
    with pytest.raises(error, match=hint) as info:
        operation(auth)
    assert isinstance(info.value, AccountError)
    assert snapshot(auth) == before


# -- permissions ---------------------------------------------------------------------------------
def actor(store, username: str) -> Actor:
    return accounts.get_user(store, username).actor()


@pytest.fixture
def people(auth, clock):
    make_user(auth, clock, "metro.admin", roles=("agency_admin",))
    make_user(auth, clock, "metro.auditor", roles=("auditor",))
    make_user(auth, clock, "metro.sup", roles=("supervisor",))
    make_user(auth, clock, "county.dep", roles=("officer",), agency="county")
    make_user(auth, clock, "root", roles=("platform_admin",), agency="county")
    return auth


DENIED = [
    ("analyst creates", "j.smith",
     lambda s, by: accounts.create_user(s, "metro", "x.y", PASSWORD, ["officer"], by=by)),
    ("admin creates in other agency", "metro.admin",
     lambda s, by: accounts.create_user(s, "county", "x.y", PASSWORD, ["officer"], by=by)),
    ("admin grants platform_admin", "metro.admin",
     lambda s, by: accounts.create_user(s, "metro", "x.y", PASSWORD, ["platform_admin"], by=by)),
    ("admin promotes to platform_admin", "metro.admin",
     lambda s, by: accounts.set_roles(s, "j.smith", ["platform_admin"], by=by)),
    ("admin disables other agency", "metro.admin",
     lambda s, by: accounts.disable_user(s, "county.dep", by=by)),
    ("auditor disables", "metro.auditor",
     lambda s, by: accounts.disable_user(s, "j.smith", by=by)),
    ("supervisor unlocks", "metro.sup",
     lambda s, by: accounts.unlock_user(s, "j.smith", by=by)),
    ("admin resets password in other agency", "metro.admin",
     lambda s, by: accounts.set_password(s, "county.dep", "a fine long passphrase", by=by)),
    ("admin lists other agency", "metro.admin",
     lambda s, by: accounts.list_users(s, agency_id="county", by=by)),
    ("officer lists", "county.dep",
     lambda s, by: accounts.list_users(s, by=by)),
    ("auditor creates token", "metro.auditor",
     lambda s, by: tokens.create_token(s, "metro", "ingest", by=by)),
    ("admin creates token elsewhere", "metro.admin",
     lambda s, by: tokens.create_token(s, "county", "ingest", by=by)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("username", "operation"), [c[1:] for c in DENIED], ids=[c[0] for c in DENIED]
)
def test_permission_denied_changes_nothing(people, username, operation):
    by = actor(people, username)
    before = snapshot(people)
    with pytest.raises(PermissionDenied, match=username):
        operation(people, by)
    assert snapshot(people) == before


def test_allowed_management(people, clock):
    admin = actor(people, "metro.admin")
    created = accounts.create_user(people, "metro", "new.one", PASSWORD, ["officer"], by=admin)
    accounts.set_roles(people, "new.one", ["officer", "agency_admin"], by=admin)
    accounts.disable_user(people, "new.one", by=admin)
    assert not accounts.get_user(people, "new.one").active
    assert created.user.agency_id == "metro"
    auditor = actor(people, "metro.auditor")
    assert {u.agency_id for u in accounts.list_users(people, by=auditor)} == {"metro"}
    root = actor(people, "root")
    accounts.set_roles(people, "j.smith", ["platform_admin"], by=root)
    assert len(accounts.list_users(people, by=root)) == 7  # every agency
    new = tokens.create_token(people, "metro", "ingest", by=admin)
    tokens.revoke_token(people, new.token.id, by=root)


def test_decisions_carry_reasons():
    admin = Actor("u1", "ann", "metro", frozenset({Role.AGENCY_ADMIN}))
    assert decide(admin, Action.MANAGE_USERS, "metro").reason == "agency_admin of agency 'metro'"
    assert "only in their own agency" in decide(admin, Action.MANAGE_USERS, "county").reason
    assert decide(None, Action.MANAGE_TOKENS, "x").allowed
    officer = Actor("u2", "bob", "metro", frozenset({Role.OFFICER}))
    assert decide(officer, Action.READ_USERS, "metro").reason == "bob (officer) may not users.read"


def test_duplicate_username_across_agencies_and_case(auth):
    before = snapshot(auth)
    for name in ("j.smith", "J.SMITH", " j.smith "):
        with pytest.raises(DuplicateUsername):
            accounts.create_user(auth, "county", name, PASSWORD, ["officer"])
    assert snapshot(auth) == before
