"""Rows skipped as unchanged by their source digest: the same store as the full path (#9).

A generated sequence of exports — the first load, then files with changed, new,
repeated, reordered and broken rows, each ingested more than once — goes into two
stores, one normalising every row (``skip_unchanged=False``), one skipping the rows
whose source digest matches their stored record. Everything a reader, the owner or the
auditor can see must be the same: records and their versions, history, quarantine, the
counts of every file and the ingest audit events.
"""

from __future__ import annotations

import csv
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from crossbeat.agencies import get_agency, jurisdiction_index, register_agency
from crossbeat.audit.events import Action
from crossbeat.audit.tables import audit_events
from crossbeat.ingest import csv_blocks
from crossbeat.ingest.csv_blocks import plain_start
from crossbeat.ingest.normalise import Normaliser, RecordError
from crossbeat.ingest.pipeline import RowRouter, ingest_files
from crossbeat.ingest.profile import load_profile, parse_profile
from crossbeat.ingest.readers import file_sha256, open_source
from crossbeat.ingest.reingest import _Columns, column_parts
from crossbeat.ingest.source import RawRecord
from crossbeat.ingest.unchanged import UnchangedProbe, context_key, eligible
from crossbeat.model import Agency
from crossbeat.store import Store, open_store
from crossbeat.store.base import close_all
from crossbeat.store.schema import incident_versions, incidents, ingest_batches, quarantine
from crossbeat.vault.kek import Kek
from tests.test_ingest_pipeline import HEADER, PROFILE

CODES = ["220", "13B", "240", "23F", "ZZZ"]  # ZZZ: unmapped, stored and flagged


def _row(rng: random.Random, i: int) -> dict[str, str]:
    return {
        "id": f"R{i}",
        "when": f"2024-03-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:30",
        "lon": f"{-122.68 + rng.random() * 0.05:.6f}",
        "lat": f"{45.51 + rng.random() * 0.04:.6f}",
        "address": f"{rng.randint(1, 999)} MAIN ST",
        "code": rng.choice(CODES),
        "victim": f"Person {rng.randint(1, 50)}",
        "narrative": rng.choice(["", "window broken", "bike taken"]),
        "beat": str(rng.randint(1, 7)),
    }


def _mutate(rng: random.Random, rows: list[dict[str, str]], start: int) -> list[dict[str, str]]:
    """Return the next export: changed, new, repeated, broken and reordered rows."""
    out = [dict(r) for r in rows]
    for r in rng.sample(out, k=len(out) // 5):
        field = rng.choice(["code", "address", "victim", "when", "narrative"])
        r[field] = _row(rng, 0)[field]
    out += [_row(rng, start + k) for k in range(rng.randint(1, 6))]
    for r in rng.sample(out, k=2):  # the same id again further down
        out.append(dict(r, beat="99"))
    for r in rng.sample(out, k=2):  # broken rows
        out.append(dict(r, when="not a date", id=f"BAD{rng.randint(0, 9)}"))
    out.append(dict(out[0], id=""))  # no id at all
    if rng.random() < 0.5:
        rng.shuffle(out)
    return out


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=HEADER)
        w.writeheader()
        w.writerows(rows)
    return path


_VOLATILE = {
    "public_id",
    "record_hash",
    "raw_hash",
    "source_digest",
    "batch_id",
    "created_at",
    "updated_at",
    "sens_served",
    "sens_rules",
}


def _state(store: Store) -> dict[str, Any]:
    """What the two stores must agree on (keys and times differ between them)."""
    with store.connect() as conn:
        recs = {
            r["id"]: {k: v for k, v in r.items() if k not in _VOLATILE}
            for r in conn.execute(select(incidents)).mappings()
        }
        versions = sorted(
            (r.incident_id, r.version)
            for r in conn.execute(
                select(incident_versions.c.incident_id, incident_versions.c.version)
            )
        )
        held = sorted(
            (r.row_number, r.status, tuple(r.reasons), r.source_file)
            for r in conn.execute(
                select(
                    quarantine.c.row_number,
                    quarantine.c.status,
                    quarantine.c.reasons,
                    quarantine.c.source_file,
                )
            )
        )
        events = [
            (
                sorted(r.record_ids),
                r.record_count,
                {k: v for k, v in (r.details or {}).items() if k not in ("batch_id", "file_hash")},
            )
            for r in conn.execute(
                select(
                    audit_events.c.details, audit_events.c.record_ids, audit_events.c.record_count
                )
                .where(audit_events.c.action == str(Action.INGEST))
                .order_by(audit_events.c.seq)
            )
        ]
    return {"incidents": recs, "versions": versions, "quarantine": held, "events": events}


