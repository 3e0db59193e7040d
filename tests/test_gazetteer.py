"""Address points and the address lookup of the public map (issue #12).

On both backends: loading OpenAddresses CSV and GeoJSON files (and a county's own
column names), refusing files that cannot be right without touching what is stored,
the audit event, the lookup's matching (abbreviations, missing directional, locality,
interpolation) checked against the demo region's street grid, and the public route and
the CLI as a user calls them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from click.testing import CliRunner

from crossbeat.agencies import register_agency
from crossbeat.cli import cli
from crossbeat.demo import region
from crossbeat.gazetteer import (
    GazetteerError,
    geocode,
    list_gazetteers,
    read_addresses,
    store_addresses,
    street_key,
)
from crossbeat.model import Agency
from crossbeat.store import Store
from tests.api_support import build_world, events

HEADER = "LON,LAT,NUMBER,STREET,UNIT,CITY,DISTRICT,REGION,POSTCODE\n"
# Main St runs north from (45.5000, -122.6000): numbers 100 (south) to 300 (north).
SMALL = HEADER + (
    "-122.6000,45.5000,100,N MAIN ST,,SPRINGTON,,OR,97000\n"
    "-122.6000,45.5010,200,N MAIN ST,,SPRINGTON,,OR,97000\n"
    "-122.6000,45.5020,300,N MAIN ST,,SPRINGTON,,OR,97000\n"
    "-122.6100,45.5100,12,NE ELM AVE,,SPRINGTON,,OR,97000\n"
    "-122.6200,45.5200,12,SW ELM AVE,,DALEFORD,,OR,97001\n"
    ",,14,SW ELM AVE,,DALEFORD,,OR,97001\n"
    "-122.6300,45.5300,16,,,DALEFORD,,OR,97001\n"
)


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Distance between two (lat, lon) points (equirectangular; fine at city scale)."""
    dy = (a[0] - b[0]) * 111_320
    dx = (a[1] - b[1]) * 111_320 * math.cos(math.radians(a[0]))
    return math.hypot(dx, dy)


def agency(store: Store, agency_id: str = "springpd") -> str:
    register_agency(store, Agency(id=agency_id, name=agency_id.title(), timezone="UTC"))
    return agency_id


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_street_words_are_compared_abbreviated() -> None:
    assert street_key("312 South East First Avenue") == "312 SE 1ST AVE"
    assert street_key("N. Main Street") == "N MAIN ST"
    assert street_key("Saint John's Road") == "ST JOHN S RD"
    # A lone "N E" is two words, not a quadrant (there is nothing after it).
    assert street_key("Avenue N E") == "AVE N E"


def test_openaddresses_csv_is_read_and_bad_rows_are_counted(tmp_path: Path) -> None:
    rows, skipped = read_addresses(write(tmp_path, "a.csv", SMALL))
    assert len(rows) == 5
    assert skipped == {"no coordinates": 1, "no street": 1}
    first = rows[0]
    assert (first["number"], first["street_key"], first["locality"]) == (
        100,
        "N MAIN ST",
        "SPRINGTON",
    )
    assert first["postcode"] == "97000"


