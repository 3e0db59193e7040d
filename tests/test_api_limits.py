"""Abuse limits: 413 for large requests, 429 per address for the public and sign-in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crossbeat.api.app import create_app
from crossbeat.auth.tokens import create_token
from crossbeat.settings import SettingsError, load_settings
from crossbeat.store import open_store
from tests.api_support import assert_error


def _client(url: str, **settings: Any) -> TestClient:
    app = create_app(load_settings({}, database_url=url, **settings))
    return TestClient(app, base_url="https://testserver", client=("198.51.100.4", 4000))


def test_a_body_over_the_limit_is_413_with_or_without_a_length(sqlite_url: str) -> None:
    client = _client(sqlite_url, max_request_bytes=2048)
    big = b'{"username": "' + b"a" * 5000 + b'", "password": "x"}'
    r = client.post("/auth/login", content=big, headers={"Content-Type": "application/json"})
    assert_error(r, 413)

    def chunks() -> Iterator[bytes]:
        yield big[:1500]
        yield big[1500:]

    r = client.post("/auth/login", content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(r, 413)
    small = client.post("/auth/login", json={"username": "nobody", "password": "x"})
    assert small.status_code == 401


def test_public_requests_are_limited_per_address_not_tokens(sqlite_url: str) -> None:
    client = _client(sqlite_url, public_rate_limit="5/minute")
    for _ in range(5):
        assert client.get("/api/v1/incidents").status_code == 200
    r = client.get("/api/v1/aggregates")
    body = assert_error(r, 429)
    assert int(r.headers["Retry-After"]) >= 1 and "too many requests" in body["error"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"  # still a well-dressed answer
    store = open_store(sqlite_url)
    from crossbeat.agencies import Agency, register_agency

    register_agency(store, Agency(id="citya", name="City A", timezone="UTC"))
    token = create_token(store, "citya", "read").secret
    authed = client.get("/api/v1/incidents", headers={"Authorization": f"Bearer {token}"})
    assert authed.status_code == 200
    other = TestClient(client.app, base_url="https://testserver", client=("198.51.100.5", 1))
    assert other.get("/api/v1/incidents").status_code == 200  # another address


def test_sign_in_requests_are_limited_per_address(sqlite_url: str) -> None:
    client = _client(sqlite_url, signin_rate_limit="3/minute", login_throttle="100/minute")
    for _ in range(3):
        r = client.post("/auth/login", json={"username": "nobody", "password": "x"})
        assert r.status_code == 401
    r = client.post("/auth/login", json={"username": "nobody", "password": "x"})
    assert_error(r, 429)


@pytest.mark.parametrize(
    "setting",
    [
        {"public_rate_limit": "lots"},
        {"signin_rate_limit": "3 per day please"},
        {"rate_limit_storage": "redis"},
        {"max_request_bytes": "10"},
    ],
)
def test_bad_limit_settings_are_refused(setting: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        load_settings({}, **setting)
