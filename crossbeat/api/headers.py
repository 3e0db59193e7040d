"""Security headers on every response, and no caching of authenticated ones (issue #7).

Every response says ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
``Referrer-Policy: no-referrer`` and a restrictive ``Permissions-Policy``; over HTTPS also
``Strict-Transport-Security``. A response to a request that carries credentials (the
session cookie or an ``Authorization`` header) or that concerns signing in
(``/auth/...``) also gets ``Cache-Control: no-store``, so that no browser or proxy cache
keeps records, personal data or session details. JSON answers get
``Content-Security-Policy: default-src 'none'; frame-ancestors 'none'``; the HTML pages
(``/``, ``/docs``, ``/redoc``) keep theirs, since they load their own scripts.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crossbeat.api.errors import SESSION_COOKIE

ALWAYS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "permissions-policy": "geolocation=(), camera=(), microphone=()",
}
#: The field app and the public map may ask for the browser's location (the browser asks
#: the person; the public map only on its "Use my location" button); no other page may.
LOCATED_PERMISSIONS = "geolocation=(self), camera=(), microphone=()"
JSON_CSP = "default-src 'none'; frame-ancestors 'none'"


class SecurityHeaders:
    """ASGI middleware adding the headers above."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = _credentialed(scope) or scope["path"].startswith("/auth/")
        https = scope.get("scheme") == "https"

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers.setdefault(name, value)
                if scope["path"] in ("/", "/field") or scope["path"].startswith("/field/"):
                    # The field app places reports at the officer's location; the public
                    # map counts "near my location" in the browser (issue #12).
                    headers["permissions-policy"] = LOCATED_PERMISSIONS
                if https:
                    headers.setdefault("strict-transport-security", "max-age=31536000")
                if private and "no-store" not in headers.get("cache-control", ""):
                    headers["cache-control"] = "no-store"  # a route's "private, no-store" stays
                    headers["pragma"] = "no-cache"
                if headers.get("content-type", "").startswith(
                    ("application/json", "application/geo")
                ):
                    headers.setdefault("content-security-policy", JSON_CSP)
            await send(message)

        await self.app(scope, receive, wrapped)


def _credentialed(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return True
        if name == b"cookie" and SESSION_COOKIE.encode() in value:
            return True
    return False
