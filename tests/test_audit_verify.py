"""Checkpoints, signed tree heads, proofs and full verification of the audit log."""

from __future__ import annotations

import os
import stat
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, insert, select, text, update

from crossbeat.audit import (
    AuditEvent,
    AuditIntegrityError,
    AuditKeyError,
    append,
    append_many,
    checkpoint,
    checkpoint_if_due,
    generate_signing_key,
    latest_head,
    list_heads,
    load_signing_key,
    load_verify_key,
    prove_consistency,
    prove_inclusion,
    read_head,
    verify,
    write_head,
    write_signing_key,
)
from crossbeat.audit.keys import key_id
from crossbeat.audit.merkle import root, verify_consistency, verify_inclusion
from crossbeat.audit.tables import audit_events, audit_head, audit_tree_heads
from crossbeat.clock import FrozenClock
from crossbeat.store import open_store

T0 = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)


def _event(i: int) -> AuditEvent:
    return AuditEvent(
        action=("read", "export", "detail_view", "login")[i % 4],
        actor=f"user-{i % 7}",
        actor_agency=("north", "south")[i % 2],
        owner_agencies=(("north",), ("south", "north"), ())[i % 3],
        record_ids=tuple(f"r{j}" for j in range(i % 5)),
        details={"i": i},
    )


def _fill(store, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        store.clock.advance(seconds=1)
        append(store, _event(i))


def _unguard(conn) -> None:
    """Drop the append-only triggers, as an attacker with database rights can."""
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            text(
                "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c "
                "ON c.oid = t.tgrelid WHERE NOT t.tgisinternal AND c.relname LIKE 'audit%'"
            )
        ).all()
        for name, table in rows:
            conn.execute(text(f'DROP TRIGGER "{name}" ON "{table}"'))
    else:
        names = conn.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'audit%'")
        ).scalars()
        for name in list(names):
            conn.execute(text(f'DROP TRIGGER "{name}"'))


@pytest.fixture
def clocked(store):
    store.clock = FrozenClock(T0)
    return store


@pytest.fixture(scope="module")
def key():
    return generate_signing_key()


def test_empty_log_verifies(clocked):
    report = verify(clocked)
    assert report.ok and report.tree_size == 0 and report.events == 0
    assert report.root_hash == root([]).hex()
    assert "not checked" in report.warnings[0]


def test_checkpoint_signs_the_merkle_root(clocked, key):
    _fill(clocked, 13)
    head = checkpoint(clocked, key)
    with clocked.connect() as conn:
        hashes = conn.execute(select(audit_events.c.entry_hash).order_by("seq")).scalars()
        leaves = [bytes.fromhex(h) for h in hashes]
    assert (head.id, head.tree_size) == (1, 13)
    assert head.root_hash == root(leaves).hex()
    assert head.signed_at == T0 + timedelta(seconds=13)
    assert head.key_id == key_id(key)
    assert head.signature_problem({head.key_id: key.public_key()}) is None
    assert latest_head(clocked) == head == list_heads(clocked)[0]

    _fill(clocked, 7, start=13)
    second = checkpoint(clocked, key)  # resumes from head 1's frontier
    assert (second.id, second.tree_size) == (2, 20)
    report = verify(clocked, key=key.public_key())
    assert report.ok, report.problems
    assert (report.heads_checked, report.unsigned_events, report.warnings) == (2, 0, [])
    _fill(clocked, 3, start=20)
    assert verify(clocked, key=key).unsigned_events == 3


def test_checkpoint_when_due(clocked, key):
    assert checkpoint_if_due(clocked, key, max_events=5) is None  # empty log
    _fill(clocked, 4)
    first = checkpoint_if_due(clocked, key, max_events=5)  # no head yet: due
    assert first is not None and first.tree_size == 4
    _fill(clocked, 4, start=4)
    assert checkpoint_if_due(clocked, key, max_events=5, max_age=timedelta(hours=1)) is None
    _fill(clocked, 1, start=8)
    assert checkpoint_if_due(clocked, key, max_events=5).tree_size == 9
    _fill(clocked, 1, start=9)
    assert checkpoint_if_due(clocked, key, max_events=5) is None
    clocked.clock.advance(hours=2)
    assert checkpoint_if_due(clocked, key, max_events=5).tree_size == 10
    clocked.clock.advance(hours=2)
    assert checkpoint_if_due(clocked, key, max_events=5) is None  # nothing new to sign


