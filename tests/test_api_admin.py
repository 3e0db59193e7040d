"""Users, API tokens and the quarantine review over HTTP, for the admin page (issue #12).

Each answer is checked against the library's decision (who may list or change whom) and
each change against its audit event; the other agency's admin is refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crossbeat.audit import iter_events
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import parse_profile
from crossbeat.store import Store
from tests.api_support import World, assert_error, build_world, last_seq
from tests.test_ingest_pipeline import PROFILE, row, write_csv


@pytest.fixture
def world(store: Store) -> World:
    return build_world(store)


def test_admin_lists_users_and_changes_roles_and_status(world: World) -> None:
    world.user("a.analyst")
    admin, token = world.signed_in("a.admin")
    listed = admin.get("/api/v1/users")
    assert listed.status_code == 200, listed.text
    names = {u["username"]: u for u in listed.json()["users"]}
    assert "a.analyst" in names and all(u["agency"] == "citya" for u in names.values())
    assert "b.admin" not in names
    seq = last_seq(world.store)
    changed = admin.put(
        "/api/v1/users/a.analyst/roles", json={"roles": ["analyst", "supervisor"]}, headers=token
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["roles"] == ["analyst", "supervisor"]
    (changed_event,) = [
        e
        for e in iter_events(world.store, after=seq)
        if e.details.get("auth_action") == "account.roles_changed"
    ]
    assert changed_event.actor == world.user_id("a.admin")
    assert changed_event.owner_agencies == ("citya",)
    assert changed_event.details["after"] == ["analyst", "supervisor"]
    disabled = admin.post("/api/v1/users/a.analyst/disable", headers=token)
    assert disabled.status_code == 200 and disabled.json()["status"] != "active"
    enabled = admin.post("/api/v1/users/a.analyst/enable", headers=token)
    assert enabled.status_code == 200 and enabled.json()["status"] == "active"
    assert_error(admin.post("/api/v1/users/nobody.here/disable", headers=token), 404)
    assert_error(
        admin.put("/api/v1/users/a.analyst/roles", json={"roles": ["wizard"]}, headers=token), 400
    )
    # No platform_admin from an agency admin, and nothing of the other agency.
    assert_error(
        admin.put(
            "/api/v1/users/a.analyst/roles", json={"roles": ["platform_admin"]}, headers=token
        ),
        403,
    )
    other, other_token = world.signed_in("b.admin")
    assert_error(other.post("/api/v1/users/a.analyst/disable", headers=other_token), 403)
    assert_error(other.get("/api/v1/users?agency=citya"), 403)
    analyst, _ = world.signed_in("b.analyst")
    assert_error(analyst.get("/api/v1/users"), 403)


def test_admin_creates_lists_and_revokes_tokens(world: World) -> None:
    admin, token = world.signed_in("a.admin")
    made = admin.post(
        "/api/v1/tokens", json={"purpose": "ingest", "label": "RMS nightly"}, headers=token
    )
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    listed = admin.get("/api/v1/tokens").json()["tokens"]
    assert [t["label"] for t in listed] == ["RMS nightly"]
    assert secret not in str(listed)  # the secret is shown once
    assert_error(admin.post("/api/v1/tokens", json={"purpose": "root"}, headers=token), 400)
    other, other_token = world.signed_in("b.admin")
    assert other.get("/api/v1/tokens").json()["tokens"] == []
    revoke = f"/api/v1/tokens/{made.json()['id']}/revoke"
    assert_error(other.post(revoke, headers=other_token), 403)
    auditor, _ = world.signed_in("a.auditor")
    assert len(auditor.get("/api/v1/tokens").json()["tokens"]) == 1  # auditors may list
    seq = last_seq(world.store)
    revoked = admin.post(revoke, headers=token)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    audited = [e.details.get("auth_action") for e in iter_events(world.store, after=seq)]
    assert "token.revoked" in audited
    assert_error(admin.post("/api/v1/tokens/no-such-token/revoke", headers=token), 404)


def test_quarantine_review_is_an_audited_read_and_dismiss_an_audited_change(
    world: World, tmp_path: Path
) -> None:
    profile = parse_profile(PROFILE)
    bad = [row(0), row(1, when="2024-02-30 10:00"), row(2, lat="95.0")]
    ingest_files(
        world.store, "citya", profile, [write_csv(tmp_path / "x.csv", bad)], accept_timezone=True
    )
    admin, token = world.signed_in("a.admin")
    seq = last_seq(world.store)
    entries = admin.get("/api/v1/quarantine").json()["entries"]
    assert len(entries) == 2 and all(e["agency"] == "citya" and e["reasons"] for e in entries)
    read = [e for e in iter_events(world.store, after=seq) if e.resource_type == "quarantine"]
    assert [(e.action.value, e.actor, e.owner_agencies) for e in read] == [
        ("read", world.user_id("a.admin"), ("citya",))
    ]
    other, other_token = world.signed_in("b.admin")
    assert other.get("/api/v1/quarantine").json()["entries"] == []  # its own: none
    ids = [entries[0]["id"]]
    gone = other.post(
        "/api/v1/quarantine/dismiss", json={"ids": ids, "reason": "not ours"}, headers=other_token
    )
    assert gone.json()["dismissed"] == 0  # another agency's rows change nothing
    analyst, analyst_token = world.signed_in("a.analyst")
    assert_error(analyst.get("/api/v1/quarantine"), 403)
    done = admin.post(
        "/api/v1/quarantine/dismiss", json={"ids": ids, "reason": "test row"}, headers=token
    )
    assert done.status_code == 200 and done.json() == {"dismissed": 1}
    seq = last_seq(world.store)
    nothing = admin.post(
        "/api/v1/quarantine/dismiss", json={"ids": [], "reason": "x"}, headers=token
    )
    assert nothing.json() == {"dismissed": 0} and last_seq(world.store) == seq
    assert len(admin.get("/api/v1/quarantine").json()["entries"]) == 1
    assert_error(
        admin.post("/api/v1/quarantine/dismiss", json={"ids": ids, "reason": " "}, headers=token),
        400,
    )


def test_a_quarantined_row_is_fixed_by_hand_and_retried_into_the_store(
    world: World, tmp_path: Path
) -> None:
    from tests.test_ingest_pipeline import PROFILE as TOML

    profile = parse_profile(TOML)
    bad = [row(0), row(1, when="2024-02-30 10:00"), row(2, lat="95.0")]
    ingest_files(
        world.store, "citya", profile, [write_csv(tmp_path / "x.csv", bad)], accept_timezone=True
    )
    admin, token = world.signed_in("a.admin")
    entries = admin.get("/api/v1/quarantine").json()["entries"]
    (dated,) = [e for e in entries if e["raw"]["when"] == "2024-02-30 10:00"]
    url = f"/api/v1/quarantine/{dated['id']}/fix"
    # Refused: no CSRF token, a field the row lacks, another agency's admin, an analyst.
    fix = {"changes": {"when": "2024-02-28 10:00"}, "reason": "typo in the export"}
    assert_error(admin.post(url, json=fix), 403)
    unknown = admin.post(url, json={**fix, "changes": {"whenn": "x"}}, headers=token)
    assert "no such field" in assert_error(unknown, 400)["error"]
    other, other_token = world.signed_in("b.admin")
    assert_error(other.post(url, json=fix, headers=other_token), 404)  # not countyb's row
    assert_error(other.post(url, json={**fix, "agency": "citya"}, headers=other_token), 403)
    seq = last_seq(world.store)
    fixed = admin.post(url, json=fix, headers=token)
    assert fixed.status_code == 200, fixed.text
    entry = fixed.json()["entry"]
    assert entry["raw"]["when"] == "2024-02-28 10:00" and entry["status"] == "open"
    assert entry["reasons"][-1] == "fixed by hand: when (typo in the export)"
    (change,) = [e for e in iter_events(world.store, after=seq) if e.resource_type == "quarantine"]
    assert change.details["operation"] == "quarantine_fix" and change.details["fields"] == ["when"]
    assert "2024-02-28" not in str(change.details)  # the values stay out of the log
    # Retry: without a profile the feed's last uploaded one is needed; with it, stored.
    retry = {"ids": [dated["id"]], "accept_timezone": True}
    missing = admin.post("/api/v1/quarantine/retry", json=retry, headers=token)
    assert "upload the profile" in assert_error(missing, 400)["error"]
    assert_error(
        other.post(
            "/api/v1/quarantine/retry", json={**retry, "agency": "citya"}, headers=other_token
        ),
        403,
    )
    seq = last_seq(world.store)
    done = admin.post("/api/v1/quarantine/retry", json={**retry, "profile": TOML}, headers=token)
    assert done.status_code == 200, done.text
    assert done.json()["retry"]["retried"] == 1 and done.json()["retry"]["still_quarantined"] == 0
    assert [e["id"] for e in admin.get("/api/v1/quarantine").json()["entries"]] == [
        e["id"] for e in entries if e["id"] != dated["id"]
    ]
    ingested = [e for e in iter_events(world.store, after=seq) if e.action.value == "ingest"]
    assert ingested and ingested[0].details["operation"] == "quarantine_retry"
    analyst, _ = world.signed_in("a.analyst")
    stored = analyst.get("/api/v1/incidents?agency=citya&limit=1000").json()["records"]
    assert any(str(r["occurred_from"]).startswith("2024-02-28") for r in stored)
    # A row no longer open cannot be fixed again.
    assert "not open" in assert_error(admin.post(url, json=fix, headers=token), 400)["error"]
