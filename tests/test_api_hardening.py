"""Issue #7 finding 9, the smaller gaps: headers, file modes, who sees refused attempts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crossbeat.sharing.agreements import list_agreements
from crossbeat.store import Store, open_store
from tests.api_support import CLIENT_IP, World, assert_error, build_world, events, last_seq


@pytest.fixture
def world(store: Store) -> World:
    return build_world(store)


def test_authenticated_answers_are_not_cached_and_carry_security_headers(world: World) -> None:
    admin, _ = world.signed_in("a.admin")
    for response in (admin.get("/api/v1/agreements"), admin.get("/api/v1/incidents?limit=1")):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["strict-transport-security"].startswith("max-age=")
    login = world.client().post("/auth/login", json={"username": "x", "password": "y"})
    assert login.headers["cache-control"] == "no-store"
    public = world.client().get("/api/v1/incidents?limit=1")
    assert "no-store" not in public.headers.get("cache-control", "")
    assert public.headers["x-content-type-options"] == "nosniff"


def test_the_public_refusal_names_no_agreement(world: World) -> None:
    (public,) = list_agreements(world.store, owner="citya", grantee="public")
    visible = world.client().get("/api/v1/incidents?agency=citya&limit=1").json()["records"][0]
    refused = world.client().get(f"/api/v1/incidents/{visible['id']}", headers={"X-Purpose": "x"})
    body = assert_error(refused, 403)
    assert public.id not in refused.text and "agreement" not in str(body["errors"])


def test_previews_and_agreement_changes_record_the_address(world: World) -> None:
    admin, token = world.signed_in("a.admin")
    before = last_seq(world.store)
    admin.get("/api/v1/agreements/preview?grantee=countyb&sample=1")
    (public,) = list_agreements(world.store, owner="citya", grantee="public")
    admin.post(f"/api/v1/agreements/{public.id}/revoke", json={"reason": "test"}, headers=token)
    (preview,) = events(world.store, before, action="sharing_decision")
    (change,) = events(world.store, before, action="agreement_change")
    assert preview.source_ip == change.source_ip == CLIENT_IP


def test_a_csrf_refused_revocation_is_shown_to_the_agreements_owner(world: World) -> None:
    (public,) = list_agreements(world.store, owner="citya", grantee="public")
    other, _ = world.signed_in("b.admin")  # no CSRF token sent
    before = last_seq(world.store)
    assert_error(other.post(f"/api/v1/agreements/{public.id}/revoke", json={"reason": "x"}), 403)
    (denied,) = events(world.store, before, action="denied")
    assert set(denied.owner_agencies) == {"citya", "countyb"} and denied.source_ip == CLIENT_IP
    # A refused API-token attempt is shown to the token's agency.
    from crossbeat.auth.tokens import create_token

    machine = create_token(world.store, "countyb", "read", clock=world.clock)
    before = last_seq(world.store)
    bearer = {"Authorization": f"Bearer {machine.secret}"}
    assert_error(world.client().get("/api/v1/agreements", headers=bearer), 403)
    (token_denied,) = events(world.store, before, action="denied")
    assert token_denied.owner_agencies == ("countyb",)


def test_a_new_sqlite_database_and_its_journal_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # what a default shell gives: files 0644
    try:
        store = open_store(f"sqlite:///{tmp_path / 'fresh.db'}")
        with store.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    finally:
        os.umask(old)
    files = [p for p in tmp_path.iterdir() if p.name.startswith("fresh.db")]
    assert {p.name for p in files} >= {"fresh.db", "fresh.db-wal"}
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in files), [
        (p.name, oct(p.stat().st_mode)) for p in files
    ]


def test_a_nul_in_the_url_is_refused_and_counted_for_the_audit_log(world: World) -> None:
    from crossbeat.audit import public_reads

    client = world.client()
    before = last_seq(world.store)
    for path in (
        "/api/v1/incidents?agency=%00",
        "/api/v1/incidents/a%00b",
        "/api/v1/audit?agency=x%00",
    ):
        body = assert_error(client.get(path), 400)
        assert "NUL" in body["error"]
    world.clock.advance(minutes=15)
    public_reads.flush(world.store, world.clock.now())
    (refused,) = events(world.store, before, action="denied")
    assert refused.resource_type == "request" and refused.source_ip == CLIENT_IP
    assert refused.details["aggregated"]["requests"] == 3
