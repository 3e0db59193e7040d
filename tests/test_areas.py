"""Area layers below the agency: files, tagging, re-tagging, reads, agreements, CLI, API.

Every test that stores data runs on SQLite and PostgreSQL. Expected tags and counts
are computed here with shapely from the same polygons, independently of the code
under test.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from click.testing import CliRunner
from shapely.geometry import Point, box, mapping
from sqlalchemy import select

from crossbeat.agencies import load_boundaries, register_agency
from crossbeat.areas import AreaError, add_layer, get_layer, list_layers, remove_layer
from crossbeat.audit import iter_events
from crossbeat.auth.accounts import create_user
from crossbeat.cli import cli
from crossbeat.clock import FrozenClock
from crossbeat.demo.build import build_demo, demo_kek
from crossbeat.geo.polygons import PolygonFileError, read_polygons
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import load_profile
from crossbeat.model import Agency
from crossbeat.sharing._manage import AgreementError
from crossbeat.sharing.agreements import create_agreement
from crossbeat.sharing.overrides import get_public_policy, tighten_public_policy
from crossbeat.sharing.policy import ReadRequest, RequestError, Viewer
from crossbeat.sharing.reads import aggregate, read_incidents
from crossbeat.store import open_store
from crossbeat.store.schema import area_layers, areas, incident_areas, incidents, jurisdictions
from tests.api_support import make_client
from tests.auth_support import PASSWORD

PROFILE = """
name = "areas-feed"

[source]
format = "csv"
timezone = "UTC"

[id]
columns = ["id"]

[occurred_from]
column = "when"
formats = ["%Y-%m-%d %H:%M"]

[location]
x = "lon"
y = "lat"