def test_geojson_and_other_column_names_are_read(tmp_path: Path) -> None:
    feature = {
        "type": "Feature",
        "properties": {"number": "7A", "street": "Baker Street", "city": "London"},
        "geometry": {"type": "Point", "coordinates": [-0.1586, 51.5237]},
    }
    collection = {"type": "FeatureCollection", "features": [feature]}
    rows, _ = read_addresses(write(tmp_path, "a.geojson", json.dumps(collection)))
    assert (rows[0]["number"], rows[0]["house"], rows[0]["street_key"]) == (7, "7A", "BAKER ST")
    # OpenAddresses' line-delimited features.
    lines = "\n".join(json.dumps(feature) for _ in range(3)) + "\n"
    rows, _ = read_addresses(write(tmp_path, "b.geojson", lines))
    assert len(rows) == 3
    # A county's own export: Latitude/Longitude and one address column.
    county = "Latitude,Longitude,Address,Town\n38.6599,-121.5259,4851 KOKOMO DR,SACRAMENTO\n"
    rows, _ = read_addresses(write(tmp_path, "c.csv", county))
    assert (rows[0]["number"], rows[0]["street_key"], rows[0]["locality"]) == (
        4851, "KOKOMO DR", "SACRAMENTO"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("NUMBER,STREET\n1,MAIN ST\n", "no lon and no lat column"),
        ("LON,LAT,NUMBER\n-122,45,1\n", "no street (or address) column"),
        (HEADER + ",,1,MAIN ST,,,,,\n", "no usable address point (1 no coordinates)"),
        (
            HEADER + "7650000,680000,1,MAIN ST,,,,,\n7650100,680000,2,MAIN ST,,,,,\n",
            "holds no usable address point (2 coordinates outside longitude/latitude)",
        ),
        (
            HEADER + "7650000,680000,1,MAIN ST,,,,,\n7650100,680000,2,MAIN ST,,,,,\n"
            "-122.6,45.5,3,MAIN ST,,,,,\n",
            "not longitude/latitude (WGS84)",
        ),
        ('{"type": "Feature", "geometry": null', "line 1 is not a GeoJSON feature"),
    ],
)
def test_files_that_cannot_be_right_are_refused_and_nothing_changes(
    store: Store, tmp_path: Path, text: str, message: str
) -> None:
    who = agency(store)
    store_addresses(store, who, write(tmp_path, "good.csv", SMALL))
    suffix = ".geojson" if text.startswith("{") else ".csv"
    with pytest.raises(GazetteerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        store_addresses(store, who, write(tmp_path, f"bad{suffix}", text))
    assert list_gazetteers(store)[0]["addresses"] == 5
    assert geocode(store, "200 N Main St")[0].match == "address"


def test_unknown_agency_is_refused(store: Store, tmp_path: Path) -> None:
    with pytest.raises(GazetteerError, match="no agency 'nopd' is registered"):
        store_addresses(store, "nopd", write(tmp_path, "a.csv", SMALL))


def test_loading_replaces_and_is_audited(store: Store, tmp_path: Path) -> None:
    who = agency(store)
    got = store_addresses(store, who, write(tmp_path, "a.csv", SMALL), by="tester")
    assert got["addresses"] == 5 and got["streets"] == 3
    again = store_addresses(store, who, write(tmp_path, "a.csv", SMALL), by="tester")
    assert again["addresses"] == 5  # replaced, not added
    assert len(geocode(store, "100 N Main St")) == 1
    changes = events(store, resource_type="gazetteer")
    assert len(changes) == 2
    assert changes[-1].actor == "tester" and changes[-1].owner_agencies == (who,)
    assert changes[-1].record_count == 5
    assert changes[-1].details["skipped"] == {"no coordinates": 1, "no street": 1}


def test_lookup_matches_as_people_write_addresses(store: Store, tmp_path: Path) -> None:
    store_addresses(store, agency(store), write(tmp_path, "a.csv", SMALL))
    exact = geocode(store, "200 north main street")
    assert [(p.label, p.match) for p in exact] == [("200 N MAIN ST, SPRINGTON", "address")]
    assert (exact[0].lat, exact[0].lon) == (45.501, -122.6)
    # Between 100 and 200: a quarter of the way from 100's point to 200's.
    between = geocode(store, "125 N Main St")[0]
    assert between.match == "interpolated"
    assert between.lat == pytest.approx(45.50025) and between.lon == pytest.approx(-122.6)
    # Beyond the street's numbers: the nearest stored number, said so.
    beyond = geocode(store, "900 N Main St")[0]
    assert (beyond.match, beyond.label) == ("nearest", "300 N MAIN ST, SPRINGTON")
    # No number: the street's middle point.
    street = geocode(store, "N Main St")[0]
    assert (street.match, street.lat) == ("street", 45.501)
    # No directional: every quadrant's street, the locality after a comma ranks first.
    both = geocode(store, "12 Elm Ave")
    assert {p.label for p in both} == {"12 NE ELM AVE, SPRINGTON", "12 SW ELM AVE, DALEFORD"}
    assert geocode(store, "12 Elm Ave, Daleford")[0].label == "12 SW ELM AVE, DALEFORD"
    # Whole words only, and nothing for a street that is not there.
    assert geocode(store, "12 El Ave") == []
    assert geocode(store, "1 Nowhere Rd") == []
    assert geocode(store, "  ") == []


def test_demo_addresses_are_found_where_the_demo_puts_them(store: Store, tmp_path: Path) -> None:
    """Any address of the demo's street grid (what its exports carry) is found within a
    few metres of the place it was made from, interpolated between the file's points."""
    register_agency(store, Agency(id="rivertonpd", name="Riverton", timezone="UTC"))
    points = [p for p in region.address_points() if p["agency"] == "rivertonpd"]
    lines = [f"{p['lon']},{p['lat']},{p['number']},{p['street']},,{p['city']},,OR," for p in points]
    path = write(tmp_path, "riverton.csv", HEADER + "\n".join(lines) + "\n")
    store_addresses(store, "rivertonpd", path)
    rng = np.random.default_rng(3)
    inner = region.city_polygon().buffer(-200)
    checked = 0
    while checked < 25:
        x, y = rng.uniform(-3000, 3000), rng.uniform(-2500, 2500)
        col, row = round(x / region.BLOCK_M), round(y / region.BLOCK_M)
        # The point on the street street_address puts it on (its centre line).
        if abs(x - col * region.BLOCK_M) <= abs(y - row * region.BLOCK_M):
            x = col * region.BLOCK_M
        else:
            y = row * region.BLOCK_M
        if not inner.contains(shapely.Point(x, y)):
            continue
        address, _ = region.street_address(x, y)
        lon, lat = region.to_lonlat(x, y)
        found = geocode(store, f"{address}, Riverton")
        assert found, address
        # "nearest" only for the first few numbers of a block 0 (1 NE 1ST AVE: before N02)
        assert found[0].match != "street", (address, found[0])
        assert metres((found[0].lat, found[0].lon), (lat, lon)) < 6, (address, found[0])
        checked += 1


def test_public_route_needs_no_sign_in(store: Store, tmp_path: Path) -> None:
    world = build_world(store)
    client = world.client()
    empty = client.get("/api/v1/places", params={"q": "200 N Main St"})
    assert empty.status_code == 200
    assert empty.json() == {"query": "200 N Main St", "places": [], "addresses_loaded": False}
    store_addresses(store, "citya", write(tmp_path, "a.csv", SMALL))
    got = client.get("/api/v1/places", params={"q": "125 N Main St", "limit": 1}).json()
    assert got["addresses_loaded"] is True
    assert got["places"] == [
        {"label": "125 N MAIN ST, SPRINGTON", "lat": pytest.approx(45.50025), "lon": -122.6,
         "match": "interpolated", "agency_id": "citya"}
    ]  # fmt: skip
    for params in ({"q": "ab"}, {"q": "x" * 201}, {"q": "Main", "limit": 0}, {}):
        bad = client.get("/api/v1/places", params=params)
        assert bad.status_code == 400, params
        assert bad.json()["ok"] is False


def test_cli_loads_lists_and_looks_up(db_url: str, tmp_path: Path) -> None:
    from crossbeat.store import open_store

    store = open_store(db_url)
    agency(store)
    runner = CliRunner()
    path = write(tmp_path, "a.csv", SMALL)
    res = runner.invoke(
        cli, ["gazetteer", "load", "--agency", "springpd", "--db", db_url, str(path)]
    )
    assert res.exit_code == 0, res.output
    assert "5 addresses on 3 streets; left out: 1 no coordinates, 1 no street" in res.output
    res = runner.invoke(cli, ["gazetteer", "lookup", "--db", db_url, "150 n main st"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)[0]["match"] == "interpolated"
    res = runner.invoke(cli, ["gazetteer", "list", "--db", db_url])
    assert json.loads(res.output)[0]["source"] == "a.csv"
    bad = write(tmp_path, "b.csv", "NUMBER,STREET\n1,MAIN ST\n")
    res = runner.invoke(
        cli, ["gazetteer", "load", "--agency", "springpd", "--db", db_url, str(bad)]
    )
    assert res.exit_code == 1 and "no lon and no lat column" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(cli, ["gazetteer", "load", "--agency", "nopd", "--db", db_url, str(path)])
    assert res.exit_code != 0 and "nopd" in res.output


def test_values_too_long_for_their_columns_are_left_out_not_cut(tmp_path: Path) -> None:
    """A street of 201 characters or a 10-digit house number is not stored cut short."""
    long_street = "N " + "A" * 199 + " ST"
    text = HEADER + (
        f"-122.6,45.5,1,{long_street},,SPRINGTON,,OR,\n"
        "-122.6,45.5,1234567890,N MAIN ST,,SPRINGTON,,OR,\n"
        f"-122.6,45.5,1,N MAIN ST,,{'X' * 101},,OR,\n"
        "-122.6,45.5,1,N MAIN ST,,SPRINGTON,,OR,97000\n"
    )
    rows, skipped = read_addresses(write(tmp_path, "a.csv", text))
    assert [(r["street"], r["house"]) for r in rows] == [("N MAIN ST", "1")]
    assert skipped == {
        "street longer than 200 characters": 1,
        "house number of more than 9 digits": 1,
        "locality longer than 100 characters": 1,
    }
