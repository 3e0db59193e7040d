"""Appending to and querying the audit log, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError

from crossbeat.audit import (
    AuditEvent,
    append,
    append_many,
    events_by_actor,
    events_for_owner,
    get_event,
    iter_events,
    log_size,
    verify,
)
from crossbeat.audit.events import GENESIS_HASH
from crossbeat.audit.tables import audit_event_owners, audit_events, audit_head
from crossbeat.clock import FrozenClock
from crossbeat.store import open_store, schema

T0 = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)


def _read(actor="u1", agency="north", owners=("north",), ids=("r1",), **kw) -> AuditEvent:
    return AuditEvent(
        action=kw.pop("action", "read"),
        actor=actor,
        actor_agency=agency,
        owner_agencies=owners,
        record_ids=ids,
        **kw,
    )


@pytest.fixture
def clocked(store):
    store.clock = FrozenClock(T0)
    return store


def test_append_assigns_gapless_seq_time_and_chain(clocked):
    stored = []
    for i in range(5):
        clocked.clock.advance(minutes=1)
        stored.append(append(clocked, _read(ids=(f"r{i}",), source_ip="192.0.2.4")))
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5]
    assert [e.occurred_at for e in stored] == [T0 + timedelta(minutes=i) for i in range(1, 6)]
    assert stored[0].prev_hash == GENESIS_HASH
    for before, after in zip(stored, stored[1:], strict=False):
        assert after.prev_hash == before.entry_hash
    for event in stored:
        assert event.entry_hash == event.compute_hash()
        assert get_event(clocked, event.seq) == event
    assert list(iter_events(clocked, page=2)) == stored
    assert log_size(clocked) == 5
    report = verify(clocked)
    assert report.ok, report.problems
    assert report.tree_size == 5


def test_append_refuses_an_already_appended_event(clocked):
    event = append(clocked, _read())
    with pytest.raises(ValueError, match="already appended"):
        append(clocked, event)


def test_event_commits_and_rolls_back_with_the_audited_action(clocked):
    agency = {"id": "north", "name": "North", "created_at": T0}
    with pytest.raises(RuntimeError), clocked.begin() as conn:
        conn.execute(insert(schema.agencies).values(**agency))
        append(clocked, _read(action="change"), conn=conn)
        raise RuntimeError("the change failed")
    assert log_size(clocked) == 0
    assert not clocked.agency_exists("north")
    with clocked.begin() as conn:
        conn.execute(insert(schema.agencies).values(**agency))
        event = append(clocked, _read(action="change"), conn=conn)
    assert clocked.agency_exists("north") and event.seq == 1
    assert verify(clocked).ok


def test_batch_append_shares_one_time_and_consecutive_numbers(clocked):
    append(clocked, _read())
    batch = append_many(clocked, [_read(actor=f"u{i}") for i in range(3)])
    assert [e.seq for e in batch] == [2, 3, 4]
    assert {e.occurred_at for e in batch} == {T0}
    assert append_many(clocked, []) == []
    assert verify(clocked).ok


def test_json_values_hash_the_same_after_a_round_trip(clocked):
    details = {
        "big": 2**62,
        "neg": -17,
        "empty": "",
        "text": "Ålesund — 東京 ✓",
        "nested": {"b": [True, False, None], "a": {"z": []}},
    }
    event = append(clocked, _read(details=details, purpose="Überprüfung"))
    again = get_event(clocked, event.seq)
    assert again == event and again.compute_hash() == event.entry_hash
    assert verify(clocked).ok


def test_owner_log_shows_every_access_to_its_data_by_anyone(clocked):
    events = [
        _read(actor="n1", agency="north", owners=("north",), ids=("n-1",)),
        _read(actor="s1", agency="south", owners=("north", "south"), ids=("n-2", "s-1")),
        _read(actor="public", agency=None, owners=("south",), ids=(), record_count=40),
        _read(actor="s1", agency="south", owners=("north",), ids=("n-1",), action="export"),
        _read(actor="e1", agency="east", owners=("north",), ids=(), action="sharing_decision"),
        _read(actor="s1", agency="south", owners=(), ids=(), action="login"),
    ]
    for event in events:
        clocked.clock.advance(hours=1)
        append(clocked, event)

    north = events_for_owner(clocked, "north")
    assert [e.seq for e in north] == [5, 4, 2, 1]  # newest first, every actor
    assert [e.seq for e in events_for_owner(clocked, "south")] == [3, 2]
    assert [e.seq for e in events_for_owner(clocked, "north", actor="s1")] == [4, 2]
    assert [e.seq for e in events_for_owner(clocked, "north", action="export")] == [4]
    assert [e.seq for e in events_for_owner(clocked, "north", record_id="n-1")] == [4, 1]
    assert [e.seq for e in events_for_owner(clocked, "north", record_id="s-1")] == [2]
    window = events_for_owner(
        clocked, "north", since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=5)
    )
    assert [e.seq for e in window] == [4, 2]
    assert [e.seq for e in events_for_owner(clocked, "north", limit=2, offset=1)] == [4, 2]
    assert events_for_owner(clocked, "west") == []

    assert [e.seq for e in events_by_actor(clocked, "s1")] == [6, 4, 2]
    assert [e.seq for e in events_by_actor(clocked, actor_agency="south", action="login")] == [6]
    with pytest.raises(ValueError, match="give an actor"):
        events_by_actor(clocked)
    with pytest.raises(ValueError, match="limit"):
        events_for_owner(clocked, "north", limit=0)


def test_long_record_id_lists_are_stored_whole_and_searchable(clocked):
    ids = tuple(f"incident-{i:06d}" for i in range(20_000))
    event = append(clocked, _read(action="export", ids=ids))
    assert get_event(clocked, event.seq).record_ids == ids
    assert [e.seq for e in events_for_owner(clocked, "north", record_id="incident-019999")] == [1]
    assert events_for_owner(clocked, "north", record_id="incident-020000") == []
    assert verify(clocked).ok


def test_the_owner_index_is_written_with_the_event(clocked):
    append(clocked, _read(owners=("south", "north")))
    with clocked.connect() as conn:
        rows = conn.execute(select(audit_event_owners).order_by("agency_id")).all()
    assert [(r.agency_id, r.seq) for r in rows] == [("north", 1), ("south", 1)]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'someone else'",
        "DELETE FROM audit_events WHERE seq = 1",
        "DELETE FROM audit_event_owners",
        "UPDATE audit_event_owners SET agency_id = 'x'",
        "DELETE FROM audit_head",
        "UPDATE audit_head SET size = 0",
    ],
)
def test_database_refuses_to_change_the_log(clocked, statement):
    append(clocked, _read())
    with pytest.raises(DBAPIError, match="append-only|only grows"), clocked.begin() as conn:
        conn.execute(text(statement))
    assert verify(clocked).ok


@pytest.mark.postgres
def test_postgres_refuses_truncate(pg_url):
    store = open_store(pg_url)
    append(store, _read())
    for table in ("audit_events", "audit_event_owners", "audit_tree_heads", "audit_head"):
        with pytest.raises(DBAPIError, match="append-only"), store.begin() as conn:
            conn.execute(text(f"TRUNCATE {table}"))
    assert log_size(store) == 1


def test_concurrent_threads_give_a_gapless_valid_chain(store):
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(40):
                append(store, _read(actor=f"t{n}", ids=(f"r{n}-{i}",)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.connect() as conn:
        seqs = conn.execute(select(audit_events.c.seq).order_by(audit_events.c.seq)).scalars()
        assert list(seqs) == list(range(1, 161))
        assert conn.execute(select(audit_head.c.size)).scalar() == 160
    report = verify(store)
    assert report.ok, report.problems


_WORKER = """
import sys
from crossbeat.audit import AuditEvent, append
from crossbeat.store import open_store

store = open_store(sys.argv[1], upgrade=False)
for i in range(int(sys.argv[2])):
    append(store, AuditEvent(action="read", actor="p" + sys.argv[3], owner_agencies=("north",),
                             record_ids=("r%d" % i,)))
"""


def test_concurrent_processes_give_a_gapless_valid_chain(store, db_url):
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, db_url, "30", str(n)]) for n in range(3)
    ]
    for i in range(30):
        append(store, _read(actor="main", ids=(f"m{i}",)))
    assert [w.wait(timeout=300) for w in workers] == [0, 0, 0]
    report = verify(store)
    assert report.ok, report.problems
    assert report.tree_size == log_size(store) == 120
    by_actor = {a: len(events_by_actor(store, a, limit=1000)) for a in ("main", "p0", "p1", "p2")}
    assert by_actor == {"main": 30, "p0": 30, "p1": 30, "p2": 30}
