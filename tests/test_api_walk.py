"""A generated walk of every operation in the OpenAPI document (issue #10, "Must show").

Each operation not marked public (``openapi_extra=PUBLIC``, :data:`crossbeat.api.schemas.PUBLIC`)
must refuse an anonymous call (401/403) and refuse a call by every user of another
agency aimed at citya's resources (403/404): path parameters are filled with citya's
ids where the walk knows the parameter (agreements, incidents), otherwise with an id
that exists nowhere; ``owner``/``agency`` parameters and body fields name citya. Public
operations must not hand citya's own-only data to another agency: aimed at citya's
own ids (not the public ids), they answer 404. Routes added later are walked the same
way without a change here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crossbeat.sharing.agreements import list_agreements
from tests.api_support import CANARIES, World, build_world

#: Users of the "wrong" agency: every role of countyb.
WRONG_AGENCY = ("b.analyst", "b.officer", "b.admin", "b.auditor")
MARK = "x-crossbeat-public"
FILTERED_MARK = "x-crossbeat-filtered"
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, kek_text: str) -> World:
    from crossbeat.store import open_store
    from crossbeat.vault.kek import parse_kek

    folder = tmp_path_factory.mktemp("walk-api")
    return build_world(open_store(f"sqlite:///{folder / 'w.db'}", kek=parse_kek(kek_text)))


def _targets(world: World) -> dict[str, str]:
    """citya's resources, by path parameter name."""
    (agreement,) = list_agreements(world.store, owner="citya")
    canary = CANARIES[0]
    return {
        "agreement_id": agreement.id,
        "incident_id": canary.id,  # citya's own id: only citya's readers may use it
        "feature_id": canary.id,
        "collection_id": "incidents",
    }


def _streams(op: dict[str, Any]) -> bool:
    """Return whether the operation answers an endless event stream (SSE)."""
    ok = op.get("responses", {}).get("200", {})
    return "text/event-stream" in ok.get("content", {})


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Return every operation; signing out comes last (it ends the walkers' sessions)."""
    found = [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]
    return sorted(found, key=lambda o: o[1].endswith("/logout"))


def _aimed(path: str, op: dict[str, Any]) -> bool:
    """Return whether a call can name another agency's resource (path id, owner, body)."""
    names = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
    return "{" in path or bool(names & {"owner", "agency"}) or "requestBody" in op


def _call(
    client: TestClient,
    spec: dict[str, Any],
    method: str,
    path: str,
    op: dict[str, Any],
    targets: dict[str, str],
    headers: dict[str, str] | None = None,
) -> Any:
    # A path parameter with a fixed set of values (an analysis name) takes the first one.
    fixed = {
        p["name"]: _example(p["schema"], spec, p["name"])
        for p in op.get("parameters", [])
        if p["in"] == "path" and "enum" in _resolved(p.get("schema", {}), spec)
    }
    url = re.sub(
        r"\{([^}]+)\}",
        lambda m: str(fixed.get(m.group(1)) or targets.get(m.group(1), "nowhere-0000")),
        path,
    )
    params = {}
    for p in op.get("parameters", []):
        if p["in"] == "query" and p["name"] in ("owner", "agency"):
            params[p["name"]] = "citya"
        elif p["in"] == "query" and p.get("required"):
            params[p["name"]] = _example(p.get("schema", {}), spec, p["name"])
    body = None
    if "requestBody" in op:
        content = op["requestBody"].get("content", {})
        schema = content.get("application/json", {}).get("schema", {})
        body = _example(schema, spec)
    return client.request(method, url, params=params, json=body, headers=headers)


def _resolved(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Return ``schema`` with a top-level ``$ref`` followed."""
    ref = schema.get("$ref")
    if ref:
        return dict(spec["components"]["schemas"][ref.rsplit("/", 1)[-1]])
    return schema


#: Values of body fields that aim a request at citya (and name countyb as the other side).
AIMS = {"owner": "citya", "agency_id": "citya", "agency": "citya", "grantee": "countyb"}


def _example(schema: dict[str, Any], spec: dict[str, Any], name: str = "") -> Any:
    """Return a small valid instance of a request-body schema, aimed at citya."""
    if "$ref" in schema:
        target = schema["$ref"].rsplit("/", 1)[-1]
        return _example(spec["components"]["schemas"][target], spec, name)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"]
            return _example(options[0], spec, name) if options else None
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        wanted = set(schema.get("required", ())) | (set(props) & set(AIMS))
        return {k: _example(props[k], spec, k) for k in sorted(wanted)}
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "string" and schema.get("format") == "date-time":
        return "2026-01-05T00:00:00Z"
    if kind == "string":
        return AIMS.get(name, "walk")
    if kind in ("integer", "number"):
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    return None


def test_the_walk_covers_every_operation(world: World) -> None:
    spec = world.client().get("/openapi.json").json()
    operations = _operations(spec)
    private = [o for o in operations if not o[2].get(MARK)]
    assert len(operations) >= 20 and len(private) >= 8, [(m, p) for m, p, _ in private]


def test_non_public_operations_refuse_anonymous_and_wrong_agency_calls(world: World) -> None:
    anonymous = world.client()
    spec = anonymous.get("/openapi.json").json()
    targets = _targets(world)
    signed = {u: world.signed_in(u) for u in WRONG_AGENCY}
    walked = 0
    for method, path, op in _operations(spec):
        if op.get(MARK):
            continue
        walked += 1
        r = _call(anonymous, spec, method, path, op, targets)
        assert r.status_code in (401, 403), (method, path, "anonymous", r.status_code, r.text)
        assert r.json()["ok"] is False
        if _streams(op):
            # A signed-in caller's event stream never ends: what flows to another agency
            # is tested in tests/test_live_stream.py.
            continue
        for username, (client, csrf) in signed.items():
            r = _call(client, spec, method, path, op, targets, headers=csrf)
            where = (method, path, username, r.status_code, r.text)
            if op.get(FILTERED_MARK):  # the caller's own policy-filtered view
                assert r.status_code < 500, where
            elif _aimed(path, op):
                assert r.status_code in (403, 404), where
            else:  # about the caller itself (who am I, sign out): nothing of citya's
                assert r.status_code < 500 and "citya" not in r.text, where
    assert walked >= 8


def test_public_operations_never_give_own_only_data_to_another_agency(world: World) -> None:
    anonymous = world.client()
    spec = anonymous.get("/openapi.json").json()
    targets = _targets(world)
    with_ids = [(m, p, op) for m, p, op in _operations(spec) if op.get(MARK) and "{" in p]
    assert with_ids
    for username in ("b.analyst", "b.officer"):
        client, csrf = world.signed_in(username)
        for method, path, op in with_ids:
            if not re.search(r"\{(incident_id|feature_id)\}", path):
                continue
            for caller, headers in ((client, csrf), (anonymous, None)):
                r = _call(caller, spec, method, path, op, targets, headers=headers)
                assert r.status_code == 404, (method, path, username, r.status_code, r.text)
