"""One error shape everywhere; OpenAPI lists every route as it really answers; CSRF coverage."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from crossbeat.api.app import API_PREFIX, ROOT_ROUTERS, V1_ROUTERS
from crossbeat.api.deps import require_csrf
from crossbeat.api.schemas import IncidentPublic, IncidentShared
from crossbeat.clock import FrozenClock
from crossbeat.sharing.scope import PUBLIC_FIELDS, RECORD_FIELDS
from crossbeat.store import Store
from crossbeat.vault.errors import KeyConfigError
from tests.api_support import assert_error, csrf, make_client, sign_in
from tests.auth_support import START, add_agencies, make_user

#: Routes that change something but carry no session yet (signing in).
NO_SESSION_YET = {("POST", "/auth/login"), ("POST", "/auth/mfa")}


def _routes() -> list[APIRoute]:
    """Every route of the application, with the path it is served at."""
    found = [r for router in ROOT_ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    for router in V1_ROUTERS:
        for r in router.routes:
            if isinstance(r, APIRoute):
                served = copy.copy(r)
                served.path = API_PREFIX + r.path
                found.append(served)
    return found


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def client(store: Store, clock: FrozenClock):  # type: ignore[no-untyped-def]
    add_agencies(store, clock)
    return make_client(store, clock)


@pytest.mark.parametrize(
    ("path", "status", "fragment"),
    [
        ("/api/v1/incidents?bbox=1,2,3", 400, "bbox: give four numbers"),
        ("/api/v1/incidents?bbox=10,10,0,0", 400, "bbox: need"),
        ("/api/v1/incidents?limit=0", 400, "limit"),
        ("/api/v1/incidents?f=xml", 400, "f:"),
        (
            "/api/v1/incidents?since=2026-01-01T00:00:00",
            400,
            "since: give a date and time with a time zone",
        ),
        ("/api/v1/incidents?offence=burglary-ish", 400, "unknown offence"),
        ("/api/v1/incidents?purpose=curiosity", 400, "purpose: unknown purpose"),
        ("/api/v1/aggregates?by=planet", 400, "by: unknown"),
        ("/api/v1/aggregates?by=month&by=day&by=hour", 400, "at most two"),
        ("/api/v1/incidents/nope", 404, "no incident 'nope'"),
        ("/api/v1/incidents/nope?purpose=CASE-1", 400, "in the X-Purpose header, not in the URL"),
        ("/api/v1/agreements", 401, "not signed in"),
        ("/api/v1/agreements/preview?grantee=public", 401, "not signed in"),
        ("/api/v1/audit", 401, "not signed in"),
        ("/no/such/page", 404, "no such endpoint /no/such/page"),
    ],
)
def test_error_shape(client, path: str, status: int, fragment: str) -> None:  # type: ignore[no-untyped-def]
    body = assert_error(client.get(path), status)
    assert fragment in body["error"], body


def test_several_problems_are_all_listed(client) -> None:  # type: ignore[no-untyped-def]
    body = assert_error(client.get("/api/v1/incidents?bbox=x&purpose=nope&offence=zzz"), 400)
    assert len(body["errors"]) == 3
    assert [e.split(":")[0] for e in body["errors"]] == [
        "bbox",
        "offence",
        "purpose",
    ]  # the query names


def test_403_404_405_for_a_signed_in_user(store: Store, clock: FrozenClock, client) -> None:  # type: ignore[no-untyped-def]
    analyst = make_user(store, clock, "ana", roles=("analyst",))
    signed = sign_in(client, clock, analyst)
    forbidden = assert_error(client.get("/api/v1/audit"), 403)
    assert "may not audit.read" in forbidden["error"]
    assert_error(client.get("/api/v1/agreements"), 403)
    assert_error(client.get("/api/v1/agreements/unknown-id"), 404)
    assert_error(
        client.post("/api/v1/agreements/unknown-id/revoke", json={"reason": "x"}), 403
    )  # CSRF
    assert_error(
        client.post(
            "/api/v1/agreements/unknown-id/revoke", json={"reason": "x"}, headers=csrf(signed)
        ),
        404,
    )
    assert_error(client.delete("/api/v1/incidents"), 405)
    bad_json = client.post(
        "/api/v1/agreements",
        content=b"{not json",
        headers={"Content-Type": "application/json", **csrf(signed)},
    )
    assert_error(bad_json, 400)


def test_openapi_lists_every_route(client) -> None:  # type: ignore[no-untyped-def]
    spec = client.get("/openapi.json").json()
    routes = [r for r in _routes() if r.include_in_schema]
    assert len(routes) >= 13
    for route in routes:
        assert route.path in spec["paths"], route.path
        documented = {m.upper() for m in spec["paths"][route.path]}
        assert route.methods <= documented, route.path
    expected = {
        "/auth/login", "/auth/mfa", "/auth/logout", "/auth/me", "/health",
        "/api/v1/incidents", "/api/v1/incidents/{incident_id}", "/api/v1/aggregates",
        "/api/v1/agreements", "/api/v1/agreements/preview", "/api/v1/agreements/{agreement_id}",
        "/api/v1/agreements/{agreement_id}/revoke", "/api/v1/audit",
    }  # fmt: skip
    assert expected <= set(spec["paths"])
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            # Validation errors are 400; a 422 is only a route's own, documented refusal
            # (an analysis selection too large to compute), in the one error shape.
            if "422" in op["responses"]:
                body = op["responses"]["422"]["content"]["application/json"]["schema"]
                assert body == {"$ref": "#/components/schemas/ErrorOut"}, (method, path)
            assert op.get("summary"), (method, path)
            assert op["responses"]["503"]["headers"]["Retry-After"], (method, path)
            if path not in ("/health", "/ready"):  # they take no input
                assert op["responses"]["400"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorOut"
                }
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    for name in ("IncidentPublic", "IncidentShared", "FeatureCollectionOut", "ErrorOut"):
        assert schemas[name]["properties"], name
    public = set(schemas["IncidentPublic"]["properties"])
    assert {"lat", "lon", "occurred_from"} <= public
    assert not public & {"block_address", "h3_11", "attributes", "narrative", "persons"}


def test_every_unsafe_route_checks_csrf(client) -> None:  # type: ignore[no-untyped-def]
    for route in _routes():
        for method in route.methods - {"GET", "HEAD", "OPTIONS"}:
            if (method, route.path) in NO_SESSION_YET or route.path == "/auth/logout":
                continue  # logout checks the token itself, even for an ended session
            calls = {d.call for d in route.dependant.dependencies}
            assert require_csrf in calls, (method, route.path)


def test_docs_name_every_endpoint() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text(encoding="utf-8")
    text = re.sub(r"\{[a-z_]+\}", "{id}", text)
    for route in _routes():
        if route.include_in_schema:
            path = re.sub(r"\{[a-z_]+\}", "{id}", route.path)
            for method in route.methods:
                assert f"{method} {path}" in text, f"docs/api.md lacks {method} {path}"


def test_record_models_match_the_sharing_vocabulary_and_drop_the_rest() -> None:
    assert set(IncidentPublic.model_fields) == PUBLIC_FIELDS
    assert set(IncidentShared.model_fields) == set(RECORD_FIELDS)
    leaky = {
        "id": "x", "agency_id": "citya", "lat": 45.5, "block_address": "100 BLOCK MAIN ST",
        "h3_11": "8b28f0000000fff", "narrative": "secret", "persons": [{"name": "A"}],
        "full_address": "1 Main St", "sensitivity": ["juvenile"],
    }  # fmt: skip
    assert IncidentPublic.model_validate(leaky).model_dump() == {
        "id": "x", "agency_id": "citya", "lat": 45.5,
    }  # fmt: skip
    shared = IncidentShared.model_validate(leaky).model_dump()
    assert not set(shared) & {"narrative", "persons", "full_address"}
    assert "lon" not in shared  # a field the policy did not return is absent, not null


def test_unexpected_and_key_errors_keep_the_shape(client, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from crossbeat.api.routes import incidents

    quiet = TestClient(client.app, base_url="https://testserver", raise_server_exceptions=False)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(incidents, "read_incidents", boom)
    body = assert_error(quiet.get("/api/v1/incidents"), 500)
    assert "hunter2" not in str(body)

    def no_key(*args: object, **kwargs: object) -> None:
        raise KeyConfigError("set CROSSBEAT_KEK for sqlite:///secret/path.db")

    monkeypatch.setattr(incidents, "read_detail", no_key)
    body = assert_error(quiet.get("/api/v1/incidents/x", headers={"X-Purpose": "CASE-1"}), 503)
    assert "administrator" in body["error"] and "secret/path" not in str(body)
