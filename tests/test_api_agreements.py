"""Managing agreements over HTTP: who may, CSRF, validation, revocation on the next request."""

from __future__ import annotations

import pytest

from crossbeat.auth.tokens import create_token
from crossbeat.sharing.agreements import list_agreements
from crossbeat.store import Store
from tests.api_support import World, assert_error, build_world, events, last_seq
from tests.sharing_support import snapshot

GRANT = {
    "grantee": "countyb",
    "offences": ["property"],
    "fields": ["offence", "occurred", "location", "status"],
    "precision": "block",
    "purposes": ["analysis"],
    "reference": "Chiefs' board, minute 2026-14",
    "purpose_note": "burglary series",
}


def _property(world: World, owner: str) -> set[str]:
    return {
        i.id
        for i in world.normal
        if i.owner == owner and i.codes[0] in {"220", "240", "23H", "290"}
    }


@pytest.fixture
def world(store: Store) -> World:
    return build_world(store)


def test_admin_creates_lists_reads_and_previews(world: World) -> None:
    admin, token = world.signed_in("a.admin")
    created = admin.post("/api/v1/agreements", json=GRANT, headers=token)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["owner"] == "citya" and body["grantee"] == "countyb"
    assert body["status"] == "active" and body["created_by"] == "a.admin"
    assert body["fields"] == sorted(
        {"id", "agency_id", "nibrs_code", "offence_name", "crime_against", "ucr_part1",
         "occurred_from", "occurred_to", "time_precision", "lat", "lon", "location_precision",
         "status"}
    )  # fmt: skip
    listed = admin.get("/api/v1/agreements").json()["agreements"]
    assert [a["grantee"] for a in listed] == ["public", "countyb"]
    assert [
        a["id"] for a in admin.get("/api/v1/agreements?grantee=countyb").json()["agreements"]
    ] == [body["id"]]
    assert admin.get(f"/api/v1/agreements/{body['id']}").json() == body
    preview = admin.get("/api/v1/agreements/preview?grantee=countyb&sample=3").json()
    citya = [i for i in world.population if i.owner == "citya"]
    normal = [i for i in world.normal if i.owner == "citya"]
    assert preview["owner"] == "citya" and preview["total"] == len(citya)
    # Property through the agreement, the rest through the public release; canaries hidden.
    assert preview["visible"] == len(normal) < len(citya)
    assert len(preview["sample"]) == 3 and sum(preview["hidden"].values()) == len(citya) - len(
        normal
    )
    public = admin.get("/api/v1/agreements/preview?grantee=public").json()
    assert public["purpose"] == "public_information"


def test_create_needs_csrf_and_valid_input(world: World) -> None:
    admin, token = world.signed_in("a.admin")
    before = snapshot(world.store)
    assert_error(admin.post("/api/v1/agreements", json=GRANT), 403)
    bad = admin.post(
        "/api/v1/agreements",
        json={"grantee": "nowhere", "offences": ["zzz"], "precision": "pinpoint"},
        headers=token,
    )
    body = assert_error(bad, 400)
    fields = {e.split(":")[0] for e in body["errors"]}
    assert {"grantee", "offences", "precision", "fields", "purposes"} <= fields
    unknown_key = admin.post(
        "/api/v1/agreements", json={**GRANT, "share_everything": True}, headers=token
    )
    assert_error(unknown_key, 400)
    assert snapshot(world.store) == before  # nothing stored
    assert admin.post("/api/v1/agreements", json=GRANT, headers=token).status_code == 201
    duplicate = assert_error(admin.post("/api/v1/agreements", json=GRANT, headers=token), 400)
    assert "revoke it first" in duplicate["error"]


@pytest.mark.parametrize("username", ["a.analyst", "a.auditor", "b.admin"])
def test_only_the_owners_admins_manage_its_agreements(world: World, username: str) -> None:
    client, token = world.signed_in(username)
    before = last_seq(world.store)
    owner = {"owner": "citya"}
    assert_error(client.get("/api/v1/agreements", params=owner), 403)
    assert_error(client.post("/api/v1/agreements", json={**GRANT, **owner}, headers=token), 403)
    assert_error(
        client.get("/api/v1/agreements/preview", params={**owner, "grantee": "public"}), 403
    )
    (public,) = list_agreements(world.store, owner="citya")
    assert_error(client.get(f"/api/v1/agreements/{public.id}"), 403)
    assert_error(
        client.post(f"/api/v1/agreements/{public.id}/revoke", json={"reason": "x"}, headers=token),
        403,
    )
    denied = events(world.store, before, action="denied")
    assert len(denied) == 5
    assert all(e.actor == world.user_id(username) and "citya" in e.owner_agencies for e in denied)
    assert list_agreements(world.store, owner="citya") == [public]


def test_platform_admin_manages_any_agency_and_tokens_cannot(world: World) -> None:
    root, token = world.signed_in("root")
    created = root.post("/api/v1/agreements", json={**GRANT, "owner": "citya"}, headers=token)
    assert created.status_code == 201 and created.json()["owner"] == "citya"
    # Proposed only: an admin of citya must approve it (tests/test_api_agreement_approval.py).
    assert created.json()["status"] == "awaiting_approval" and created.json()["approvals"] == []
    assert len(root.get("/api/v1/agreements?owner=citya").json()["agreements"]) == 2
    machine = create_token(world.store, "citya", "read", clock=world.clock)
    bearer = {"Authorization": f"Bearer {machine.secret}"}
    assert (
        "API tokens cannot"
        in assert_error(world.client().get("/api/v1/agreements", headers=bearer), 403)["error"]
    )
    assert_error(world.client().post("/api/v1/agreements", json=GRANT, headers=bearer), 403)