[[offences]]
scheme = "code-nibrs"
code = "code"
"""

#: Two beats side by side and a third one for the replacement layer.
WEST = box(-122.70, 45.50, -122.6555, 45.56)
EAST = box(-122.6555, 45.50, -122.60, 45.56)
NORTH = box(-122.70, 45.53, -122.60, 45.56)
SOUTH = box(-122.70, 45.50, -122.60, 45.53)


def points(start: int, n: int) -> list[tuple[str, float, float]]:
    """Return ``n`` source ids with (lon, lat), some outside every beat."""
    out = []
    for i in range(start, start + n):
        lon = -122.6903 + (i % 17) * 0.0041
        lat = 45.5012 + (i % 13) * 0.0047
        if i % 11 == 0:
            lon, lat = -122.80, 45.40  # outside every beat
        out.append((f"R{i}", lon, lat))
    return out


def write_feed(path: Path, rows: list[tuple[str, float, float]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "when", "lon", "lat", "code"])
        for i, (sid, lon, lat) in enumerate(rows):
            w.writerow([sid, f"2024-03-{1 + i % 28:02d} 10:30", f"{lon:.6f}", f"{lat:.6f}", "220"])
    return path


def write_layer(path: Path, named: dict[str, Any], *, crs: str = "EPSG:4326", field="BEAT"):
    """Write polygons with a name property (and an unrelated one) in any vector format."""
    frame = gpd.GeoDataFrame(
        {field: list(named), "SQ_MILES": [1.5] * len(named)},
        geometry=list(named.values()),
        crs="EPSG:4326",
    )
    frame.to_crs(crs).to_file(path)
    return path


def expected_tags(rows: list[tuple[str, float, float]], named: dict[str, Any]) -> dict[str, set]:
    """Source id -> names of the polygons containing the point (shapely, on the same shapes)."""
    return {
        sid: {name for name, g in named.items() if g.intersects(Point(lon, lat))}
        for sid, lon, lat in rows
    }


def stored_tags(store, layer: str = "beats") -> dict[str, set]:
    q = (
        select(incidents.c.source_id, areas.c.name)
        .select_from(
            incidents.join(incident_areas, incident_areas.c.incident_id == incidents.c.id)
            .join(areas, areas.c.id == incident_areas.c.area_id)
            .join(area_layers, area_layers.c.id == areas.c.layer_id)
        )
        .where(area_layers.c.name == layer)
    )
    out: dict[str, set] = {}
    with store.connect() as conn:
        for sid, name in conn.execute(q):
            out.setdefault(sid, set()).add(name)
    return out


def nonempty(tags: dict[str, set]) -> dict[str, set]:
    return {k: v for k, v in tags.items() if v}


def layer_events(store) -> list[Any]:
    return [e for e in iter_events(store) if e.resource_type == "area_layer"]


#: The two agency admins of cityx who approve its agreements (two for personal fields).
APPROVERS = ["cityx.admin", "cityx.admin2"]


@pytest.fixture
def city(store, tmp_path):
    """Agency cityx with 40 incidents ingested before any layer exists."""
    register_agency(store, Agency("cityx", "City X Police", timezone="UTC"))
    register_agency(store, Agency("countyy", "County Y Sheriff", timezone="UTC"))
    for name in APPROVERS:
        create_user(store, "cityx", name, PASSWORD, ["agency_admin"])
    profile_path = tmp_path / "feed.toml"
    profile_path.write_text(PROFILE, encoding="utf-8")
    profile = load_profile(profile_path)
    rows = points(0, 40)
    s = ingest_files(store, "cityx", profile, [write_feed(tmp_path / "a.csv", rows)])
    assert s.new == 40
    return {"store": store, "profile": profile, "rows": rows, "tmp": tmp_path}


# -- reading polygon files ------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ["gpkg", "shp", "geojson"])
def test_polygon_files_in_a_projected_crs_are_read_named_and_reprojected(tmp_path, suffix):
    named = {"West": WEST, "East": EAST}
    path = write_layer(tmp_path / f"beats.{suffix}", named, crs="EPSG:2913")  # Oregon ft
    read = read_polygons(path)
    assert read.name_field == "BEAT"  # guessed: the only text property with a value in all
    assert [p.name for p in read.polygons] == ["West", "East"]
    for p in read.polygons:
        # Back in WGS84, equal to the original up to the projection round trip.
        assert p.geometry.symmetric_difference(named[p.name]).area < 1e-9


def test_polygon_file_errors_name_what_to_change(tmp_path):
    path = write_layer(tmp_path / "beats.gpkg", {"West": WEST, "East": EAST})
    with pytest.raises(PolygonFileError, match=r"no property 'DISTRICT'.*BEAT, SQ_MILES"):
        read_polygons(path, name_field="DISTRICT")
    with pytest.raises(PolygonFileError, match="not a property"):
        read_polygons(path, where={"ZONE": "1"})
    with pytest.raises(PolygonFileError, match="no feature"):
        read_polygons(path, where={"BEAT": "North"})
    table = tmp_path / "beats.csv"
    table.write_text("BEAT,SQ_MILES\nWest,1\n")
    with pytest.raises(PolygonFileError, match="no features with a geometry"):
        read_polygons(table)
    (tmp_path / "broken.geojson").write_text("not json")
    with pytest.raises(PolygonFileError, match="cannot read .*broken.geojson"):
        read_polygons(tmp_path / "broken.geojson")
    blank = tmp_path / "blank.geojson"
    blank.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": {"code": 1}, "geometry": mapping(WEST)},
                    {"type": "Feature", "properties": {"code": 1}, "geometry": mapping(EAST)},
                ],
            }
        )
    )
    with pytest.raises(PolygonFileError, match="give --name-field"):
        read_polygons(blank)
    # The same name twice is one area (a district drawn as several features).
    read = read_polygons(blank, name_field="code")
    assert [(p.name, p.features) for p in read.polygons] == [("1", 2)]
    assert read.polygons[0].geometry.area == pytest.approx(WEST.area + EAST.area)


def test_a_boundary_keeps_its_own_names(store, tmp_path):
    register_agency(store, Agency("cityx", "City X Police", timezone="UTC"))
    path = write_layer(
        tmp_path / "b.gpkg", {"Northside": NORTH, "Southside": SOUTH}, crs="EPSG:2913"
    )
    assert load_boundaries(store, "cityx", path) == 2
    with store.connect() as conn:
        names = sorted(conn.execute(select(jurisdictions.c.name)).scalars())
    assert names == ["Northside", "Southside"]  # not cityx-1, cityx-2


# -- layers, tagging and re-tagging -----------------------------------------------------------
def test_layer_tags_stored_and_newly_ingested_incidents_and_each_change_is_audited(city):
    store, tmp = city["store"], city["tmp"]
    two = {"West": WEST, "East": EAST}
    change = add_layer(
        store, "cityx", "beats", write_layer(tmp / "beats.shp", two, crs="EPSG:2913"), kind="beat"
    )
    want = expected_tags(city["rows"], two)
    assert stored_tags(store) == nonempty(want)
    assert (change.change, change.areas, change.tagged) == ("added", 2, len(nonempty(want)))
    assert 0 < change.tagged < 40  # some points lie outside both beats

    # A later ingest tags its new incidents as it stores them.
    more = points(40, 25)
    ingest_files(store, "cityx", city["profile"], [write_feed(tmp / "b.csv", more)])
    want.update(expected_tags(more, two))
    assert stored_tags(store) == nonempty(want)

    # Bad input changes nothing: the layer exists, and a replacement that cannot be read.
    with pytest.raises(AreaError, match="--replace"):
        add_layer(store, "cityx", "beats", write_layer(tmp / "again.gpkg", two))
    with pytest.raises(AreaError, match="no property"):
        add_layer(store, "cityx", "beats", tmp / "beats.shp", name_field="NOPE", replace=True)
    with pytest.raises(AreaError, match="unknown agency"):
        add_layer(store, "nosuch", "beats", tmp / "beats.shp")
    with pytest.raises(AreaError, match="invalid layer name"):
        add_layer(store, "cityx", "Beats!", tmp / "beats.shp")
    assert stored_tags(store) == nonempty(want)

    # Replacing the layer re-tags every stored incident.
    ns = {"North": NORTH, "South": SOUTH}
    change = add_layer(
        store, "cityx", "beats", write_layer(tmp / "ns.geojson", ns), kind="beat", replace=True
    )
    rows = city["rows"] + more
    want_ns = expected_tags(rows, ns)
    assert stored_tags(store) == nonempty(want_ns)
    assert (change.change, change.previous_areas, change.areas) == ("replaced", 2, 2)
    assert change.previous_tagged == len(nonempty(want))
    assert get_layer(store, "cityx", "beats").areas == ("North", "South")
    assert [layer.key for layer in list_layers(store)] == ["cityx/beats"]

    removed = remove_layer(store, "cityx", "beats")
    assert stored_tags(store) == {}
    assert (removed.previous_areas, removed.previous_tagged) == (2, len(nonempty(want_ns)))
    with pytest.raises(AreaError, match="has no area layer 'beats'"):
        remove_layer(store, "cityx", "beats")

    events = layer_events(store)
    assert [e.details["change"] for e in events] == ["added", "replaced", "removed"]
    assert [e.record_count for e in events] == [
        len(nonempty(expected_tags(city["rows"], two))),
        len(nonempty(want_ns)),
        len(nonempty(want_ns)),
    ]
    assert all(e.owner_agencies == ("cityx",) for e in events)
    assert events[0].details["areas"] == 2 and events[0].details["name_field"] == "BEAT"


# -- reads, agreements and the public ----------------------------------------------------------
def _counts(result) -> dict[str, int | None]:
    return {k[0]: v for k, v in result.cells.items()}


def test_areas_filter_and_group_reads_and_agreements_generalise_to_a_layer(city):
    store, tmp = city["store"], city["tmp"]
    two = {"West": WEST, "East": EAST}
    add_layer(store, "cityx", "beats", write_layer(tmp / "beats.gpkg", two), kind="beat")
    want = expected_tags(city["rows"], two)
    by_beat = Counter("+".join(sorted(v)) or "none" for v in want.values())
    own = Viewer.user("u1", "cityx", ["analyst"])

    got = aggregate(store, own, ReadRequest(), by=("area:beats",))
    assert _counts(got) == dict(by_beat)
    west = read_incidents(store, own, ReadRequest(areas=frozenset({("beats", "West")})))
    assert {r["id"] for r in west.records} and all(
        "West" in r["areas"]["cityx/beats"] for r in west.records
    )
    assert len(west.records) == sum(1 for v in want.values() if "West" in v)
    read_event = [e for e in iter_events(store) if e.resource_type == "incident"][-1]
    assert read_event.details["request"]["areas"] == ["beats:West"]
    # The same filter written as text, and a layer named with its agency.
    again = read_incidents(store, own, ReadRequest(areas=frozenset({"cityx/beats:West"})))
    assert [r["id"] for r in again.records] == [r["id"] for r in west.records]
    with pytest.raises(RequestError, match="LAYER:NAME"):
        ReadRequest(areas=frozenset({"West"}))
    with pytest.raises(RequestError, match="area:LAYER"):
        ReadRequest(group_by=("area:Beats!",))

    # An agreement at area:beats shows the partner areas and jurisdictions, no point.
    with pytest.raises(Exception, match="no area layer 'cityx/wards'"):
        create_agreement(
            store, "cityx", "countyy", offences=["all"], fields=["all"],
            precision="area:wards", purposes=["analysis"], approved_by=APPROVERS,
        )  # fmt: skip
    create_agreement(
        store, "cityx", "countyy", offences=["all"], fields=["all"],
        precision="area:beats", purposes=["analysis"], approved_by=APPROVERS,
    )  # fmt: skip
    partner = Viewer.user("u2", "countyy", ["analyst"])
    records = read_incidents(store, partner).records
    assert len(records) == 40
    for r in records:
        assert "lat" not in r and "h3_9" not in r and "block_address" not in r
        assert r["location_precision"] == "area:beats"
        assert set(r["areas"]) <= {"cityx/beats"}
    assert _counts(aggregate(store, partner, by=("area:beats",))) == dict(by_beat)
    refused = aggregate(store, partner, by=("h3_9",))
    assert refused.total == 0
    assert any("finer than precision area:beats" in r for r in refused.decisions[0].reasons)


def test_the_public_sees_counts_by_area_with_suppression(city):
    store, tmp = city["store"], city["tmp"]
    two = {"West": WEST, "East": EAST}
    add_layer(store, "cityx", "beats", write_layer(tmp / "beats.gpkg", two), kind="beat")
    with pytest.raises(AgreementError, match="no area layer 'cityx/wards'"):
        tighten_public_policy(store, "cityx", {"precision": "area:wards"})
    # The owner's layer written with its agency is the same layer.
    tighten_public_policy(store, "cityx", {"precision": "area:cityx/beats"})
    assert str(get_public_policy(store, "cityx").precision) == "area:beats"
    create_agreement(store, "cityx", "public", precision="area:beats", approved_by=APPROVERS[0])
    later = FrozenClock(store.clock.now() + timedelta(days=3650))
    want = Counter("+".join(sorted(v)) or "none" for v in expected_tags(city["rows"], two).values())
    got = aggregate(store, Viewer.public(), by=("area:beats",), clock=later)
    assert got.threshold == 5
    for key, count in _counts(got).items():
        assert count is None or count == want[key]
        assert count is None or count == 0 or count >= 5
    records = read_incidents(store, Viewer.public(), clock=later).records
    assert records and all("lat" not in r and set(r["areas"]) <= {"cityx/beats"} for r in records)
    # The web API takes the same dimension and filter.
    client = make_client(store, later)
    body = client.get("/api/v1/aggregates?by=area:beats").json()
    assert {c["key"][0]: c["count"] for c in body["cells"]} == _counts(got)
    west = client.get("/api/v1/incidents", params={"area": "beats:West", "limit": 500}).json()
    assert {r["id"] for r in west["records"]} == {
        r["id"] for r in records if "West" in r["areas"].get("cityx/beats", [])
    }
    assert client.get("/api/v1/aggregates?by=area:").status_code == 400


# -- the command line ----------------------------------------------------------------------
def test_area_commands(db_url, tmp_path):
    runner = CliRunner()
    db = ["--db", db_url]
    bounds = write_layer(tmp_path / "bounds.geojson", {"Northside": NORTH, "Southside": SOUTH})
    out = runner.invoke(
        cli,
        ["agency", "add", "cityx", "--name", "City X", *db, "--boundary", str(bounds),
         "--name-field", "BEAT"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    layer = write_layer(tmp_path / "beats.gpkg", {"West": WEST, "East": EAST})
    out = runner.invoke(
        cli, ["area", "add", "cityx", "beats", str(layer), "--kind", "beat", "--json", *db]
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["areas"] == 2
    out = runner.invoke(cli, ["area", "add", "cityx", "beats", str(layer), *db])
    assert out.exit_code != 0 and "--replace" in out.output
    out = runner.invoke(cli, ["area", "list", *db])
    assert "cityx/beats" in out.output and "beat" in out.output
    out = runner.invoke(cli, ["area", "show", "cityx", "beats", *db])
    assert out.exit_code == 0 and "East" in out.output and "West" in out.output
    out = runner.invoke(cli, ["area", "remove", "cityx", "beats", *db])
    assert out.exit_code == 0 and "removed" in out.output
    out = runner.invoke(cli, ["area", "show", "cityx", "beats", *db])
    assert out.exit_code != 0 and "has no area layer" in out.output


# -- the demo -------------------------------------------------------------------------------
def test_the_demo_city_has_police_districts(sqlite_url, tmp_path):
    summary = build_demo(sqlite_url, tmp_path, seed=7, size=0.05)
    store = open_store(sqlite_url, kek=demo_kek(sqlite_url, tmp_path))
    path = summary.files.areas["rivertonpd/districts"]
    named = {p.name: p.geometry for p in read_polygons(path).polygons}
    assert sorted(named) == ["North-East", "North-West", "South-East", "South-West"]
    assert [(x.key, x.kind, len(x.areas)) for x in list_layers(store)] == [
        ("rivertonpd/districts", "district", 4)
    ]
    analyst = Viewer.user("u1", "rivertonpd", ["analyst"])
    records = read_incidents(
        store, analyst, ReadRequest(agencies=frozenset({"rivertonpd"}))
    ).records
    want = Counter(
        "+".join(sorted(n for n, g in named.items() if g.intersects(Point(r["lon"], r["lat"]))))
        or "none"
        if r["lat"] is not None
        else "none"
        for r in records
    )
    got = aggregate(
        store, analyst, ReadRequest(agencies=frozenset({"rivertonpd"})), by=("area:districts",)
    )
    assert _counts(got) == dict(want)
    assert sum(n for k, n in want.items() if k != "none") > 0.9 * len(records)
