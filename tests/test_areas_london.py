"""London boroughs as an area layer of a police.uk feed, checked against geopandas.

British Transport Police's January 2020 street crimes (5,694 rows, about 3,050 in
Greater London) with the 33 London borough polygons registered as BTP's ``boroughs``
layer: the counts by borough equal an independent point-in-polygon count done with
geopandas on the source CSV, and the public, through an agreement generalised to
boroughs, sees counts and records by borough only, never a point. Uses ../shared/data
(skipped without it, a failure in CI).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from sqlalchemy import select

from crossbeat.agencies import register_agency
from crossbeat.areas import add_layer
from crossbeat.auth.accounts import create_user
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import load_profile
from crossbeat.model import Agency
from crossbeat.sharing.agreements import create_agreement
from crossbeat.sharing.policy import ReadRequest, Viewer
from crossbeat.sharing.reads import aggregate, read_incidents
from crossbeat.store.schema import incidents
from tests.auth_support import PASSWORD
from tests.conftest import shared_data

pytestmark = pytest.mark.shared_data

PROFILE = Path(__file__).resolve().parents[1] / "examples/profiles/uk-london.btp-street.toml"
#: BTP's agency admin, who approves its public agreement.
APPROVER = "btp.admin"


def borough_keys(lons, lats, boroughs: gpd.GeoDataFrame) -> list[str]:
    """Return, per point, its borough names joined by '+' ('none' outside London)."""
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lons, lats), crs="EPSG:4326")
    joined = gpd.sjoin(points, boroughs[["name", "geometry"]], how="left", predicate="intersects")
    names = joined.groupby(level=0)["name"].agg(
        lambda s: "+".join(sorted(n for n in s if isinstance(n, str))) or "none"
    )
    return [names[i] for i in range(len(points))]


def test_btp_counts_by_london_borough_equal_geopandas_and_the_public_sees_boroughs(store):
    bounds = shared_data("uk-london", "boundaries", "london_boroughs_wgs84.geojson")
    feed = shared_data("uk-london", "btp_col_2020", "2020-01-btp-street.csv")
    register_agency(store, Agency("btp", "British Transport Police", timezone="Europe/London"))
    change = add_layer(store, "btp", "boroughs", bounds, name_field="name", kind="borough")
    assert (change.areas, change.tagged) == (33, 0)  # nothing stored yet
    summary = ingest_files(store, "btp", load_profile(PROFILE), [feed])
    assert (summary.rows, summary.new, summary.quarantined) == (5694, 5694, 0)

    # The independent count: every CSV row, point-in-polygon with geopandas.
    boroughs = gpd.read_file(bounds)
    source = pd.read_csv(feed)
    expected = Counter(borough_keys(source["Longitude"], source["Latitude"], boroughs))
    assert sum(n for k, n in expected.items() if k != "none") == 3053  # SOURCE.md

    analyst = Viewer.user("u1", "btp", ["analyst"])
    got = aggregate(store, analyst, by=("area:boroughs",))
    assert {k[0]: v for k, v in got.cells.items()} == dict(expected)
    assert got.total == 5694
    camden = aggregate(store, analyst, ReadRequest(areas=frozenset({("boroughs", "Camden")})))
    assert camden.total == expected["Camden"]

    # The public, generalised to boroughs by BTP's public agreement.
    create_user(store, "btp", APPROVER, PASSWORD, ["agency_admin"])
    create_agreement(store, "btp", "public", precision="area:boroughs", approved_by=APPROVER)
    public = Viewer.public()
    records = read_incidents(store, public, ReadRequest(limit=10_000)).records
    assert 0 < len(records) < 5694  # sensitive offences are never published
    assert all("lat" not in r and "lon" not in r and "h3_9" not in r for r in records)
    assert all(r["location_precision"] in ("area:boroughs", "none") for r in records)
    # Each public record's borough is the one geopandas finds for its true point. The
    # public knows each incident by its public id, the owner by its internal id.
    with store.connect() as conn:
        public_ids = dict(conn.execute(select(incidents.c.id, incidents.c.public_id)).all())
    points = {
        public_ids[r["id"]]: (r["lon"], r["lat"])
        for r in read_incidents(store, analyst, ReadRequest(limit=10_000)).records
    }
    ids = [r["id"] for r in records]
    truth = borough_keys([points[i][0] for i in ids], [points[i][1] for i in ids], boroughs)
    shown = ["+".join(r["areas"].get("btp/boroughs", [])) or "none" for r in records]
    assert shown == truth
    # Public counts by borough: those of the published records, small ones suppressed.
    counts = aggregate(store, public, by=("area:boroughs",))
    visible = Counter(truth)
    assert counts.threshold == 5
    published = {key: n for (key,), n in counts.cells.items()}
    assert set(published) == set(visible)
    for key, n in published.items():
        assert n is None or (n == visible[key] and n >= 5)
    # In this month every borough with published crimes has at least 5: none is hidden.
    assert published == dict(visible) and counts.suppressed == 0
