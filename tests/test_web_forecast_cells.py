"""The /forecast page on H3 cells in a real browser: the flagged cells are drawn as hexagons (#13).

An analyst of the demo region picks H3 resolution 9 cells, runs a forecast and sees its
flagged hexagons on the map (``queryRenderedFeatures``): every drawn cell is the H3
cell its id names, with six corners.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import h3
import pytest

from tests import web_support
from tests.web_support import (
    DESKTOP,
    Console,
    DemoServer,
    axe_violations,
    served_demo,
    sign_in,
    wait_js,
    wait_ready,
)

pytestmark = pytest.mark.web
browser = web_support.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    # A shared, loaded machine can take long to start a server: give it two minutes.
    with served_demo(tmp_path_factory.mktemp("web-forecast-cells"), wait=120.0) as started:
        yield started


#: The flagged layer's drawn features: id, kind, the ring's corner count and its mean point.
DRAWN = """() => window.cbMap.queryRenderedFeatures({layers: ['flagged']}).map((f) => {
    const ring = f.geometry.type === 'Polygon' ? f.geometry.coordinates[0]
        : f.geometry.coordinates[0][0];
    const corners = ring.slice(0, -1);
    const lon = corners.reduce((t, p) => t + p[0], 0) / corners.length;
    const lat = corners.reduce((t, p) => t + p[1], 0) / corners.length;
    return {id: f.properties.id, kind: f.properties.kind, corners: corners.length, lon, lat};
})"""


def test_an_h3_forecast_is_drawn_as_hexagons(browser: Any, server: DemoServer) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    console = Console()
    console.watch(page)
    sign_in(page, server, "metro.analyst", "/forecast")
    wait_ready(page, timeout=120_000)
    page.select_option("#category", "220")
    page.select_option("#model", "naive")
    page.select_option("#cells", "h3:9")
    assert page.is_disabled("#cell")
    page.click("#run")
    wait_js(page, "document.body.dataset.ready === 'card'", timeout=120_000)
    assert "H3 hexagons (resolution 9)" in page.inner_text("#card")
    drawn = page.evaluate(DRAWN)
    assert drawn and {d["kind"] for d in drawn} == {"h3"}
    for d in drawn:
        assert h3.is_valid_cell(d["id"]) and h3.get_resolution(d["id"]) == 9
        # The drawn shape lies in the hexagon its id names.
        assert h3.latlng_to_cell(d["lat"], d["lon"], 9) == d["id"], d
    # Whole hexagons (not clipped by a boundary or a tile edge) have six corners.
    assert any(d["corners"] == 6 for d in drawn), drawn
    assert not axe_violations(page), axe_violations(page)
    # Plan patrols over the hexagons, then open the plan's dosage evaluation.
    page.fill("#units", "1")
    page.click("#plan-run")
    wait_js(page, "document.body.dataset.ready === 'plan'", timeout=120_000)
    page.click("#dosage-run")
    wait_js(page, "document.body.dataset.ready === 'dosage'", timeout=120_000)
    assert "binomial" in page.inner_text("#dosage-method")
    assert "0 minutes logged" in page.inner_text("#dosage-summary")
    rows = page.locator("#dosage-boxes tbody th").all_inner_texts()
    assert rows and all(h3.is_valid_cell(r) and h3.get_resolution(r) == 9 for r in rows)
    # One row per box of the plan: the card's flagged hexagons (resolution 9: their own box).
    assert {d["id"] for d in drawn} <= set(rows) and len(rows) == len(set(rows))
    assert not axe_violations(page), axe_violations(page)
    assert not console.errors, console.errors
    context.close()