def test_revoking_takes_effect_on_the_next_request(world: World) -> None:
    admin, token = world.signed_in("a.admin")
    (public,) = list_agreements(world.store, owner="citya")
    assert admin.post(f"/api/v1/agreements/{public.id}/revoke", json={"reason": "partners only"},
                      headers=token).status_code == 200  # fmt: skip
    grant = admin.post("/api/v1/agreements", json=GRANT, headers=token).json()
    analyst, _ = world.signed_in("b.analyst")
    first = analyst.get("/api/v1/incidents?agency=citya&limit=1000").json()
    assert len(first["records"]) == len(_property(world, "citya")) > 0
    assert first["decisions"][0]["agreement_id"] == grant["id"]
    before = last_seq(world.store)
    no_reason = admin.post(
        f"/api/v1/agreements/{grant['id']}/revoke", json={"reason": ""}, headers=token
    )
    assert_error(no_reason, 400)
    revoked = admin.post(
        f"/api/v1/agreements/{grant['id']}/revoke", json={"reason": "series solved"}, headers=token
    )
    assert revoked.status_code == 200, revoked.text
    assert (
        revoked.json()["status"] == "revoked" and revoked.json()["revoke_reason"] == "series solved"
    )
    after = analyst.get("/api/v1/incidents?agency=citya&limit=1000").json()
    assert after["records"] == []
    assert after["decisions"][0]["allow"] is False
    assert any(
        f"agreement {grant['id']}" in r and "revoked" in r for r in after["decisions"][0]["reasons"]
    )
    change = events(world.store, before, action="agreement_change")
    assert len(change) == 1 and change[0].actor == world.user_id("a.admin")
    assert set(change[0].owner_agencies) == {"citya", "countyb"}
    again = admin.post(
        f"/api/v1/agreements/{grant['id']}/revoke", json={"reason": "x"}, headers=token
    )
    assert "already revoked" in assert_error(again, 400)["error"]
    assert_error(
        admin.post("/api/v1/agreements/nope/revoke", json={"reason": "x"}, headers=token), 404
    )


def test_a_draft_is_previewed_before_it_is_saved(world: World) -> None:
    """POST /agreements/preview: the real policy with the draft in force; nothing stored."""
    admin, token = world.signed_in("a.admin")
    before = snapshot(world.store)
    (public,) = list_agreements(world.store, owner="citya")
    now = admin.get("/api/v1/agreements/preview?grantee=countyb").json()
    normal = [i for i in world.normal if i.owner == "citya"]
    assert now["visible"] == len(normal)  # the public release only, before the draft
    assert_error(admin.post("/api/v1/agreements/preview", json=GRANT), 403)  # CSRF
    seq = last_seq(world.store)
    draft = admin.post("/api/v1/agreements/preview", json={**GRANT, "sample": 2}, headers=token)
    assert draft.status_code == 200, draft.text
    assert draft.json()["valid"] is True and draft.json()["problems"] == []
    body = draft.json()["preview"]
    assert body["grantee"] == "countyb" and body["total"] == now["total"]
    assert body["visible"] == now["visible"]  # property at block precision: same records
    assert body["decisions"] != now["decisions"]  # ... but through the draft, not the public
    assert any(d["agreement_id"] not in (None, public.id) for d in body["decisions"])
    assert len(body["sample"]) == 2
    # The draft in place of the public release: only the property incidents remain.
    replacing = {**GRANT, "grantee": "public", "fields": None, "purposes": None}
    replacing |= {"precision": None, "offences": ["property"], "replaces": public.id}
    narrowed = admin.post("/api/v1/agreements/preview", json=replacing, headers=token)
    assert narrowed.status_code == 200, narrowed.text
    property_ids = _property(world, "citya") & {i.id for i in normal}
    assert narrowed.json()["preview"]["visible"] == len(property_ids) < now["visible"]
    # Audited, with the draft's scope; nothing stored.
    audited = events(world.store, seq, action="sharing_decision")
    assert [e.details["draft"]["grantee"] for e in audited] == ["countyb", "public"]
    assert audited[1].details["replaces"] == public.id
    assert snapshot(world.store) == before
    assert list_agreements(world.store, owner="citya") == [public]
    # A draft that creation would refuse: every problem is the answer, nothing previewed.
    seq = last_seq(world.store)
    bad = admin.post(
        "/api/v1/agreements/preview", json={"grantee": "countyb", "precision": "x"}, headers=token
    ).json()
    assert bad["valid"] is False and bad["preview"] is None
    assert {e.split(":")[0] for e in bad["problems"]} >= {"precision", "fields"}
    clash = {**GRANT, "grantee": "public", "fields": None, "purposes": None, "precision": None}
    answer = admin.post("/api/v1/agreements/preview", json=clash, headers=token).json()
    assert answer["valid"] is False and "revoke it first" in " ".join(answer["problems"])
    assert events(world.store, seq, action="sharing_decision") == []
    assert snapshot(world.store) == before
    other, other_token = world.signed_in("b.admin")
    assert_error(
        other.post(
            "/api/v1/agreements/preview", json={**GRANT, "owner": "citya"}, headers=other_token
        ),
        403,
    )
    # Saved, the draft gives exactly what its preview said.
    assert admin.post("/api/v1/agreements", json=GRANT, headers=token).status_code == 201
    saved = admin.get("/api/v1/agreements/preview?grantee=countyb&sample=2").json()
    assert (saved["visible"], saved["hidden"]) == (body["visible"], body["hidden"])
    assert [d["allow"] for d in saved["decisions"]] == [d["allow"] for d in body["decisions"]]
