"""Shared set-up for tests/test_api_*.py: an app on the test store, signing in over HTTP."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from crossbeat.api.app import create_app
from crossbeat.api.errors import SESSION_COOKIE
from crossbeat.audit import AuditEvent, iter_events
from crossbeat.auth import totp
from crossbeat.auth.accounts import Enrolment
from crossbeat.clock import FrozenClock
from crossbeat.settings import load_settings
from crossbeat.store import Store
from tests.auth_support import PASSWORD

CLIENT_IP = "203.0.113.7"


def make_client(store: Store, clock: FrozenClock, **settings: Any) -> TestClient:
    """Return an HTTPS test client of an app serving ``store`` with ``clock``."""
    app = create_app(
        load_settings({}, database_url=store.url, **settings), store=store, clock=clock
    )
    return TestClient(app, base_url="https://testserver", client=(CLIENT_IP, 50000))


def sign_in(
    client: TestClient, clock: FrozenClock, enrolment: Enrolment, password: str = PASSWORD
) -> dict[str, Any]:
    """Sign in over HTTP (password, then a fresh one-time code); return the /auth/mfa body.

    The client keeps the session cookie; the body holds the CSRF token.
    """
    clock.advance(seconds=30)  # a code not used before
    first = client.post(
        "/auth/login", json={"username": enrolment.user.username, "password": password}
    )
    assert first.status_code == 200, first.text
    code = totp.code_at(enrolment.totp_secret, clock.now())
    second = client.post("/auth/mfa", json={"ticket": first.json()["mfa_ticket"], "code": code})
    assert second.status_code == 200, second.text
    assert client.cookies.get(SESSION_COOKIE)
    body: dict[str, Any] = second.json()
    return body


def csrf(body: dict[str, Any]) -> dict[str, str]:
    """Return the CSRF header for a signed-in client."""
    return {"X-CSRF-Token": body["csrf_token"]}


def events(store: Store, after: int = 0, **match: Any) -> list[AuditEvent]:
    """Return the audit events after ``after`` whose attributes equal ``match``."""
    found = []
    for event in iter_events(store, after=after):
        values = {k: getattr(event, k) for k in match}
        if values == match:
            found.append(event)
    return found


def last_seq(store: Store) -> int:
    """Return the sequence number of the newest audit event (0 when empty)."""
    seq = 0
    for event in iter_events(store):
        seq = event.seq or seq
    return seq


def assert_error(response: Any, status: int) -> dict[str, Any]:
    """Assert the canonical error shape and status; return the body."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"ok", "error", "errors", "status"}, body
    assert body["ok"] is False and body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["errors"], list) and all(isinstance(e, str) for e in body["errors"])
    assert body["errors"]
    return body
