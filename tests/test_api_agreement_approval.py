"""Issue #7 finding 5: an admin cannot grant their own agency another agency's data.

The attack as reported: a transit platform admin created "city -> transit, all fields,
personal, exact, no delay" and a transit officer then read a city victim's name and
address. Now the agreement waits for two different admins of the city.
"""

from __future__ import annotations

import pytest

from crossbeat.store import Store
from tests.api_support import NARRATIVE, World, assert_error, build_world, events, last_seq

SELF_GRANT = {
    "owner": "citya",
    "grantee": "transitc",
    "offences": ["all"],
    "fields": ["all", "personal"],
    "precision": "exact",
    "purposes": ["investigation", "analysis", "operations"],
    "reference": "approved by me",
}


@pytest.fixture
def world(store: Store) -> World:
    return build_world(store)


def _personal(world: World, username: str) -> tuple[int, str]:
    client, _ = world.signed_in(username)
    got = client.get(
        f"/api/v1/incidents/{world.personal_public_id}", headers={"X-Purpose": "case 26-7"}
    )
    return got.status_code, got.text


def test_a_platform_admin_of_the_grantee_cannot_put_another_agencys_data_in_force(
    world: World,
) -> None:
    root, token = world.signed_in("root")  # platform_admin of transitc
    created = root.post("/api/v1/agreements", json=SELF_GRANT, headers=token)
    assert created.status_code == 201, created.text
    grant = created.json()
    assert grant["status"] == "awaiting_approval" and grant["required_approvals"] == 2
    assert grant["approvals"] == [] and grant["approved_by"] == []
    status, text = _personal(world, "c.officer")
    assert status == 403 and NARRATIVE not in text
    # Approving it themselves is refused, and the owner sees the attempt.
    before = last_seq(world.store)
    assert_error(root.post(f"/api/v1/agreements/{grant['id']}/approve", headers=token), 403)
    (denied,) = events(world.store, before, action="denied")
    assert denied.actor == world.user_id("root") and "citya" in denied.owner_agencies
    assert denied.source_ip is not None
    # Naming approvers is not possible over the API: each admin approves for themself.
    forged = root.post("/api/v1/agreements", json={**SELF_GRANT, "approved_by": ["a.admin"]},
                       headers=token)  # fmt: skip
    assert_error(forged, 400)
    # One owner admin is not enough for personal data, and may not count twice.
    admin, admin_token = world.signed_in("a.admin")
    first = admin.post(f"/api/v1/agreements/{grant['id']}/approve", headers=admin_token)
    assert first.status_code == 200 and first.json()["status"] == "awaiting_approval"
    assert first.json()["approved_by"] == ["a.admin"]
    again = admin.post(f"/api/v1/agreements/{grant['id']}/approve", headers=admin_token)
    assert "different admin" in assert_error(again, 400)["error"]
    status, text = _personal(world, "c.officer")
    assert NARRATIVE not in text
    # A second, different admin of the owner puts it in force.
    second, second_token = world.signed_in("a.admin2")
    done = second.post(f"/api/v1/agreements/{grant['id']}/approve", headers=second_token)
    assert done.status_code == 200 and done.json()["status"] == "active"
    assert sorted(done.json()["approved_by"]) == ["a.admin", "a.admin2"]
    status, text = _personal(world, "c.officer")
    assert status == 200 and NARRATIVE in text


def test_an_admin_of_another_agency_may_not_approve(world: World) -> None:
    admin, token = world.signed_in("a.admin")
    grant = admin.post(
        "/api/v1/agreements", json={**SELF_GRANT, "grantee": "countyb"}, headers=token
    )
    assert grant.status_code == 201 and grant.json()["approved_by"] == ["a.admin"]
    other, other_token = world.signed_in("b.admin")
    assert_error(
        other.post(f"/api/v1/agreements/{grant.json()['id']}/approve", headers=other_token), 403
    )
    assert_error(
        admin.post(f"/api/v1/agreements/{grant.json()['id']}/approve"), 403
    )  # no CSRF token
