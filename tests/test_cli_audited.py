"""Account changes made from the command line land in the audit log."""

from __future__ import annotations

from click.testing import CliRunner

from crossbeat.audit import events_for_owner, verify
from crossbeat.cli import cli
from crossbeat.clock import FrozenClock
from crossbeat.store import open_store
from tests.auth_support import PASSWORD, START, add_agencies


def test_user_add_and_disable_are_audited(db_url):
    add_agencies(open_store(db_url), FrozenClock(START))
    run = CliRunner().invoke
    out = run(
        cli,
        ["user", "add", "metro", "ann", "--role", "analyst", "--password-stdin", "--db", db_url],
        input=PASSWORD + "\n",
    )
    assert out.exit_code == 0, out.output
    assert run(cli, ["user", "disable", "ann", "--db", db_url]).exit_code == 0
    store = open_store(db_url)
    events = events_for_owner(store, "metro")
    assert [e.action for e in events][:2] == ["account_change", "account_change"]
    assert verify(store).ok
