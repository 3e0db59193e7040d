"""The web API application factory.

:func:`create_app` builds a FastAPI application from explicit :class:`Settings`; there
are no import-time globals, so tests and servers each build their own. The open store
and the settings are kept on ``app.state`` for route dependencies.
"""

from __future__ import annotations

from fastapi import FastAPI

from crossbeat import __version__
from crossbeat.api.routes import health
from crossbeat.settings import Settings
from crossbeat.store import open_store

DESCRIPTION = (
    "Collaborative crime mapping: several agencies' incidents in one store, "
    "read through a sharing policy."
)


def create_app(settings: Settings) -> FastAPI:
    """Build the CrossBeat web application.

    Parameters
    ----------
    settings
        The validated settings (:func:`crossbeat.settings.load_settings`). The
        database at ``settings.database_url`` is opened, and created or migrated if
        needed, before the application is returned.

    Returns
    -------
    FastAPI
        The application, with the OpenAPI description at ``/openapi.json`` and its
        interactive page at ``/docs``.
    """
    app = FastAPI(title="CrossBeat", version=__version__, description=DESCRIPTION)
    app.state.settings = settings
    app.state.store = open_store(settings.database_url)
    app.include_router(health.router)
    return app
