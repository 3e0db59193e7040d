"""The demo has a user for every role in every agency, and they can sign in."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from crossbeat.auth import login
from crossbeat.auth.roles import Role
from crossbeat.cli import cli
from crossbeat.demo.accounts import (
    DEMO_PASSWORD,
    PLATFORM_ADMIN,
    PREFIXES,
    demo_admins,
    demo_code,
    load_demo_accounts,
)
from crossbeat.demo.build import build_demo, demo_db_url, demo_kek
from crossbeat.sharing.agreements import list_agreements
from crossbeat.store import open_store


def test_every_role_in_every_agency_can_sign_in(tmp_path: Path) -> None:
    url = demo_db_url(tmp_path)
    build_demo(url, tmp_path, seed=7, size=0.02)
    accounts = load_demo_accounts(tmp_path)
    # Every agency role in every agency, two agency admins each (the two approvers that
    # personal data needs), and one platform admin only: no agency has a cross-agency
    # superuser of its own (issue #7, finding 5).
    assert {(a.agency_id, a.role) for a in accounts} == {
        (agency, role.value) for agency in PREFIXES for role in Role
        if role is not Role.PLATFORM_ADMIN
    } | {(PLATFORM_ADMIN[0], "platform_admin")}  # fmt: skip
    assert [a.username for a in accounts if a.role == "platform_admin"] == [PLATFORM_ADMIN[1]]
    for agency in PREFIXES:
        assert {a.username for a in accounts if a.agency_id == agency
                and a.role == "agency_admin"} == set(demo_admins(agency))  # fmt: skip
    store = open_store(url, kek=demo_kek(url, tmp_path))  # TOTP seeds are sealed
    made = list_agreements(store)
    assert made and all(a.status(store.now()) == "active" for a in made)
    assert all(a.approvals and {p.agency_id for p in a.approvals} == {a.owner} for a in made)
    for a in accounts[:3]:
        code = demo_code(tmp_path, a.username, store.now())
        assert login.login(store, a.username, DEMO_PASSWORD, code).user.agency_id == a.agency_id
    assert (tmp_path / "demo-accounts.json").stat().st_mode & 0o077 == 0
    # Building again keeps the accounts (and their secrets).
    build_demo(url, tmp_path, seed=7, size=0.02)
    assert load_demo_accounts(tmp_path) == accounts
    out = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path), "--accounts"])
    assert out.exit_code == 0, out.output
    assert "riverton.analyst" in out.output and DEMO_PASSWORD in out.output
