"""Incidents over HTTP: the public, partners, own data and personal data, all through sharing."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crossbeat.audit import public_reads
from crossbeat.auth.tokens import create_token
from crossbeat.sharing.agreements import create_agreement, list_agreements, revoke_agreement
from crossbeat.sharing.reads import aggregate, read_incidents
from crossbeat.sharing.request import ReadRequest, Viewer
from crossbeat.sharing.scope import PUBLIC_FIELDS
from crossbeat.store import Store
from tests.api_support import (
    CANARIES,
    NARRATIVE,
    World,
    assert_error,
    build_world,
    events,
    last_seq,
)
from tests.sharing_support import AGENCIES, AREA, NOW


def _times(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the records with their times parsed (``Z`` and ``+00:00`` are the same)."""
    times = ("occurred_from", "occurred_to", "reported_at")
    return [
        {k: datetime.fromisoformat(v) if k in times and v else v for k, v in r.items()}
        for r in records
    ]


@pytest.fixture
def world(store: Store) -> World:
    return build_world(store)


def _all_pages(client: Any) -> tuple[list[dict[str, Any]], int]:
    """Return every record, paging by 7, and the number of requests made."""
    out: list[dict[str, Any]] = []
    after, pages = None, 0
    while True:
        suffix = f"&after={after}" if after else ""
        body = client.get(f"/api/v1/incidents?limit=7{suffix}").json()
        pages += 1
        out += body["records"]
        after = body["next_after"]
        if after is None:
            return out, pages


def test_public_never_gets_an_exact_point_or_a_sensitive_incident(world: World) -> None:
    client = world.client()
    truth = {i.public_id: i for i in world.population}
    before = last_seq(world.store)
    records, pages = _all_pages(client)
    assert pages > 1
    assert {r["id"] for r in records} == {i.public_id for i in world.normal}
    for record in records:
        assert set(record) <= PUBLIC_FIELDS, set(record) - PUBLIC_FIELDS
        true = truth[record["id"]]
        assert (record["lat"], record["lon"]) != (true.lat, true.lon)
        assert record["location_precision"] == "h3:9"
        day = datetime.fromisoformat(record["occurred_from"])
        local = day.astimezone(ZoneInfo(AGENCIES[record["agency_id"]][0]))
        assert (
            local.time() == time(0)
            and local.date() == true.occurred_from.astimezone(local.tzinfo).date()
        )  # the day only, in the owner's zone
    body = client.get("/api/v1/incidents").json()
    assert set(body) == {"ok", "records", "next_after"}  # no decisions for the public
    geo = client.get("/api/v1/incidents?f=geojson&limit=1000")
    assert geo.headers["content-type"] == "application/geo+json"
    features = geo.json()["features"]
    assert geo.json()["type"] == "FeatureCollection" and len(features) == len(world.normal)
    for feature in features:
        true = truth[feature["id"]]
        lon, lat = feature["geometry"]["coordinates"]
        assert (lat, lon) != (true.lat, true.lon)
        assert "lat" not in feature["properties"] and set(feature["properties"]) <= PUBLIC_FIELDS
    for canary in CANARIES:
        assert_error(client.get(f"/api/v1/incidents/{canary.id}"), 404)
        assert_error(client.get(f"/api/v1/incidents/{canary.public_id}"), 404)
    # Public reads are counted per 15-minute window and address, and become one audit
    # event per owner agency when the window closes (issue #7, finding 9).
    assert events(world.store, before, action="read", actor="public") == []
    world.clock.advance(minutes=15)
    public_reads.flush(world.store, world.clock.now())
    reads = events(world.store, before, action="read", actor="public")
    assert all(len(e.owner_agencies) == 1 for e in reads)
    assert sorted(e.owner_agencies[0] for e in reads) == ["citya", "countyb", "transitc"]
    assert {e.source_ip for e in reads} == {"203.0.113.7"}
    assert all(e.details["aggregated"]["requests"] >= pages + 1 for e in reads)


