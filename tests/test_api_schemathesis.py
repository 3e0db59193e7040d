"""Schemathesis against the app (issue #10, "Must show"): at least 10 000 generated
requests, no server error, no response that breaks the OpenAPI document.

The requests go through the ASGI transport (no server, no network) to one app on a
SQLite world built once; operations are walked round after round with a new seed until
:data:`REQUESTS` requests were made, half anonymous, half with an API token (so the
authenticated answers are checked too). Every response is checked for: not a server
error (5xx), status code, content type, headers and body conforming to the document.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from crossbeat.auth.tokens import create_token
from tests.api_support import World, build_world, make_client

#: Generated requests the test makes at least (CROSSBEAT_SCHEMATHESIS_REQUESTS overrides).
REQUESTS = int(os.environ.get("CROSSBEAT_SCHEMATHESIS_REQUESTS", "10000"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
#: Examples per operation and round.
PER_ROUND = 60


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, kek_text: str) -> World:
    from crossbeat.store import open_store
    from crossbeat.vault.kek import parse_kek

    folder: Path = tmp_path_factory.mktemp("schemathesis")
    return build_world(open_store(f"sqlite:///{folder / 'w.db'}", kek=parse_kek(kek_text)))


def _run(operation: Any, round_: int, headers: dict[str, str], failures: list[str]) -> int:
    """Send up to PER_ROUND generated requests to one operation; return how many."""
    made = 0

    @seed(round_)
    @settings(
        max_examples=PER_ROUND,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: schemathesis.Case) -> None:
        nonlocal made
        response = case.call(headers=headers)
        made += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except Exception as exc:  # collect every failing operation, then report
            failures.append(f"{case.method} {case.formatted_path}: {exc}"[:3000])

    run()
    return made


def test_schemathesis_finds_no_server_error_and_no_schema_violation(world: World) -> None:
    # No rate limit here: every generated request comes from one address.
    app = make_client(world.store, world.clock, public_rate_limit="1000000/minute").app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    token = create_token(world.store, "countyb", "read", clock=world.clock).secret
    # The live stream (text/event-stream) never ends for a signed-in caller; its grants,
    # resume and refusals are tested in tests/test_live_stream.py and test_api_walk.py.
    operations = [
        op
        for op in (result.ok() for result in schema.get_all_operations())
        if "text/event-stream" not in str(op.definition.raw.get("responses", {}).get("200", {}))
    ]
    assert len(operations) >= 20
    made = 0
    failures: list[str] = []
    rounds = 0
    while made < REQUESTS:
        rounds += 1
        headers = {"Authorization": f"Bearer {token}"} if rounds % 2 == 0 else {}
        for operation in operations:
            made += _run(operation, rounds, headers, failures)
        assert rounds < 50, f"only {made} requests after 50 rounds"
    assert not failures, f"{len(failures)} failures in {made} requests:\n" + "\n".join(
        failures[:20]
    )
    assert made >= REQUESTS
    print(f"schemathesis: {made} requests in {rounds} rounds")  # noqa: T201
