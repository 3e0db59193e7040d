"""The web pages in a real browser against a real server over the demo region (issue #12).

Every assertion about the map is on what MapLibre drew (``queryRenderedFeatures``).
The machine is offline: the default OpenStreetMap tiles cannot be fetched, so these
tests also show that every data layer draws on the plain background.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import shapely
from shapely.geometry import shape

from crossbeat.sharing.tiles import tile_bounds
from tests import web_support
from tests.web_support import (
    DESKTOP,
    PHONE,
    Console,
    DemoServer,
    axe_violations,
    plain_png,
    rendered,
    screenshot,
    served_demo,
    sign_in,
    wait_js,
    wait_panel,
    wait_ready,
)

pytestmark = pytest.mark.web
browser = web_support.browser  # one chromium for the module (a fixture)
console = web_support.console  # fails the test on a console error (a fixture)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    # A shared, loaded machine can take a minute to start a server: give it two.
    with served_demo(tmp_path_factory.mktemp("web-demo"), wait=120.0) as started:
        yield started


@pytest.fixture(scope="module")
def analyst(browser: Any, server: DemoServer) -> Iterator[Any]:
    """The county's analyst, signed in to /app with password and one-time code."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = Console()
    errors.watch(page)
    sign_in(page, server, "clackmer.analyst", "/app")
    wait_panel(page)
    page.errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()
    assert not errors.errors, errors.errors


def _shots(page: Any, name: str) -> None:
    """Screenshot a state at desktop and phone size (axe-core finds nothing serious in it)."""
    screenshot(page, f"{name}-desktop")
    assert not axe_violations(page), axe_violations(page)
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(300)
    screenshot(page, f"{name}-phone")
    assert not axe_violations(page), axe_violations(page)
    page.set_viewport_size(DESKTOP)
    page.wait_for_timeout(300)


def _zoom_to_points(page: Any) -> None:
    """Zoom in past the hexagons to the points (the tiles carry them from zoom 13)."""
    page.evaluate("window.cbMap.jumpTo({center: [-122.56, 45.42], zoom: 13.2})")
    wait_js(
        page,
        "window.cbMap.queryRenderedFeatures({layers: ['points']}).length > 0"
        " && !window.cbMap.isMoving()",
    )
    page.wait_for_timeout(300)


def _agencies_drawn(page: Any) -> set[str]:
    return {f["agency_id"] for f in rendered(page, "points")}


def test_sign_in_with_mfa_and_see_two_agencies_on_one_map(analyst: Any) -> None:
    assert "clackmerco" in analyst.locator("#user").inner_text()  # signed in
    # The map reads vector tiles (hexagons below zoom 13), not GeoJSON pages.
    assert analyst.evaluate("window.cbMap.getSource('incidents').type") == "vector"
    assert rendered(analyst, "hex"), "hexagons at low zoom"
    _zoom_to_points(analyst)
    assert {"clackmerco", "rivertonpd"} <= _agencies_drawn(analyst)
    assert not analyst.errors.errors


def test_time_filter_changes_the_counts_and_the_map(analyst: Any) -> None:
    _zoom_to_points(analyst)
    before_total = analyst.locator("#count").get_attribute("data-total")
    before_points = len(rendered(analyst, "points"))
    analyst.evaluate(
        """() => { const to = document.getElementById('f-to'); to.value = 1;
                   to.dispatchEvent(new Event('input', {bubbles: true})); }"""
    )
    wait_js(analyst, f"document.getElementById('count').dataset.total !== '{before_total}'")
    wait_ready(analyst)
    after_total = analyst.locator("#count").get_attribute("data-total")
    assert int(after_total) < int(before_total)
    assert len(rendered(analyst, "points")) < before_points
    analyst.evaluate(
        """() => { const to = document.getElementById('f-to'); to.value = to.max;
                   to.dispatchEvent(new Event('input', {bubbles: true})); }"""
    )
    wait_js(analyst, f"document.getElementById('count').dataset.total === '{before_total}'")
    wait_ready(analyst)


def test_detail_panel_opens_on_a_drawn_point(analyst: Any) -> None:
    _zoom_to_points(analyst)
    target = analyst.evaluate(
        """() => { const f = window.cbMap.queryRenderedFeatures({layers: ['points']})[0];
                   const p = window.cbMap.project(f.geometry.coordinates);
                   const box = window.cbMap.getCanvas().getBoundingClientRect();
                   return {x: box.left + p.x, y: box.top + p.y, id: f.properties.id}; }"""
    )
    analyst.mouse.click(target["x"], target["y"])
    panel = analyst.locator("#detail")
    panel.wait_for(state="visible")
    text = panel.inner_text()
    assert "agency id" in text and "nibrs code" in text
    assert "narrative" not in text and "persons" not in text  # personal data needs a purpose
    # Incidents like this one (the analysis service), each opening its own detail.
    panel.get_by_role("heading", name="Similar incidents").wait_for()
    wait_js(analyst, "document.getElementById('detail-related').dataset.done === '1'", 60_000)
    expected = analyst.evaluate(
        """async (id) => (await (await fetch(`/api/v1/incidents/${id}/similar?limit=5`))
            .json()).results.length""",
        target["id"],
    )
    shown = panel.locator("#detail-related li").count()
    assert shown == expected, panel.inner_text()
    if not expected:
        assert "None that you may see" in panel.locator("#detail-related").inner_text()
    analyst.get_by_role("button", name="Close the detail panel").click()


