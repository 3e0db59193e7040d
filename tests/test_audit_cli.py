"""The ``crossbeat audit`` commands: verify, log, checkpoint, keygen."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from crossbeat.audit import AuditEvent, append, read_head
from crossbeat.cli import cli
from crossbeat.clock import FrozenClock
from crossbeat.store import open_store

T0 = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def logged(db_url):
    store = open_store(db_url)
    store.clock = FrozenClock(T0)
    for i, (actor, agency, owners, action) in enumerate(
        [
            ("ann", "north", ("north",), "read"),
            ("sam", "south", ("north", "south"), "export"),
            ("sam", "south", ("south",), "detail_view"),
            ("public", None, ("north",), "read"),
        ]
    ):
        store.clock.advance(hours=1)
        append(
            store,
            AuditEvent(
                action=action,
                actor=actor,
                actor_agency=agency,
                owner_agencies=owners,
                record_ids=(f"rec-{i}",),
                source_ip="192.0.2.1",
                purpose="case 9" if actor == "sam" else None,
            ),
        )
    return db_url


@pytest.fixture
def keys(tmp_path):
    result = run("audit", "keygen", "--out", str(tmp_path / "audit.pem"))
    assert result.exit_code == 0, result.output
    assert "key id" in result.output
    return tmp_path / "audit.pem", tmp_path / "audit.pem.pub"


def test_checkpoint_then_verify_with_the_exported_head(logged, keys, tmp_path):
    private, public = keys
    head_file = tmp_path / "head.json"
    result = run("audit", "checkpoint", "--db", logged, "--key-file", str(private),
                 "--out", str(head_file))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "tree head #1: 4 events" in result.output
    assert read_head(head_file).tree_size == 4

    result = run("audit", "verify", "--db", logged, "--key-file", str(public),
                 "--trusted-head", str(head_file))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "audit log intact: 4 events" in result.output

    result = run("audit", "verify", "--db", logged, "--key-file", str(public), "--json")
    report = json.loads(result.output)
    assert result.exit_code == 0 and report["ok"] is True and report["heads_checked"] == 1


def test_verify_lists_every_problem_and_exits_1(logged, keys, tmp_path):
    private, public = keys
    assert run("audit", "checkpoint", "--db", logged, "--key-file", str(private)).exit_code == 0
    store = open_store(logged)
    with store.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(text("DROP TRIGGER audit_events_append_only ON audit_events"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
        conn.execute(text("UPDATE audit_events SET actor = 'nobody' WHERE seq IN (2, 3)"))
    result = run("audit", "verify", "--db", logged, "--key-file", str(public))
    assert result.exit_code == 1
    assert "PROBLEM event 2: entry hash recomputed" in result.output
    assert "PROBLEM event 3: entry hash recomputed" in result.output
    assert "PROBLEM tree head #1: root of the first 4 events" in result.output
    assert "TAMPERED" in result.output

    result = run("audit", "verify", "--db", logged, "--json")
    report = json.loads(result.output)
    assert result.exit_code == 1 and report["ok"] is False
    assert {(p["kind"], p["seq"]) for p in report["problems"]} >= {
        ("hash_mismatch", 2),
        ("hash_mismatch", 3),
    }


def test_checkpoint_refuses_a_tampered_log(logged, keys):
    private, _ = keys
    store = open_store(logged)
    with store.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(text("DROP TRIGGER audit_events_append_only ON audit_events"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_delete"))
        conn.execute(text("DELETE FROM audit_events WHERE seq = 2"))
    result = run("audit", "checkpoint", "--db", logged, "--key-file", str(private))
    assert result.exit_code == 1
    assert "does not verify, so it was not signed" in result.output
    assert "event 3: sequence number 3 where 2 was expected" in result.output


def test_verify_without_a_key_warns(logged):
    result = CliRunner().invoke(cli, ["audit", "verify", "--db", logged])
    assert result.exit_code == 0
    assert "signatures were not checked" in result.output


def test_log_by_owner_and_by_actor(logged):
    result = run("audit", "log", "--db", logged, "--agency", "north")
    lines = result.output.strip().splitlines()
    assert result.exit_code == 0 and [line.split("\t")[0] for line in lines] == ["4", "2", "1"]
    assert "sam@south from 192.0.2.1\texport\tallowed\towners=north,south" in lines[1]
    assert "purpose='case 9'" in lines[1]

    result = run("audit", "log", "--db", logged, "--agency", "north", "--actor", "sam", "--json")
    events = json.loads(result.output)
    assert [e["seq"] for e in events] == [2] and events[0]["record_ids"] == ["rec-1"]

    result = run("audit", "log", "--db", logged, "--actor", "sam", "--since", "2026-04-01T14:30")
    assert [line.split("\t")[0] for line in result.output.strip().splitlines()] == ["3"]

    result = run("audit", "log", "--db", logged, "--agency", "north", "--record", "rec-3")
    assert [line.split("\t")[0] for line in result.output.strip().splitlines()] == ["4"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["audit", "log"], "give --agency"),
        (["audit", "log", "--agency", "x", "--since", "last week"], "not an ISO 8601"),
        (["audit", "log", "--agency", "x", "--action", "peek"], "unknown audit action"),
        (["audit", "verify", "--key-file", "missing.pem"], "audit keygen"),
        (["audit", "verify", "--trusted-head", "missing.json"], "cannot read tree head"),
        (["audit", "checkpoint", "--key-file", "missing.pem"], "cannot read key file"),
    ],
)
def test_bad_input_names_the_next_step(logged, args, message):
    result = run(*args, "--db", logged)
    assert result.exit_code != 0
    assert message in result.output


def test_checkpoint_needs_the_private_key(logged, keys):
    _, public = keys
    result = run("audit", "checkpoint", "--db", logged, "--key-file", str(public))
    assert result.exit_code == 1 and "need the private (signing) key" in result.output


def test_keygen_refuses_to_overwrite(keys):
    private, _ = keys
    result = run("audit", "keygen", "--out", str(private))
    assert result.exit_code == 1 and "already exists" in result.output


def test_verify_does_not_migrate_an_old_database(tmp_path):
    result = run("audit", "verify", "--db", f"sqlite:///{tmp_path / 'new.db'}")
    assert result.exit_code == 1 and "crossbeat db upgrade" in result.output
