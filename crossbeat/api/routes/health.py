"""Health check and landing page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
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


_LANDING = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>CrossBeat</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto">
<h1>CrossBeat {version}</h1>
<p>Collaborative crime mapping: many agencies, one governed map.</p>
<ul>
<li><a href="/docs">API documentation</a>
 (interactive, from <a href="/openapi.json">OpenAPI</a>)</li>
<li><a href="/health">Health</a>: version and database</li>
</ul>
</body>
</html>
"""


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def landing() -> HTMLResponse:
    """Return a small HTML page linking the API documentation."""
    return HTMLResponse(_LANDING.format(version=__version__))