#: File a field report and change its status (a second version), as the signed-in officer.
FILE_AND_CHANGE = """async ([lat, lon]) => {
    const me = await (await fetch('/auth/me')).json();
    const headers = {'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token};
    const body = {offence: '23F', occurred_from: new Date(Date.now() - 3600e3).toISOString(),
                  lat, lon, status: 'open', narrative: 'Wallet taken from a parked car'};
    const made = await (await fetch('/api/v1/incidents',
        {method: 'POST', headers, body: JSON.stringify(body)})).json();
    const id = made.record.id;
    const changed = await fetch('/api/v1/incidents/' + id, {method: 'PATCH',
        headers: {...headers, 'If-Match': '"1"'}, body: JSON.stringify({status: 'closed'})});
    return [id, changed.status]; }"""


def _open_detail(page: Any, incident_id: str, lat: float, lon: float) -> None:
    """Zoom to an incident's point until it is the one drawn on top there, and click it."""
    page.evaluate(f"window.cbMap.jumpTo({{center: [{lon}, {lat}], zoom: 17}})")
    found = (
        "window.cbMap.queryRenderedFeatures({layers: ['points']})"
        f".find((f) => f.properties.id === '{incident_id}')"
    )
    wait_js(page, f"Boolean({found}) && !window.cbMap.isMoving()", timeout=30_000)
    target = page.evaluate(
        f"""() => {{ const f = {found}; const p = window.cbMap.project(f.geometry.coordinates);
                   const box = window.cbMap.getCanvas().getBoundingClientRect();
                   return {{x: box.left + p.x, y: box.top + p.y}}; }}"""
    )
    page.mouse.click(target["x"], target["y"])
    page.locator("#detail").wait_for(state="visible")
    wait_js(page, "document.getElementById('detail-history')?.dataset.done === '1'", 60_000)
    if incident_id not in page.locator("#detail dl").first.inner_text():
        # Another incident at the same place opened first: the panel offers this one.
        page.locator("#detail-here").get_by_role("button", name=incident_id).click()
        wait_js(
            page,
            f"document.querySelector('#detail dl').innerText.includes('{incident_id}')"
            " && document.getElementById('detail-history')?.dataset.done === '1'",
            60_000,
        )
    assert incident_id in page.locator("#detail dl").first.inner_text()


def test_detail_panel_shows_history_and_linked_duplicates(
    browser: Any, server: DemoServer, analyst: Any, console: Console
) -> None:
    # A second version: the county's officer files a report and closes it.
    context = browser.new_context(viewport=PHONE)
    officer = console.watch(context.new_page())
    sign_in(officer, server, "clackmer.officer", "/field")
    wait_ready(officer)
    lat, lon = 45.4123, -122.5987
    own_id, status = officer.evaluate(FILE_AND_CHANGE, [lat, lon])
    assert status == 200
    context.close()
    analyst.reload()
    wait_panel(analyst)
    _open_detail(analyst, own_id, lat, lon)
    versions = analyst.locator("#detail-versions li")
    assert versions.count() == 1, analyst.locator("#detail").inner_text()
    assert "status" in versions.first.inner_text() and "open" in versions.first.inner_text()
    analyst.locator("#detail-history").scroll_into_view_if_needed()
    _shots(analyst, "app-detail-history")
    analyst.get_by_role("button", name="Close the detail panel").click()
    # Linked duplicates: stored by the duplicates analysis (the command an analyst runs).
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSBEAT_")}
    done = subprocess.run(
        [sys.executable, "-m", "crossbeat", "analyse", "link-duplicates", "--db", server.db_url,
         "--agency", "clackmerco"],
        cwd=server.out_dir, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(server.db_url.removeprefix("sqlite:///")) as db:
        links = db.execute(
            "SELECT a.agency_id, l.public_a, a.lat, a.lon, b.agency_id, l.public_b"
            " FROM duplicate_links l JOIN incidents a ON a.id = l.id_a"
            " JOIN incidents b ON b.id = l.id_b WHERE a.agency_id != 'clackmerco'"
            " AND b.agency_id != 'clackmerco'"
        ).fetchall()
    assert links, done.stdout
    _agency, shown, lat, lon, other_agency, other = links[0]
    answer = analyst.evaluate(
        "async (id) => (await fetch('/api/v1/incidents/' + id)).status", shown
    )
    assert answer == 200, "the county sees the city's incident it links"
    _open_detail(analyst, shown, lat, lon)
    may_see = analyst.evaluate(
        "async (id) => (await fetch('/api/v1/incidents/' + id)).status", other
    )
    duplicates = analyst.locator("#detail-history").inner_text()
    if may_see == 200:
        assert other in duplicates and other_agency in duplicates
    else:
        assert "None linked that you may see" in duplicates and other not in duplicates
    analyst.get_by_role("button", name="Close the detail panel").click()


def test_draw_an_area_for_counts_and_a_trend_chart(analyst: Any) -> None:
    analyst.evaluate("window.cbMap.jumpTo({center: [-122.56, 45.42], zoom: 11})")
    analyst.wait_for_timeout(300)
    box = analyst.locator("#map").bounding_box()
    analyst.get_by_role("button", name="Draw an area").click()
    analyst.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25)
    analyst.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.75)
    analyst.locator("#area-count").wait_for()
    assert "incidents in the area" in analyst.locator("#area-count").inner_text()
    assert analyst.locator("#area-chart").is_visible()
    assert analyst.get_by_role("link", name="Export the area's incidents").count() == 1
    # The CompStat table of the area (GET /api/v1/analysis/compstat with its bbox).
    compstat = analyst.locator("#compstat")
    compstat.wait_for()
    assert compstat.locator("tbody tr").count() > 0
    assert "Change %" in compstat.inner_text()


