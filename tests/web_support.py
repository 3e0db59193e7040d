"""A real server over the demo region and a real browser, for the web page tests (issue #12).

One demo region (small), one ``crossbeat serve`` process on a free port and one
chromium per test module. Pages report what they render through
``document.body.dataset.ready`` and ``window.cbMap`` (the MapLibre map), so the tests
assert on features MapLibre actually drew (``queryRenderedFeatures``).
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(os.environ.get("CROSSBEAT_SCREENSHOTS", ROOT / "docs" / "screenshots"))
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
#: Browser console messages that are the offline machine, not the page: the base map
#: tile host cannot be resolved (the pages then draw on a plain background).
OFFLINE_TILES = "tile.openstreetmap.org"


def plain_png(size: int = 256, rgb: tuple[int, int, int] = (236, 232, 224)) -> bytes:
    """Return a one-colour PNG tile: what a base-map tile server sends, in its size.

    The browser tests and ``benchmarks/web.py`` serve it where the base map's tiles
    would come from, so that the base map answers on an offline machine.
    """
    body = zlib.compress((b"\x00" + bytes(rgb) * size) * size, 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class DemoServer:
    """The demo region served by ``crossbeat serve``."""

    url: str
    out_dir: Path
    db_url: str
    process: subprocess.Popen[bytes]

    used: dict[str, str] = field(default_factory=dict)

    def code(self, username: str) -> str:
        """Return the demo account's current one-time code, never one it already used.

        The server refuses a replayed code, so a second sign-in of the same account
        within one time step waits for the next code, as a person would.
        """
        from crossbeat.demo.accounts import demo_code

        deadline = time.monotonic() + 65
        code = demo_code(self.out_dir, username, datetime.now(UTC))
        while code == self.used.get(username) and time.monotonic() < deadline:
            time.sleep(0.5)
            code = demo_code(self.out_dir, username, datetime.now(UTC))
        self.used[username] = code
        return code


def start_demo_server(out_dir: Path, *, size: float = 0.1, wait: float = 60.0) -> DemoServer:
    """Build the demo region into ``out_dir`` and serve it on a free port (``wait`` s to start)."""
    from crossbeat.demo.build import build_demo, demo_db_url

    db_url = demo_db_url(out_dir)
    build_demo(db_url, out_dir, seed=7, size=size)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSBEAT_")}
    env["PYTHONPATH"] = str(ROOT)
    process = subprocess.Popen(
        [sys.executable, "-m", "crossbeat", "serve", "--db", db_url, "--port", str(port)],
        env=env,
        cwd=out_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    # `wait` seconds (a minute by default): on a shared, loaded machine imports alone take seconds.
    for _ in range(int(wait * 10)):
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                break
        except OSError:
            if process.poll() is not None:
                raise RuntimeError("the demo server stopped at startup") from None
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("the demo server did not answer /health")
    return DemoServer(url, out_dir, db_url, process)


@contextmanager
def served_demo(out_dir: Path, *, size: float = 0.1, wait: float = 60.0) -> Iterator[DemoServer]:
    """:func:`start_demo_server`, stopped when the block ends (a module fixture's body)."""
    started = start_demo_server(out_dir, size=size, wait=wait)
    try:
        yield started
    finally:
        started.process.terminate()
        started.process.wait(timeout=10)


@dataclass
class Console:
    """Console errors and uncaught exceptions of a page (offline tile fetches excepted).

    A test that takes the browser offline sets :attr:`offline`: from then on Chromium's
    own ``net::ERR_INTERNET_DISCONNECTED`` lines (a request in flight when the network
    went, such as the live stream's) are kept in :attr:`disconnected`, not counted as
    errors; every other error still fails the test.
    """

    errors: list[str] = field(default_factory=list)
    offline: bool = False
    disconnected: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> Any:
        def on_console(message: Any) -> None:
            where = (message.location or {}).get("url", "")
            if message.type != "error" or OFFLINE_TILES in where:
                return
            line = f"{message.text} ({where})"
            if self.offline and "net::ERR_INTERNET_DISCONNECTED" in message.text:
                self.disconnected.append(line)
            else:
                self.errors.append(line)

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        return page


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless chromium for the module."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no {CHROMIUM} (apt-get install chromium; .ci/run installs it)")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def console() -> Iterator[Console]:
    """The page's console errors; the test fails if any was logged."""
    found = Console()
    yield found
    assert not found.errors, found.errors


def wait_js(page: Any, expression: str, timeout: float = 30_000) -> None:
    """Wait until a JavaScript expression is true in the page.

    Passed as a function, not as text: Playwright evaluates a text predicate with
    ``eval``, which the pages' Content-Security-Policy (no ``unsafe-eval``) refuses.
    """
    page.wait_for_function(f"() => ({expression})", timeout=timeout)


def wait_ready(page: Any, timeout: float = 20_000) -> None:
    """Wait until the page says its data is drawn."""
    wait_js(page, "document.body.dataset.ready === '1'", timeout=timeout)


def wait_panel(page: Any, timeout: float = 20_000) -> None:
    """Wait until the analyst's side panel (filters, counts, layers) is filled.

    The map draws first (from vector tiles); the panel follows when the counts by agency
    and month answer.
    """
    wait_js(page, "document.body.dataset.panel === '1'", timeout=timeout)
    wait_ready(page, timeout)


def sign_in(page: Any, server: DemoServer, username: str, path: str) -> None:
    """Open ``path`` and sign in with password and one-time code, as a user would."""
    from crossbeat.demo.accounts import DEMO_PASSWORD

    page.goto(server.url + path)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code from your authenticator app").fill(server.code(username))
    page.get_by_role("button", name="Sign in").click()


def rendered(page: Any, layer: str) -> list[dict[str, Any]]:
    """Return the properties and coordinates of the features MapLibre drew in a layer."""
    return list(
        page.evaluate(
            """(layer) => window.cbMap.queryRenderedFeatures({layers: [layer]}).map((f) => ({
                ...f.properties,
                _xy: f.geometry.type === 'Point' ? f.geometry.coordinates : null}))""",
            layer,
        )
    )


def axe_violations(page: Any) -> list[str]:
    """Run axe-core in the page; return its serious and critical violations."""
    if not AXE.is_file():
        pytest.fail(f"axe-core is not installed: run `npm ci` in {ROOT / 'web'}")
    # Evaluated through the DevTools protocol: the pages' Content-Security-Policy
    # (no inline script) would refuse an injected <script> element.
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => `${v.id}: ${v.help} `
                + `(${v.nodes.map((n) => n.target.join(' ')).join(', ')})`)"""
    )
    return list(found)


def screenshot(page: Any, name: str) -> Path:
    """Save a PNG of the page under :data:`SCREENSHOTS`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
