"""Field reports from phones: idempotent creates, optimistic-concurrency updates (issue #10).

On the real databases (SQLite and PostgreSQL), through the HTTP API, as a phone would.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import func, select

from crossbeat.auth.tokens import create_token
from crossbeat.store import Store
from crossbeat.store.schema import incident_versions, incidents
from tests.api_support import assert_error, build_world, events

REPORT: dict[str, Any] = {
    "offence": "23H",
    "occurred_from": "2026-06-14T10:15:00-07:00",
    "lat": 45.531,
    "lon": -122.661,
    "location_type": "13",
    "status": "open",
}


def _count_field(store: Store) -> int:
    with store.connect() as conn:
        q = select(func.count()).where(incidents.c.source_id.like("F-%"))
        return int(conn.execute(q).scalar_one())


def test_five_retries_with_one_key_create_one_incident(store: Store) -> None:
    world = build_world(store)
    client, headers = world.signed_in("a.officer")
    answers = [
        client.post("/api/v1/incidents", json=REPORT, headers={**headers, "Idempotency-Key": "k-1"})
        for _ in range(5)
    ]
    assert [a.status_code for a in answers] == [201] * 5, answers[0].text
    assert len({a.json()["record"]["id"] for a in answers}) == 1
    assert all(a.json() == answers[0].json() for a in answers)
    assert answers[0].headers["ETag"] == '"1"'
    assert _count_field(store) == 1
    record = answers[0].json()["record"]
    assert record["agency_id"] == "citya" and record["nibrs_code"] == "23H"
    # Audited once, as a change of citya's incident.
    changes = [e for e in events(store, action="change") if "citya" in e.owner_agencies]
    assert len([e for e in changes if e.details.get("operation") == "field_report.create"]) == 1
    # Same key, another body: refused, nothing created.
    other = client.post(
        "/api/v1/incidents",
        json={**REPORT, "offence": "13B"},
        headers={**headers, "Idempotency-Key": "k-1"},
    )
    assert_error(other, 422)
    # Another key: a second incident.
    again = client.post(
        "/api/v1/incidents", json=REPORT, headers={**headers, "Idempotency-Key": "k-2"}
    )
    assert again.status_code == 201 and _count_field(store) == 2


def test_concurrent_retries_with_one_key_create_one_incident(store: Store) -> None:
    world = build_world(store)
    token = create_token(store, "citya", "ingest").secret
    client = world.client()
    auth = {"Authorization": f"Bearer {token}", "Idempotency-Key": "same"}
    codes: list[int] = []

    def post() -> None:
        codes.append(client.post("/api/v1/incidents", json=REPORT, headers=auth).status_code)

    threads = [threading.Thread(target=post) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [201] * 5
    assert _count_field(store) == 1


def test_report_is_validated_like_an_ingested_row(store: Store) -> None:
    world = build_world(store)
    client, headers = world.signed_in("a.officer")
    bad = client.post(
        "/api/v1/incidents",
        json={**REPORT, "offence": "ZZZ", "lat": 95, "occurred_from": "yesterday", "x": 1},
        headers=headers,
    )
    body = assert_error(bad, 422)
    text = " ".join(body["errors"])
    assert "x: unknown field" in text
    missing = client.post("/api/v1/incidents", json={"offence": "23H"}, headers=headers)
    assert "lat: required" in " ".join(assert_error(missing, 422)["errors"])
    # Sensitivity from the narrative, as the ingest finds it: not shown to partners.
    flagged = client.post(
        "/api/v1/incidents",
        json={**REPORT, "offence": "11A", "narrative": "sexual assault"},
        headers=headers,
    )
    assert flagged.status_code == 201, flagged.text
    assert _count_field(store) == 1


def test_who_may_report(store: Store) -> None:
    world = build_world(store)
    assert_error(world.client().post("/api/v1/incidents", json=REPORT), 401)
    analyst, headers = world.signed_in("a.analyst")
    assert_error(analyst.post("/api/v1/incidents", json=REPORT, headers=headers), 403)
    officer, _ = world.signed_in("a.officer")
    assert_error(officer.post("/api/v1/incidents", json=REPORT), 403)  # no CSRF token
    read = create_token(store, "citya", "read").secret
    client = world.client()
    refused = client.post(
        "/api/v1/incidents", json=REPORT, headers={"Authorization": f"Bearer {read}"}
    )
    assert refused.status_code in (401, 403)
    assert _count_field(store) == 0


def test_patch_needs_if_match_and_answers_conflicts_with_the_current_state(store: Store) -> None:
    world = build_world(store)
    client, headers = world.signed_in("a.officer")
    created = client.post("/api/v1/incidents", json=REPORT, headers=headers).json()
    url = f"/api/v1/incidents/{created['record']['id']}"
    assert_error(client.patch(url, json={"status": "closed"}, headers=headers), 428)
    ok = client.patch(url, json={"status": "closed"}, headers={**headers, "If-Match": '"1"'})
    assert ok.status_code == 200, ok.text
    assert ok.headers["ETag"] == '"2"' and ok.json()["record"]["status"] == "closed"
    stale = client.patch(url, json={"status": "reopened"}, headers={**headers, "If-Match": '"1"'})
    body = stale.json()
    assert stale.status_code == 409 and body["ok"] is False
    assert body["current"]["version"] == 2 and body["current"]["record"]["status"] == "closed"
    # Another agency's officer cannot touch it.
    other, other_headers = world.signed_in("b.officer")
    theirs = {**other_headers, "If-Match": '"2"'}
    assert_error(other.patch(url, json={"status": "x"}, headers=theirs), 404)


def test_two_concurrent_updaters_never_lose_a_write(store: Store) -> None:
    world = build_world(store)
    token = create_token(store, "citya", "ingest").secret
    auth = {"Authorization": f"Bearer {token}"}
    creator = world.client()
    created = creator.post("/api/v1/incidents", json={**REPORT, "status": "s"}, headers=auth)
    url = f"/api/v1/incidents/{created.json()['record']['id']}"
    rounds = 6
    conflicts: list[int] = []

    def updater(tag: str) -> None:
        client = world.client()
        state = created.json()
        for i in range(rounds):
            while True:
                status = f"{state['record']['status']},{tag}{i}"
                answer = client.patch(
                    url,
                    json={"status": status},
                    headers={**auth, "If-Match": f'"{state["version"]}"'},
                )
                if answer.status_code == 200:
                    state = answer.json()
                    break
                assert answer.status_code == 409, answer.text
                conflicts.append(1)
                state = answer.json()["current"]

    threads = [threading.Thread(target=updater, args=(tag,)) for tag in "AB"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = creator.patch(url, json={}, headers={**auth, "If-Match": '"0"'}).json()["current"]
    tags = final["record"]["status"].split(",")[1:]
    # Every one of the 12 updates is in the final state: none was lost.
    assert sorted(tags) == sorted(f"{t}{i}" for t in "AB" for i in range(rounds))
    assert final["version"] == 1 + 2 * rounds
    with store.connect() as conn:
        kept = conn.execute(select(func.count()).select_from(incident_versions)).scalar_one()
    assert kept >= 2 * rounds


CITY_CODES = """
[crosswalk]
scheme = "citya-codes"
version = "1"
description = "City A's own offence codes"
key = "code"

