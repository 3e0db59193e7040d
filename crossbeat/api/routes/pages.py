"""The web pages: public map, methodology, analyst workspace, agency admin, field app.

Each page is static HTML with its script bundle (:mod:`crossbeat.web`); the scripts
read data only through the ``/api/v1`` routes, so every read still goes through the
sharing policy and its audit. The pages get the base map settings and the version in
an embedded JSON element. The field app's service worker is served from ``/field/`` so
that its scope covers the field app only.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

from crossbeat import __version__
from crossbeat.api.deps import SettingsDep
from crossbeat.settings import Settings
from crossbeat.web import asset, page_html

router = APIRouter(include_in_schema=False)


def _page(name: str, settings: Settings) -> HTMLResponse:
    config = {
        "version": __version__,
        "basemap_tiles": settings.basemap_tiles,
        "basemap_attribution": settings.basemap_attribution,
    }
    return HTMLResponse(page_html(name, config))


@router.get("/")
def public_map(settings: SettingsDep) -> HTMLResponse:
    """Return the public community map (what the public release policy allows)."""
    return _page("public", settings)


@router.get("/methodology")
def methodology(settings: SettingsDep) -> HTMLResponse:
    """Return the methodology and data-quality page of the public map."""
    return _page("methodology", settings)


@router.get("/app")
def analyst_app(settings: SettingsDep) -> HTMLResponse:
    """Return the analyst workspace."""
    return _page("app", settings)


@router.get("/forecast")
def forecast_page(settings: SettingsDep) -> HTMLResponse:
    """Return the forecasts and patrol plans page (issue #13)."""
    return _page("forecast", settings)


@router.get("/admin")
def admin(settings: SettingsDep) -> HTMLResponse:
    """Return the agency admin pages."""
    return _page("admin", settings)


@router.get("/field")
def field(settings: SettingsDep) -> HTMLResponse:
    """Return the officer field app (a PWA)."""
    return _page("field", settings)


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
