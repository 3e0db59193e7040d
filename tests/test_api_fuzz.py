"""Issue #7 finding 7: hostile input never makes the server fail (no 500), on any operation.

Every operation of the OpenAPI document is called with every hostile value in each of
its parameters and each field of its JSON body, from a signed-in agency admin (and,
for sign-in, anonymously). Each answer must be a client error in the one JSON error
shape, or a success: never a server error.
"""

from __future__ import annotations

import itertools
import re
from typing import Any
from urllib.parse import quote

import pytest

from crossbeat.store import Store
from tests.api_support import World, build_world

#: Values that broke the server before (issue #7) and their relatives.
HOSTILE: tuple[Any, ...] = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00",
    "99999999999999999999d",
    "999999999d",
    "-1",
    "1e309",
    "NaN",
    "x" * 5000,
    "é\u202e\ufeff💥",
    "group:",
    "h3:99",
    "../../../etc/passwd",
    -1,
    10**30,
    None,
    [],
    {},
)


#: Values for a parameter that is itself a list (repeated query parameter).
def _as_param(value: Any) -> Any:
    return value if isinstance(value, str | int) else "x"


@pytest.fixture
def world(store: Store) -> World:
    return build_world(store)


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = []
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            ops.append((method.upper(), path, op))
    return ops


def _body_fields(doc: dict[str, Any], op: dict[str, Any]) -> list[str]:
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    if not content:
        return []
    schema = content.get("schema", {})
    ref = schema.get("$ref")
    if ref:  # a named model; an inline schema (a field report's open body) is used as is
        schema = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return list(schema.get("properties", {}))


def _valid_body(path: str) -> dict[str, Any]:
    if path == "/api/v1/agreements":
        return {"grantee": "countyb", "offences": ["all"], "fields": ["offence"],
                "precision": "block", "purposes": ["analysis"]}  # fmt: skip
    if path.endswith("/revoke"):
        return {"reason": "fuzz"}
    if path == "/auth/login":
        return {"username": "nobody", "password": "wrong password"}
    if path == "/auth/mfa":
        return {"ticket": "cbm_x", "code": "123456"}
    return {}


def test_every_operation_answers_hostile_input_without_a_server_error(world: World) -> None:
    admin, token = world.signed_in("a.admin")
    anonymous = world.client()
    for client in (admin, anonymous):  # answer 500 like the server does, do not raise
        client._transport.raise_server_exceptions = False  # type: ignore[attr-defined]
    doc = admin.get("/openapi.json").json()
    ops = _operations(doc)
    assert len(ops) >= 12
    sent, failures = 0, []
    for method, path, op in ops:
        if path == "/auth/logout":
            continue  # would end the session the other requests use (fuzzed below)
        if "text/event-stream" in op.get("responses", {}).get("200", {}).get("content", {}):
            continue  # streams until the client leaves: tests/test_live_stream.py fuzzes it
        client = anonymous if path.startswith("/auth/") and path != "/auth/me" else admin
        params = [p for p in op.get("parameters", []) if p["in"] in ("query", "path")]
        fields = _body_fields(doc, op)
        for target, value in itertools.product(
            [("param", p["name"], p["in"]) for p in params] + [("body", f, "") for f in fields],
            HOSTILE,
        ):
            kind, name, where = target
            url, query = path, {}
            for p in params:  # every path parameter needs some value
                if p["in"] == "path":
                    url = url.replace("{" + p["name"] + "}", "nope")
            if kind == "param":
                if where == "path":
                    if not isinstance(value, str) or not value.strip():
                        continue
                    url = re.sub(r"/nope(?=/|$)", "/" + quote(value, safe=""), url, count=1)
                else:
                    query[name] = _as_param(value)
            body = _valid_body(path) if fields else None
            if kind == "body":
                body = {**(body or {}), name: value}
            response = client.request(method, url, params=query, json=body, headers=token)
            sent += 1
            if response.status_code >= 500:
                failures.append(f"{method} {url[:60]} {name}={repr(value)[:40]}: 500")
            elif response.status_code >= 400:
                shape = response.json()
                assert shape["ok"] is False and shape["status"] == response.status_code, shape
                assert shape["error"] and shape["errors"], shape
    assert not failures, f"{len(failures)} of {sent} requests failed:\n" + "\n".join(failures)
    assert sent > 500
    # Signing out with a hostile cookie or token is refused cleanly too.
    for value in ("", "x" * 5000, "é"):
        out = world.client().post("/auth/logout", headers={"X-CSRF-Token": value.encode().hex()})
        assert out.status_code < 500