def test_public_records_are_those_of_the_core_read(world: World) -> None:
    client = world.client()
    mine = client.get(f"/api/v1/incidents?limit=1000&bbox={','.join(map(str, AREA))}").json()[
        "records"
    ]
    core = read_incidents(world.store, Viewer.public(), ReadRequest(bbox=AREA)).to_dict()
    assert _times(mine) == _times(core["records"])


def test_public_aggregates_are_suppressed_and_never_count_canaries(world: World) -> None:
    client = world.client()
    body = client.get("/api/v1/aggregates?by=agency&by=nibrs").json()
    assert body["ok"] is True and body["by"] == ["agency", "nibrs"]
    assert body["threshold"] == 5 and "decisions" not in body
    published = [c for c in body["cells"] if c["count"] is not None]
    assert body["total"] == sum(c["count"] for c in published) < len(world.normal)
    assert body["complete"] is False and body["noisy"] == []
    assert all(c["count"] >= 5 for c in published)
    assert not {"11A"} & {c["key"][1] for c in body["cells"]}
    core = aggregate(world.store, Viewer.public(), by=("agency", "nibrs")).to_dict()
    assert body["cells"] == core["cells"] and body["suppressed"] == core["suppressed"]
    total = client.get("/api/v1/aggregates").json()
    assert total["by"] == [] and total["total"] == len(world.normal)


def test_own_agency_sees_its_records_in_full_and_filters_apply(world: World) -> None:
    client, _ = world.signed_in("a.analyst")
    truth = {i.id: i for i in world.population}
    own = client.get("/api/v1/incidents?agency=citya&limit=1000").json()
    assert {r["id"] for r in own["records"]} == {
        i.id for i in world.population if i.owner == "citya"
    }
    for record in own["records"]:
        assert (record["lat"], record["lon"]) == (truth[record["id"]].lat, truth[record["id"]].lon)
        assert "narrative" not in record and "persons" not in record
    assert [d["owner"] for d in own["decisions"]] == ["citya"]
    assert own["decisions"][0]["allow"] is True
    box = (-122.70, 45.50, -122.66, 45.53)
    since, until = NOW - timedelta(days=26), NOW - timedelta(days=14)
    query = {
        "agency": "citya",
        "bbox": ",".join(map(str, box)),
        "offence": "property",
        "since": since.isoformat(),
        "until": until.isoformat(),
        "limit": 1000,
    }
    body = client.get("/api/v1/incidents", params=query).json()
    expected = {
        i.id
        for i in world.population
        if i.owner == "citya"
        and box[0] <= i.lon <= box[2]
        and box[1] <= i.lat <= box[3]
        and i.occurred_from is not None
        and since <= i.occurred_from < until
        and i.codes[0] in {"220", "240", "23H", "290"}
    }
    assert expected and {r["id"] for r in body["records"]} == expected
    fields = client.get("/api/v1/incidents?agency=citya&fields=offence&limit=1").json()["records"][
        0
    ]
    assert set(fields) == {
        "id",
        "agency_id",
        "nibrs_code",
        "offence_name",
        "crime_against",
        "ucr_part1",
    }


