"""Exports (CSV, GeoJSON, GeoPackage) and the polygon, jurisdiction, status and code
filters, over HTTP and the CLI, through the sharing policy (issue #10)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pyogrio
import pytest
from click.testing import CliRunner

from crossbeat.cli import cli
from crossbeat.exports import LAYER
from crossbeat.sharing.agreements import create_agreement
from crossbeat.sharing.scope import PUBLIC_FIELDS, RECORD_FIELDS
from crossbeat.store import Store
from tests.api_support import CANARIES, NARRATIVE, World, assert_error, build_world, events
from tests.sharing_support import AGENCIES

#: Granted to countyb by citya below: no block address, no attributes, no status.
PARTNER_FIELDS = ["offence", "occurred", "location"]
GPKG_TABLES = {
    "gpkg_spatial_ref_sys", "gpkg_contents", "gpkg_ogr_contents", "gpkg_geometry_columns",
    "gpkg_tile_matrix_set", "gpkg_tile_matrix", "gpkg_extensions", "sqlite_sequence",
}  # fmt: skip


@pytest.fixture
def world(store: Store) -> World:
    w = build_world(store)
    create_agreement(
        store, "citya", "countyb", offences=["all"], fields=PARTNER_FIELDS, precision="exact",
        purposes=["analysis"], approved_by="a.admin", clock=w.clock,
    )  # fmt: skip
    return w


def _gpkg(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "export.gpkg"
    path.write_bytes(data)
    return path


def test_gpkg_export_opens_with_pyogrio_and_holds_only_granted_columns(
    world: World, tmp_path: Path
) -> None:
    client, _ = world.signed_in("b.analyst")
    r = client.get("/api/v1/exports?format=gpkg&agency=citya")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/geopackage+sqlite3"
    assert 'filename="incidents.gpkg"' in r.headers["content-disposition"]
    path = _gpkg(tmp_path, r.content)
    info = pyogrio.read_info(path)
    assert info["layer_name"] == LAYER and info["crs"] == "EPSG:4326"
    assert info["geometry_type"] == "Point"
    granted = {"id", "agency_id", "nibrs_code", "offence_name", "crime_against", "ucr_part1",
               "occurred_from", "occurred_to", "time_precision", "location_precision"}  # fmt: skip
    assert set(info["fields"]) <= granted, set(info["fields"]) - granted
    assert {"id", "agency_id", "nibrs_code", "occurred_from"} <= set(info["fields"])
    citya = [i for i in world.normal if i.owner == "citya"]
    assert info["features"] == len(citya)
    _meta, _fids, geometry, values = pyogrio.raw.read(path)
    ids = set(values[list(info["fields"]).index("id")])
    assert ids == {i.public_id for i in citya}  # partners see public ids only
    assert all(g is not None for g in geometry)
    # No hidden metadata: only the GeoPackage's own tables, the layer and its index.
    with sqlite3.connect(path) as db:
        tables = {t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        extra = tables - GPKG_TABLES - {LAYER} - {t for t in tables if t.startswith("rtree_")}
        assert not extra, extra
        assert db.execute("SELECT identifier, description FROM gpkg_contents").fetchall() == [
            (LAYER, "")
        ]
    raw = path.read_bytes()
    for secret in (
        NARRATIVE.encode(),
        b"100 BLOCK MAIN ST",
        world.store.url.encode(),
        b"b.analyst",
    ):
        assert secret not in raw


def test_export_is_audited_as_export_per_owner_with_counts(world: World) -> None:
    client, _ = world.signed_in("b.analyst")
    r = client.get("/api/v1/exports?format=csv")
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.text)))
    found = events(world.store, action="export")
    by_owner: dict[str, int] = {}
    for e in found:
        (owner,) = e.owner_agencies
        by_owner[owner] = by_owner.get(owner, 0) + (e.record_count or 0)
        assert e.actor == world.user_id("b.analyst")
    shown: dict[str, int] = {}
    for row in rows:
        shown[row["agency_id"]] = shown.get(row["agency_id"], 0) + 1
    assert by_owner == shown and "citya" in shown and "countyb" in shown


def test_csv_and_geojson_exports_of_the_public_hold_public_fields_only(world: World) -> None:
    client = world.client()
    r = client.get("/api/v1/exports?format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    header = next(csv.reader(io.StringIO(r.text)))
    assert set(header) <= PUBLIC_FIELDS and "id" in header
    body = client.get("/api/v1/exports?format=geojson").json()
    assert set(body) == {"type", "features"} and body["type"] == "FeatureCollection"
    canaries = {c.public_id for c in CANARIES}
    assert body["features"] and not canaries & {f["id"] for f in body["features"]}
    for feature in body["features"]:
        assert set(feature["properties"]) <= PUBLIC_FIELDS - {"lat", "lon"}


def test_own_agency_csv_has_its_columns_and_neutralises_formulas(world: World) -> None:
    client, _ = world.signed_in("a.analyst")
    text = client.get("/api/v1/exports?format=csv&agency=citya").text
    header = next(csv.reader(io.StringIO(text)))
    assert "block_address" in header and set(header) <= set(RECORD_FIELDS)
    assert header == [f for f in RECORD_FIELDS if f in header]  # canonical order


def test_incidents_csv_page(world: World) -> None:
    client, _ = world.signed_in("b.analyst")
    r = client.get("/api/v1/incidents?f=csv&agency=citya&limit=5")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 5 and r.headers["X-Next-After"]
    assert "block_address" not in rows[0] and "status" not in rows[0]


SQUARE = [[-122.70, 45.50], [-122.66, 45.50], [-122.66, 45.56], [-122.70, 45.56], [-122.70, 45.50]]
BAD_POLYGONS = [
    "POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))",  # self-intersecting
    "nonsense",
    '{"type": "Point", "coordinates": [0, 0]}',
    "POLYGON ((0 0, 200 0, 0 1, 0 0))",  # beyond longitude 180
]


def test_polygon_filter_keeps_points_inside_and_refuses_bad_polygons(world: World) -> None:
    client, _ = world.signed_in("a.analyst")
    wkt = "POLYGON ((" + ", ".join(f"{x} {y}" for x, y in SQUARE) + "))"
    geojson = json.dumps({"type": "Polygon", "coordinates": [SQUARE]})
    inside = {  # the boundary belongs to the polygon
        i.id for i in world.population if i.owner == "citya" and i.lon and i.lon <= -122.66
    }
    for polygon in (wkt, geojson):
        params = {"polygon": polygon, "agency": "citya"}
        body = client.get("/api/v1/incidents", params={**params, "limit": 1000}).json()
        got = {r["id"] for r in body["records"]}
        assert inside and got == inside
        assert all(r["lon"] <= -122.66 for r in body["records"])
        counted = client.get("/api/v1/aggregates", params=params).json()
        assert counted["total"] == len(body["records"])
    for polygon in BAD_POLYGONS:
        body = assert_error(client.get("/api/v1/incidents", params={"polygon": polygon}), 400)
        assert body["errors"][0].startswith("polygon:"), body


def test_status_code_and_jurisdiction_filters(world: World) -> None:
    client, _ = world.signed_in("a.analyst")
    everything = client.get("/api/v1/incidents?agency=citya&limit=1000").json()["records"]
    assert everything
    assert len(client.get("/api/v1/incidents?status=OPEN&limit=1000").json()["records"]) >= len(
        everything
    )
    assert client.get("/api/v1/incidents?status=closed").json()["records"] == []
    theft = client.get("/api/v1/incidents?agency=citya&code=23H&limit=1000").json()["records"]
    assert theft and all(r["nibrs_code"] == "23H" for r in theft)
    inside = client.get("/api/v1/incidents?jurisdiction=transitc&limit=1000").json()["records"]
    assert inside and all("transitc" in r["jurisdictions"] for r in inside)
    minx, miny, maxx, maxy = AGENCIES["transitc"][1].bounds
    assert all(miny <= r["lat"] <= maxy for r in inside if r["agency_id"] == "citya")
    # A partner not granted the status field: the filter needs it, so nothing comes back
    # from that owner and the decision says why.
    partner, _ = world.signed_in("b.analyst")
    body = partner.get("/api/v1/incidents?agency=citya&status=open").json()
    assert body["records"] == []
    assert any("status" in reason for d in body["decisions"] for reason in d["reasons"])
    assert_error(client.get("/api/v1/incidents?code="), 400)


def test_aggregates_by_zoom(world: World) -> None:
    client, _ = world.signed_in("a.analyst")
    body = client.get("/api/v1/aggregates?zoom=13&agency=citya").json()
    assert body["by"] == ["h3_9"] and body["cells"]
    assert client.get("/api/v1/aggregates?zoom=5").json()["by"] == ["h3_7"]
    both = client.get("/api/v1/aggregates?zoom=16&by=month").json()
    assert both["by"] == ["month", "h3_11"]
    assert_error(client.get("/api/v1/aggregates?zoom=13&by=h3_9"), 400)
    assert_error(client.get("/api/v1/aggregates?zoom=30"), 400)


def test_cli_export_geojson_and_gpkg(world: World, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "x.geojson"
    args = ["export", "--db", world.store.url, "--agency", "countyb", "--format", "geojson"]
    result = runner.invoke(cli, [*args, "--output", str(out), "--code", "23H"])
    assert result.exit_code == 0, result.output
    features = json.loads(out.read_text())["features"]
    assert features and all(f["properties"]["nibrs_code"] == "23H" for f in features)
    gpkg = tmp_path / "x.gpkg"
    args[-1] = "gpkg"
    result = runner.invoke(cli, [*args, "--output", str(gpkg)])
    assert result.exit_code == 0, result.output
    assert pyogrio.read_info(gpkg)["features"] > 0
    bad = runner.invoke(cli, ["export", "--db", world.store.url, "--output", str(gpkg)])
    assert bad.exit_code != 0 and "--agency" in bad.output