def test_analysis_layers_draw_on_the_map(analyst: Any) -> None:
    analyst.evaluate("window.cbMap.jumpTo({center: [-122.56, 45.42], zoom: 10})")
    wait_ready(analyst)
    for name, layer in (("kde", "analysis-kde-fill"), ("hotspots", "analysis-hotspots-fill")):
        analyst.locator(f"#layer-{name}").check()
        wait_js(analyst, "document.body.dataset.layers === '1'", timeout=60_000)
        wait_js(
            analyst, f"window.cbMap.getLayer('{layer}') && window.cbMap.loaded()", timeout=30_000
        )
        drawn = rendered(analyst, layer)
        assert drawn, analyst.locator("#layer-note").inner_text()
        analyst.locator(f"#layer-{name}").uncheck()
        assert not analyst.evaluate(f"Boolean(window.cbMap.getLayer('{layer}'))")
    analyst.locator("#layer-nearrepeat").check()
    analyst.locator("#knox tbody tr").first.wait_for(timeout=60_000)
    analyst.locator("#layer-nearrepeat").uncheck()


def test_an_area_filter_changes_the_counts_and_the_tiles(analyst: Any) -> None:
    wait_js(analyst, "document.querySelectorAll('#f-area option').length > 1")
    before = analyst.locator("#count").get_attribute("data-total")
    area = analyst.locator("#f-area option").nth(1).get_attribute("value")
    analyst.locator("#f-area").select_option(area)
    wait_js(analyst, f"document.getElementById('count').dataset.total !== '{before}'")
    wait_ready(analyst)
    assert int(analyst.locator("#count").get_attribute("data-total")) < int(before)
    tiles = analyst.evaluate("window.cbMap.getSource('incidents').tiles[0]")
    assert "area=" in tiles
    analyst.locator("#f-area").select_option("")
    wait_js(analyst, f"document.getElementById('count').dataset.total === '{before}'")
    wait_ready(analyst)


def _hex_total(page: Any) -> int:
    """The sum of the counts of the hexagons drawn (each cell once)."""
    cells = {f["h3"]: f.get("count") or 0 for f in rendered(page, "hex")}
    return sum(cells.values())


def test_a_jurisdiction_filter_changes_the_counts_and_the_map(analyst: Any) -> None:
    analyst.evaluate("window.cbMap.jumpTo({center: [-122.56, 45.42], zoom: 10})")
    wait_ready(analyst)
    before, drawn = analyst.locator("#count").get_attribute("data-total"), _hex_total(analyst)
    options = analyst.locator("#f-jurisdiction option")
    assert options.count() >= 3  # all, and each agency's jurisdiction
    analyst.locator("#f-jurisdiction").select_option("rivertonpd")  # the city inside the county
    wait_js(analyst, f"document.getElementById('count').dataset.total !== '{before}'")
    wait_ready(analyst)
    assert 0 < int(analyst.locator("#count").get_attribute("data-total")) < int(before)
    assert "jurisdiction=rivertonpd" in analyst.evaluate(
        "window.cbMap.getSource('incidents').tiles[0]"
    )
    assert 0 < _hex_total(analyst) < drawn  # the hexagons drawn hold fewer incidents
    analyst.locator("#f-jurisdiction").select_option("")
    wait_js(analyst, f"document.getElementById('count').dataset.total === '{before}'")
    wait_ready(analyst)