def test_heads_signed_by_another_key_are_reported(clocked, key):
    _fill(clocked, 3)
    checkpoint(clocked, generate_signing_key())
    report = verify(clocked, key=key)
    assert [p.kind for p in report.problems] == ["head_signature"]
    assert verify(clocked).ok  # without a key only the roots are checked


def test_rotated_keys_verify_together(clocked, key):
    other = generate_signing_key()
    _fill(clocked, 2)
    checkpoint(clocked, key)
    _fill(clocked, 2, start=2)
    checkpoint(clocked, other)
    assert verify(clocked, key=[key.public_key(), other.public_key()]).ok


def test_checkpoint_refuses_to_sign_a_tampered_tail(clocked, key):
    _fill(clocked, 5)
    checkpoint(clocked, key)
    _fill(clocked, 5, start=5)
    with clocked.begin() as conn:
        _unguard(conn)
        conn.execute(update(audit_events).where(audit_events.c.seq == 8).values(actor="nobody"))
    with pytest.raises(AuditIntegrityError, match="event 8") as caught:
        checkpoint(clocked, key)
    assert ("hash_mismatch", 8) in {(p.kind, p.seq) for p in caught.value.problems}
    assert len(list_heads(clocked)) == 1


def test_checkpoint_refuses_when_its_starting_head_was_altered(clocked, key):
    _fill(clocked, 5)
    checkpoint(clocked, key)
    with clocked.begin() as conn:
        _unguard(conn)
        conn.execute(update(audit_tree_heads).values(root_hash="0" * 64))
    with pytest.raises(AuditIntegrityError, match="frontier does not give its root"):
        checkpoint(clocked, key)


def test_truncating_the_tail_shows_against_stored_and_trusted_heads(clocked, key, tmp_path):
    _fill(clocked, 10)
    head = checkpoint(clocked, key)
    write_head(head, tmp_path / "head.json")
    trusted = read_head(tmp_path / "head.json")
    assert trusted == head
    with clocked.begin() as conn:
        _unguard(conn)
        tip = conn.execute(select(audit_head)).one()
        conn.execute(delete(audit_events).where(audit_events.c.seq > 8))
        conn.execute(delete(audit_tree_heads))
        last = conn.execute(select(audit_events.c.entry_hash).where(audit_events.c.seq == 8))
        conn.execute(update(audit_head).values(size=8, last_hash=last.scalar_one()))
    assert tip.size == 10
    kinds = {p.kind for p in verify(clocked, key=key, trusted_heads=[trusted]).problems}
    assert {"trusted_head_beyond_log", "trusted_head_missing"} <= kinds


def test_time_running_backwards_beyond_the_tolerance_is_reported(clocked):
    _fill(clocked, 2)
    clocked.clock.advance(seconds=-30)
    append(clocked, _event(2))  # within the default tolerance of 60 s: clock skew
    assert verify(clocked).ok
    clocked.clock.advance(minutes=-5)
    append(clocked, _event(3))
    report = verify(clocked)
    assert [(p.kind, p.seq) for p in report.problems] == [("time_reversal", 4)]
    assert verify(clocked, tolerance=timedelta(hours=1)).ok


def test_proofs_verify_against_signed_heads(clocked, key):
    _fill(clocked, 11)
    old = checkpoint(clocked, key)
    _fill(clocked, 6, start=11)
    new = checkpoint(clocked, key)
    with clocked.connect() as conn:
        stored = conn.execute(select(audit_events.c.entry_hash).where(audit_events.c.seq == 5))
        leaf = bytes.fromhex(stored.scalar_one())
    path = [bytes.fromhex(h) for h in prove_inclusion(clocked, 5, new.tree_size)]
    assert verify_inclusion(leaf, 4, new.tree_size, path, bytes.fromhex(new.root_hash))
    assert not verify_inclusion(leaf, 5, new.tree_size, path, bytes.fromhex(new.root_hash))
    proof = [bytes.fromhex(h) for h in prove_consistency(clocked, old.tree_size, new.tree_size)]
    assert verify_consistency(
        old.tree_size,
        new.tree_size,
        bytes.fromhex(old.root_hash),
        bytes.fromhex(new.root_hash),
        proof,
    )
    with pytest.raises(Exception, match="not in a tree"):
        prove_inclusion(clocked, 18, 17)


