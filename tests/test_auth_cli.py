"""The user and token commands: thin wrappers that print secrets once and errors clearly."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from crossbeat.auth import login, totp
from crossbeat.cli import cli
from crossbeat.clock import FrozenClock
from crossbeat.store import open_store
from tests.auth_support import PASSWORD, START, add_agencies, snapshot


@pytest.fixture
def db(db_url):
    add_agencies(open_store(db_url), FrozenClock(START))
    return db_url


def run(db, *args, input=None):
    return CliRunner().invoke(cli, [*args, "--db", db], input=input)


def test_user_add_prints_totp_once_and_user_can_sign_in(db, kek):
    result = run(
        db, "user", "add", "metro", "J.Smith", "--role", "analyst", "--role", "supervisor",
        "--password-stdin", "--json", input=PASSWORD + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["username"] == "j.smith" and data["roles"] == ["analyst", "supervisor"]
    assert data["otpauth_uri"].startswith("otpauth://totp/")
    store = open_store(db, kek=kek)  # the CLI used the same KEK (CROSSBEAT_KEK)
    code = totp.code_at(data["totp_secret"], store.now())
    assert login.login(store, "j.smith", PASSWORD, code).user.username == "j.smith"
    listed = run(db, "user", "list", "--json")
    assert "totp_secret" not in listed.stdout and json.loads(listed.stdout)[0]["locked"] is False


def test_user_add_prompts_for_the_password(db):
    result = run(db, "user", "add", "metro", "ann", "--role", "officer", input=f"{PASSWORD}\n" * 2)
    assert result.exit_code == 0, result.output
    assert "TOTP secret:" in result.stdout and "not shown again" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["user", "add", "nowhere", "ann", "--role", "officer"], "unknown agency 'nowhere'"),
        (["user", "add", "metro", "ann", "--role", "chief"], "unknown role 'chief'"),
        (["user", "add", "metro", "", "--role", "officer"], "username is empty"),
        (["user", "unlock", "nobody"], "unknown user 'nobody'"),
        (["user", "disable", "nobody"], "crossbeat user list"),
        (["user", "roles", "nobody", "--role", "officer"], "unknown user"),
        (["user", "list", "--agency", "nowhere"], "unknown agency"),
        (["token", "create", "metro", "--purpose", "all"], "unknown token purpose 'all'"),
        (["token", "revoke", "nope"], "unknown API token 'nope'"),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(db, args, message):
    before = snapshot(open_store(db))
    result = run(db, *args, input=f"{PASSWORD}\n" * 2)
    assert result.exit_code == 1
    assert message in result.stderr
    assert snapshot(open_store(db)) == before


def test_weak_password_lists_every_reason(db):
    result = run(
        db, "user", "add", "metro", "jsmith", "--role", "officer", "--password-stdin",
        input="jsmith\n",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "shorter than 8 characters" in result.stderr and "contains 'jsmith'" in result.stderr


def test_user_lifecycle(db):
    add = ["user", "add", "metro", "bob", "--role", "officer", "--password-stdin"]
    assert run(db, *add, input=PASSWORD + "\n").exit_code == 0
    assert "analyst, auditor" in run(db, "user", "roles", "bob", "--role", "auditor",
                                     "--role", "analyst").stdout  # fmt: skip
    assert "disabled" in run(db, "user", "disable", "bob").stdout
    assert ": active" in run(db, "user", "enable", "bob").stdout
    assert ": active" in run(db, "user", "unlock", "bob").stdout
    assert "0 account(s) disabled" in run(db, "user", "disable-inactive").stdout
    reset = run(db, "user", "reset-totp", "bob", "--json")
    assert len(json.loads(reset.stdout)["totp_secret"]) == 32
    changed = run(db, "user", "password", "bob", "--password-stdin", input="a brand new phrase\n")
    assert "sessions have ended" in changed.stdout


def test_token_commands(db):
    created = run(db, "token", "create", "metro", "--purpose", "ingest", "--label", "RMS", "--json")
    assert created.exit_code == 0, created.output
    data = json.loads(created.stdout)
    assert data["secret"].startswith("cbt_")
    listed = run(db, "token", "list", "--agency", "metro")
    assert data["id"] in listed.stdout and "active" in listed.stdout
    assert data["secret"] not in listed.stdout
    assert "revoked" in run(db, "token", "revoke", data["id"]).stdout
    assert "revoked" in run(db, "token", "list").stdout