def test_near_repeat_zones_and_series_draw_with_a_legend(analyst: Any) -> None:
    analyst.evaluate("window.cbMap.jumpTo({center: [-122.56, 45.42], zoom: 10})")
    wait_ready(analyst)
    analyst.locator("#layer-nearrepeat").check()
    wait_js(analyst, "document.body.dataset.layers === '1'", timeout=90_000)
    analyst.locator("#knox tbody tr").first.wait_for()
    knox = analyst.evaluate(
        """async () => (await (await fetch('/api/v1/analysis/nearrepeat')).json()).table"""
    )
    note = analyst.locator("#layer-note").inner_text()
    if any(r["p"] is not None and r["p"] < 0.05 and r["ratio"] > 1 for r in knox):
        wait_js(
            analyst, "window.cbMap.getLayer('analysis-nearrepeat-fill') && window.cbMap.loaded()"
        )
        zones = rendered(analyst, "analysis-nearrepeat-fill")
        assert zones and all(z["radius_m"] > 0 for z in zones), note
        assert "Near-repeat zones:" in note
    else:
        assert "no distance and time band is above chance" in note
    assert analyst.locator("#layer-legend li[data-layer=nearrepeat]").count() == 1
    analyst.locator("#layer-nearrepeat").uncheck()
    assert analyst.locator("#layer-legend li[data-layer=nearrepeat]").count() == 0
    analyst.locator("#layer-series").check()
    wait_js(analyst, "document.body.dataset.layers === '1'", timeout=90_000)
    wait_js(analyst, "window.cbMap.getLayer('analysis-series-line') && window.cbMap.loaded()")
    series = analyst.evaluate(
        """async () => (await (await fetch('/api/v1/analysis/series')).json()).series"""
    )
    assert series, "the demo region holds series"
    xy = [
        (m["lon"], m["lat"])
        for s in series
        for ms in s["members"].values()
        for m in ms
        if m["lon"] is not None
    ]
    west, south = min(x for x, _ in xy), min(y for _, y in xy)
    east, north = max(x for x, _ in xy), max(y for _, y in xy)
    analyst.evaluate(
        f"window.cbMap.fitBounds([[{west}, {south}], [{east}, {north}]],"
        " {padding: 40, animate: false})"
    )
    wait_ready(analyst)
    wait_js(analyst, "window.cbMap.loaded()")
    members = rendered(analyst, "analysis-series-circle")
    lines = rendered(analyst, "analysis-series-line")
    assert members and lines
    assert {m["series"] for m in members} <= {s["series"] for s in series}
    assert analyst.locator("#layer-legend li[data-layer=series]").count() == 1
    _shots(analyst, "app-series")
    analyst.locator("#layer-series").uncheck()


def test_boundary_layers_can_be_hidden(analyst: Any) -> None:
    analyst.evaluate("window.cbMap.jumpTo({center: [-122.56, 45.42], zoom: 10})")
    wait_ready(analyst)
    assert {f["agency_id"] for f in rendered(analyst, "boundaries-line")} >= {"clackmerco"}
    analyst.locator("#b-jurisdictions").uncheck()
    analyst.wait_for_timeout(200)
    assert not rendered(analyst, "boundaries-line")
    analyst.locator("#b-jurisdictions").check()
    analyst.wait_for_timeout(200)
    assert rendered(analyst, "boundaries-line")


