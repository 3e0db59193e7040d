"""A database outage answers 503 with ``Retry-After``, never a traceback (issue #10).

When the database cannot be reached (stopped, restarting, a network cut, every pooled
connection busy), the driver raises; SQLAlchemy wraps that as
:class:`sqlalchemy.exc.OperationalError`, :class:`~sqlalchemy.exc.InterfaceError`,
:class:`~sqlalchemy.exc.DisconnectionError` or a pool
:class:`~sqlalchemy.exc.TimeoutError`. Every route lets it propagate and
:func:`unavailable_response` turns it into the one JSON error shape with status 503 and
``Retry-After``, on every route (:func:`install_outage_handlers`), and
:class:`OutageGuard` does the same for the middlewares that touch the database.

The service recovers by itself: the PostgreSQL engine checks each pooled connection
before use (``pool_pre_ping``), so the first request after the database returns gets a
fresh connection and no restart is needed.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import (
    DisconnectionError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crossbeat.api.errors import error_response

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait before trying again.
RETRY_AFTER = 5
UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)
MESSAGE = "the database is not reachable right now: try again in a few seconds"


def is_unavailable(exc: BaseException) -> bool:
    """Return whether ``exc`` (or an exception it was raised from) is a database outage.

    Parameters
    ----------
    exc
        Any exception, possibly wrapping another (``__cause__``/``__context__``) or an
        exception group (from a task group).

    Returns
    -------
    bool
        True when the database could not be reached or the connection broke.
    """
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, UNAVAILABLE):
            return True
        if isinstance(e, BaseExceptionGroup):
            stack.extend(e.exceptions)
        for inner in (e.__cause__, e.__context__):
            if inner is not None:
                stack.append(inner)
    return False


def unavailable_response() -> JSONResponse:
    """Return the 503 answer of a request made while the database is down."""
    return error_response(503, MESSAGE, headers={"Retry-After": str(RETRY_AFTER)})


async def _handler(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable serving %s %s: %s", request.method, request.url.path, exc)
    return unavailable_response()


def install_outage_handlers(app: FastAPI) -> None:
    """Answer 503 with ``Retry-After`` when a route meets a database outage.

    Parameters
    ----------
    app
        The application to configure.
    """
    for kind in UNAVAILABLE:
        app.add_exception_handler(kind, _handler)


class OutageGuard:
    """ASGI middleware: 503 for a database outage met outside the routes (middlewares).

    Put it outermost. A failure after the response started cannot be turned into a 503
    and is re-raised (the server closes the connection).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def _send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, _send)
        except Exception as exc:
            if started or not is_unavailable(exc):
                raise
            log.warning("database unavailable serving %s: %s", scope.get("path"), exc)
            await unavailable_response()(scope, receive, send)