[[map]]
local = "459"
nibrs = "220"
match = "exact"

[[map]]
local = "484"
nibrs = "23H"
match = "exact"
"""


def test_field_reports_take_the_agencys_local_codes_through_its_crosswalk(
    store: Store, tmp_path: Any
) -> None:
    from datetime import UTC, datetime

    from crossbeat.store.schema import crosswalk_sources, incident_offences

    world = build_world(store)
    (tmp_path / "citya-codes.toml").write_text(CITY_CODES, encoding="utf-8")
    with store.begin() as conn:  # as citya's ingest registers its crosswalk folder
        conn.execute(
            crosswalk_sources.insert().values(
                scheme="citya-codes", folder=str(tmp_path), updated_at=datetime.now(UTC)
            )
        )
    client, headers = world.signed_in("a.officer")
    base = {k: v for k, v in REPORT.items() if k != "offence"}

    def offences(record_id: str) -> list[tuple[str | None, str | None, str | None]]:
        o = incident_offences.c
        with store.connect() as conn:
            rows = conn.execute(
                select(o.scheme, o.local_code, o.nibrs_code).where(o.incident_id == record_id)
            ).all()
        return [tuple(r) for r in rows]

    mapped = client.post(
        "/api/v1/incidents",
        json={**base, "local_offence": "459", "offence_scheme": "citya-codes"},
        headers=headers,
    )
    assert mapped.status_code == 201, mapped.text
    assert "warnings" not in mapped.json()
    assert offences(mapped.json()["record"]["id"]) == [("citya-codes", "459", "220")]
    shipped = client.post(
        "/api/v1/incidents",
        json={**base, "local_offence": "Burglary", "offence_scheme": "police-uk"},
        headers=headers,
    )
    assert shipped.status_code == 201, shipped.text
    assert offences(shipped.json()["record"]["id"]) == [("police-uk", "Burglary", "220")]
    # An unmapped code is stored unmapped and flagged, exactly as the ingest stores it.
    unmapped = client.post(
        "/api/v1/incidents",
        json={**base, "local_offence": "999X", "offence_scheme": "citya-codes"},
        headers=headers,
    )
    assert unmapped.status_code == 201, unmapped.text
    assert unmapped.json()["warnings"] == [
        "offence: code '999X' is not in crosswalk 'citya-codes' (version 1): stored unmapped"
    ]
    assert offences(unmapped.json()["record"]["id"]) == [("citya-codes", "999X", None)]
    # Refused: an unknown scheme, a local code without its scheme, both kinds of code.
    for body, why in [
        ({**base, "local_offence": "459", "offence_scheme": "nope"}, "no crosswalk 'nope'"),
        ({**base, "local_offence": "459"}, "offence_scheme: required"),
        ({**REPORT, "local_offence": "459", "offence_scheme": "citya-codes"}, "either offence"),
        (base, "either offence"),
    ]:
        refused = client.post("/api/v1/incidents", json=body, headers=headers)
        assert why in " ".join(assert_error(refused, 422)["errors"]), body
    assert _count_field(store) == 3
