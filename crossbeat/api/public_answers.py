"""The public's aggregates and tiles answered from the process's kept answers (issue #10).

The routes (``GET /api/v1/aggregates``, ``GET /api/v1/tiles/incidents/…``) keep each
answer to the anonymous public in :class:`crossbeat.sharing.public_cache.PublicCache`,
keyed by the request's path and query, the data generation, the key of the sensitivity
rules and the minute, as a rendered :class:`PublicAnswer` with a strong ``ETag``.

:class:`PublicAnswers` is the fast path in front of the routes: an anonymous ``GET`` of
one of those paths (no ``Authorization`` header, no session cookie) whose answer is kept
for the current state is answered here, without routing, dependencies or a worker
thread — 304 without a body when ``If-None-Match`` names its ETag. It is the same
answer, with the same headers, the route would give, counted as a public read from the
caller's address exactly as the route counts a kept answer
(:meth:`PublicCache.lookup`). Anything else (a miss, a signed-in caller, another path)
goes on to the routes, which compute and keep the answer. The security headers, the
rate limits and the NUL guard sit outside it and apply to both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from crossbeat.api.deps import scope_ip
from crossbeat.api.errors import SESSION_COOKIE
from crossbeat.sharing.public_cache import PublicCache
from crossbeat.store import Store

#: The paths whose public answers are kept (the aggregate, and the tiles under the prefix).
AGGREGATES_PATH = "/api/v1/aggregates"
TILES_PREFIX = "/api/v1/tiles/incidents/"
#: Every kept answer's ``Vary``: a signed-in caller gets a different one.
VARY = "Cookie, Authorization"


@dataclass(frozen=True, slots=True)
class PublicAnswer:
    """A rendered answer to the public, as kept.

    Attributes
    ----------
    body
        The response body.
    media_type
        Its content type.
    etag
        A strong ETag (quoted) of exactly this body.
    cache_control
        The ``Cache-Control`` header.
    """

    body: bytes
    media_type: str
    etag: str
    cache_control: str

    @classmethod
    def of(cls, body: bytes, media_type: str, cache_control: str) -> PublicAnswer:
        """Return the answer with a strong ETag of its body (SHA-256, 128 bits)."""
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        return cls(body, media_type, etag, cache_control)

    def response(self, if_none_match: str | None) -> Response:
        """Return the HTTP response: 304 without a body if ``if_none_match`` names the ETag."""
        headers = {"ETag": self.etag, "Cache-Control": self.cache_control, "Vary": VARY}
        if if_none_match is not None and self.etag in listed_etags(if_none_match):
            return Response(status_code=304, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


def listed_etags(header: str) -> set[str]:
    """Return the ETags an ``If-None-Match`` header lists (weak ones as strong)."""
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}


def question(scope: Scope) -> Hashable:
    """Return what a public answer depends on of its request: the path and the query."""
    return (scope["path"], scope.get("query_string", b""))


def kept_path(path: str) -> bool:
    """Return whether the public's answers to ``path`` are kept."""
    return path == AGGREGATES_PATH or path.startswith(TILES_PREFIX)


class PublicAnswers:
    """ASGI middleware: kept public answers served without routing (see the module).

    Parameters
    ----------
    app
        The application.
    store_of, cache_of
        Return the application's store and its :class:`PublicCache` (read per request:
        tests replace the store).
    """

    def __init__(
        self,
        app: ASGIApp,
        store_of: Callable[[], Store],
        cache_of: Callable[[], PublicCache],
    ) -> None:
        self.app = app
        self.store_of = store_of
        self.cache_of = cache_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and kept_path(scope["path"]):
            if_none_match: str | None = None
            anonymous = True
            for name, value in scope["headers"]:
                if name == b"authorization" or (
                    name == b"cookie" and SESSION_COOKIE.encode() in value
                ):
                    anonymous = False
                    break
                if name == b"if-none-match":
                    if_none_match = value.decode("latin-1")
            if anonymous:
                # On the event loop: two small indexed reads, cheaper than a thread hop.
                answer = self.cache_of().lookup(self.store_of(), question(scope), scope_ip(scope))
                if isinstance(answer, PublicAnswer):
                    await answer.response(if_none_match)(scope, receive, send)
                    return
        await self.app(scope, receive, send)
