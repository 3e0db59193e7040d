"""The web pages: public map, methodology, analyst workspace, agency admin, field app.

Each page is static HTML with its script bundle (:mod:`crossbeat.web`); the scripts
read data only through the ``/api/v1`` routes, so every read still goes through the
sharing policy and its audit. The pages get the base map settings and the version in
an embedded JSON element, with the API operations this server offers (so a page shows
only the panels it can fill, without fetching ``/openapi.json`` first); the forecast
page also gets the forecasting models the server offers. Every page has a
``Content-Security-Policy`` that allows scripts, styles and data only from the server
itself (and images and fetches from the configured base-map tile host): no inline
script runs. The field app's service worker is served from ``/field/`` so that its
scope covers the field app only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse

from crossbeat import __version__
from crossbeat.api.deps import SettingsDep
from crossbeat.forecast.service import model_names
from crossbeat.settings import Settings
from crossbeat.taxonomy.nibrs import nibrs_offences
from crossbeat.web import asset, content_security_policy, page_html

router = APIRouter(include_in_schema=False)

_METHODS = frozenset({"get", "put", "post", "delete", "patch"})


def _operations(request: Request) -> list[str]:
    """Return "METHOD /path" of every documented API operation of this app."""
    return page_operations(request.app)


def page_operations(app: FastAPI) -> list[str]:
    """Return "METHOD /path" of every documented API operation of an app.

    Read from the app's OpenAPI document (built once per process, then cached by the
    app), so the list is exactly what ``/openapi.json`` says. Building the document
    takes about a second on a busy machine: a worker does it when it starts
    (:mod:`crossbeat.api.lifespan`), not on its first page (issue #12).
    """
    found: list[str] | None = getattr(app.state, "page_operations", None)
    if found is None:
        paths = app.openapi().get("paths", {})
        found = sorted(
            f"{method.upper()} {path}"
            for path, item in paths.items()
            for method in item
            if method in _METHODS
        )
        app.state.page_operations = found
    return found


def _page(
    name: str, settings: Settings, request: Request, extra: dict[str, Any] | None = None
) -> HTMLResponse:
    config: dict[str, Any] = {
        "version": __version__,
        "basemap_tiles": settings.basemap_tiles,
        "basemap_attribution": settings.basemap_attribution,
        "operations": _operations(request),
        **(extra or {}),
    }
    csp = content_security_policy(settings.basemap_tiles)
    return HTMLResponse(page_html(name, config), headers={"Content-Security-Policy": csp})


def offence_types() -> list[list[str]]:
    """Return ``[code, name, crime_against]`` of each NIBRS offence, by name.

    The maps' offence-type filter (issue #12) offers these; a filter sends the code as
    the ``offence`` parameter every incident route takes, so what it selects is decided
    by the sharing policy like any other filter.
    """
    return sorted(
        ([o.code, o.name, o.crime_against.value] for o in nibrs_offences().values()),
        key=lambda row: row[1].lower(),
    )  # fmt: skip


@router.get("/")
def public_map(settings: SettingsDep, request: Request) -> HTMLResponse:
    """Return the public community map (what the public release policy allows)."""
    return _page("public", settings, request, {"offence_types": offence_types()})


@router.get("/methodology")
def methodology(settings: SettingsDep, request: Request) -> HTMLResponse:
    """Return the methodology and data-quality page of the public map."""
    return _page("methodology", settings, request)


@router.get("/app")
def analyst_app(settings: SettingsDep, request: Request) -> HTMLResponse:
    """Return the analyst workspace."""
    return _page("app", settings, request, {"offence_types": offence_types()})


@router.get("/forecast")
def forecast_page(settings: SettingsDep, request: Request) -> HTMLResponse:
    """Return the forecasts and patrol plans page (issue #13).

    Its configuration lists the forecasting models the server offers
    (:func:`crossbeat.forecast.service.model_names`, in their order), so the page's model
    choice never drifts from what ``POST /api/v1/forecasts`` accepts.
    """
    return _page("forecast", settings, request, {"forecast_models": model_names()})


@router.get("/admin")
def admin(settings: SettingsDep, request: Request) -> HTMLResponse:
    """Return the agency admin pages."""
    return _page("admin", settings, request)


@router.get("/field")
def field(settings: SettingsDep, request: Request) -> HTMLResponse:
    """Return the officer field app (a PWA)."""
    return _page("field", settings, request)


@router.get("/field/sw.js")
def field_service_worker() -> FileResponse:
    """Return the field app's service worker (scope ``/field``, the page and below)."""
    return FileResponse(
        asset("sw.js"), media_type="text/javascript", headers={"Service-Worker-Allowed": "/field"}
    )


@router.get("/field/manifest.webmanifest")
def field_manifest() -> FileResponse:
    """Return the field app's web app manifest."""
    return FileResponse(asset("manifest.webmanifest"), media_type="application/manifest+json")
