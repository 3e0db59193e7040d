"""The access log over HTTP: an agency's auditors see every access to its data, by anyone."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crossbeat.sharing.agreements import create_agreement
from crossbeat.store import Store
from tests.api_support import CLIENT_IP, World, assert_error, build_world, events, last_seq


@pytest.fixture
def world(store: Store) -> World:
    return build_world(store)


def test_auditor_sees_a_partner_analysts_reads_of_their_data(world: World) -> None:
    create_agreement(
        world.store, "citya", "countyb", offences=["all"], fields=["all"], precision="exact",
        purposes=["analysis"], approved_by="a.admin", clock=world.clock,
    )  # fmt: skip
    analyst, _ = world.signed_in("b.analyst")
    bob = world.user_id("b.analyst")
    assert analyst.get("/api/v1/incidents?agency=citya&limit=5").status_code == 200
    one = world.population[3]
    assert one.owner == "citya"
    # A partner names citya's record by its public id (citya's own id is not shown to it,
    # nor accepted from it), and the audit events name it the same way.
    assert analyst.get(f"/api/v1/incidents/{one.id}").status_code == 404
    assert analyst.get(f"/api/v1/incidents/{one.public_id}").status_code == 200
    auditor, _ = world.signed_in("a.auditor")
    body = auditor.get("/api/v1/audit").json()
    assert body["ok"] is True and body["agency"] == "citya"
    bobs = [e for e in body["events"] if e["actor"] == bob]
    assert [e["action"] for e in bobs] == ["detail_view", "read"]  # newest first
    assert bobs[0]["record_ids"] == [one.public_id] and bobs[0]["actor_agency"] == "countyb"
    assert len(bobs[1]["record_ids"]) == 5
    assert all("citya" in e["owner_agencies"] for e in body["events"])
    # Sign-ins of the agency's own users are there too, with the client's address.
    logins = [e for e in body["events"] if e["action"] == "login"]
    assert logins and {e["source_ip"] for e in logins} == {CLIENT_IP}
    # Filters.
    only = auditor.get("/api/v1/audit", params={"by": bob, "action": "detail_view"}).json()[
        "events"
    ]
    assert [e["record_ids"] for e in only] == [[one.public_id]]
    by_record = auditor.get("/api/v1/audit", params={"record_id": one.public_id}).json()["events"]
    assert {e["action"] for e in by_record} >= {"detail_view"}
    later = (world.clock.now() + timedelta(minutes=1)).isoformat()
    assert auditor.get("/api/v1/audit", params={"since": later}).json()["events"] == []
    full = auditor.get("/api/v1/audit").json()["events"]
    page = auditor.get("/api/v1/audit?limit=2&offset=1").json()["events"]  # skips full's audit_view
    assert [e["seq"] for e in page] == [e["seq"] for e in full[:2]]


def test_reading_the_log_is_itself_audited(world: World) -> None:
    auditor, _ = world.signed_in("a.auditor")
    before = last_seq(world.store)
    first = auditor.get("/api/v1/audit?action=read").json()["events"]
    (view,) = events(world.store, before, action="audit_view")
    assert view.actor == world.user_id("a.auditor") and view.owner_agencies == ("citya",)
    assert view.details == {"action": "read", "limit": 100, "offset": 0}
    assert view.source_ip == CLIENT_IP and view.record_count == len(first)
    views = auditor.get("/api/v1/audit?action=audit_view").json()["events"]
    assert [e["seq"] for e in views] == [view.seq]


def test_own_personal_data_views_are_in_the_owners_log(world: World) -> None:
    officer, _ = world.signed_in("a.officer")
    officer.get(f"/api/v1/incidents/{world.personal_id}", headers={"X-Purpose": "CASE-7"})
    auditor_a, _ = world.signed_in("a.auditor")
    mine = auditor_a.get("/api/v1/audit?action=personal_data_view").json()["events"]
    assert [(e["purpose"], e["record_ids"]) for e in mine] == [("CASE-7", [world.personal_id])]


def test_other_agencies_do_not_see_a_detail_view_of_anothers_record(world: World) -> None:
    officer, _ = world.signed_in("a.officer")
    officer.get(f"/api/v1/incidents/{world.personal_id}", headers={"X-Purpose": "CASE-7"})
    auditor_b, _ = world.signed_in("b.auditor")
    seen = auditor_b.get("/api/v1/audit?action=personal_data_view").json()["events"]
    assert seen == []


@pytest.mark.parametrize("username", ["a.analyst", "a.admin", "a.officer"])
def test_others_are_refused_and_the_attempt_is_audited(world: World, username: str) -> None:
    client, _ = world.signed_in(username)
    before = last_seq(world.store)
    body = assert_error(client.get("/api/v1/audit"), 403)
    assert "audit" in body["error"]
    (denied,) = events(world.store, before, action="denied")
    assert denied.actor == world.user_id(username) and denied.owner_agencies == ("citya",)


def test_auditors_see_only_their_own_agency_and_platform_admins_any(world: World) -> None:
    auditor, _ = world.signed_in("a.auditor")
    before = last_seq(world.store)
    assert_error(auditor.get("/api/v1/audit?agency=countyb"), 403)
    (denied,) = events(world.store, before, action="denied")
    assert denied.owner_agencies == ("countyb",)  # countyb's auditors see the attempt
    root, _ = world.signed_in("root")
    answer = root.get("/api/v1/audit?agency=countyb")
    assert answer.status_code == 200 and answer.json()["agency"] == "countyb"
    seen = answer.json()["events"]
    assert any(e["action"] == "denied" and e["actor_agency"] == "citya" for e in seen)


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("action=peek", "action: unknown 'peek'"),
        ("since=2026-01-01T00:00:00", "since: give a time zone"),
        ("limit=5000", "limit"),
        ("offset=-1", "offset"),
    ],
)
def test_bad_queries_are_400(world: World, query: str, fragment: str) -> None:
    auditor, _ = world.signed_in("a.auditor")
    assert fragment in assert_error(auditor.get(f"/api/v1/audit?{query}"), 400)["error"]


def test_public_and_tokens_cannot_read_the_log(world: World) -> None:
    assert_error(world.client().get("/api/v1/audit"), 401)