def _store(path: Path | str, kek: Kek) -> Store:
    """Open a store with City Z registered: a SQLite file, or a database URL."""
    store = open_store(path if isinstance(path, str) else f"sqlite:///{path}", kek=kek)
    register_agency(store, Agency("cityz", "City Z", timezone="America/Los_Angeles"))
    return store


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_skipping_unchanged_rows_stores_what_normalising_them_does(
    seed: int, tmp_path: Path, kek: Kek
) -> None:
    profile_path = tmp_path / "feed.toml"
    profile_path.write_text(PROFILE, encoding="utf-8")
    profile = load_profile(profile_path)
    rng = random.Random(seed)
    rows = [_row(rng, i) for i in range(60)]
    files = [_write(tmp_path / "e0.csv", rows)]
    for k in range(1, 4):
        rows = _mutate(rng, [r for r in rows if r["id"] and not r["id"].startswith("BAD")], 100 * k)
        files.append(_write(tmp_path / f"e{k}.csv", rows))
    plan = [files[0], files[0], files[1], files[1], files[2], files[0], files[3], files[3]]
    full, skip = _store(tmp_path / "full.db", kek), _store(tmp_path / "skip.db", kek)
    skipped = 0
    for f in plan:
        a = ingest_files(full, "cityz", profile, [f], skip_unchanged=False)
        b = ingest_files(skip, "cityz", profile, [f], skip_unchanged=True)
        assert b.totals.as_dict() == a.totals.as_dict(), f.name
        skipped += b.unchanged
    assert skipped > 100  # the skip path really ran
    assert _state(skip) == _state(full)


def test_reingest_skips_and_a_changed_crosswalk_does_not(store: Store, tmp_path: Path) -> None:
    """A re-ingest skips every row; a changed crosswalk makes every row take the full path."""
    register_agency(store, Agency("cityz", "City Z", timezone="America/Los_Angeles"))
    folder = tmp_path / "xw"
    folder.mkdir()
    crosswalk = (
        '[crosswalk]\nscheme = "local"\nversion = "1"\n[[map]]\nlocal = "B1"\nnibrs = "{}"\n'
        'match = "exact"\n'
    )
    (folder / "local.toml").write_text(crosswalk.format("220"), encoding="utf-8")
    text = 'crosswalks = "xw"\n' + PROFILE.replace('scheme = "code-nibrs"', 'scheme = "local"')
    profile_path = tmp_path / "feed.toml"
    profile_path.write_text(text, encoding="utf-8")
    profile = load_profile(profile_path)
    rng = random.Random(7)
    rows = [dict(_row(rng, i), code="B1") for i in range(30)]
    f = _write(tmp_path / "a.csv", rows)
    first = ingest_files(store, "cityz", profile, [f])
    assert (first.new, first.quarantined) == (30, 0)
    with store.connect() as conn:
        digests = conn.execute(select(incidents.c.source_digest)).scalars().all()
    assert len(digests) == 30 and all(d is not None and len(bytes(d)) == 16 for d in digests)

    normaliser = Normaliser(profile, "cityz", source_file=str(f))
    before = context_key(normaliser)
    again = ingest_files(store, "cityz", profile, [f])
    assert (again.unchanged, again.new, again.updated) == (30, 0, 0)

    (folder / "local.toml").write_text(crosswalk.format("23F"), encoding="utf-8")
    assert context_key(Normaliser(profile, "cityz", source_file=str(f))) != before
    changed = ingest_files(store, "cityz", profile, [f])
    assert (changed.updated, changed.unchanged) == (30, 0)
    with store.connect() as conn:
        codes = set(conn.execute(select(incidents.c.nibrs_code)).scalars())
    assert codes == {"23F"}


def test_hash_ids_and_update_feeds_never_skip() -> None:
    base = parse_profile(PROFILE)
    assert eligible(base)
    hashed = parse_profile(
        PROFILE.replace(
            'columns = ["id"]', 'columns = ["id"]\nfallback = "hash"\nhash_columns = ["when"]'
        )
    )
    assert not eligible(hashed)


