"""Interagency bulletins over the API, on both databases (issue #10)."""

from __future__ import annotations

from crossbeat.store import Store
from tests.api_support import assert_error, build_world, events


def test_bulletin_send_read_acknowledge(store: Store) -> None:
    world = build_world(store)
    a, a_csrf = world.signed_in("a.analyst")
    mine = next(i for i in world.normal if i.owner == "citya")
    sent = a.post(
        "/api/v1/bulletins",
        json={"kind": "bolo", "title": "Grey van, partial plate 7KX", "body": "Seen near",
              "anchor": {"type": "incidents"}, "recipients": ["countyb"],
              "incident_ids": [mine.id]},
        headers=a_csrf,
    )  # fmt: skip
    assert sent.status_code == 201, sent.text
    bulletin = sent.json()
    assert bulletin["recipients"][0]["agency_id"] == "countyb"
    assert any(
        e.details.get("operation") == "bulletin.create" for e in events(store, action="change")
    )
    # The recipient sees it flagged until it acknowledges; its incident as countyb may.
    b, b_csrf = world.signed_in("b.analyst")
    flagged = b.get("/api/v1/bulletins", params={"unacknowledged": "true"}).json()["bulletins"]
    assert [x["id"] for x in flagged] == [bulletin["id"]] and flagged[0]["unacknowledged"]
    detail = b.get(f"/api/v1/bulletins/{bulletin['id']}").json()
    assert [r["id"] for r in detail["incidents"]] == [mine.public_id]  # never citya's own id
    ack = b.post(f"/api/v1/bulletins/{bulletin['id']}/ack", headers=b_csrf)
    assert ack.status_code == 200 and not ack.json()["unacknowledged"]
    assert b.get("/api/v1/bulletins", params={"unacknowledged": "true"}).json()["bulletins"] == []
    sender_view = a.get(f"/api/v1/bulletins/{bulletin['id']}").json()
    assert sender_view["recipients"][0]["acknowledged_at"] is not None
    # Not addressed to transitc; the public gets nothing.
    c, _ = world.signed_in("c.officer")
    assert_error(c.get(f"/api/v1/bulletins/{bulletin['id']}"), 404)
    assert_error(world.client().get("/api/v1/bulletins"), 401)


def test_bulletin_refuses_incidents_the_sender_may_not_see(store: Store) -> None:
    world = build_world(store)
    b, b_csrf = world.signed_in("b.analyst")
    canary = next(i for i in world.population if i.source_id == "C-flagged")  # citya, sensitive
    refused = b.post(
        "/api/v1/bulletins",
        json={"kind": "series", "title": "Series", "anchor": {"type": "incidents"},
              "recipients": ["citya"], "incident_ids": [canary.public_id, canary.id]},
        headers=b_csrf,
    )  # fmt: skip
    body = assert_error(refused, 400)
    assert all("may see" in e for e in body["errors"])
    bad = b.post(
        "/api/v1/bulletins",
        json={"kind": "officer_safety", "title": "x", "anchor": {"type": "point", "lat": 99,
              "lon": 0}, "recipients": ["nowhere"]},
        headers=b_csrf,
    )  # fmt: skip
    errors = " ".join(assert_error(bad, 400)["errors"])
    assert "lat" in errors and "nowhere" in errors
