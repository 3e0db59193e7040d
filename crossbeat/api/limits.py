"""Abuse limits at the door: request size (413) and per-address request rates (429).

* **Size.** A request whose body is larger than ``max_request_bytes`` (by its
  ``Content-Length``, or counted as it arrives when the length is not given) is refused
  with 413 before any route reads it.
* **Rates.** Per client address, with the ``limits`` library (moving window): requests
  that carry no credential (the public) at most ``public_rate_limit``, sign-in requests
  (``POST /auth/login`` and ``/auth/mfa``) at most ``signin_rate_limit``; beyond it,
  429 with ``Retry-After``.
  Signed-in users and API tokens are not limited here (they are accountable, and their
  reads are audited). The counts live in ``rate_limit_storage``: ``memory://`` (the
  default) for one worker; ``database://`` in the database
  (:class:`crossbeat.store.ratelimits.DatabaseLimitStorage`, fixed windows, claimed by
  each worker in leases of 2 % of the limit: :class:`~crossbeat.store.ratelimits.LeasedLimiter`),
  which ``crossbeat serve --workers N`` chooses when memory was configured, so that the
  workers share one limit; or a storage URI of the ``limits`` library such as
  ``redis://host:6379`` (Redis needs its client, ``pip install 'limits[redis]'``).

Both answer in the one JSON error shape (:mod:`crossbeat.api.errors`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from fastapi.responses import JSONResponse
from limits import RateLimitItem, parse, storage, strategies
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crossbeat.api.errors import error_response
from crossbeat.settings import Settings
from crossbeat.store import Store
from crossbeat.store.ratelimits import DatabaseLimitStorage, LeasedLimiter

#: ``rate_limit_storage`` value that keeps the counts in the database.
DATABASE_STORAGE = "database://"
#: The sign-in steps, limited per address by ``signin_rate_limit``.
SIGNIN_PATHS = frozenset({"/auth/login", "/auth/mfa"})


class _TooLarge(Exception):
    pass


class RequestLimits:
    """ASGI middleware: 413 for a body over the size limit, 429 beyond an address's rate.

    Parameters
    ----------
    app
        The application.
    settings
        ``max_request_bytes``, ``public_rate_limit``, ``signin_rate_limit`` and
        ``rate_limit_storage``.
    """

    def __init__(
        self, app: ASGIApp, settings: Settings, store_of: Callable[[], Store] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = settings.max_request_bytes
        self.public: RateLimitItem = parse(settings.public_rate_limit)
        self.signin: RateLimitItem = parse(settings.signin_rate_limit)
        self.limiter: strategies.RateLimiter | LeasedLimiter
        if settings.rate_limit_storage == DATABASE_STORAGE:
            if store_of is None:
                raise ValueError("rate_limit_storage database:// needs the store")
            self.limiter = LeasedLimiter(DatabaseLimitStorage(store_of()))
        else:
            self.limiter = strategies.MovingWindowRateLimiter(
                storage.storage_from_string(settings.rate_limit_storage)
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._too_large(scope, receive, send)
            return
        refusal = self._rate(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        seen = 0
        started = too_large = False

        async def _receive() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_large = True
                    raise _TooLarge()
            return message

        async def _send(message: Message) -> None:
            nonlocal started
            if too_large:
                # The app answered a body it could not finish reading (FastAPI turns
                # the error into a 400): answer 413 in its place, once.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._too_large(scope, receive, send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, _receive, _send)
        except _TooLarge:
            if started:
                return
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, f"the request is larger than {self.max_bytes} bytes: send less at a time"
        )
        await response(scope, receive, send)

    def _rate(self, scope: Scope, headers: dict[bytes, bytes]) -> JSONResponse | None:
        path: str = scope.get("path", "")
        if path in SIGNIN_PATHS:
            item, namespace = self.signin, "sign-in"
        elif b"authorization" in headers or b"crossbeat_session=" in headers.get(b"cookie", b""):
            return None
        else:
            item, namespace = self.public, "public"
        client = scope.get("client")
        address = client[0] if client else "unknown-address"
        if self.limiter.hit(item, namespace, address):
            return None
        stats = self.limiter.get_window_stats(item, namespace, address)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        return error_response(
            429,
            f"too many requests from your address: try again in {wait} seconds",
            headers={"Retry-After": str(wait)},
        )
