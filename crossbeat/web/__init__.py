"""The browser pages' built assets and the HTML of each page (issue #12).

The sources live in ``web/`` at the repository root (npm, esbuild); ``npm run build``
writes the bundles, styles and page templates into ``static/`` here, which ships in the
Python package so a server needs no Node.js. This module knows nothing about HTTP: it
finds a page's template and fills in its configuration; the routes in
:mod:`crossbeat.api.routes.pages` serve the result.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: Folder of the built assets (served under ``/static/web``).
STATIC = Path(__file__).resolve().parent / "static"

#: Page name → its built HTML template.
PAGES = {
    "public": "index.html",
    "methodology": "methodology.html",
    "app": "app.html",
    "admin": "admin.html",
    "field": "field.html",
    "forecast": "forecast.html",
}

_CONFIG_SLOT = "<!--crossbeat-config-->"


class PageError(LookupError):
    """A page is unknown, or its built template is missing (run ``npm run build``)."""


def page_html(name: str, config: Mapping[str, Any]) -> str:
    """Return the HTML of one page with its configuration embedded.

    Parameters
    ----------
    name
        One of :data:`PAGES`.
    config
        JSON-serialisable settings the page's script reads from the
        ``<script id="cb-config" type="application/json">`` element (base map tiles,
        attribution, version); ``</`` is escaped so no value can close the element.

    Returns
    -------
    str
        The page, with ``{{version}}`` replaced by ``config["version"]`` (HTML-escaped).

    Raises
    ------
    PageError
        ``name`` is not a page, or its template has not been built.

    Examples
    --------
    >>> "cb-config" in page_html("public", {"version": "1.0"})
    True
    """
    try:
        template = (STATIC / PAGES[name]).read_text(encoding="utf-8")
    except KeyError:
        raise PageError(f"no page {name!r}: one of {', '.join(PAGES)}") from None
    except FileNotFoundError:
        raise PageError(
            f"page {name!r} is not built: run `npm ci && npm run build` in web/"
        ) from None
    payload = json.dumps(dict(config), sort_keys=True).replace("</", "<\\/")
    slot = f'<script id="cb-config" type="application/json">{payload}</script>'
    version = html.escape(str(config.get("version", "")))
    return template.replace(_CONFIG_SLOT, slot).replace("{{version}}", version)


def content_security_policy(basemap_tiles: str | None) -> str:
    """Return the ``Content-Security-Policy`` of the pages.

    Scripts, styles, fonts and fetches come from the server itself; no inline script
    runs (the configuration element is JSON, which is data, not script). MapLibre runs
    its worker from a ``blob:`` URL and draws images from ``data:`` and ``blob:`` URLs;
    the base map's tile host (``basemap_tiles``, a URL template) is allowed for images
    and fetches.

    Examples
    --------
    >>> csp = content_security_policy("https://tile.openstreetmap.org/{z}/{x}/{y}.png")
    >>> "script-src 'self'" in csp and "https://tile.openstreetmap.org" in csp
    True
    >>> "unsafe-inline" in content_security_policy(None)
    False
    """
    tiles = ""
    if basemap_tiles:
        parts = urlsplit(basemap_tiles)
        if parts.scheme in ("http", "https") and parts.netloc:
            # "{s}" sub-domain templates: allow the host's sub-domains.
            host = parts.netloc.replace("{s}.", "*.")
            tiles = f" {parts.scheme}://{host}"
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' data: blob:{tiles}",
            f"connect-src 'self'{tiles}",
            "worker-src 'self' blob:",
            "child-src 'self' blob:",
            "font-src 'self'",
            "manifest-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def asset(path: str) -> Path:
    """Return the file of a built asset below :data:`STATIC`.

    Raises
    ------
    PageError
        The path leaves the folder or names no file.
    """
    found = (STATIC / path).resolve()
    if STATIC not in found.parents or not found.is_file():
        raise PageError(f"no built asset {path!r}")
    return found