def test_public_map_draws_no_feature_at_an_exact_location(
    browser: Any, server: DemoServer, console: Console
) -> None:
    page = console.watch(browser.new_page(viewport=DESKTOP))
    page.goto(server.url + "/")
    wait_ready(page)
    assert page.evaluate("window.cbMap.getSource('incidents').type") == "vector"  # tiles
    assert rendered(page, "hex")
    _zoom_to_points(page)
    drawn = [f["_xy"] for f in rendered(page, "points")]
    assert len(drawn) > 20
    with sqlite3.connect(server.db_url.removeprefix("sqlite:///")) as db:
        exact = db.execute("SELECT lat, lon FROM incidents WHERE lat IS NOT NULL").fetchall()
    nearest = [min(_metres(lat, lon, a, b) for a, b in exact) for lon, lat in drawn]
    # No drawn point lies on an incident's true location (the public release moves
    # each to its H3 cell, about 170 m across): the closest is metres away.
    assert min(nearest) > 1.0, min(nearest)
    assert sorted(nearest)[len(nearest) // 2] > 10  # typically tens of metres
    page.close()


@pytest.mark.parametrize("path", ["/", "/app", "/field"])
def test_maps_open_on_the_jurisdictions_and_keep_a_base_map_that_answers(
    browser: Any, server: DemoServer, path: str
) -> None:
    """The first base-map tiles asked for are the jurisdictions' view, none elsewhere.

    The maps used to open on a default view and wait for its base-map tiles before
    fitting the jurisdictions (issue #12: a view's time to interactive); the field app
    opens in the middle of the region and moves to the officer. Here the base map
    answers (the tiles are served to the browser), so it stays on the map.
    """
    with urllib.request.urlopen(server.url + "/api/v1/jurisdictions") as response:
        features = json.load(response)["features"]
    west, south, east, north = shapely.total_bounds([shape(f["geometry"]) for f in features])
    tile = plain_png()
    asked: list[tuple[int, int, int]] = []

    def serve_tile(route: Any) -> None:
        found = re.search(r"/(\d+)/(\d+)/(\d+)\.png$", route.request.url)
        assert found, route.request.url
        asked.append((int(found[1]), int(found[2]), int(found[3])))
        route.fulfill(status=200, content_type="image/png", body=tile)

    field = path == "/field"
    context = browser.new_context(
        viewport=PHONE if field else DESKTOP,
        **({"geolocation": {"latitude": 45.42, "longitude": -122.6}} if field else {}),
        permissions=["geolocation"] if field else [],
    )
    errors = Console()
    page = errors.watch(context.new_page())
    page.route("https://tile.openstreetmap.org/**", serve_tile)
    if path == "/":
        page.goto(server.url + path)
    else:
        sign_in(page, server, "metro.officer" if field else "riverton.analyst", path)
    wait_ready(page)
    wait_js(page, "window.cbMap.areTilesLoaded()")
    assert asked, "no base-map tile was asked for"
    for z, x, y in asked:
        w, s, e, n = tile_bounds(z, x, y)
        assert w < east and e > west and s < north and n > south, (z, x, y)
    assert len({z for z, _, _ in asked}) == 1, sorted({z for z, _, _ in asked})
    assert page.evaluate("!!window.cbMap.getLayer('basemap')")  # it answered: kept
    assert "basemap" not in page.evaluate("document.body.dataset")
    if field:  # around the officer, at street level
        lon, lat = page.evaluate("window.cbMap.getCenter().toArray()")
        assert abs(lon + 122.6) < 1e-6 and abs(lat - 45.42) < 1e-6
        assert page.evaluate("window.cbMap.getZoom()") == 14
    else:
        (w, s), (e, n) = page.evaluate("window.cbMap.getBounds().toArray()")
        assert w <= west and e >= east and s <= south and n >= north  # the region in view
        assert rendered(page, "hex") or rendered(page, "points")
    context.close()
    assert not errors.errors, errors.errors


def test_public_map_charts_the_trend_of_a_place_chosen_by_name(
    browser: Any, server: DemoServer, console: Console
) -> None:
    page = console.watch(browser.new_page(viewport=DESKTOP))
    page.goto(server.url + "/")
    wait_ready(page)
    names = page.locator("#area-name option")
    wait_js(page, "document.querySelectorAll('#area-name option').length > 2")
    labels = [names.nth(k).inner_text() for k in range(names.count())]
    assert "rivertonpd" in " ".join(labels).lower() or "riverton" in " ".join(labels).lower()
    page.locator("#area-name").select_option("j:rivertonpd")
    wait_js(page, "document.body.dataset.trend === '1'")
    total = int(page.locator("#area-name-count").get_attribute("data-total"))
    expected = page.evaluate(
        """async () => (await (await fetch(
            '/api/v1/aggregates?by=month&jurisdiction=rivertonpd')).json()).total"""
    )
    everything = page.evaluate(
        "async () => (await (await fetch('/api/v1/aggregates')).json()).total"
    )
    assert total == expected and 0 < total < everything
    assert page.locator("#area-name-chart").is_visible()
    assert page.locator("#area-trend tbody tr").count() >= 1
    # The place is outlined on the map (what MapLibre drew).
    page.evaluate("window.cbMap.jumpTo({center: [-122.56, 45.42], zoom: 10})")
    wait_ready(page)
    outlined = rendered(page, "area-selected-line")
    assert outlined and {f.get("agency_id") for f in outlined} == {"rivertonpd"}
    _shots(page, "public-area-trend")
    page.close()


def test_public_map_filters_by_offence_type(
    browser: Any, server: DemoServer, console: Console
) -> None:
    page = console.watch(browser.new_page(viewport=DESKTOP))
    page.goto(server.url + "/")
    wait_ready(page)
    page.evaluate("window.cbMap.jumpTo({center: [-122.56, 45.42], zoom: 10})")
    wait_ready(page)
    before, drawn = int(page.locator("#count").get_attribute("data-total")), _hex_total(page)
    # Opened, the choice lists only the offence types the public's data holds.
    page.locator("#f-offence").focus()
    wait_js(page, "document.getElementById('f-offence').dataset.narrowed === '1'")
    offered = page.evaluate(
        "[...document.querySelectorAll('#f-offence option')].map((o) => o.value).filter(Boolean)"
    )
    by_code = page.evaluate(
        """async () => (await (await fetch('/api/v1/aggregates?by=nibrs')).json()).cells"""
    )
    held = {c["key"][0]: c["count"] or 0 for c in by_code if c["key"][0] != "unmapped"}
    listed = page.evaluate("JSON.parse(document.getElementById('cb-config').textContent)")
    assert set(offered) == set(held) and len(offered) < len(listed["offence_types"])
    code = max(held, key=held.__getitem__)  # the commonest, so that its hexagons publish
    page.locator("#f-offence").select_option(code)
    wait_js(page, f"document.getElementById('count').dataset.total !== '{before}'")
    wait_ready(page)
    tiles = page.evaluate("window.cbMap.getSource('incidents').tiles[0]")
    assert f"offence={code}" in tiles
    expected = page.evaluate(
        "async (q) => (await (await fetch('/api/v1/aggregates?' + q)).json()).total",
        tiles.split("?", 1)[1],
    )
    total = int(page.locator("#count").get_attribute("data-total"))
    assert total == expected and 0 < total < before
    assert 0 < _hex_total(page) < drawn  # the hexagons drawn hold that offence only
    _shots(page, "public-offence-filter")
    page.locator("#f-offence").select_option("")  # every offence type again
    wait_js(page, f"+document.getElementById('count').dataset.total > {total}")
    wait_ready(page)
    assert "offence=" not in page.evaluate("window.cbMap.getSource('incidents').tiles[0]")
    page.close()


def _metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    dy = (lat1 - lat2) * 111_320
    dx = (lon1 - lon2) * 111_320 * math.cos(math.radians(lat1))
    return math.hypot(dx, dy)


PAGES = ["/", "/methodology", "/app", "/forecast", "/admin", "/field"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_has_a_content_security_policy_and_no_inline_script(
    server: DemoServer, path: str
) -> None:
    with urllib.request.urlopen(server.url + path) as response:
        csp = response.headers["Content-Security-Policy"]
        page = response.read().decode()
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert "unsafe" not in csp
    assert directives["frame-ancestors"] == "'none'"
    # Every <script> loads a file, except the configuration, which is JSON data.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert scripts
    for attrs, body in scripts:
        assert ('src="/static/' in attrs and not body.strip()) or (
            'type="application/json"' in attrs
        ), attrs


SIGN_IN = {
    "/app": "metro.analyst",
    "/forecast": "riverton.analyst",
    "/admin": "metro.agency-admin",
    "/field": "metro.officer",
}


def test_every_page_is_listed() -> None:
    """Every page the server serves is in PAGES (so each is checked at both sizes)."""
    from crossbeat.api.routes.pages import router

    # The pages, not the field app's service worker and manifest (files).
    served = {r.path for r in router.routes if "." not in getattr(r, "path", ".")}
    assert served == set(PAGES)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_accessible_without_console_errors_and_screenshotted(
    browser: Any, server: DemoServer, console: Console, path: str
) -> None:
    """Each page loaded at desktop and at phone size: no console error, nothing serious
    for axe-core, a screenshot of each (the phone page is loaded at its size, not only
    resized, in the same signed-in context)."""
    context = browser.new_context(viewport=DESKTOP)
    page = console.watch(context.new_page())
    if path in SIGN_IN:
        sign_in(page, server, SIGN_IN[path], path)
    else:
        page.goto(server.url + path)
    name = path.strip("/") or "public"
    for size, shown in (("desktop", page), ("phone", None)):
        if shown is None:
            shown = console.watch(context.new_page())
            shown.set_viewport_size(PHONE)
            shown.goto(server.url + path)
        if path == "/app":
            wait_panel(shown)
        else:
            wait_ready(shown, timeout=60_000)
        if shown.locator("#map").count():  # a map page opens on its map, at either size
            box = shown.locator("#map").bounding_box()
            height = (PHONE if size == "phone" else DESKTOP)["height"]
            assert box and 0 <= box["y"] < height / 2 and box["height"] > 300, (size, box)
        screenshot(shown, f"{name}-{size}")
        assert not axe_violations(shown), (size, axe_violations(shown))
    context.close()


def test_field_app_is_an_installable_pwa(
    browser: Any, server: DemoServer, console: Console
) -> None:
    context = browser.new_context(
        viewport=PHONE,
        geolocation={"latitude": 45.42, "longitude": -122.6},
        permissions=["geolocation"],
    )
    page = console.watch(context.new_page())
    sign_in(page, server, "clackmer.officer", "/field")
    wait_ready(page)
    manifest = page.evaluate(
        "fetch(document.querySelector('link[rel=manifest]').href).then((r) => r.json())"
    )
    assert manifest["start_url"] == "/field" and manifest["display"] == "standalone"
    wait_js(page, "navigator.serviceWorker.controller !== null || navigator.serviceWorker.ready")
    registered = page.evaluate(
        "navigator.serviceWorker.getRegistration('/field').then((r) => Boolean(r))"
    )
    assert registered
    centre = page.evaluate("window.cbMap.getCenter().toArray()")
    assert abs(centre[0] + 122.6) < 0.01 and abs(centre[1] - 45.42) < 0.01  # around me
    context.close()


def _has(server: DemoServer, method: str, path: str) -> bool:
    with urllib.request.urlopen(server.url + "/openapi.json") as response:
        spec = json.load(response)
    return method in spec["paths"].get(path, {})


def _has_field_reports(server: DemoServer) -> bool:
    return _has(server, "post", "/api/v1/incidents")


def test_field_report_appears_live_in_another_agencys_map(
    browser: Any, server: DemoServer, analyst: Any, console: Console
) -> None:
    analyst.reload()  # the county analyst's page subscribes to the live stream
    wait_panel(analyst)
    context = browser.new_context(
        viewport=PHONE,
        geolocation={"latitude": 45.42, "longitude": -122.6},
        permissions=["geolocation"],
    )
    officer = console.watch(context.new_page())
    sign_in(officer, server, "riverton.officer", "/field")
    wait_ready(officer)
    # An ordinary narrative: one the sensitivity scan flags (it takes "live report from
    # ..." for an informant) is, rightly, not shared with the county.
    officer.get_by_label("Offence").select_option("23F")
    officer.get_by_label("What happened").fill("Wallet taken from a parked car, window smashed")
    officer.get_by_role("button", name="File report at my location").click()
    wait_js(
        officer, "document.getElementById('sync-status').textContent.includes('All reports sent')"
    )
    wait_js(
        analyst,
        "[...document.querySelectorAll('#live-list li')]"
        ".some((li) => li.textContent.includes('Theft From Motor Vehicle (rivertonpd)'))",
        timeout=15_000,
    )
    context.close()


#: How many incidents the signed-in user sees that occurred in the last hour.
RECENT = """async () => {
    const since = new Date(Date.now() - 3600e3).toISOString();
    const r = await fetch('/api/v1/incidents?limit=5000&since=' + encodeURIComponent(since));
    return (await r.json()).records.length; }"""


def test_offline_report_syncs_exactly_once(
    browser: Any, server: DemoServer, console: Console
) -> None:
    context = browser.new_context(
        viewport=PHONE,
        geolocation={"latitude": 45.42, "longitude": -122.6},
        permissions=["geolocation"],
    )
    page = console.watch(context.new_page())
    sign_in(page, server, "riverton.officer", "/field")
    wait_ready(page)
    note = "offline report from the browser test"
    console.offline = True  # a request in flight (the live stream) fails: not the app's error
    context.set_offline(True)
    page.get_by_label("What happened").fill(note)
    page.get_by_role("button", name="File report at my location").click()
    wait_js(page, "document.getElementById('sync-status').textContent.includes('waiting')")
    context.set_offline(False)
    wait_js(page, "document.getElementById('sync-status').textContent.includes('All reports sent')")
    found = page.evaluate(RECENT)
    assert found >= 1
    page.evaluate("window.dispatchEvent(new Event('online'))")  # a second sync sends nothing
    page.wait_for_timeout(500)
    again = page.evaluate(RECENT)
    assert again == found
    context.close()


def test_admin_manages_users_tokens_and_sees_jobs_and_quarantine(
    browser: Any, server: DemoServer, console: Console
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    admin = console.watch(context.new_page())
    sign_in(admin, server, "metro.agency-admin", "/admin")
    wait_ready(admin)
    users = admin.locator("#users-table tbody tr")
    assert users.count() >= 3
    officer = admin.locator("tr[data-username='metro.officer']")
    assert officer.locator("input[value=officer]").is_checked()
    # Give the officer the supervisor role too, then take it back (both audited).
    officer.locator("input[value=supervisor]").check()
    admin.get_by_role("button", name="Save roles of metro.officer").click()
    admin.get_by_text("Saved the roles of metro.officer: officer, supervisor.").wait_for()
    officer = admin.locator("tr[data-username='metro.officer']")
    officer.locator("input[value=supervisor]").uncheck()
    admin.get_by_role("button", name="Save roles of metro.officer").click()
    admin.get_by_text("Saved the roles of metro.officer: officer.").wait_for()
    # A token: its secret shown once, then revoked.
    admin.locator("#t-label").fill("browser test feed")
    admin.get_by_role("button", name="Create token").click()
    secret = admin.locator("#token-secret")
    secret.wait_for()
    assert len(secret.inner_text()) > 20
    admin.get_by_role("button", name="Revoke the token browser test feed").click()
    admin.get_by_text("Revoked browser test feed.").wait_for()
    assert admin.locator("#jobs-table").count() == 1
    assert (
        admin.locator("#quarantine-table caption").inner_text().endswith("held back from the map")
    )
    context.close()


def test_quarantine_review_fixes_a_row_and_retries_it_into_the_map(
    browser: Any, server: DemoServer, console: Console, tmp_path: Any
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    admin = console.watch(context.new_page())
    sign_in(admin, server, "riverton.agency-admin", "/admin")
    wait_ready(admin)
    table = admin.locator("#quarantine-table")
    table.locator("tbody tr").first.wait_for()
    before = table.locator("tbody tr").count()
    # The demo export's row with a date of 30 February.
    bad = table.locator("tbody tr", has_text="is not a valid date").first
    number = bad.get_attribute("data-row")
    entry = bad.get_attribute("data-id")
    raw = json.loads(bad.locator("pre").text_content())
    field = next(k for k, v in raw.items() if isinstance(v, str) and "/30/" in v)
    bad.locator("summary").click()
    bad.locator(f"#q-field-{entry}").select_option(field)
    bad.locator(f"#q-value-{entry}").fill(raw[field].replace("/30/", "/28/"))
    bad.get_by_role("button", name="Save fix").click()
    admin.get_by_text(f"Fixed {field} of row {number}: retry it to store it.").wait_for()
    _shots(admin, "admin-quarantine-fix")
    # The feed's profile, as its admin keeps it (crosswalks beside it).
    profile = (server.out_dir / "profiles" / "riverton-pd.toml").read_text(encoding="utf-8")
    crosswalks = (server.out_dir / "crosswalks").as_posix()
    mine = tmp_path / "riverton-pd.toml"
    mine.write_text(profile.replace('"../crosswalks"', f'"{crosswalks}"'), encoding="utf-8")
    admin.locator("#q-profile").set_input_files(str(mine))
    row = table.locator(f"tbody tr[data-id='{entry}']")
    row.get_by_role("button", name=f"Retry row {number}").click()
    admin.get_by_text(f"Row {number} stored").wait_for()
    wait_js(admin, f"!document.querySelector(\"#quarantine-table tr[data-id='{entry}']\")")
    assert table.locator("tbody tr").count() == before - 1
    context.close()


def test_the_agreement_editor_previews_a_draft_before_it_is_saved(
    browser: Any, server: DemoServer, console: Console
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    admin = console.watch(context.new_page())
    sign_in(admin, server, "riverton.agency-admin", "/admin")
    wait_ready(admin)
    rows = admin.locator("#agreement-table tbody tr").count()
    admin.locator("#p-grantee").fill("clackmerco")
    admin.locator("#preview-visible").wait_for()
    now = _visible(admin)
    # The draft: only property offences, at H3 resolution 7, in place of today's grant.
    current = admin.locator("#agreement-table tr[data-grantee=clackmerco]").get_attribute("data-id")
    admin.locator("#a-grantee").fill("clackmerco")
    admin.locator("#a-offences").fill("property")
    admin.locator("#a-precision").select_option("h3:7")
    admin.locator("#a-replaces").select_option(current)
    wait_js(admin, "document.getElementById('draft-visible')?.textContent.includes('this draft')")
    drafted = int(admin.locator("#draft-visible").inner_text().split(" ", 1)[0])
    assert 0 < drafted < now
    _shots(admin, "admin-draft-preview")
    sample = admin.locator("#draft-preview pre").inner_text()
    assert '"location_precision": "h3:7"' in sample or "h3:7" in sample, sample
    # Without "replaces" the draft contradicts today's grant: the problem is shown.
    admin.locator("#a-replaces").select_option("")
    admin.locator("#draft-problems").wait_for()
    assert "revoke it first" in admin.locator("#draft-problems").inner_text()
    # Nothing was saved.
    admin.reload()
    wait_ready(admin)
    assert admin.locator("#agreement-table tbody tr").count() == rows
    context.close()


def test_changing_an_agreement_in_admin_changes_the_partners_map(
    browser: Any, server: DemoServer, analyst: Any, console: Console
) -> None:
    # Last in the module: it revokes the city's agreement with the county. The county
    # then sees the city's incidents only as the public does: fewer, and moved to their
    # H3 cells instead of exact points.
    exact = _exact_locations(server, "rivertonpd")
    _zoom_to_points(analyst)
    before = [f["_xy"] for f in rendered(analyst, "points") if f["agency_id"] == "rivertonpd"]
    # Drawn coordinates come back from tiles, within a metre of the stored point.
    assert sum(_nearest(xy, exact) < 2 for xy in before) > len(before) // 2  # exact points
    context = browser.new_context(viewport=DESKTOP)
    admin = console.watch(context.new_page())
    sign_in(admin, server, "riverton.agency-admin", "/admin")
    wait_ready(admin)
    admin.locator("#p-grantee").fill("clackmerco")
    admin.locator("#preview-visible").wait_for()
    visible_before = _visible(admin)
    admin.get_by_role("button", name="Revoke the agreement with clackmerco").click()
    admin.get_by_text("Revoked the agreement with clackmerco.").wait_for()
    wait_js(
        admin,
        f"!document.getElementById('preview-visible').textContent.startsWith('{visible_before} ')",
    )
    assert _visible(admin) < visible_before  # the live preview shows the change
    context.close()
    analyst.reload()
    wait_panel(analyst)
    _zoom_to_points(analyst)
    after = [f["_xy"] for f in rendered(analyst, "points") if f["agency_id"] == "rivertonpd"]
    assert after and all(_nearest(xy, exact) > 2 for xy in after)


def _visible(page: Any) -> int:
    return int(page.locator("#preview-visible").inner_text().split(" ", 1)[0])


def _exact_locations(server: DemoServer, agency: str) -> list[tuple[float, float]]:
    with sqlite3.connect(server.db_url.removeprefix("sqlite:///")) as db:
        rows = db.execute(
            "SELECT lat, lon FROM incidents WHERE lat IS NOT NULL AND agency_id = ?", (agency,)
        ).fetchall()
    return [(float(a), float(b)) for a, b in rows]


def _nearest(xy: list[float], exact: list[tuple[float, float]]) -> float:
    lon, lat = xy
    return min(_metres(lat, lon, a, b) for a, b in exact)
