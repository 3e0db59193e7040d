"""The public map's "what happened near here in the last 30 days" in a real browser.

The demo region's incidents end on 2026-10-31, so the browser's clock is fixed at the
end of the data (``page.clock.set_fixed_time``: ``Date`` only, timers still run) and the
place is the public's busiest resolution-7 cell of those 30 days; the count the page
shows must be the public API's for the box it outlines on the map (drawn, asserted
with ``queryRenderedFeatures``).
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests import web_support
from tests.web_support import (
    DESKTOP,
    PHONE,
    Console,
    DemoServer,
    axe_violations,
    rendered,
    screenshot,
    served_demo,
    wait_js,
    wait_ready,
)

pytestmark = pytest.mark.web
browser = web_support.browser  # one chromium for the module (a fixture)
console = web_support.console  # fails the test on a console error (a fixture)

#: The end of the demo's data: the browser's "now" in these tests.
NOW = datetime(2026, 10, 31, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    # Half the demo region's size: at the default tenth, no place holds enough incidents
    # of one category in 30 days to pass the public threshold, and every count is withheld.
    with served_demo(tmp_path_factory.mktemp("web-near"), size=0.5, wait=120.0) as started:
        yield started


def _public(server: DemoServer, **params: str) -> dict[str, Any]:
    """GET /api/v1/aggregates as the public (no cookie, no token)."""
    url = f"{server.url}/api/v1/aggregates?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url) as response:
        return dict(json.load(response))


def _window() -> dict[str, str]:
    """The page's 30 days: its milliseconds-precision ISO times, as JavaScript writes them."""
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.000Z")  # noqa: E731
    return {"since": iso(NOW - timedelta(days=30)), "until": iso(NOW)}


def _busiest_place(server: DemoServer) -> tuple[float, float]:
    """The published place with the most published incidents in a near-box around it.

    Counts below the public threshold are withheld, so the place must hold enough.
    """
    query = urllib.parse.urlencode({**_window(), "limit": 5000})
    with urllib.request.urlopen(f"{server.url}/api/v1/incidents?{query}") as response:
        records = json.load(response)["records"]
    places = [(r["lat"], r["lon"]) for r in records if r.get("lat") is not None]
    assert places, "no published incident in the demo's last 30 days"
    near = lambda a, b: abs(a[0] - b[0]) < 0.005 and abs(a[1] - b[1]) < 0.007  # noqa: E731
    return max(set(places), key=lambda p: sum(near(p, q) for q in places))


def test_near_my_location_counts_the_outlined_box(
    browser: Any, server: DemoServer, console: Console
) -> None:
    lat, lon = _busiest_place(server)
    context = browser.new_context(
        viewport=DESKTOP,
        geolocation={"latitude": lat, "longitude": lon},
        permissions=["geolocation"],
    )
    page = console.watch(context.new_page())
    page.clock.set_fixed_time(NOW)
    page.goto(server.url + "/")
    wait_ready(page)
    wait_js(page, "document.getElementById('near-me') !== null")
    page.get_by_role("button", name="Use my location").click()
    wait_js(page, "document.getElementById('near-count') !== null")
    shown = int(page.locator("#near-count").get_attribute("data-total") or "-1")
    bbox = page.locator("#near-result").get_attribute("data-bbox")
    assert bbox
    expected = _public(server, by="crime_against", bbox=bbox, **_window())
    assert shown == expected["total"] > 0
    west, south, east, north = map(float, bbox.split(","))
    assert west < lon < east and south < lat < north  # around my location
    assert f"{lat:.4f}" in page.locator("#near-count").inner_text()
    # Each category of the answer is listed with its count.
    listed = page.locator("#near-result li").all_inner_texts()
    assert len(listed) == len(expected["cells"])
    for cell in expected["cells"]:  # withheld ones say so, with the threshold
        value = f"{cell['count']:,}" if cell["count"] is not None else "fewer than"
        assert f"{cell['key'][0]}: {value}" in "\n".join(listed)
    # The box counted is outlined on the map, and the map moved to it.
    wait_js(page, "window.cbMap.queryRenderedFeatures({layers: ['near-line']}).length > 0")
    drawn = rendered(page, "near-line")
    assert drawn and all(abs(f["lat"] - lat) < 1e-9 for f in drawn)
    centre = page.evaluate("window.cbMap.getCenter().toArray()")
    assert abs(centre[0] - lon) < 0.01 and abs(centre[1] - lat) < 0.01
    page.locator("#near-result").scroll_into_view_if_needed()
    screenshot(page, "public-near-desktop")
    assert not axe_violations(page), axe_violations(page)
    page.set_viewport_size(PHONE)
    page.locator("#near-result").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    screenshot(page, "public-near-phone")
    assert not axe_violations(page), axe_violations(page)
    context.close()