def test_partner_sees_exactly_what_its_agreement_grants(world: World) -> None:
    (public,) = list_agreements(world.store, owner="citya", grantee="public")
    revoke_agreement(world.store, public.id, reason="partners only", clock=world.clock)
    agreement = create_agreement(
        world.store, "citya", "countyb", offences=["property"], fields=["offence", "occurred",
        "location", "status"], precision="block", purposes=["analysis"], approved_by="a.admin",
        clock=world.clock,
    )  # fmt: skip
    client, _ = world.signed_in("b.analyst")
    truth = {i.public_id: i for i in world.population}
    body = client.get("/api/v1/incidents?agency=citya&limit=1000").json()
    (decision,) = body["decisions"]
    assert decision["allow"] is True and decision["agreement_id"] == agreement.id
    granted = {
        "id", "agency_id", "nibrs_code", "offence_name", "crime_against", "ucr_part1",
        "occurred_from", "occurred_to", "time_precision", "lat", "lon", "location_precision",
        "status",
    }  # fmt: skip
    property_ = {
        i.public_id
        for i in world.normal
        if i.owner == "citya" and i.codes[0] in {"220", "240", "23H", "290"}
    }
    assert {r["id"] for r in body["records"]} == property_
    for record in body["records"]:
        assert set(record) == granted
        assert record["crime_against"] == "property"
        assert record["location_precision"] == "block"
        true = truth[record["id"]]
        assert (record["lat"], record["lon"]) != (true.lat, true.lon)
        assert abs(record["lat"] - true.lat) < 0.003 and abs(record["lon"] - true.lon) < 0.003
    core = read_incidents(
        world.store,
        Viewer.user(world.user_id("b.analyst"), "countyb", ["analyst"]),
        ReadRequest(agencies=frozenset({"citya"})),
    ).to_dict()
    assert _times(body["records"]) == _times(core["records"])
    # A machine client of countyb reads what its analysts read.
    token = create_token(world.store, "countyb", "read", clock=world.clock)
    machine = world.client().get(
        "/api/v1/incidents?agency=citya&limit=1000",
        headers={"Authorization": f"Bearer {token.secret}"},
    )
    assert machine.json()["records"] == body["records"]
    # The agreement serves analysis only: nothing for an operations read.
    ops = client.get("/api/v1/incidents?agency=citya&purpose=operations&limit=1000").json()
    assert ops["records"] == [] and ops["decisions"][0]["allow"] is False
    assert any("serves analysis, not operations" in r for r in ops["decisions"][0]["reasons"])
    # Other owners' data is not in the answer at all.
    records = client.get("/api/v1/incidents?limit=1000").json()["records"]
    assert {r["agency_id"] for r in records} == {"citya", "countyb", "transitc"}


def test_personal_data_needs_a_purpose_and_is_audited(world: World) -> None:
    client, _ = world.signed_in("a.officer")
    before = last_seq(world.store)
    plain = client.get(f"/api/v1/incidents/{world.personal_id}").json()
    assert plain["personal"] is None and plain["record"]["id"] == world.personal_id
    assert NARRATIVE not in str(plain)
    assert [
        e.action.value for e in events(world.store, before, actor=world.user_id("a.officer"))
    ] == ["detail_view"]
    before = last_seq(world.store)
    full = client.get(
        f"/api/v1/incidents/{world.personal_id}", headers={"X-Purpose": "CASE-2026-0042"}
    )
    assert full.status_code == 200, full.text
    personal = full.json()["personal"]
    assert personal["narrative"] == NARRATIVE and personal["full_address"] == "1187 Larkspur Lane"
    assert personal["persons"] == [
        {"role": "victim", "name": "Rosalind Quarrington", "age": 34, "sex": None, "attributes": {}}
    ]
    (viewed,) = events(world.store, before, action="personal_data_view")
    assert viewed.purpose == "CASE-2026-0042" and viewed.actor == world.user_id("a.officer")
    assert "citya" in viewed.owner_agencies and viewed.record_ids == (world.personal_id,)


@pytest.mark.parametrize("username", ["a.analyst", "b.officer"])
def test_personal_data_refused_to_those_not_allowed(world: World, username: str) -> None:
    client, _ = world.signed_in(username)
    # Another agency names citya's record by its public id; citya's own id is not
    # derivable to it and names nothing (issue #7).
    own = username.startswith("a.")
    rid = world.personal_id if own else world.population[0].public_id
    if not own:
        assert_error(client.get(f"/api/v1/incidents/{world.personal_id}"), 404)
    before = last_seq(world.store)
    response = client.get(f"/api/v1/incidents/{rid}", headers={"X-Purpose": "CASE-1"})
    body = assert_error(response, 403)
    assert "personal data" in body["error"] and body["errors"]
    assert NARRATIVE not in response.text
    (denied,) = events(world.store, before, action="denied")
    assert denied.actor == world.user_id(username) and denied.purpose == "CASE-1"
    assert denied.owner_agencies == ("citya",)


