"""Password policy (length, banned list, context) and argon2id hashing without truncation."""

from __future__ import annotations

import unicodedata

import pytest
from argon2 import PasswordHasher
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from crossbeat.auth import accounts, login, passwords
from crossbeat.auth.errors import InvalidCredentials, WeakPassword
from crossbeat.auth.tables import users
from crossbeat.clock import FrozenClock
from tests.auth_support import PASSWORD, START, add_agencies, code, make_user, sign_in

#: Hashing here uses the production argon2id parameters (the other tests use the cheapest).
pytestmark = pytest.mark.argon2_production


def test_length_limits():
    assert passwords.password_problems("seven c") == ["it is shorter than 8 characters"]
    assert passwords.password_problems("eight ch") == []
    assert passwords.password_problems("x" * 255 + "y") == []
    assert "it is longer than 256 characters" in passwords.password_problems("xy" * 129)


@pytest.mark.parametrize(
    "password",
    ["password", "Password1!", "P@ssw0rd", "qwerty123", "Dragon2024", "iloveyou!!", "12345678",
     "abcdefgh", "aaaaaaaa", "abcabcabc", "87654321", "a1234567", "Letmein!", "trustno1"],
)  # fmt: skip
def test_common_and_patterned_passwords_are_refused(password):
    with pytest.raises(WeakPassword) as info:
        passwords.check_password(password)
    assert info.value.reasons
    assert "Choose another" in str(info.value)


@pytest.mark.parametrize(
    "password", ["correct horse battery staple", "Tr0ub4dor&3 zebra", "mauve-kettle-42-orbit"]
)
def test_unusual_passwords_pass(password):
    passwords.check_password(password, context=["j.smith", "metro", "Metro Police"])


def test_context_words_are_refused_with_every_reason():
    with pytest.raises(WeakPassword) as info:
        passwords.check_password("jsmith", context=["jsmith", "metro"])
    assert info.value.reasons == [
        "it is shorter than 8 characters",
        "it contains 'jsmith'",
    ]
    problems = passwords.password_problems("Metro-JSmith-2026", context=["jsmith", "metro"])
    assert problems == ["it contains 'jsmith'", "it contains 'metro'"]


def test_banned_list_is_shipped():
    banned = passwords.banned_passwords()
    assert len(banned) > 3000
    assert {"password", "123456", "qwerty", "letmein"} <= banned
    assert all(word == word.casefold() and not word.startswith("#") for word in banned)


@settings(max_examples=200)
@given(st.text(min_size=8, max_size=40))
def test_policy_reasons_are_consistent(password):
    problems = passwords.password_problems(password)
    nfkc = unicodedata.normalize("NFKC", password)
    assert ("it is shorter than 8 characters" in problems) == (len(nfkc) < 8)
    if nfkc.casefold() in passwords.banned_passwords():
        assert "it is a commonly used password or a small variation of one" in problems


def test_hash_is_argon2id_and_verifies_exactly():
    stored = passwords.hash_password("violet kettle under the bridge")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert passwords.verify_password(stored, "violet kettle under the bridge")
    assert not passwords.verify_password(stored, "violet kettle under the bridgE")
    assert not passwords.verify_password(None, "violet kettle under the bridge")
    assert not passwords.verify_password("not a hash", "violet kettle under the bridge")
    assert not passwords.needs_rehash(stored)


def test_unicode_forms_of_the_same_passphrase_match():
    composed = "café au lait crème"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert passwords.verify_password(passwords.hash_password(composed), decomposed)


# -- through the store -------------------------------------------------------------------------
@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def auth(store, clock):
    add_agencies(store, clock)
    return store


PASSPHRASE = (
    "the quick brown fox jumps over the lazy dog while seven owls "
    "watch quietly from the oak tree at dusk"
)


def test_long_passphrase_is_not_truncated(auth, clock):
    assert len(PASSPHRASE) == 100
    user = make_user(auth, clock, password=PASSPHRASE)
    changed = PASSPHRASE[:79] + ("X" if PASSPHRASE[79] != "X" else "Y") + PASSPHRASE[80:]
    assert len(changed) == 100 and changed != PASSPHRASE
    with pytest.raises(InvalidCredentials):
        login.begin_login(auth, "j.smith", changed, clock=clock)
    with pytest.raises(InvalidCredentials):
        login.begin_login(auth, "j.smith", PASSPHRASE[:99], clock=clock)
    sign_in(auth, clock, user, password=PASSPHRASE)


def test_password_is_stored_only_as_argon2id(auth, clock):
    make_user(auth, clock, password=PASSPHRASE)
    with auth.connect() as conn:
        row = conn.execute(select(users)).mappings().one()
    assert row["password_hash"].startswith("$argon2id$")
    assert all(PASSPHRASE not in str(value) for value in row.values())


def test_change_password_needs_the_current_one(auth, clock):
    user = make_user(auth, clock)
    with pytest.raises(InvalidCredentials):
        accounts.change_password(auth, "j.smith", "not the password", "fresh passphrase here")
    with pytest.raises(WeakPassword):
        accounts.change_password(auth, "j.smith", "violet kettle under the bridge", "password1")
    accounts.change_password(
        auth, "j.smith", "violet kettle under the bridge", "fresh passphrase here", clock=clock
    )
    clock.advance(seconds=30)
    with pytest.raises(InvalidCredentials):
        login.login(
            auth, "j.smith", "violet kettle under the bridge", code(user, clock), clock=clock
        )
    sign_in(auth, clock, user, password="fresh passphrase here")


def test_password_may_not_contain_username_or_agency(auth, clock):
    with pytest.raises(WeakPassword) as info:
        accounts.create_user(auth, "metro", "jsmith", "jsmith likes metro police", ["officer"])
    assert "it contains 'jsmith'" in info.value.reasons
    assert "it contains 'metro'" in info.value.reasons
    assert "it contains 'metro police'" in info.value.reasons


def test_weaker_hash_is_upgraded_at_sign_in(auth, clock):
    make_user(auth, clock)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    assert passwords.needs_rehash(weak)
    with auth.begin() as conn:
        conn.execute(update(users).values(password_hash=weak))
    login.begin_login(auth, "J.SMITH", PASSWORD, clock=clock)  # any case signs in
    with auth.connect() as conn:
        stored = conn.execute(select(users.c.password_hash)).scalar_one()
    assert stored != weak and not passwords.needs_rehash(stored)
    assert passwords.verify_password(stored, PASSWORD)