def _rows_done(db_url: str) -> int:
    """Rows committed by the running batch so far, read beside a running ingest."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            t = ingest_batches.c
            done = conn.execute(select(t.rows_done).where(t.status == "running")).scalar()
            return int(done or 0)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_sigkill_during_a_skipping_reingest_then_rerun(db_url: str, tmp_path: Path) -> None:
    """A re-ingest skipping unchanged rows, killed and re-run, ends as one run would."""
    from tests.test_ingest_crash import _copy_fingerprint_key, _run, _state
    from tests.test_ingest_pipeline import row, write_csv

    n = 3000
    profile = tmp_path / "feed.toml"
    profile.write_text(PROFILE, encoding="utf-8")
    first = write_csv(tmp_path / "first.csv", [row(i) for i in range(n)])
    rng = random.Random(9)
    changed = set(rng.sample(range(n), 300))
    second_rows = [row(i, code="120") if i in changed else row(i) for i in range(n + 200)]
    second = write_csv(tmp_path / "second.csv", second_rows)
    for url in (db_url, f"sqlite:///{tmp_path / 'clean.db'}"):
        if url != db_url:
            _copy_fingerprint_key(db_url, url)
        store = open_store(url)
        if get_agency(store, "cityx") is None:
            register_agency(store, Agency("cityx", "cityx", timezone="America/Los_Angeles"))
        close_all()
        proc = _run(url, profile, first, capture=True)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()

    kills = 0
    for _ in range(4):
        before = _rows_done(db_url)
        proc = _run(db_url, profile, second)
        target = before + rng.randint(100, 800)
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline:
            if _rows_done(db_url) >= target:
                break
            time.sleep(0.01)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    final = _run(db_url, profile, second, capture=True)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()
    assert kills >= 2

    clean = _run(f"sqlite:///{tmp_path / 'clean.db'}", profile, second, capture=True)
    _, err = clean.communicate(timeout=300)
    assert clean.returncode == 0, err.decode()
    got = _state(db_url)
    assert got == _state(f"sqlite:///{tmp_path / 'clean.db'}")
    assert got["versions"] == 300 and len(got["records"]) == n + 200


@pytest.mark.parametrize(
    ("seed", "backend"),
    [(4, "sqlite"), (5, "sqlite"), pytest.param(6, "postgres", marks=pytest.mark.postgres)],
)
def test_columnar_reingest_with_odd_rows_stores_what_normalising_them_does(
    seed: int,
    backend: str,
    tmp_path: Path,
    kek: Kek,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """Plain blocks read as columns, odd rows further on read by the streaming reader.

    Small blocks and chunks make parts end at block ends and transactions span blocks;
    a quoted value in the middle of a file hands the rest of it to the streaming reader.
    On PostgreSQL too: its stored records are found by another query.
    """
    monkeypatch.setattr(csv_blocks, "BLOCK_BYTES", 900)
    profile_path = tmp_path / "feed.toml"
    profile_path.write_text(PROFILE, encoding="utf-8")
    profile = load_profile(profile_path)
    rng = random.Random(seed)
    rows = [_row(rng, i) for i in range(80)]
    files = [_write(tmp_path / "e0.csv", rows)]
    for k in range(1, 3):
        rows = _mutate(rng, [r for r in rows if r["id"] and not r["id"].startswith("BAD")], 100 * k)
        odd = rows[len(rows) // 2]
        rows[len(rows) // 2] = dict(odd, narrative='window "broken", bike taken')
        files.append(_write(tmp_path / f"e{k}.csv", rows))
    assert all(plain_start(f, "utf-8-sig", ",", len(HEADER)) is not None for f in files)
    plan = [files[0], files[0], files[1], files[1], files[2], files[0]]
    if backend == "postgres":
        full, skip = (
            _store(request.getfixturevalue("pg_url"), kek),
            _store(str(request.getfixturevalue("pg_databases").new()), kek),
        )
    else:
        full, skip = _store(tmp_path / "full.db", kek), _store(tmp_path / "skip.db", kek)
    skipped = 0
    for f in plan:
        a = ingest_files(full, "cityz", profile, [f], skip_unchanged=False, chunk_size=25)
        b = ingest_files(skip, "cityz", profile, [f], skip_unchanged=True, chunk_size=25)
        assert b.totals.as_dict() == a.totals.as_dict(), f.name
        skipped += b.unchanged
    assert skipped > 200
    assert _state(skip) == _state(full)


def test_a_plain_reingest_skips_rows_without_items(tmp_path: Path, kek: Kek) -> None:
    """The parts of a plain file's re-ingest carry its unchanged rows as columns, not items."""
    profile_path = tmp_path / "feed.toml"
    profile_path.write_text(PROFILE, encoding="utf-8")
    profile = load_profile(profile_path)
    rng = random.Random(11)
    rows = [_row(rng, i) for i in range(50)]
    f = _write(tmp_path / "a.csv", rows)
    store = _store(tmp_path / "s.db", kek)
    ingest_files(store, "cityz", profile, [f])
    router = RowRouter(store, profile, "cityz", str(f), jurisdiction_index(store))
    probe = UnchangedProbe(store)
    with store.connect() as conn, open_source(f, profile.source) as reader:
        probe.bind(conn, {})
        found = list(column_parts(reader, router, file_sha256(f), 0, 20, probe))
    assert [p.commit for p in found] == [True, True, False, True]
    assert [p.last_row for p in found] == [20, 40, 50, 50]
    assert all(not p.items for p in found)
    skipped = [p.skipped for p in found if p.skipped is not None]
    assert [r for s in skipped for r in s.row_numbers] == list(range(1, 51))
    with store.connect() as conn:
        stored = dict(conn.execute(select(incidents.c.source_id, incidents.c.id)).all())
    assert [i for s in skipped for i in s.incident_ids] == [stored[r["id"]] for r in rows]
    labels = set().union(*(s.crosswalks for s in skipped))
    assert labels and {label.split("@")[0] for label in labels} == {"code-nibrs"}