def test_history_shows_each_version_through_the_current_grant_and_linked_duplicates(
    world: World,
) -> None:
    from crossbeat.store.schema import duplicate_links

    (public,) = list_agreements(world.store, owner="citya", grantee="public")
    revoke_agreement(world.store, public.id, reason="partners only", clock=world.clock)
    create_agreement(
        world.store, "citya", "countyb", offences=["property"], fields=["offence", "occurred",
        "location", "status"], precision="block", purposes=["analysis"], approved_by="a.admin",
        clock=world.clock,
    )  # fmt: skip
    officer, headers = world.signed_in("a.officer")
    report = {"offence": "13B", "occurred_from": "2026-06-14T10:15:00-07:00"}
    report |= {"lat": 45.531, "lon": -122.661, "status": "open"}
    made = officer.post("/api/v1/incidents", json=report, headers=headers)
    assert made.status_code == 201, made.text
    own_id = made.json()["record"]["id"]
    url = f"/api/v1/incidents/{own_id}"
    for version, change in ((1, {"offence": "23H"}), (2, {"lat": 45.533, "lon": -122.659})):
        done = officer.patch(url, json=change, headers={**headers, "If-Match": f'"{version}"'})
        assert done.status_code == 200, done.text
    # The owner's analyst: both earlier versions in full, what changed, and when.
    analyst, _ = world.signed_in("a.analyst")
    mine = analyst.get(f"{url}/history")
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["record"]["id"] == own_id and body["record"]["nibrs_code"] == "23H"
    first, second = body["versions"]
    assert (first["version"], second["version"]) == (1, 2)
    assert first["record"]["nibrs_code"] == "13B" and "nibrs_code" in first["changed"]
    assert second["record"]["lat"] == 45.531 and {"lat", "lon"} <= set(second["changed"])
    assert first["superseded_at"] and second["superseded_at"]
    # The partner: the grant that shows the record now (property, block precision) shows
    # the property version at block precision, and not the assault version at all.
    public_id = body["record"].get("public_id") or _public_id(world, own_id)
    partner, _ = world.signed_in("b.analyst")
    theirs = partner.get(f"/api/v1/incidents/{public_id}/history")
    assert theirs.status_code == 200, theirs.text
    seen = theirs.json()
    assert seen["record"]["id"] == public_id
    before, after = seen["versions"]
    assert before["record"] is None and before["changed"] == []
    assert after["record"]["location_precision"] == "block"
    assert (after["record"]["lat"], after["record"]["lon"]) != (45.531, -122.661)
    assert "narrative" not in after["record"] and "block_address" not in after["record"]
    assert after["superseded_at"] is None  # the owner's business
    # The owner's id finds nothing for the partner; the public is refused.
    assert_error(partner.get(f"{url}/history"), 404)
    assert world.client().get(f"{url}/history").status_code in (401, 403)
    # Linked duplicates: only those the reader may see, under the id the reader knows.
    visible = next(i for i in world.normal if i.owner == "countyb")
    hidden = next(i for i in CANARIES if i.owner == "countyb")
    with world.store.begin() as conn:
        for other, p in ((visible, 0.97), (hidden, 0.91)):
            a, b = sorted([(own_id, public_id), (other.id, other.public_id)])
            conn.execute(
                duplicate_links.insert().values(
                    id_a=a[0], public_a=a[1], id_b=b[0], public_b=b[1], probability=p,
                    reasons=["same offence", "12 m apart"], params={}, linked_by="test",
                    linked_at=NOW,
                )
            )  # fmt: skip
    seq = last_seq(world.store)
    linked = analyst.get(f"{url}/history").json()["duplicates"]
    assert linked == [
        {
            "id": visible.public_id,
            "agency_id": "countyb",
            "probability": 0.97,
            "reasons": ["same offence", "12 m apart"],
        }
    ]
    audited = events(world.store, seq, action="detail_view")
    assert {e.resource_type for e in audited} == {"incident_history"}
    assert {o for e in audited for o in e.owner_agencies} == {"citya", "countyb"}


def _public_id(world: World, own_id: str) -> str:
    from sqlalchemy import select

    from crossbeat.store.schema import incidents

    with world.store.connect() as conn:
        return str(
            conn.execute(select(incidents.c.public_id).where(incidents.c.id == own_id)).scalar()
        )
