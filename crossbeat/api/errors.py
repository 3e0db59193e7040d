"""One JSON error shape for every failure of the web API.

Every error response, whatever raised it, has the body::

    {"ok": false, "error": "<one sentence naming the next step>",
     "errors": ["<each problem>", ...], "status": 400}

(the shape of datasette 1.0). :func:`install_error_handlers` maps the core's typed
exceptions to HTTP statuses, so that routes simply let them propagate:

====================================================== ======
exception                                              status
====================================================== ======
request validation, :class:`RequestError`,              400
:class:`AgreementError`, :class:`ScopeError`,
:class:`AccountError`
:class:`AuthenticationError` (bad sign-in, expired      401
session, invalid API token)
:class:`AccountDisabled`, :class:`TokenScopeError`,     403
:class:`CsrfError`, :class:`PermissionDenied`
unknown resource (:class:`ApiError` with 404)           404
:class:`AccountLocked`                                  423
too many failed sign-ins from one address (ApiError)   429
:class:`VaultError` (no key-encryption key)             503
anything else                                           500
====================================================== ======
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from crossbeat.auth.errors import (
    AccountDisabled,
    AccountError,
    AccountLocked,
    AuthenticationError,
    CsrfError,
    PermissionDenied,
    SessionExpired,
    TokenScopeError,
    UnknownToken,
    UnknownUser,
)
from crossbeat.sharing._manage import AgreementError
from crossbeat.sharing.request import RequestError
from crossbeat.sharing.scope import ScopeError
from crossbeat.vault.errors import VaultError

log = logging.getLogger(__name__)

#: Name of the session cookie (set by ``POST /auth/mfa``, cleared when the session ends).
SESSION_COOKIE = "crossbeat_session"


class ApiError(Exception):
    """An error a route raises itself, with its HTTP status.

    Parameters
    ----------
    status
        The HTTP status code.
    message
        One sentence naming the problem and the next step.
    errors
        Each problem (default: the message alone).
    """

    def __init__(
        self,
        status: int,
        message: str,
        errors: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = list(errors) or [message]
        self.headers = dict(headers or {})


def error_body(status: int, message: str, errors: Sequence[str] = ()) -> dict[str, Any]:
    """Return the canonical error body.

    Parameters
    ----------
    status
        The HTTP status code.
    message
        The summary sentence.
    errors
        Each problem; defaults to ``[message]``.

    Returns
    -------
    dict
        ``{"ok": False, "error": message, "errors": [...], "status": status}``.
    """
    return {"ok": False, "error": message, "errors": list(errors) or [message], "status": status}


def error_response(
    status: int,
    message: str,
    errors: Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """Return a JSON response with the canonical error body."""
    return JSONResponse(error_body(status, message, errors), status_code=status, headers=headers)


def status_of(exc: Exception) -> int:
    """Return the HTTP status for a core exception (500 for an unexpected one)."""
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, UnknownUser | UnknownToken):  # a path named an account that is not there
        return 404
    if isinstance(exc, AccountLocked):
        return 423
    if isinstance(exc, AccountDisabled | TokenScopeError | CsrfError | PermissionDenied):
        return 403
    if isinstance(exc, AuthenticationError):
        return 401
    if isinstance(exc, RequestError | AgreementError | ScopeError | AccountError):
        return 400
    if isinstance(exc, VaultError):
        return 503
    return 500


def _problems(exc: Exception) -> list[str]:
    if isinstance(exc, ApiError):
        return exc.errors
    if isinstance(exc, AgreementError):
        return list(exc.problems)
    if isinstance(exc, RequestError):
        return list(exc.problems)
    return [str(exc)]


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    status = status_of(exc)
    if status == 500:
        log.exception("unexpected error serving %s %s", request.method, request.url.path)
        return error_response(500, "internal server error: the administrator can see the log")
    if status == 503 and not isinstance(exc, ApiError):  # a route's own 503 keeps its words
        log.error("personal data unavailable: %s", exc)
        message = (
            "personal data cannot be read on this server now (its key-encryption key is "
            "not configured): ask the administrator"
        )
        return error_response(503, message)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, ApiError) and exc.headers:
        headers = exc.headers
    response = error_response(status, str(exc), _problems(exc), headers)
    if isinstance(exc, SessionExpired):
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err.get("loc", ()) if part != "body")
        problems.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", ""))
    summary = "the request is not valid: " + "; ".join(problems)
    return error_response(400, summary, problems)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint {request.url.path}: see /docs for the API"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}: see /docs"
    return error_response(exc.status_code, message, headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the canonical shape.

    Parameters
    ----------
    app
        The application to configure.
    """
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for kind in (
        ApiError,
        AuthenticationError,
        PermissionDenied,
        AccountError,
        RequestError,
        AgreementError,
        ScopeError,
        VaultError,
        Exception,
    ):
        app.add_exception_handler(kind, _domain_error)
