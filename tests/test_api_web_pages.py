"""The web pages as the server serves them, and the boundaries they draw (issue #12)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping

from crossbeat.agencies import register_agency, set_jurisdiction
from crossbeat.clock import FrozenClock
from crossbeat.model import Agency
from crossbeat.store import Store
from crossbeat.web import PageError, page_html
from tests.api_support import make_client

PAGES = {"/": "Community crime map", "/methodology": "Methodology", "/app": "Analyst",
         "/admin": "Agency admin", "/field": "Field",
         "/forecast": "Forecasts and patrol plans"}  # fmt: skip


@pytest.fixture
def client(store: Store) -> TestClient:
    register_agency(store, Agency(id="cityx", name="City X PD", timezone="UTC"))
    set_jurisdiction(store, "cityx", "city", mapping(box(-1.0, 51.0, -0.5, 51.5)))
    return make_client(
        store,
        FrozenClock(datetime(2026, 6, 1, 12, tzinfo=UTC)),
        basemap_tiles="https://tiles.example/{z}/{x}/{y}.png",
        basemap_attribution="© Example </script>",
    )


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_served_with_its_assets_and_settings(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f"<title>{PAGES[path]}" in page.text
    found = re.search(r'id="cb-config" type="application/json">(.*?)</script>', page.text)
    assert found, "the page's configuration"
    config = json.loads(found.group(1))
    # The configured tile source reaches the page; no value can close the script element.
    assert config["basemap_tiles"] == "https://tiles.example/{z}/{x}/{y}.png"
    assert config["basemap_attribution"] == "© Example </script>"
    for asset in re.findall(r'(?:src|href)="(/static/web/[^"]+)"', page.text):
        assert client.get(asset).status_code == 200, asset


def test_field_app_may_ask_for_the_location_and_installs(client: TestClient) -> None:
    assert "geolocation=(self)" in client.get("/field").headers["permissions-policy"]
    # The public map may too ("near my location"); no other page may.
    assert "geolocation=(self)" in client.get("/").headers["permissions-policy"]
    for other in ("/app", "/admin", "/methodology", "/forecast", "/api/v1/jurisdictions"):
        assert "geolocation=()" in client.get(other).headers["permissions-policy"], other
    worker = client.get("/field/sw.js")
    assert worker.status_code == 200 and worker.headers["service-worker-allowed"] == "/field"
    manifest = client.get("/field/manifest.webmanifest").json()
    assert manifest["start_url"] == "/field" and manifest["display"] == "standalone"


def test_boundaries_are_public_geojson(client: TestClient) -> None:
    body = client.get("/api/v1/jurisdictions").json()
    assert body["type"] == "FeatureCollection"
    (feature,) = body["features"]
    assert feature["properties"] == {
        "agency_id": "cityx",
        "agency_name": "City X PD",
        "name": "city",
    }
    assert feature["geometry"]["type"] == "Polygon"


def test_an_unknown_page_names_the_pages() -> None:
    with pytest.raises(PageError, match="one of public"):
        page_html("nope", {})


@pytest.mark.parametrize("path", PAGES)
def test_every_page_has_its_csp_and_the_operations_of_the_server(
    client: TestClient, path: str
) -> None:
    page = client.get(path)
    csp = dict(d.strip().split(" ", 1) for d in page.headers["content-security-policy"].split(";"))
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    # The configured base map's host may be fetched and drawn, nothing else outside.
    assert csp["img-src"] == "'self' data: blob: https://tiles.example"
    assert csp["connect-src"] == "'self' https://tiles.example"
    slot = re.search(r'<script id="cb-config" type="application/json">(.*?)</script>', page.text)
    assert slot is not None
    operations = json.loads(slot.group(1))["operations"]
    spec = client.get("/openapi.json").json()["paths"]
    assert operations == sorted(f"{m.upper()} {p}" for p, ops in spec.items() for m in ops)
    assert "GET /api/v1/tiles/incidents/{z}/{x}/{y}.mvt" in operations


def test_csp_allows_no_tile_host_without_a_base_map() -> None:
    from crossbeat.web import content_security_policy

    csp = content_security_policy("")
    assert "connect-src 'self';" in csp and "img-src 'self' data: blob:;" in csp
    sub = content_security_policy("https://{s}.tile.example/{z}/{x}/{y}.png")
    assert "https://*.tile.example" in sub


def test_forecast_page_lists_every_forecasting_model_the_server_offers(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crossbeat.forecast.models import NaiveCounts
    from crossbeat.forecast.service import MODELS, model_names

    def models() -> list[str]:
        page = client.get("/forecast").text
        slot = re.search(r'<script id="cb-config" type="application/json">(.*?)</script>', page)
        assert slot is not None
        listed: list[str] = json.loads(slot.group(1))["forecast_models"]
        return listed

    assert models() == model_names()
    assert {"decayed", "shrunk", "ensemble-decayed", "borrowed"} <= set(models())
    # A model added to the service's list reaches the page with no change to the page.
    monkeypatch.setitem(MODELS, "naive-two-years", lambda: NaiveCounts(days=730))
    assert "naive-two-years" in models() and models() == model_names()
    # Only the forecast page carries the list.
    other = client.get("/app").text
    assert "forecast_models" not in other