_ID_PIECES = ["a", "B", "7", "é", "/", " ", "\u00a0", "\u2003", "N/A", "na", "Null", "NONE", ""]


@pytest.mark.parametrize(
    ("id_spec", "strip", "seed"),
    [
        ('columns = ["id"]', "true", 21),
        ('columns = ["id", "beat"]\nprefix = "x-"', "true", 22),
        ('columns = ["id", "beat"]', "false", 23),
    ],
)
def test_source_ids_read_as_columns_are_the_normalisers(
    id_spec: str, strip: str, seed: int, tmp_path: Path, kek: Kek
) -> None:
    """The re-ingest's source ids, cleaned as columns, are the ones each row gets.

    Ids padded with spaces or with other whitespace, null markers in any case, blank
    and non-ASCII values: a block cleaned by Arrow (ASCII columns) or value by value
    (the others) gives the id :meth:`Normaliser.source_id` builds (None: no id).
    """
    text = PROFILE.replace('[id]\ncolumns = ["id"]', f"[id]\n{id_spec}").replace(
        'format = "csv"', f'format = "csv"\nstrip = {strip}'
    )
    profile_path = tmp_path / "feed.toml"
    profile_path.write_text(text, encoding="utf-8")
    profile = load_profile(profile_path)
    rng = random.Random(seed)
    base = _row(rng, 0)

    def value(ascii_only: bool) -> str:
        pieces = [p for p in _ID_PIECES if p.isascii()] if ascii_only else _ID_PIECES
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 3)))

    store = _store(tmp_path / "s.db", kek)
    for ascii_only in (True, False):
        rows = [dict(base, id=value(ascii_only), beat=value(True)) for _ in range(400)]
        f = _write(tmp_path / f"ids{ascii_only}.csv", rows)
        start = plain_start(f, "utf-8-sig", ",", len(HEADER))
        assert start is not None
        router = RowRouter(store, profile, "cityz", str(f), jurisdiction_index(store))
        with open_source(f, profile.source) as reader:
            columns = _Columns.of(reader, router)
            assert columns is not None
            block = next(iter(csv_blocks.blocks(f, ",", len(HEADER), start)))
            assert isinstance(block, csv_blocks.Block) and block.rows == len(rows)
            normaliser = router.normaliser("cityz")
            expected: list[str | None] = []
            for k, fields in enumerate(zip(*[c.to_pylist() for c in block.columns], strict=True)):
                try:
                    rec = RawRecord(k + 1, dict(zip(reader.columns, fields, strict=True)))
                    expected.append(normaliser.source_id(rec))
                except RecordError:
                    expected.append(None)
            assert columns.source_ids(block) == expected
            assert None in expected and len(set(expected)) > 20
