"""Health check (the landing page is the public map, :mod:`crossbeat.api.routes.pages`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from crossbeat import __version__
from crossbeat.store import Store

router = APIRouter(tags=["health"])


class DatabaseStatus(BaseModel):
    """Which database the server uses and its schema revision."""

    dialect: str
    schema_revision: str | None


class Health(BaseModel):
    """The answer of ``GET /health``."""

    ok: bool
    version: str
    database: DatabaseStatus


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(_store)]


@router.get("/health", response_model=Health, summary="Check the server and its database")
def get_health(store: StoreDep) -> Health:
    """Return the version and the database dialect and schema revision.

    It reports nothing about the data itself: it needs no sign-in, and even a count of
    incidents is the owners' business (the sharing policy answers that, audited).
    """
    return Health(
        ok=True,
        version=__version__,
        database=DatabaseStatus(dialect=store.dialect, schema_revision=store.current_revision()),
    )