def test_malformed_stored_values_are_reported_not_fatal(sqlite_url, key):
    store = open_store(sqlite_url)
    store.clock = FrozenClock(T0)
    _fill(store, 8)
    checkpoint(store, key)
    with store.begin() as conn:
        _unguard(conn)
        conn.execute(text("UPDATE audit_events SET occurred_at = 'yesterday' WHERE seq = 2"))
        conn.execute(text("UPDATE audit_events SET details = '{oops' WHERE seq = 3"))
        conn.execute(text("UPDATE audit_events SET record_count = 'many' WHERE seq = 4"))
        conn.execute(text("UPDATE audit_event_owners SET seq = 'x' WHERE seq = 5"))
        conn.execute(text("INSERT INTO audit_event_owners (agency_id, seq) VALUES (7, 8)"))
        conn.execute(text("UPDATE audit_tree_heads SET signed_at = 'soon'"))
        conn.execute(text("UPDATE audit_head SET size = 'big'"))
    report = verify(store, key=key)
    found = {(p.kind, p.seq) for p in report.problems}
    assert {("malformed", 2), ("malformed", 3), ("malformed", 4)} <= found
    assert {("owner_index", 5), ("owner_index", "x"), ("owner_index", 8)} <= found
    assert {"head_malformed", "tip_mismatch"} <= {p.kind for p in report.problems}


def test_problem_list_is_capped_but_counted(clocked):
    _fill(clocked, 30)
    with clocked.begin() as conn:
        _unguard(conn)
        conn.execute(update(audit_events).values(purpose="rewritten"))
    report = verify(clocked, max_problems=10)
    assert len(report.problems) == 10 and report.problems_omitted > 20
    assert not report.ok
    assert report.to_dict()["ok"] is False


def test_key_files(tmp_path):
    key = generate_signing_key()
    public_path = write_signing_key(key, tmp_path / "audit.pem")
    assert stat.S_IMODE(os.stat(tmp_path / "audit.pem").st_mode) == 0o600
    assert key_id(load_signing_key(tmp_path / "audit.pem")) == key_id(key)
    assert key_id(load_verify_key(public_path)) == key_id(key)
    assert key_id(load_verify_key(tmp_path / "audit.pem")) == key_id(key)
    with pytest.raises(AuditKeyError, match="already exists"):
        write_signing_key(key, tmp_path / "audit.pem")
    with pytest.raises(AuditKeyError, match="holds a public key"):
        load_signing_key(public_path)
    with pytest.raises(AuditKeyError, match="cannot read key file"):
        load_verify_key(tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(AuditKeyError, match="not an unencrypted PEM Ed25519 key"):
        load_verify_key(tmp_path / "junk.pem")


def test_bad_head_files_are_refused(tmp_path):
    (tmp_path / "a.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        read_head(tmp_path / "a.json")
    (tmp_path / "b.json").write_text('{"log": "crossbeat-audit", "id": 1}')
    with pytest.raises(ValueError, match="malformed tree head"):
        read_head(tmp_path / "b.json")
    with pytest.raises(ValueError, match="cannot read"):
        read_head(tmp_path / "none.json")


@pytest.mark.slow
def test_verify_streams_100k_events_in_bounded_memory(sqlite_url, key):
    store = open_store(sqlite_url)
    store.clock = FrozenClock(T0)
    for batch in range(20):
        append_many(store, [_event(batch * 5000 + i) for i in range(5000)])
        if batch == 9:
            checkpoint(store, key)
    checkpoint(store, key)
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_events)).scalar() == 100_000
    tracemalloc.start()
    try:
        report = verify(store, key=key, page_size=500)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.ok and report.tree_size == 100_000 and report.heads_checked == 2
    assert peak < 16 * 2**20, f"verify peaked at {peak / 2**20:.1f} MiB"


def test_head_rows_cannot_be_added_without_a_valid_signature(clocked, key):
    _fill(clocked, 4)
    head = checkpoint(clocked, key)
    with clocked.begin() as conn:
        conn.execute(
            insert(audit_tree_heads).values(
                id=2,
                tree_size=4,
                root_hash=head.root_hash,
                signed_at=head.signed_at,
                algorithm="ed25519",
                key_id=head.key_id,
                signature=head.signature,
                frontier=[],
            )
        )
    kinds = {p.kind for p in verify(clocked, key=key).problems}
    assert kinds == {"head_signature", "head_frontier"}
