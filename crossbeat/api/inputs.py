"""Hostile input stops at the door: NUL characters in URLs and JSON bodies (issue #7).

PostgreSQL cannot store a NUL character and the audit log refuses one, so a NUL in an
agency id, an incident id, a purpose or a cursor used to reach the database or the
audit log and end in a 500. Here it gets a 400 in the one JSON error shape instead:

* :class:`NulGuard` refuses a request whose path or query string holds a NUL (raw or
  ``%00``) before any route runs, and counts the refusal for the audit log like an
  anonymous read (:mod:`crossbeat.audit.public_reads`: one ``denied`` event per window
  and client address, so a flood of them does not grow the log per request).
* :class:`TextIn` is the base of the JSON request bodies: a NUL in any of their text
  fields is a validation error (400).

Sign-in is the exception that proves the rule: its body is checked by
:func:`crossbeat.auth.login.begin_login`, which audits the attempt as a failed sign-in.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote_to_bytes

from pydantic import BaseModel, model_validator
from starlette.types import ASGIApp, Receive, Scope, Send

from crossbeat.api.errors import error_response
from crossbeat.audit import Action, AuditEvent, Outcome, public_reads
from crossbeat.store import Store

NUL_MESSAGE = "the request holds a NUL character, which no CrossBeat value may contain"


def has_nul(value: Any) -> bool:
    """Return whether a value, or any text nested in it, holds a NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


class TextIn(BaseModel):
    """Base of JSON request bodies: text fields may not hold NUL characters."""

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if has_nul(data):
            raise ValueError(NUL_MESSAGE)
        return data


class NulGuard:
    """ASGI middleware: 400 (audited) for a NUL in the path or the query string."""

    def __init__(self, app: ASGIApp, store_of: Any) -> None:
        self.app = app
        self.store_of = store_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _nul_in_url(scope):
            store: Store = self.store_of()
            client = scope.get("client")
            refusal = AuditEvent(
                action=Action.DENIED,
                actor="public",
                source_ip=_ip(client[0] if client else None),
                outcome=Outcome.DENIED,
                resource_type="request",
                details={
                    "request": f"{scope['method']} {_printable(scope['path'])}",
                    "reason": NUL_MESSAGE,
                },
            )
            # Counted per window and address, like public reads; off the event loop.
            await asyncio.to_thread(_count, store, refusal)
            response = error_response(400, NUL_MESSAGE + ": remove it from the URL")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _count(store: Store, refusal: AuditEvent) -> None:
    with store.begin() as conn:
        public_reads.tally(store, conn, [refusal], store.now())


def _nul_in_url(scope: Scope) -> bool:
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    query = scope.get("query_string", b"")
    return (
        any(
            b"\x00" in part or b"\x00" in unquote_to_bytes(part.replace(b"+", b" "))
            for part in (raw_path, query)
        )
        or "\x00" in scope["path"]
    )


def _printable(text: str) -> str:
    return text.replace("\x00", "\ufffd")[:500]


def _ip(host: str | None) -> str | None:
    import ipaddress

    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None
