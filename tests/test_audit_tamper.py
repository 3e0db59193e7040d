"""Tamper test (issue #3): random mutations of the audit log are all detected.

A log of a few hundred varied events with periodic signed checkpoints is built once;
each mutation is applied with direct SQL to a fresh copy of the database (a file copy
on SQLite, a ``CREATE DATABASE ... TEMPLATE`` clone on PostgreSQL), with the
append-only triggers dropped first, as an attacker with database rights could. The
mutations range from single-field edits to a "clever" attacker who re-hashes the chain,
renumbers events, fixes the chain tip and the owner index, and recomputes the stored
tree heads' roots. Every one must be detected by ``verify`` (given the public key and
the last exported tree head) and by ``crossbeat audit verify``, which must exit 1.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import shutil
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Connection, delete, insert, select, text, update

from crossbeat.audit import (
    Action,
    AuditEvent,
    Outcome,
    append,
    checkpoint,
    generate_signing_key,
    read_head,
    verify,
    write_head,
    write_signing_key,
)
from crossbeat.audit.events import GENESIS_HASH
from crossbeat.audit.heads import sign_head
from crossbeat.audit.log import event_from_row, event_row
from crossbeat.audit.merkle import Frontier
from crossbeat.audit.tables import audit_event_owners, audit_events, audit_head, audit_tree_heads
from crossbeat.cli import cli
from crossbeat.clock import FrozenClock
from crossbeat.store import open_store
from crossbeat.store.base import close_all

AGENCIES = ("north", "south", "east", "west", "harbour")
T0 = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
EVENT_COLUMNS = [c.name for c in audit_events.c]


# -- building the log ---------------------------------------------------------------------
def _random_details(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    details: dict[str, Any] = {}
    for i in range(rng.randint(0, 4)):
        kind = rng.random()
        if kind < 0.3:
            value: Any = rng.randint(-(10**12), 10**12)
        elif kind < 0.55:
            value = rng.choice(["csv", "geojson", "Ålesund", "", "13A", "bbox"])
        elif kind < 0.65:
            value = rng.choice([True, False, None])
        elif kind < 0.8 and depth < 2:
            value = _random_details(rng, depth + 1)
        else:
            value = [rng.randint(0, 9) for _ in range(rng.randint(0, 3))]
        details[f"k{i}"] = value
    return details


def _random_event(rng: random.Random) -> AuditEvent:
    ids: tuple[str, ...] = ()
    count = None
    shape = rng.random()
    if shape < 0.6:
        ids = tuple(f"inc-{rng.randrange(10**6):06d}" for _ in range(rng.randint(0, 5)))
    elif shape < 0.7:
        ids = tuple(f"inc-{i:06d}" for i in range(rng.randint(50, 200)))
    else:
        count = rng.randint(0, 5000)
    return AuditEvent(
        action=rng.choice(list(Action)),
        actor=rng.choice(["u-1", "u-2", "u-17", "public", "system", "token:7f3a"]),
        actor_agency=rng.choice([*AGENCIES, None]),
        source_ip=rng.choice(["192.0.2.10", "198.51.100.7", "2001:db8::5", None]),
        outcome=rng.choice(list(Outcome)),
        purpose=rng.choice([None, "case 2026/0113", "patrol planning", "FOI request"]),
        resource_type=rng.choice([None, "incident", "personal_data", "agreement"]),
        owner_agencies=tuple(rng.sample(AGENCIES, rng.randint(0, 3))),
        record_ids=ids,
        record_count=count,
        details=_random_details(rng),
    )


@dataclasses.dataclass
class Template:
    """A built log plus what the verifier trusts: the public key and the last head."""

    key_file: Path
    head_file: Path
    size: int
    attacker: Any

    def verify_args(self) -> dict[str, Any]:
        from crossbeat.audit import load_verify_key

        return {
            "key": load_verify_key(self.key_file),
            "trusted_heads": [read_head(self.head_file)],
        }


def _build(store, folder: Path, *, events: int, every: int, seed: int) -> Template:
    rng = random.Random(seed)
    key = generate_signing_key()
    public = write_signing_key(key, folder / "audit.pem")
    store.clock = FrozenClock(T0)
    head = None
    for i in range(1, events + 1):
        store.clock.advance(seconds=rng.randint(0, 90), microseconds=rng.randint(0, 10**6 - 1))
        append(store, _random_event(rng))
        if i % every == 0 or i == events:
            head = checkpoint(store, key)
    assert head is not None and head.tree_size == events
    write_head(head, folder / "head.json")
    return Template(public, folder / "head.json", events, generate_signing_key())


# -- the attacker's tools -----------------------------------------------------------------
def _unguard(conn: Connection) -> None:
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


def _fingerprint(conn: Connection) -> str:
    """Hash the raw content of the audit tables (to prove a mutation changed something)."""
    digest = hashlib.sha256()
    for table in ("audit_events", "audit_event_owners", "audit_head", "audit_tree_heads"):
        for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2")):
            digest.update(repr(tuple(row)).encode())
        digest.update(b"|")
    return digest.hexdigest()


def _events(conn: Connection, start: int = 1) -> list[AuditEvent]:
    rows = conn.execute(select(audit_events).where(audit_events.c.seq >= start).order_by("seq"))
    return [event_from_row(r) for r in rows]


def _new_text(rng: random.Random) -> str:
    return f"x{rng.randrange(16**6):06x}"


def _changed_event(event: AuditEvent, rng: random.Random) -> AuditEvent:
    """Return the event with one meaningful field changed (a valid, re-hashable event)."""
    field = rng.choice(
        ["actor", "actor_agency", "source_ip", "action", "outcome", "purpose", "owners",
         "ids", "details", "time"]
    )  # fmt: skip
    if field == "time":
        return dataclasses.replace(
            event, occurred_at=event.occurred_at + timedelta(seconds=rng.choice([-1, 1]))
        )
    if field == "action":
        return dataclasses.replace(
            event, action=rng.choice([a for a in Action if a != event.action])
        )
    if field == "outcome":
        return dataclasses.replace(
            event, outcome=rng.choice([o for o in Outcome if o != event.outcome])
        )
    if field == "owners":  # hide the access from an owner, or blame another one
        owners = set(event.owner_agencies) ^ {rng.choice(AGENCIES)}
        return dataclasses.replace(event, owner_agencies=tuple(owners))
    if field == "ids":
        ids = (*event.record_ids, "inc-forged")
        return dataclasses.replace(event, record_ids=ids, record_count=len(ids))
    if field == "details":
        return dataclasses.replace(event, details={**event.details, "note": _new_text(rng)})
    if field == "source_ip":
        return dataclasses.replace(event, source_ip=f"203.0.113.{rng.randint(1, 254)}")
    return dataclasses.replace(event, **{field: _new_text(rng)})


def _rewrite_from(
    conn: Connection,
    start: int,
    transform: Callable[[list[AuditEvent]], list[AuditEvent]],
    *,
    fix_heads: bool,
) -> None:
    """Rewrite events from ``start`` as a clever attacker: renumber, re-hash, fix the tip
    and owner index, and (``fix_heads``) recompute the stored heads' roots and frontiers
    (their signatures cannot be redone without the key)."""
    tail = transform(_events(conn, start))
    prev = GENESIS_HASH
    if start > 1:
        prev = conn.execute(
            select(audit_events.c.entry_hash).where(audit_events.c.seq == start - 1)
        ).scalar_one()
    conn.execute(delete(audit_event_owners).where(audit_event_owners.c.seq >= start))
    conn.execute(delete(audit_events).where(audit_events.c.seq >= start))
    for offset, event in enumerate(tail):
        placed = dataclasses.replace(event, seq=start + offset, prev_hash=prev, entry_hash=None)
        prev = placed.compute_hash()
        placed = dataclasses.replace(placed, entry_hash=prev)
        conn.execute(insert(audit_events).values(**event_row(placed)))
        for agency in placed.owner_agencies:
            conn.execute(insert(audit_event_owners).values(agency_id=agency, seq=placed.seq))
    hashes = conn.execute(select(audit_events.c.entry_hash).order_by("seq")).scalars().all()
    frontiers = {}
    frontier = Frontier()
    heads = conn.execute(select(audit_tree_heads.c.id, audit_tree_heads.c.tree_size)).all()
    sizes = {size for _, size in heads}
    for h in hashes:
        frontier.append(bytes.fromhex(h))
        if frontier.size in sizes:
            frontiers[frontier.size] = frontier.copy()
    conn.execute(
        update(audit_head).values(
            size=len(hashes), last_hash=hashes[-1] if hashes else GENESIS_HASH,
            frontier=frontier.to_hex(),
        )
    )  # fmt: skip
    if fix_heads:
        for head_id, size in heads:
            if size >= start and size in frontiers:
                conn.execute(
                    update(audit_tree_heads)
                    .where(audit_tree_heads.c.id == head_id)
                    .values(
                        root_hash=frontiers[size].root().hex(),
                        frontier=frontiers[size].to_hex(),
                    )
                )


# -- the mutations ------------------------------------------------------------------------
Mutation = Callable[[Connection, random.Random, Template], str]


def _field_mutation(column: str) -> Mutation:
    def mutate(conn: Connection, rng: random.Random, t: Template) -> str:
        seq = rng.randint(1, t.size)
        row = conn.execute(select(audit_events).where(audit_events.c.seq == seq)).one()
        old = getattr(row, column)
        new = _different(column, old, rng, t.size)
        conn.execute(update(audit_events).where(audit_events.c.seq == seq).values({column: new}))
        return f"event {seq}: {column} {old!r:.40} -> {new!r:.40}"

    return mutate


def _different(column: str, old: Any, rng: random.Random, size: int) -> Any:
    if column == "seq":
        return rng.choice([0, -3, size + 1 + rng.randint(0, 5), 10**6])
    if column == "occurred_at":
        delta = rng.choice([timedelta(microseconds=1), timedelta(seconds=1), timedelta(days=3)])
        return old + rng.choice([-1, 1]) * delta
    if column in ("prev_hash", "entry_hash"):
        choice = rng.random()
        if choice < 0.4:
            i = rng.randrange(64)
            return old[:i] + format((int(old[i], 16) + 1) % 16, "x") + old[i + 1 :]
        if choice < 0.6 and any(c in "abcdef" for c in old):
            return old.upper()
        return f"{rng.getrandbits(256):064x}"
    if column == "source_ip":
        variants = [None, "203.0.113.9", "2001:db8::99"]
        if old == "2001:db8::5":
            variants.append("2001:DB8:0:0:0:0:0:5")  # same address, not the stored form
        return rng.choice([v for v in variants if v != old])
    if column == "action":
        return rng.choice([a.value for a in Action if a.value != old] + ["peek"])
    if column == "outcome":
        return rng.choice([o.value for o in Outcome if o.value != old])
    if column == "record_count":
        return old + rng.choice([-1, 1, 7]) if old > 1 else old + 1
    if column == "owner_agencies":
        if len(old) > 1 and rng.random() < 0.3:
            return list(reversed(old))  # not the stored (sorted) form
        return sorted(set(old) ^ {rng.choice(AGENCIES)})
    if column == "record_ids":
        if len(old) > 1 and rng.random() < 0.5:
            changed = list(old)
            i, j = rng.sample(range(len(old)), 2)
            changed[i], changed[j] = changed[j], changed[i]
            if changed != old:
                return changed
        if old and rng.random() < 0.5:
            return old[:-1]
        return [*old, "inc-999999"]
    if column == "details":
        changed = dict(old)
        ints = [k for k, v in old.items() if isinstance(v, int) and not isinstance(v, bool)]
        if ints and rng.random() < 0.5:
            k = rng.choice(ints)
            changed[k] = rng.choice([old[k] + 1, str(old[k])])
        elif old and rng.random() < 0.5:
            changed.pop(rng.choice(list(old)))
        else:
            changed["added"] = _new_text(rng)
        return changed
    # free text columns: actor, actor_agency, purpose, resource_type
    if old is not None and column != "actor" and rng.random() < 0.3:
        return None
    return _new_text(rng)


def _delete_event(where: str) -> Mutation:
    def mutate(conn: Connection, rng: random.Random, t: Template) -> str:
        seq = {"first": 1, "last": t.size, "middle": rng.randint(2, t.size - 1)}[where]
        if rng.random() < 0.5:
            conn.execute(delete(audit_event_owners).where(audit_event_owners.c.seq == seq))
        conn.execute(delete(audit_events).where(audit_events.c.seq == seq))
        return f"deleted event {seq}"

    return mutate


def _insert_forged(conn: Connection, rng: random.Random, t: Template) -> str:
    forged = _random_event(rng)
    if rng.random() < 0.5:  # before the first event, chained from genesis
        first = _events(conn)[0]
        placed = dataclasses.replace(
            forged, seq=0, occurred_at=first.occurred_at, prev_hash=GENESIS_HASH
        )
    else:  # after the last event, correctly chained, chain tip left alone
        last = _events(conn, t.size)[0]
        placed = dataclasses.replace(
            forged, seq=t.size + 1, occurred_at=last.occurred_at, prev_hash=last.entry_hash
        )
    placed = dataclasses.replace(placed, entry_hash=placed.compute_hash())
    conn.execute(insert(audit_events).values(**event_row(placed)))
    for agency in placed.owner_agencies:
        conn.execute(insert(audit_event_owners).values(agency_id=agency, seq=placed.seq))
    return f"forged event inserted at {placed.seq}"


def _swap_seq(conn: Connection, rng: random.Random, t: Template) -> str:
    a, b = sorted(rng.sample(range(1, t.size + 1), 2))
    if rng.random() < 0.5:
        b = a + 1
    seq = audit_events.c.seq
    conn.execute(update(audit_events).where(seq == a).values(seq=-1))
    conn.execute(update(audit_events).where(seq == b).values(seq=a))
    conn.execute(update(audit_events).where(seq == -1).values(seq=b))
    return f"swapped seq {a} and {b}"


def _truncate_naive(conn: Connection, rng: random.Random, t: Template) -> str:
    k = rng.randint(1, 20)
    conn.execute(delete(audit_event_owners).where(audit_event_owners.c.seq > t.size - k))
    conn.execute(delete(audit_events).where(audit_events.c.seq > t.size - k))
    return f"deleted the newest {k} events"


def _tip(conn: Connection, rng: random.Random, t: Template) -> str:
    choice = rng.choice(["size", "last_hash", "frontier", "delete"])
    if choice == "delete":
        conn.execute(delete(audit_head))
    elif choice == "size":
        conn.execute(update(audit_head).values(size=t.size + rng.choice([-2, -1, 1, 5])))
    elif choice == "last_hash":
        conn.execute(update(audit_head).values(last_hash=f"{rng.getrandbits(256):064x}"))
    else:
        frontier = conn.execute(select(audit_head.c.frontier)).scalar_one()
        frontier[rng.randrange(len(frontier))] = f"{rng.getrandbits(256):064x}"
        conn.execute(update(audit_head).values(frontier=frontier))
    return f"chain tip: {choice}"


def _owner_index(conn: Connection, rng: random.Random, t: Template) -> str:
    rows = conn.execute(select(audit_event_owners)).all()
    choice = rng.choice(["drop", "retarget", "add", "orphan"])
    owners = audit_event_owners.c
    if choice in ("drop", "retarget"):
        row = rng.choice(rows)
        match = (owners.seq == row.seq) & (owners.agency_id == row.agency_id)
        if choice == "drop":  # hides the access from the owner's auditors
            conn.execute(delete(audit_event_owners).where(match))
        else:
            taken = {r.agency_id for r in rows if r.seq == row.seq}
            free = [a for a in AGENCIES if a not in taken]
            conn.execute(update(audit_event_owners).where(match).values(agency_id=free[0]))
        return f"owner index {choice} {row.agency_id}@{row.seq}"
    seq = rng.randint(1, t.size) if choice == "add" else t.size + rng.randint(1, 9)
    taken = {r.agency_id for r in rows if r.seq == seq}
    agency = next(a for a in AGENCIES if a not in taken)
    conn.execute(insert(audit_event_owners).values(agency_id=agency, seq=seq))
    return f"owner index {choice} {agency}@{seq}"


def _head(conn: Connection, rng: random.Random, t: Template) -> str:
    heads = conn.execute(select(audit_tree_heads).order_by("id")).all()
    head = rng.choice(heads)
    match = audit_tree_heads.c.id == head.id
    choice = rng.choice(
        ["delete", "delete_last", "tree_size", "root_hash", "signed_at", "key_id", "signature",
         "algorithm", "frontier", "swap_ids", "forge", "resign"]
    )  # fmt: skip
    if choice == "delete":
        conn.execute(delete(audit_tree_heads).where(match))
    elif choice == "delete_last":
        conn.execute(delete(audit_tree_heads).where(audit_tree_heads.c.id == heads[-1].id))
    elif choice == "tree_size":
        conn.execute(update(audit_tree_heads).where(match).values(tree_size=head.tree_size - 1))
    elif choice == "root_hash":
        conn.execute(update(audit_tree_heads).where(match).values(root_hash="0" * 64))
    elif choice == "signed_at":
        when = head.signed_at + timedelta(seconds=1)
        conn.execute(update(audit_tree_heads).where(match).values(signed_at=when))
    elif choice == "key_id":
        conn.execute(update(audit_tree_heads).where(match).values(key_id="ab" * 32))
    elif choice == "signature":
        other = heads[(heads.index(head) + 1) % len(heads)].signature
        conn.execute(update(audit_tree_heads).where(match).values(signature=other))
    elif choice == "algorithm":
        conn.execute(update(audit_tree_heads).where(match).values(algorithm="hmac-sha256"))
    elif choice == "frontier":
        conn.execute(update(audit_tree_heads).where(match).values(frontier=[]))
    elif choice == "swap_ids":
        a, b = rng.sample([h.id for h in heads], 2)
        ids = audit_tree_heads.c.id
        conn.execute(update(audit_tree_heads).where(ids == a).values(id=-1))
        conn.execute(update(audit_tree_heads).where(ids == b).values(id=a))
        conn.execute(update(audit_tree_heads).where(ids == -1).values(id=b))
    else:  # a head signed with the attacker's own key: new, or replacing a real one
        new_id = heads[-1].id + 1 if choice == "forge" else head.id
        forged = sign_head(
            t.attacker,
            head_id=new_id,
            tree_size=head.tree_size,
            root_hash=head.root_hash,
            signed_at=head.signed_at,
        )
        values = {
            "tree_size": forged.tree_size, "root_hash": forged.root_hash,
            "signed_at": forged.signed_at, "algorithm": forged.algorithm,
            "key_id": forged.key_id, "signature": forged.signature, "frontier": head.frontier,
        }  # fmt: skip
        if choice == "resign":
            conn.execute(update(audit_tree_heads).where(match).values(**values))
        else:
            conn.execute(insert(audit_tree_heads).values(id=new_id, **values))
    return f"tree head #{head.id}: {choice}"


def _clever(kind: str, *, fix_heads: bool) -> Mutation:
    def mutate(conn: Connection, rng: random.Random, t: Template) -> str:
        k = rng.randint(1, t.size)
        if kind == "modify":
            _rewrite_from(
                conn, k, lambda ev: [_changed_event(ev[0], rng), *ev[1:]], fix_heads=fix_heads
            )
        elif kind == "delete":
            _rewrite_from(conn, k, lambda ev: ev[1:], fix_heads=fix_heads)
        elif kind == "insert":
            forged = dataclasses.replace(_random_event(rng), occurred_at=T0)

            def add(ev: list[AuditEvent]) -> list[AuditEvent]:
                forged_at = dataclasses.replace(forged, occurred_at=ev[0].occurred_at)
                return [forged_at, *ev]

            _rewrite_from(conn, k, add, fix_heads=fix_heads)
        elif kind == "reorder":
            k = min(k, t.size - 1)

            def swap(ev: list[AuditEvent]) -> list[AuditEvent]:
                j = rng.randint(1, len(ev) - 1)
                ev[0], ev[j] = ev[j], ev[0]
                return ev

            _rewrite_from(conn, k, swap, fix_heads=fix_heads)
        else:  # truncate the tail, fix the tip, and delete the heads that cover it
            k = rng.randint(max(1, t.size - 40), t.size)
            _rewrite_from(conn, k, lambda ev: [], fix_heads=fix_heads)
            conn.execute(delete(audit_tree_heads).where(audit_tree_heads.c.tree_size >= k))
        return f"clever {kind} from event {k} (heads {'re-rooted' if fix_heads else 'kept'})"

    return mutate


def _garbage(conn: Connection, rng: random.Random, t: Template) -> str:
    """SQLite only: values no CrossBeat write could produce (text in a time column...)."""
    seq = rng.randint(1, t.size)
    column, value = rng.choice(
        [("occurred_at", "'yesterday'"), ("details", "'{broken'"), ("record_ids", "'[1, 2'"),
         ("record_count", "'many'"), ("owner_agencies", "'\"north\"'"), ("actor", "NULL")]
    )  # fmt: skip
    if column == "actor":  # NOT NULL: store an empty string instead
        value = "''"
    conn.execute(text(f"UPDATE audit_events SET {column} = {value} WHERE seq = {seq}"))
    return f"event {seq}: {column} = {value}"


MUTATIONS: dict[str, Mutation] = {
    **{f"field:{c}": _field_mutation(c) for c in EVENT_COLUMNS},
    "delete:first": _delete_event("first"),
    "delete:middle": _delete_event("middle"),
    "delete:last": _delete_event("last"),
    "insert:forged": _insert_forged,
    "swap:seq": _swap_seq,
    "truncate:naive": _truncate_naive,
    "tip": _tip,
    "owner_index": _owner_index,
    "head": _head,
    "clever:modify": _clever("modify", fix_heads=False),
    "clever:modify+heads": _clever("modify", fix_heads=True),
    "clever:delete+heads": _clever("delete", fix_heads=True),
    "clever:insert+heads": _clever("insert", fix_heads=True),
    "clever:reorder+heads": _clever("reorder", fix_heads=True),
    "clever:truncate+heads": _clever("truncate", fix_heads=True),
}
SQLITE_ONLY = {"garbage": _garbage}


# -- running them ---------------------------------------------------------------------------
def _detects(
    url: str, t: Template, mutate: Mutation, rng: random.Random, *, cli_too: bool = True
) -> tuple[str, set]:
    """Apply one mutation to the database at ``url``; check verify (and the CLI) catch it."""
    store = open_store(url, upgrade=False)
    with store.begin() as conn:
        _unguard(conn)
        before = _fingerprint(conn)
        description = mutate(conn, rng, t)
        assert _fingerprint(conn) != before, f"mutation changed nothing: {description}"
    report = verify(store, **t.verify_args())
    assert not report.ok, f"undetected: {description}"
    if not cli_too:
        return description, {p.kind for p in report.problems}
    result = CliRunner().invoke(
        cli,
        ["audit", "verify", "--db", url, "--key-file", str(t.key_file),
         "--trusted-head", str(t.head_file)],
    )  # fmt: skip
    assert isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 1 and "TAMPERED" in result.output, (description, result.output)
    return description, {p.kind for p in report.problems}


def _intact(url: str, t: Template) -> None:
    report = verify(open_store(url, upgrade=False), **t.verify_args())
    assert report.ok, report.problems
    assert report.heads_checked >= 2 and report.trusted_checked == 1
    result = CliRunner().invoke(
        cli,
        ["audit", "verify", "--db", url, "--key-file", str(t.key_file),
         "--trusted-head", str(t.head_file)],
    )  # fmt: skip
    assert result.exit_code == 0 and "intact" in result.output, result.output


@pytest.mark.slow
def test_1000_random_mutations_are_all_detected_on_sqlite(tmp_path, record_property):
    template_db = tmp_path / "template.db"
    store = open_store(f"sqlite:///{template_db}")
    t = _build(store, tmp_path, events=300, every=50, seed=3)
    close_all()  # checkpoints the WAL into the file, so a file copy is complete
    kinds = {**MUTATIONS, **SQLITE_ONLY}
    names = sorted(kinds)
    copy = tmp_path / "copy.db"
    shutil.copy(template_db, copy)
    _intact(f"sqlite:///{copy}", t)
    close_all()

    rng = random.Random(20260301)
    detected: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    total = 1000
    for i in range(total):
        name = names[i % len(names)]
        copy = tmp_path / f"m{i}.db"
        shutil.copy(template_db, copy)
        # `crossbeat audit verify` (the same verify, its exit code and words) on the
        # first mutation of each kind; the library's verify on every one.
        _, found = _detects(f"sqlite:///{copy}", t, kinds[name], rng, cli_too=i < len(names))
        detected[name] += 1
        problems.update(found)
        close_all()
        copy.unlink()
    assert sum(detected.values()) == total
    assert min(detected.values()) >= total // len(names)
    record_property("mutations_detected", total)
    record_property("mutation_kinds", dict(detected))
    record_property("problem_kinds", dict(problems))


@pytest.mark.postgres
def test_random_mutations_are_all_detected_on_postgres(pg_url, pg_databases, tmp_path):
    store = open_store(pg_url)
    t = _build(store, tmp_path, events=60, every=15, seed=4)
    close_all()
    template = pg_url.rsplit("/", 1)[1]
    rng = random.Random(20260302)
    names = sorted(MUTATIONS)
    for i in range(len(names) + 4):
        url = pg_databases.new(template)  # dropped at the end of the session at the latest
        if i == 0:
            _intact(url, t)
        else:
            _detects(url, t, MUTATIONS[names[(i - 1) % len(names)]], rng)
        close_all()
        pg_databases.drop_later(url.rsplit("/", 1)[1])
