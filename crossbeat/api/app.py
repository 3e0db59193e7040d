"""The web API application factory.

:func:`create_app` builds a FastAPI application from explicit :class:`Settings`; there
are no import-time globals, so tests and servers each build their own. The open store
and the settings are kept on ``app.state`` for route dependencies.
"""

from __future__ import annotations

import copy
import functools
import tempfile
from pathlib import Path

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.staticfiles import StaticFiles

from crossbeat import __version__
from crossbeat.api.errors import install_error_handlers
from crossbeat.api.headers import SecurityHeaders
from crossbeat.api.inputs import NulGuard
from crossbeat.api.lifespan import lifespan
from crossbeat.api.limits import RequestLimits
from crossbeat.api.outage import OutageGuard, install_outage_handlers
from crossbeat.api.public_answers import PublicAnswers
from crossbeat.api.routes import (
    agreements,
    analysis,
    audit,
    auth,
    bulletins,
    exports,
    field,
    forecasts,
    health,
    incidents,
    jurisdictions,
    live,
    ogc,
    pages,
    places,
    quarantine,
    tiles,
    tokens,
    uploads,
    users,
)
from crossbeat.api.schemas import openapi_document
from crossbeat.api.throttle import LoginThrottle
from crossbeat.audit.witness import default_key_path, server_heads_path, server_signing_key
from crossbeat.clock import Clock
from crossbeat.live.broker import Broker
from crossbeat.live.jobs import JobRunner
from crossbeat.settings import Settings
from crossbeat.sharing.live import ReadCache
from crossbeat.sharing.public_cache import PublicCache
from crossbeat.store import Store, open_store
from crossbeat.store.ratelimits import DatabaseLimitStorage
from crossbeat.vault.kek import Kek, resolve_kek
from crossbeat.web import STATIC

DESCRIPTION = (
    "Collaborative crime mapping: several agencies' incidents in one store, "
    "read through a sharing policy."
)

#: One router per resource, in the order they are documented.
# Health, sign-in and the OpenAPI pages stay at the root; every data resource is
# versioned under API_PREFIX.
API_PREFIX = "/api/v1"
ROOT_ROUTERS = (health.router, auth.router, pages.router)
V1_ROUTERS = (
    incidents.router,
    exports.router,
    ogc.router,
    agreements.router,
    audit.router,
    analysis.router,
    forecasts.router,
    tiles.router,
    field.router,
    live.router,
    bulletins.router,
    uploads.router,
    jurisdictions.router,
    places.router,
    users.router,
    tokens.router,
    quarantine.router,
)


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    freeze_gc: bool = False,
) -> FastAPI:
    """Build the CrossBeat web application.

    Parameters
    ----------
    settings
        The validated settings (:func:`crossbeat.settings.load_settings`). The
        database at ``settings.database_url`` is opened, and created or migrated if
        needed, before the application is returned. The application signs audit
        checkpoints at startup and every ``audit_checkpoint_interval`` seconds while it
        runs, and appends each head to ``audit_heads_file``
        (:mod:`crossbeat.api.lifespan`); for SQLite both the key and the heads file
        default to files beside the database (the key is created on first start).
    store
        Serve this already open store instead (its URL should be
        ``settings.database_url``); tests pass their fixture's store.
    clock
        The clock every request reads "now" from (session timeouts, agreements'
        validity, audit times); default the store's. Tests pass a FrozenClock.
    freeze_gc
        Move every object alive once the worker has started and warmed its caches into
        the garbage collector's permanent generation (:func:`gc.freeze`), so that a
        full collection no longer walks them (:mod:`crossbeat.api.lifespan`). The
        server's processes do (``crossbeat serve``); an application built in a test
        process does not, since what it freezes is never collected.

    Returns
    -------
    FastAPI
        The application, with the OpenAPI description at ``/openapi.json`` and its
        interactive page at ``/docs``.

    Raises
    ------
    StoreError
        The database cannot be opened or migrated.
    AuditKeyError
        ``audit_key_file`` is not an Ed25519 private key, or the database is not a
        SQLite file and ``audit_key_file`` or ``audit_heads_file`` is not set.
    """
    # /docs and /redoc with Swagger UI and ReDoc served from this installation, not a
    # CDN, so the pages work without internet access (a police network, the field).
    app = FastAPIOffline(
        title="CrossBeat",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        static_url="/static/docs",
    )
    app.state.settings = settings
    app.state.freeze_gc = freeze_gc
    app.state.audit_key, _ = server_signing_key(settings.database_url, settings.audit_key_file)
    app.state.audit_heads = server_heads_path(settings.database_url, settings.audit_heads_file)
    if store is None:
        store = open_store(settings.database_url, kek=_kek(settings))
    shared = DatabaseLimitStorage(store) if settings.rate_limit_storage == "database://" else None
    app.state.login_throttle = LoginThrottle(settings.login_throttle, shared)
    if clock is not None:
        # A copy, so the clock does not leak into other users of the cached store.
        store = copy.copy(store)
        store.clock = clock
    app.state.store = store
    # The live stream's fan-out (started and stopped by the lifespan) and the reads it
    # shares between subscribers of the same agency and roles.
    app.state.live_broker = Broker(store)
    app.state.live_cache = ReadCache()
    # The public's aggregates and tiles, kept while nothing they depend on changed.
    app.state.public_cache = PublicCache()
    # Uploads: kept beside a SQLite database, else in the temporary folder; ingested by
    # the process's job runner (started by the lifespan, which resumes stopped jobs).
    key = default_key_path(settings.database_url)
    app.state.upload_dir = (
        key.parent / "uploads" if key else Path(tempfile.gettempdir()) / "crossbeat-uploads"
    )
    app.state.job_runner = JobRunner(store)
    install_error_handlers(app)
    install_outage_handlers(app)
    # Innermost: the public's kept aggregates and tiles, answered without routing.
    app.add_middleware(
        PublicAnswers, store_of=lambda: app.state.store, cache_of=lambda: app.state.public_cache
    )
    app.add_middleware(NulGuard, store_of=lambda: app.state.store)
    app.add_middleware(RequestLimits, settings=settings, store_of=lambda: app.state.store)
    app.add_middleware(SecurityHeaders)
    # Outermost: a database outage met in a middleware also answers 503.
    app.add_middleware(OutageGuard)
    app.openapi = functools.partial(openapi_document, app)  # type: ignore[method-assign]
    for router in ROOT_ROUTERS:
        app.include_router(router)
    for router in V1_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    # The web pages' built scripts and styles (crossbeat/web/static, shipped in the package).
    app.mount("/static/web", StaticFiles(directory=STATIC, check_dir=False), name="web")
    return app


def app_from_environment() -> FastAPI:
    """Build the application from the ``CROSSBEAT_*`` environment (uvicorn's factory).

    ``crossbeat serve --workers N`` starts N uvicorn worker processes; each imports
    this factory and builds its own application (its own engine and pool), from the
    settings the command wrote into the environment.
    """
    from crossbeat.settings import load_settings

    return create_app(load_settings(), freeze_gc=True)


def _kek(settings: Settings) -> Kek | None:
    """Return the configured KEK (or a SQLite database's development key file's).

    Without one the application still serves everything but personal data, whose
    reads then fail with an error naming ``CROSSBEAT_KEK``.
    """
    found = resolve_kek(
        settings.database_url,
        kek=settings.kek or None,
        kek_file=settings.kek_file or None,
        required=False,
    )
    return found.kek
