"""OGC API - Features Part 1 (Core, GeoJSON): responses validate against the standard's
schemas, QGIS's request sequence is answered, each caller's redaction applies (issue #10).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from crossbeat.areas import add_layer
from crossbeat.auth.tokens import create_token
from crossbeat.sharing.agreements import create_agreement
from crossbeat.sharing.scope import PUBLIC_FIELDS
from crossbeat.store import Store
from tests.api_support import CANARIES, World, assert_error, build_world, events
from tests.ogc_schemas import check_items_page, check_landing_links, validate
from tests.sharing_support import AREA

OGC = "/api/v1/ogc"
#: What QGIS's OGC API provider asks for (Accept of its requests).
QGIS_ACCEPT = {"Accept": "application/json"}
QGIS_ITEMS_ACCEPT = {"Accept": "application/geo+json, application/json;q=0.8"}


@pytest.fixture
def world(store: Store, tmp_path: Path) -> World:
    w = build_world(store)
    create_agreement(
        store, "citya", "countyb", offences=["all"], fields=["offence", "occurred", "location"],
        precision="exact", purposes=["analysis"], approved_by="a.admin", clock=w.clock,
    )  # fmt: skip
    beats = tmp_path / "beats.geojson"
    beats.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"name": name},
                        "geometry": {"type": "Polygon", "coordinates": [ring]},
                    }
                    for name, ring in (
                        ("west", [[-122.70, 45.50], [-122.66, 45.50], [-122.66, 45.56],
                                  [-122.70, 45.56], [-122.70, 45.50]]),
                        ("east", [[-122.66, 45.50], [-122.62, 45.50], [-122.62, 45.56],
                                  [-122.66, 45.56], [-122.66, 45.50]]),
                    )
                ],
            }
        )
    )  # fmt: skip
    add_layer(store, "citya", "beats", beats, name_field="name", kind="beat")
    return w


def _path(href: str) -> str:
    parts = urlsplit(href)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _qgis_sequence(client: TestClient, headers: dict[str, str], limit: int) -> list[dict[str, Any]]:
    """Replay QGIS: landing -> conformance -> collections -> items?bbox&limit -> next..."""
    landing = client.get(OGC, headers={**headers, **QGIS_ACCEPT})
    assert landing.status_code == 200 and landing.headers["content-type"] == "application/json"
    validate("landing", landing.json())
    check_landing_links(landing.json())
    rels = {link["rel"]: link["href"] for link in landing.json()["links"]}
    assert client.get(_path(rels["service-desc"])).status_code == 200
    conformance = client.get(_path(rels["conformance"]), headers={**headers, **QGIS_ACCEPT}).json()
    validate("conformance", conformance)
    assert (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conformance["conformsTo"]
    )
    assert (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"
        in conformance["conformsTo"]
    )
    collections = client.get(_path(rels["data"]), headers={**headers, **QGIS_ACCEPT}).json()
    validate("collections", collections)
    incidents = next(c for c in collections["collections"] if c["id"] == "incidents")
    validate("collection", incidents)
    items_href = next(link["href"] for link in incidents["links"] if link["rel"] == "items")
    bbox = ",".join(str(v) for v in AREA)
    url: str | None = f"{_path(items_href)}?bbox={bbox}&limit={limit}"
    features: list[dict[str, Any]] = []
    while url is not None:
        page = client.get(url, headers={**headers, **QGIS_ITEMS_ACCEPT})
        assert page.status_code == 200, page.text
        assert page.headers["content-type"] == "application/geo+json"
        body = page.json()
        validate("items", body)
        check_items_page(body, limit)
        features += body["features"]
        url = next((_path(link["href"]) for link in body["links"] if link["rel"] == "next"), None)
    return features


def test_qgis_sequence_with_a_token_gets_the_tokens_redaction(world: World) -> None:
    token = create_token(world.store, "countyb", "read", clock=world.clock)
    auth = {"Authorization": f"Bearer {token.secret}"}
    client = world.client()
    features = _qgis_sequence(client, auth, limit=7)
    same = client.get("/api/v1/incidents?limit=1000", headers=auth).json()["records"]
    assert [f["id"] for f in features] == [r["id"] for r in same]
    assert len({f["id"] for f in features}) == len(features)  # no page repeats one
    for f in features:
        if f["properties"]["agency_id"] == "citya":  # granted: offence, occurred, location
            assert "block_address" not in f["properties"] and "status" not in f["properties"]
            assert f["geometry"]["type"] == "Point"
    # The reads are audited, with the token as the reader.
    assert events(world.store, actor=token.token.id)


def test_public_gets_public_fields_and_no_sensitive_incident(world: World) -> None:
    client = world.client()
    features = _qgis_sequence(client, {}, limit=50)
    assert features
    canaries = {c.public_id for c in CANARIES}
    assert not canaries & {f["id"] for f in features}
    for f in features:
        assert set(f["properties"]) <= PUBLIC_FIELDS - {"lat", "lon"}


def test_items_filters_single_item_and_errors(world: World) -> None:
    client, _ = world.signed_in("a.analyst")
    base = f"{OGC}/collections/incidents/items"
    body = client.get(f"{base}?datetime=2026-05-20T00:00:00Z/..&limit=1000").json()
    validate("items", body)
    assert body["features"] and all(
        f["properties"]["occurred_from"] >= "2026-05-20" for f in body["features"]
    )
    before = client.get(f"{base}?datetime=../2026-05-20T00:00:00Z&limit=1000").json()
    everything = client.get(f"{base}?limit=1000").json()
    assert len(body["features"]) + len(before["features"]) == len(everything["features"])
    assert everything["numberMatched"] == len(everything["features"])
    theft = client.get(f"{base}?nibrs_code=23H&agency_id=citya&limit=1000").json()["features"]
    assert theft and all(f["properties"]["nibrs_code"] == "23H" for f in theft)
    offset = client.get(f"{base}?limit=5&offset=5").json()["features"]
    assert [f["id"] for f in offset] == [f["id"] for f in everything["features"][5:10]]
    one = everything["features"][0]
    item = client.get(f"{base}/{one['id']}")
    assert item.status_code == 200 and item.headers["content-type"] == "application/geo+json"
    validate("item", item.json())
    assert item.json()["properties"] == one["properties"]
    assert_error(client.get(f"{base}/no-such-id"), 404)
    assert_error(client.get(f"{OGC}/collections/nothing/items"), 404)
    assert_error(client.get(f"{base}?colour=red"), 400)  # unknown parameter
    assert_error(client.get(f"{base}?bbox=1,2,3"), 400)
    assert_error(client.get(f"{base}?datetime=yesterday"), 400)
    assert_error(client.get(f"{base}?limit=0"), 400)


def test_area_layer_collections_follow_sharing(world: World) -> None:
    client, _ = world.signed_in("a.analyst")
    ids = [c["id"] for c in client.get(f"{OGC}/collections").json()["collections"]]
    assert ids == ["incidents", "areas-citya-beats"]
    body = client.get(
        f"{OGC}/collections/areas-citya-beats/items?bbox=-122.69,45.51,-122.68,45.52"
    ).json()
    validate("items", body)
    assert [f["id"] for f in body["features"]] == ["west"]
    assert body["features"][0]["geometry"]["type"] == "Polygon"
    paged = client.get(f"{OGC}/collections/areas-citya-beats/items?limit=1").json()
    assert [link["rel"] for link in paged["links"]] == ["self", "next"]
    item = client.get(f"{OGC}/collections/areas-citya-beats/items/east").json()
    validate("item", item)
    # countyb's analysts see citya's layer (citya shares with them); so does the public
    # (citya has a public agreement in this world).
    partner, _ = world.signed_in("b.analyst")
    assert "areas-citya-beats" in [
        c["id"] for c in partner.get(f"{OGC}/collections").json()["collections"]
    ]
