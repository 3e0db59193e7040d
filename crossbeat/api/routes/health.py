"""Health (the process answers), readiness (it can serve: database reachable, schema
current); the landing page is the public map (:mod:`crossbeat.api.routes.pages`).

``/health`` is liveness: it answers as long as the process runs, without asking the
database, so an orchestrator does not restart a server merely because its database is
down, and a health probe costs the database nothing. ``/ready`` is
readiness: 503 with ``Retry-After`` while the database cannot be reached or its schema
is not the one this version needs, so a load balancer sends traffic elsewhere.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from crossbeat import __version__
from crossbeat.api.errors import error_response
from crossbeat.api.outage import RETRY_AFTER, UNAVAILABLE, unavailable_response
from crossbeat.api.schemas import PUBLIC
from crossbeat.store import Store

router = APIRouter(tags=["health"])


class DatabaseStatus(BaseModel):
    """Which database the server uses and its schema revision."""

    dialect: str
    schema_revision: str | None


class DatabaseKind(BaseModel):
    """Which kind of database the server uses (``/ready`` says whether it answers)."""

    dialect: str


class Health(BaseModel):
    """The answer of ``GET /health``."""

    ok: bool
    version: str
    database: DatabaseKind


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(_store)]


@router.get(
    "/health",
    response_model=Health,
    summary="Check that the server process answers",
    openapi_extra=PUBLIC,
)
async def get_health(request: Request) -> Health:
    """Return the version and the database dialect, without asking the database.

    It reports nothing about the data itself: it needs no sign-in, and even a count of
    incidents is the owners' business (the sharing policy answers that, audited). It
    answers 200 while the process runs, even with the database down: whether the
    server can serve now (database reachable, schema current) is ``/ready``'s question.
    """
    # Async and without dependencies: no thread, no statement, nothing to wait for.
    store: Store = request.app.state.store
    return Health(ok=True, version=__version__, database=DatabaseKind(dialect=store.dialect))


class Ready(BaseModel):
    """The answer of ``GET /ready`` when the server can serve."""

    ok: bool
    database: DatabaseStatus


_UNREADY = {
    503: {
        "description": "Not ready: the database is unreachable or its schema is not current",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    }
}


@router.get(
    "/ready",
    openapi_extra=PUBLIC,
    response_model=Ready,
    responses=_UNREADY,  # type: ignore[arg-type]
    summary="Check that the server can serve requests now",
)
def get_ready(store: StoreDep) -> Ready | JSONResponse:
    """Return 200 when the database answers and its schema is current, else 503.

    Unlike ``/health`` (the process is alive), this fails while the database is down
    or being migrated, with ``Retry-After``.
    """
    try:
        with store.connect() as conn:
            conn.execute(text("SELECT 1"))
        revision = store.current_revision()
    except UNAVAILABLE:
        return unavailable_response()
    if revision != store.head_revision():
        return error_response(
            503,
            f"the database schema is at {revision}, this server needs "
            f"{store.head_revision()}: run crossbeat db upgrade",
            headers={"Retry-After": str(RETRY_AFTER)},
        )
    return Ready(ok=True, database=DatabaseStatus(dialect=store.dialect, schema_revision=revision))
