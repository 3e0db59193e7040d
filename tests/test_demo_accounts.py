"""The demo has a user for every role in every agency, and they can sign in."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from crossbeat.auth import login
from crossbeat.auth.roles import Role
from crossbeat.cli import cli
from crossbeat.demo.accounts import DEMO_PASSWORD, PREFIXES, demo_code, load_demo_accounts
from crossbeat.demo.build import build_demo, demo_db_url, demo_kek
from crossbeat.store import open_store


def test_every_role_in_every_agency_can_sign_in(tmp_path: Path) -> None:
    url = demo_db_url(tmp_path)
    build_demo(url, tmp_path, seed=7, size=0.02)
    accounts = load_demo_accounts(tmp_path)
    assert {(a.agency_id, a.role) for a in accounts} == {
        (agency, role.value) for agency in PREFIXES for role in Role
    }
    store = open_store(url, kek=demo_kek(url, tmp_path))  # TOTP seeds are sealed
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
