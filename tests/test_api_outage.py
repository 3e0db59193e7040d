"""A database outage answers 503 with Retry-After on every route, and the service
recovers by itself within 10 s of the database's return (issue #10).

The database is our own throwaway PostgreSQL cluster (tests/pg_cluster.py), stopped
and started while one application object keeps serving: no restart of the app.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from crossbeat.clock import FrozenClock
from crossbeat.store import open_store
from tests import pg_cluster
from tests.api_support import make_client
from tests.sharing_support import NOW, setup_agencies

pytestmark = pytest.mark.skipif(pg_cluster.available() is not None, reason="no PostgreSQL binaries")


@pytest.fixture(scope="module")
def cluster() -> Iterator[pg_cluster.Cluster]:
    c = pg_cluster.Cluster()
    try:
        c.start()
        yield c
    finally:
        c.remove()


@pytest.fixture(scope="module")
def client(cluster: pg_cluster.Cluster) -> TestClient:
    store = open_store(cluster.url)
    setup_agencies(store)
    return make_client(store, FrozenClock(NOW))


def _operations(client: TestClient) -> list[tuple[str, str]]:
    """Return (method, concrete path) of every operation in the OpenAPI document."""
    spec = client.get("/openapi.json").json()
    out = []
    for path, item in spec["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        out += [(m.upper(), concrete) for m in item if m in ("get", "post", "patch", "delete")]
    return out


def test_outage_answers_503_everywhere_and_recovers(
    cluster: pg_cluster.Cluster, client: TestClient
) -> None:
    assert client.get("/ready").status_code == 200
    assert client.get("/api/v1/incidents").status_code == 200
    operations = _operations(client)  # the document is built before the outage
    cluster.stop()
    try:
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.headers["Retry-After"].isdigit()
        assert ready.json()["ok"] is False
        health = client.get("/health")
        assert health.status_code == 200 and health.json()["ok"] is True  # liveness
        for method, path in [("GET", "/api/v1/incidents"), ("GET", "/api/v1/aggregates")]:
            r = client.request(method, path)
            assert r.status_code == 503, (method, path, r.text)
            assert "Retry-After" in r.headers
            assert r.json()["status"] == 503 and "Traceback" not in r.text
        for method, path in operations:
            r = client.request(method, path, json={} if method != "GET" else None)
            # Never a server error other than 503 (some inputs are refused before the
            # database is needed: 400/401/404/422 do not need it).
            assert r.status_code < 500 or r.status_code == 503, (method, path, r.text)
            if r.status_code == 503:
                assert r.headers.get("Retry-After", "").isdigit(), (method, path)
            assert "Traceback" not in r.text
    finally:
        cluster.start()
    back = time.monotonic()
    while True:
        ready = client.get("/ready")
        incidents = client.get("/api/v1/incidents")
        if ready.status_code == 200 and incidents.status_code == 200:
            break
        assert time.monotonic() - back < 10, (ready.text, incidents.text)
        time.sleep(0.2)
    assert time.monotonic() - back < 10
    assert incidents.json()["records"] == []
