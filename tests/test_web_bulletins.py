"""Bulletins and the live feed in a real browser: the analyst workspace and the field app.

The city's analyst sends an officer-safety bulletin to the county from the API; the
county officer's field app shows it live, flagged, and acknowledges it with one button;
the city analyst's bulletins panel then shows the acknowledgement, also live; the
county officer's live feed shows a field report the city's officer files. Issue #12:
"a bulletins panel with acknowledgement" (analyst) and "live feed ... bulletins"
(officer field app).
"""

from __future__ import annotations

import json
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

HERE = {"latitude": 45.42, "longitude": -122.6}

#: Send a bulletin from the signed-in page (the session cookie and its CSRF token).
SEND = """async (body) => {
    const me = await (await fetch('/auth/me')).json();
    const r = await fetch('/api/v1/bulletins', {method: 'POST', credentials: 'same-origin',
        headers: {'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token},
        body: JSON.stringify(body)});
    return {status: r.status, body: await r.json()}; }"""

#: The signed-in user's bulletins as the API lists them.
LIST = "async () => (await (await fetch('/api/v1/bulletins')).json()).bulletins"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with served_demo(tmp_path_factory.mktemp("web-bulletins"), wait=120.0) as started:
        yield started


def _served(server: DemoServer, *paths: str) -> bool:
    with urllib.request.urlopen(server.url + "/openapi.json") as response:
        spec = json.load(response)
    return all(p in spec["paths"] for p in paths)


def _field(browser: Any, server: DemoServer, console: Console, username: str) -> Any:
    context = browser.new_context(viewport=PHONE, geolocation=HERE, permissions=["geolocation"])
    page = console.watch(context.new_page())
    sign_in(page, server, username, "/field")
    wait_ready(page)
    return page


def _item(title: str) -> str:
    """A JavaScript expression: the bulletin item with this title, or undefined."""
    return (
        "[...document.querySelectorAll('#bulletin-list li')]"
        f".find((li) => li.textContent.includes({json.dumps(title)}))"
    )


def test_a_bulletin_is_acknowledged_in_the_field_and_the_sender_sees_it(
    browser: Any, server: DemoServer, console: Console
) -> None:
    assert _served(server, "/api/v1/bulletins", "/api/v1/bulletins/{bulletin_id}/ack")
    officer = _field(browser, server, console, "clackmer.officer")
    assert officer.locator("#bulletins h2").inner_text().startswith("Bulletins")

    sender_context = browser.new_context(viewport=DESKTOP)
    analyst = console.watch(sender_context.new_page())
    sign_in(analyst, server, "riverton.analyst", "/app")
    wait_panel(analyst)
    title = "Armed suspect seen near the river path"
    sent = analyst.evaluate(
        SEND,
        {
            "kind": "officer_safety",
            "title": title,
            "body": "Grey hatchback, two occupants. Do not approach alone.",
            "anchor": {"type": "point", "lat": 45.42, "lon": -122.6},
            "recipients": ["clackmerco"],
        },
    )
    assert sent["status"] == 201, sent

    # The officer's app shows it without a reload (the live stream's bulletin.created),
    # flagged and counted, with a labelled button.
    wait_js(officer, f"{_item(title)}?.dataset.state === 'unacknowledged'")
    assert "to acknowledge" in officer.locator("#bulletins h2").inner_text()
    assert "from rivertonpd" in officer.locator("#bulletin-list li", has_text=title).inner_text()
    # The sender's panel lists it as sent and not yet acknowledged.
    wait_js(analyst, f"{_item(title)}?.dataset.state === 'sent'")
    assert (
        "clackmerco not acknowledged yet"
        in analyst.locator("#bulletin-list li", has_text=title).inner_text()
    )

    officer.locator("#bulletins").scroll_into_view_if_needed()
    screenshot(officer, "field-bulletins-phone")
    assert not axe_violations(officer), axe_violations(officer)
    officer.get_by_role("button", name=f"Acknowledge: {title}").click()
    wait_js(officer, f"{_item(title)}?.dataset.state === 'acknowledged'")
    shown = officer.locator("#bulletin-list li", has_text=title).inner_text()
    assert "Acknowledged" in shown and "Acknowledge:" not in shown
    assert officer.get_by_role("button", name=f"Acknowledge: {title}").count() == 0

    # Stored for the agency, by the officer; the sender sees it live (bulletin.acknowledged).
    listed = {b["title"]: b for b in officer.evaluate(LIST)}
    assert listed[title]["unacknowledged"] is False
    (recipient,) = listed[title]["recipients"]
    assert recipient["agency_id"] == "clackmerco" and recipient["acknowledged_at"]
    wait_js(analyst, f"{_item(title)}?.textContent.includes('clackmerco acknowledged')")
    by = analyst.locator("#bulletin-list li", has_text=title).locator("[data-agency=clackmerco]")
    assert by.get_attribute("data-acknowledged-by") == recipient["acknowledged_by"]

    analyst.locator("#bulletins").scroll_into_view_if_needed()
    screenshot(analyst, "app-bulletins-desktop")
    assert not axe_violations(analyst), axe_violations(analyst)
    officer.set_viewport_size(DESKTOP)
    officer.wait_for_timeout(300)
    officer.locator("#bulletins").scroll_into_view_if_needed()
    screenshot(officer, "field-bulletins-desktop")
    sender_context.close()
    officer.context.close()


def test_the_field_app_live_feed_shows_a_partners_report(
    browser: Any, server: DemoServer, console: Console
) -> None:
    assert _served(server, "/api/v1/live", "/api/v1/incidents")
    county = _field(browser, server, console, "clackmer.officer")
    assert county.locator("#live h2").inner_text() == "Live feed"
    assert "Theft From Motor Vehicle" not in county.locator("#nearby").inner_text()
    city = _field(browser, server, console, "riverton.officer")
    city.get_by_label("Offence").select_option("23F")
    city.get_by_label("What happened").fill("Phone taken from an unlocked car on the street")
    city.get_by_role("button", name="File report at my location").click()
    wait_js(city, "document.getElementById('sync-status').textContent.includes('All reports sent')")
    # Shared with the county through the demo's agreement: it appears in the county
    # officer's feed with no reload, and the page stays free of console errors.
    wait_js(
        county,
        "[...document.querySelectorAll('#live-list li')]"
        ".some((li) => li.textContent.includes('created: Theft From Motor Vehicle (rivertonpd)'))",
        timeout=15_000,
    )
    assert county.locator("#live-empty").count() == 0
    # The feed's event reloads the nearby incidents: the report is within them.
    wait_js(
        county,
        "[...document.querySelectorAll('#nearby li')]"
        ".some((li) => li.textContent.includes('Theft From Motor Vehicle'))",
    )
    assert not axe_violations(county), axe_violations(county)
    city.context.close()
    county.context.close()