def test_near_typed_coordinates_are_checked(
    browser: Any, server: DemoServer, console: Console
) -> None:
    context = browser.new_context(viewport=PHONE)  # no location permission
    page = console.watch(context.new_page())
    page.goto(server.url + "/")
    wait_ready(page)
    wait_js(page, "document.getElementById('near-where') !== null")
    page.get_by_label("Street address or coordinates").fill("145.4, -122.6")
    page.get_by_role("button", name="Show", exact=True).click()
    wait_js(page, "document.getElementById('near-result').textContent.includes('Give a latitude')")
    assert page.locator("#near-count").count() == 0
    # An address that is not in the agencies' address lists says so.
    page.get_by_label("Street address or coordinates").fill("12 Nowhere Road")
    page.get_by_role("button", name="Show", exact=True).click()
    wait_js(page, "document.getElementById('near-none') !== null")
    assert "No address matches" in page.locator("#near-none").inner_text()
    assert page.locator("#near-count").count() == 0
    context.close()


def test_near_a_typed_address_counts_around_its_point(
    browser: Any, server: DemoServer, console: Console
) -> None:
    """A street address is looked up in the demo's address points (not in incidents) and
    the box around the point found is counted exactly as the public API counts it."""
    from pyproj import Transformer
    from shapely import Point

    from crossbeat.demo import region

    lat, lon = _busiest_place(server)
    # The street address at the busiest place, as the demo's grid numbers it.
    to_local = Transformer.from_crs("EPSG:4326", region.LOCAL_CRS, always_xy=True)
    ox, oy = to_local.transform(*region.ORIGIN_LONLAT)
    x, y = to_local.transform(lon, lat)
    address, _ = region.street_address(x - ox, y - oy)
    city = region.city_polygon().contains(Point(x - ox, y - oy))
    typed = f"{address.lower()}, {'Riverton' if city else 'Clackmer County'}"
    context = browser.new_context(viewport=DESKTOP)
    page = console.watch(context.new_page())
    page.clock.set_fixed_time(NOW)
    page.goto(server.url + "/")
    wait_ready(page)
    page.get_by_label("Street address or coordinates").fill(typed)
    page.get_by_role("button", name="Show", exact=True).click()
    wait_js(page, "document.getElementById('near-count') !== null")
    text = page.locator("#near-count").inner_text()
    assert address in text, (address, text)  # the address found, as listed
    bbox = page.locator("#near-result").get_attribute("data-bbox")
    assert bbox
    west, south, east, north = map(float, bbox.split(","))
    found = ((south + north) / 2, (west + east) / 2)
    # On the street the place is on: within a block of it.
    assert abs(found[0] - lat) < 0.002 and abs(found[1] - lon) < 0.003, (found, (lat, lon))
    expected = _public(server, by="crime_against", bbox=bbox, **_window())
    shown = int(page.locator("#near-count").get_attribute("data-total") or "-1")
    assert shown == expected["total"]
    # A street without a number in several places: the page asks which one.
    page.get_by_label("Street address or coordinates").fill("1st avenue")
    page.get_by_role("button", name="Show", exact=True).click()
    wait_js(page, "document.getElementById('near-places') !== null")
    choices = page.locator("#near-places button")
    assert choices.count() >= 2
    assert all("1ST AVE" in t for t in choices.all_inner_texts())
    first = choices.first.inner_text().split(" (")[0]
    choices.first.click()
    wait_js(page, f"(document.getElementById('near-count')?.textContent || '').includes({first!r})")
    assert not axe_violations(page), axe_violations(page)
    context.close()
