"""Uploads: an export posted over the API becomes an ingest job that survives a restart."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from crossbeat.auth.tokens import create_token
from crossbeat.live.jobs import requeue_stale
from crossbeat.live.tables import ingest_jobs
from crossbeat.store import Store
from crossbeat.store.schema import incidents
from tests.api_support import assert_error, build_world
from tests.test_ingest_pipeline import PROFILE, row, write_csv


def _wait(client: TestClient, headers: dict[str, str], job: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state: dict[str, Any] = client.get(f"/api/v1/jobs/{job}", headers=headers).json()
        if state["status"] in ("complete", "failed"):
            return state
        time.sleep(0.2)
    raise AssertionError(f"job {job} did not finish: {state}")


def _count(store: Store) -> int:
    with store.connect() as conn:
        q = select(func.count()).where(incidents.c.source_id.like("R%"))
        return int(conn.execute(q).scalar_one())


def test_upload_becomes_a_job_with_progress_and_summary(store: Store, tmp_path: Path) -> None:
    world = build_world(store)
    token = {"Authorization": f"Bearer {create_token(store, 'citya', 'ingest').secret}"}
    export = write_csv(tmp_path / "export.csv", [row(i) for i in range(30)])
    with TestClient(world.client().app, base_url="https://testserver") as client:
        posted = client.post(
            "/api/v1/uploads",
            files={"file": ("export.csv", export.read_bytes(), "text/csv"),
                   "profile": ("feed.toml", PROFILE.encode(), "application/toml")},
            headers=token,
        )  # fmt: skip
        assert posted.status_code == 202, posted.text
        done = _wait(client, token, posted.json()["id"])
        assert done["status"] == "complete", done
        assert done["rows_done"] == 30 and done["summary"]["new"] == 30
        assert _count(store) == 30
        # The profile is named the next time; a changed file makes updates.
        again = write_csv(tmp_path / "again.csv", [row(i, code="220") for i in range(30)])
        named = client.post(
            "/api/v1/uploads",
            files={"file": ("again.csv", again.read_bytes(), "text/csv")},
            data={"profile": "test-feed"},
            headers=token,
        )
        assert named.status_code == 202, named.text
        assert _wait(client, token, named.json()["id"])["summary"]["rows"] == 30
        listed = client.get("/api/v1/jobs", headers=token).json()["jobs"]
        assert len(listed) == 2
        # Another agency sees none of them; an unknown profile name is refused.
        other = {"Authorization": f"Bearer {create_token(store, 'countyb', 'ingest').secret}"}
        assert client.get("/api/v1/jobs", headers=other).json()["jobs"] == []
        assert_error(client.get(f"/api/v1/jobs/{named.json()['id']}", headers=other), 404)
        unknown = client.post(
            "/api/v1/uploads",
            files={"file": ("x.csv", b"id\n1\n", "text/csv")},
            data={"profile": "nope"},
            headers=other,
        )
        assert_error(unknown, 422)
        assert_error(client.get("/api/v1/jobs"), 401)


def test_a_job_survives_a_server_restart(store: Store, tmp_path: Path) -> None:
    world = build_world(store)
    token = {"Authorization": f"Bearer {create_token(store, 'citya', 'ingest').secret}"}
    export = write_csv(tmp_path / "export.csv", [row(i) for i in range(25)])
    # A server that accepts the upload and stops before running it (no lifespan).
    first = world.client()
    posted = first.post(
        "/api/v1/uploads",
        files={"file": ("export.csv", export.read_bytes(), "text/csv"),
               "profile": ("feed.toml", PROFILE.encode(), "application/toml")},
        headers=token,
    )  # fmt: skip
    job = posted.json()["id"]
    assert first.get(f"/api/v1/jobs/{job}", headers=token).json()["status"] == "queued"
    # It had claimed the job and died: its heartbeat stopped long ago.
    with store.begin() as conn:
        conn.execute(
            update(ingest_jobs)
            .where(ingest_jobs.c.id == job)
            .values(status="running", updated_at=world.clock.now() - timedelta(minutes=5))
        )
    # The next server takes it back and finishes it.
    with TestClient(world.client().app, base_url="https://testserver") as second:
        done = _wait(second, token, job)
    assert done["status"] == "complete" and done["summary"]["new"] == 25
    assert _count(store) == 25
    assert requeue_stale(store) == 0
