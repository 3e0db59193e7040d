"""Issue #7 finding 4: the audit log cannot be erased unseen by a database writer.

Before: ``crossbeat serve`` without an audit key signed nothing, and a writer who
re-hashed the chain could empty or rewrite the log and ``audit verify`` said
"intact: 0 events"; with a key but no exported head, deleting the heads with the events
passed as well. Now the server always signs (a SQLite server creates its key on first
start) and appends every head to a file outside the database, which ``audit verify``
reads by default.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import delete

from crossbeat.api.app import create_app
from crossbeat.audit import Action, AuditEvent, AuditKeyError, append, list_heads, verify
from crossbeat.audit.tables import audit_tree_heads
from crossbeat.audit.witness import default_heads_path, default_key_path, read_heads_file
from crossbeat.cli import cli
from crossbeat.settings import load_settings
from crossbeat.store import open_store
from tests.test_audit_tamper import _rewrite_from, _unguard


def _serve_once(url: str) -> None:
    """Start and stop the server over ``url`` with no audit setting at all."""
    with TestClient(create_app(load_settings({}, database_url=url))) as client:
        assert client.get("/health").status_code == 200


@pytest.fixture
def served(sqlite_url: str) -> str:
    store = open_store(sqlite_url)
    for i in range(12):
        append(store, AuditEvent(action=Action.READ, actor="u-1", owner_agencies=("citya",),
                                 details={"i": i}))  # fmt: skip
    _serve_once(sqlite_url)
    return sqlite_url


def _verify_cli(url: str) -> tuple[int, str]:
    out = CliRunner().invoke(cli, ["audit", "verify", "--db", url])
    return out.exit_code, out.output


def test_a_server_without_audit_settings_creates_its_key_and_signs(served: str) -> None:
    key, heads = default_key_path(served), default_heads_path(served)
    assert key is not None and heads is not None
    assert key.stat().st_mode & 0o777 == 0o600 and heads.stat().st_mode & 0o777 == 0o600
    stored = list_heads(open_store(served))
    assert [h.tree_size for h in stored] == [12]
    assert read_heads_file(heads) == stored
    code, output = _verify_cli(served)
    assert code == 0 and "intact: 12 events" in output and "1 trusted heads" in output


def test_emptying_the_log_with_its_heads_is_detected(served: str) -> None:
    store = open_store(served)
    with store.begin() as conn:  # the attacker: delete everything, re-hash, fix the tip
        _unguard(conn)
        _rewrite_from(conn, 1, lambda events: [], fix_heads=False)
        conn.execute(delete(audit_tree_heads))
    assert verify(store).ok  # what `audit verify` used to see: "intact: 0 events"
    code, output = _verify_cli(served)
    assert code == 1 and "trusted_head_beyond_log" in output and "trusted_head_missing" in output


def test_rewriting_an_event_to_hide_it_from_its_owner_is_detected(served: str) -> None:
    store = open_store(served)

    def hide(events: list[AuditEvent]) -> list[AuditEvent]:
        return [dataclasses.replace(events[0], owner_agencies=()), *events[1:]]

    with store.begin() as conn:
        _unguard(conn)
        _rewrite_from(conn, 5, hide, fix_heads=False)
        conn.execute(delete(audit_tree_heads))
    code, output = _verify_cli(served)
    assert code == 1 and "trusted_head_mismatch" in output


def test_a_later_server_start_does_not_bless_an_erased_log(served: str) -> None:
    store = open_store(served)
    with store.begin() as conn:
        _unguard(conn)
        _rewrite_from(conn, 1, lambda events: [], fix_heads=False)
        conn.execute(delete(audit_tree_heads))
    append(store, AuditEvent(action=Action.READ, actor="u-2", details={"after": True}))
    _serve_once(served)  # signs head #1 of the new, 1-event log
    heads = read_heads_file(default_heads_path(served))
    assert [h.tree_size for h in heads] == [12]  # head #1 of 12 events stays the file's
    code, output = _verify_cli(served)
    assert code == 1 and "trusted head #1 (size 12)" in output


def test_deleting_a_named_heads_file_while_heads_are_stored_is_a_problem(served: str) -> None:
    path = default_heads_path(served)
    os.remove(path)
    code, output = _verify_cli(served)
    assert code == 0 and "no audit heads file" in output  # the default path: a warning
    named = CliRunner().invoke(cli, ["audit", "verify", "--db", served, "--heads-file", str(path)])
    assert named.exit_code == 1 and "heads_file_missing" in named.output


def test_a_server_on_another_database_refuses_to_start_without_key_and_heads_file(
    pg_url: str, tmp_path: Path
) -> None:
    with pytest.raises(AuditKeyError, match="audit_key_file"):
        create_app(load_settings({}, database_url=pg_url))
    key = tmp_path / "audit.pem"
    from crossbeat.audit import generate_signing_key, write_signing_key

    write_signing_key(generate_signing_key(), key)
    with pytest.raises(AuditKeyError, match="audit_heads_file"):
        create_app(load_settings({}, database_url=pg_url, audit_key_file=str(key)))
