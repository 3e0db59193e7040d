"""The web server signs audit checkpoints at startup and periodically (issue #3).

These run the real application's lifespan (``with TestClient(app)``) on the real store.
"""

from __future__ import annotations

import gc
import logging
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from crossbeat.api.app import create_app
from crossbeat.audit import (
    Action,
    AuditEvent,
    append,
    checkpoint,
    generate_signing_key,
    list_heads,
    load_signing_key,
    load_verify_key,
    verify,
    write_signing_key,
)
from crossbeat.cli import cli
from crossbeat.clock import FrozenClock
from crossbeat.settings import SettingsError, load_settings
from crossbeat.store import Store

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "audit.pem"
    write_signing_key(generate_signing_key(), path)
    return path


def _events(store: Store, n: int) -> None:
    for i in range(n):
        append(store, AuditEvent(action=Action.READ, actor="system", details={"i": i}))


def _app(
    store: Store, key_file: Path, *, clock: FrozenClock | None = None, interval: int = 3600
) -> FastAPI:
    settings = load_settings(
        {},
        database_url=store.url,
        audit_key_file=str(key_file),
        audit_heads_file=str(key_file.with_name("heads.jsonl")),
        audit_checkpoint_interval=interval,
    )
    return create_app(settings, store=store, clock=clock)


def test_startup_signs_a_due_checkpoint(store: Store, key_file: Path) -> None:
    _events(store, 3)
    assert list_heads(store) == []
    with TestClient(_app(store, key_file)) as client:
        assert [h.tree_size for h in list_heads(store)] == [3]
        assert client.get("/health").status_code == 200
    assert verify(store, key=load_verify_key(key_file)).ok


def test_startup_signs_only_when_due(store: Store, key_file: Path) -> None:
    clock = FrozenClock(START)
    store.clock = clock
    with TestClient(_app(store, key_file, clock=clock)):
        pass
    assert list_heads(store) == []  # an empty log needs no head
    _events(store, 2)
    checkpoint(store, load_signing_key(key_file))
    _events(store, 1)
    with TestClient(_app(store, key_file, clock=clock)):
        pass
    assert [h.tree_size for h in list_heads(store)] == [2]  # the head is younger than 1 h
    clock.advance(hours=1)
    with TestClient(_app(store, key_file, clock=clock)):
        pass
    assert [h.tree_size for h in list_heads(store)] == [2, 3]


def test_checkpoints_every_interval_and_stop_at_shutdown(store: Store, key_file: Path) -> None:
    _events(store, 1)
    app = _app(store, key_file, interval=1)
    with TestClient(app):
        assert [h.tree_size for h in list_heads(store)] == [1]
        _events(store, 2)
        deadline = time.monotonic() + 15
        while len(list_heads(store)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [h.tree_size for h in list_heads(store)] == [1, 3]
        task = app.state.checkpoints
        assert not task.done()
    assert task.cancelled()


def test_a_log_that_does_not_verify_is_not_signed_and_the_server_serves(
    store: Store, key_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _events(store, 1)
    store.clock = FrozenClock(START)  # the next event is dated before the first
    _events(store, 1)
    with caplog.at_level(logging.ERROR, logger="crossbeat.api.lifespan"):
        with TestClient(_app(store, key_file)) as client:
            assert client.get("/health").status_code == 200
    assert list_heads(store) == []
    assert "audit checkpoint refused" in caplog.text and "time_reversal" in caplog.text


def test_without_a_key_a_sqlite_server_creates_one_and_signs(sqlite_url: str) -> None:
    # Issue #7 finding 4: never serve without signing (tests/test_audit_erasure.py).
    store = create_app(load_settings({}, database_url=sqlite_url)).state.store
    _events(store, 2)
    app = create_app(load_settings({}, database_url=sqlite_url))
    with TestClient(app):
        assert app.state.checkpoints is not None
    assert [h.tree_size for h in list_heads(store)] == [2]


def test_serve_refuses_an_unreadable_key_file(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = CliRunner().invoke(
        cli,
        ["serve", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--port", str(port)],
        env={"CROSSBEAT_AUDIT_KEY_FILE": str(tmp_path / "missing.pem")},
    )
    assert result.exit_code == 1
    assert "cannot read key file" in result.output and "audit keygen" in result.output
    assert not (tmp_path / "x.db").exists()


def test_checkpoint_interval_must_be_positive() -> None:
    with pytest.raises(SettingsError, match="audit_checkpoint_interval must be at least 1"):
        load_settings({"CROSSBEAT_AUDIT_CHECKPOINT_INTERVAL": "0"})


def test_a_worker_warms_its_caches_before_it_takes_requests(
    store: Store, key_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue #12: the first view of a fresh server does not wait for the sensitivity
    # rules, the plan inputs or the anchor index (crossbeat.sharing.warm).
    from crossbeat.sharing import plan_inputs, reads

    reads._ANCHORS.clear()
    plan_inputs.forget()
    with caplog.at_level(logging.INFO, logger="crossbeat.api.lifespan"):
        app = _app(store, key_file)
        with TestClient(app) as client:
            assert any(key[0] == store.url for key in reads._ANCHORS)  # before any request
            # The pages' operations (from the OpenAPI document) are built already too.
            assert "GET /api/v1/tiles/incidents/{z}/{x}/{y}.mvt" in app.state.page_operations
            assert client.get("/app").status_code == 200
    assert "caches warmed: sensitivity rules" in caplog.text


def test_a_server_worker_moves_what_it_holds_out_of_the_collectors_way(
    store: Store, key_file: Path
) -> None:
    # Issue #8: a full collection walked every object of the started worker (40-60 ms on
    # the 2-core machine, paid by whichever read was running); `crossbeat serve` builds
    # its application with freeze_gc, and its lifespan freezes them once warm.
    assert gc.get_freeze_count() == 0
    try:
        with TestClient(_app(store, key_file)) as client:  # as tests build it: no freeze
            assert client.get("/health").status_code == 200
            assert gc.get_freeze_count() == 0
        settings = load_settings(
            {},
            database_url=store.url,
            audit_key_file=str(key_file),
            audit_heads_file=str(key_file.with_name("heads.jsonl")),
        )
        app = create_app(settings, store=store, freeze_gc=True)
        with TestClient(app) as client:
            assert gc.get_freeze_count() > 10_000
            # The application and its warmed caches are among them: a full collection,
            # which walks the objects gc.get_objects() lists, no longer walks them.
            walked = {id(o) for o in gc.get_objects()}
            assert id(app.state._state) not in walked
            assert id(app.state.live_broker) not in walked
            assert client.get("/health").status_code == 200
    finally:
        gc.unfreeze()
