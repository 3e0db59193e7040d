"""The web pages in a real browser against a real server over the demo region (issue #12).

Every assertion about the map is on what MapLibre drew (``queryRenderedFeatures``).
The machine is offline: the default OpenStreetMap tiles cannot be fetched, so these
tests also show that every data layer draws on the plain background.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import urllib.request
from collections.abc import Iterator
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
    sign_in,
    start_demo_server,
    wait_js,
    wait_panel,
    wait_ready,
)

pytestmark = pytest.mark.web
browser = web_support.browser  # one chromium for the module (a fixture)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    started = start_demo_server(tmp_path_factory.mktemp("web-demo"))
    yield started
    started.process.terminate()
    started.process.wait(timeout=10)


@pytest.fixture
def console() -> Iterator[Console]:
    found = Console()
    yield found
    assert not found.errors, found.errors


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


def _metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    dy = (lat1 - lat2) * 111_320
    dx = (lon1 - lon2) * 111_320 * math.cos(math.radians(lat1))
    return math.hypot(dx, dy)


PAGES = ["/", "/methodology", "/app", "/admin", "/field"]


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


SIGN_IN = {"/app": "metro.analyst", "/admin": "metro.agency-admin", "/field": "metro.officer"}


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_accessible_without_console_errors_and_screenshotted(
    browser: Any, server: DemoServer, console: Console, path: str
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = console.watch(context.new_page())
    if path in SIGN_IN:
        sign_in(page, server, SIGN_IN[path], path)
    else:
        page.goto(server.url + path)
    if path == "/app":
        wait_panel(page)
    else:
        wait_ready(page)
    name = path.strip("/") or "public"
    screenshot(page, f"{name}-desktop")
    assert not axe_violations(page), axe_violations(page)
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(300)
    screenshot(page, f"{name}-phone")
    assert not axe_violations(page)
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
