"""The forecasts and patrol plans page (/forecast) in a real browser (issue #13).

An analyst of the demo region runs a forecast, sees its flagged cells drawn on the map
(``queryRenderedFeatures``), its model card's backtest beside naive counts and KDE and
its accountability figures, then plans patrols and sees each unit's boxes and route.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from crossbeat.forecast.service import model_names
from tests import web_support
from tests.web_support import (
    DESKTOP,
    Console,
    DemoServer,
    axe_violations,
    rendered,
    screenshot,
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
    with served_demo(tmp_path_factory.mktemp("web-forecast"), wait=120.0) as started:
        yield started


def test_forecast_card_and_patrol_plan_are_drawn_and_accessible(
    browser: Any, server: DemoServer
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    console = Console()
    console.watch(page)
    sign_in(page, server, "metro.analyst", "/forecast")
    wait_ready(page, timeout=120_000)
    assert not axe_violations(page), axe_violations(page)
    # The model choice is the server's list (crossbeat.forecast.service.model_names), in order.
    offered = page.locator("#model option").evaluate_all("(os) => os.map((o) => o.value)")
    assert offered == model_names(), offered
    page.select_option("#category", "220")
    page.select_option("#model", "naive")
    page.fill("#cell", "300")
    page.click("#run")
    wait_js(page, "document.body.dataset.ready === 'card'", timeout=120_000)
    status = page.inner_text("#forecast-status")
    assert "model card" in status, status
    flagged = rendered(page, "flagged")
    assert flagged and all(f["expected"] > 0 for f in flagged)
    rows = page.locator("#backtest tbody th").all_inner_texts()
    assert {"naive", "kde"} <= set(rows)
    assert "neighbourhood" in page.inner_text("#accountability")
    screenshot(page, "forecast-card-desktop")
    page.fill("#units", "2")
    page.click("#plan-run")
    wait_js(
        page,
        "document.body.dataset.ready === 'plan' || "
        "!['', 'Planning…'].includes(document.querySelector('#plan-status').textContent)",
        timeout=120_000,
    )
    assert page.evaluate("document.body.dataset.ready") == "plan", page.inner_text("#plan-status")
    assert "straight-line" in page.inner_text("#routing")
    boxes = rendered(page, "boxes")
    units = {u.strip() for u in page.locator("#units tbody th").all_inner_texts()}
    assert boxes and {b["unit"] for b in boxes} <= units and len(units) == 2
    assert page.locator("#units tbody tr").count() == 2
    screenshot(page, "forecast-plan-desktop")
    assert not axe_violations(page), axe_violations(page)
    # The earlier forecast is listed and can be reopened.
    assert page.locator("#cards option").count() >= 2
    assert page.locator("#card-choice").count() == 0  # naive counts choose nothing
    # A model that borrows from other categories names its choice and what it read.
    page.select_option("#model", "borrowed")
    page.click("#run")
    wait_js(page, "document.querySelector('#card h2')?.textContent === 'Model card: borrowed'",
            timeout=120_000)  # fmt: skip
    choice = page.inner_text("#card-choice")
    assert "Chosen before this forecast: " in choice and "Borrowing from " in choice, choice
    assert "220" in choice and "35A" not in choice, choice
    assert not console.errors, console.errors
    context.close()
