"""Canaries: a raw SQLite file and a pg_dump hold no plain-text name or full address.

Seeded, unique canary names and full street addresses (house number and unit) are
ingested; the raw database bytes must contain none of them, in UTF-8 or as the hex
that ``pg_dump`` writes for ``bytea``. As a control, each scan must find the
hundred-block forms of the same addresses, which are public by design and stored in
clear, and it must find canaries in legacy unencrypted rows until a rotation
encrypts them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update
from sqlalchemy.engine import make_url

from crossbeat.cli import cli
from crossbeat.geo.address import hundred_block
from crossbeat.model import incident_id
from crossbeat.store import Store, open_store
from crossbeat.store.base import close_all
from crossbeat.store.schema import incident_personal
from crossbeat.vault.cipher import PLAIN_CODEC
from crossbeat.vault.kek import read_kek_file
from crossbeat.vault.rotate import rotate_agency_key
from tests.read_support import read_personal_many
from tests.test_vault_personal import (
    PROFILE,
    PURPOSE,
    as_tuple,
    canary_rows,
    expected,
    ingest,
    secrets_of,
    write_csv,
)

N = 120


def sqlite_raw(url: str) -> bytes:
    """Return the bytes of a SQLite database file and its WAL, after a checkpoint."""
    store = open_store(url)
    with store.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    close_all()
    db = Path(make_url(url).database or "")
    files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-journal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


def pg_dump(url: str) -> bytes:
    """Return a plain-format ``pg_dump`` (schema and data) of a PostgreSQL database."""
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    done = subprocess.run(
        ["pg_dump", "--no-owner", "--dbname", libpq],
        capture_output=True,
        check=True,
        timeout=300,
    )
    return done.stdout


def leaks(raw: bytes, rows: list[dict[str, str]]) -> list[str]:
    """Return the canary strings found in raw bytes, as UTF-8 or as hex."""
    hexed = raw.lower()
    return [
        s
        for r in rows
        for s in secrets_of(r)
        if s.encode() in raw or s.encode().hex().encode() in hexed
    ]


def _check_controls(raw: bytes, rows: list[dict[str, str]]) -> None:
    blocks = {hundred_block(r["address"]) for r in rows}
    assert all(b and "BLOCK" in b for b in blocks)
    missing = [b for b in blocks if b.encode() not in raw]
    assert not missing, "the scan does not see the stored incidents"


def _all_canaries_readable(store: Store, rows: list[dict[str, str]]) -> None:
    ids = {incident_id("cityx", r["id"]): r for r in rows}
    got = read_personal_many(store, list(ids), purpose=PURPOSE)
    assert {i: as_tuple(p) for i, p in got.items()} == {i: expected(r) for i, r in ids.items()}


def test_raw_sqlite_file_holds_no_canary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Through the CLI with no KEK configured: the development key file is used.
    monkeypatch.delenv("CROSSBEAT_KEK", raising=False)
    rows = canary_rows(N)
    profile = tmp_path / "feed.toml"
    profile.write_text(PROFILE, encoding="utf-8")
    data = write_csv(tmp_path / "export.csv", rows)
    url = f"sqlite:///{tmp_path / 'canary.db'}"
    added = CliRunner().invoke(cli, ["agency", "add", "cityx", "--name", "City X", "--db", url])
    assert added.exit_code == 0, added.output
    assert "Created the development key file" in added.stderr
    args = ["ingest", "--db", url, "--agency", "cityx", "--profile", str(profile), "--json"]
    result = CliRunner().invoke(cli, [*args, str(data)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["new"] == N

    raw = sqlite_raw(url)
    _check_controls(raw, rows)
    assert leaks(raw, rows) == []
    store = open_store(url, kek=read_kek_file(tmp_path / "canary.db.kek"))
    _all_canaries_readable(store, rows)


def test_pg_dump_holds_no_canary(pg_url: str, kek, tmp_path: Path) -> None:
    rows = canary_rows(N)
    store = open_store(pg_url, kek=kek)
    assert ingest(store, tmp_path, rows).new == N
    close_all()

    dump = pg_dump(pg_url)
    _check_controls(dump, rows)
    assert leaks(dump, rows) == []
    _all_canaries_readable(open_store(pg_url, kek=kek), rows)


def _raw(store: Store) -> bytes:
    return sqlite_raw(store.url) if store.dialect == "sqlite" else pg_dump(store.url)


def test_scan_finds_legacy_plain_rows_until_rotation_encrypts_them(
    store: Store, tmp_path: Path, kek
) -> None:
    rows = canary_rows(20)
    ingest(store, tmp_path, rows)
    legacy = rows[:6]
    with store.begin() as conn:  # personal data as stored before encryption existed
        for r in legacy:
            persons = [
                {"role": "victim", "name": r["victim"]},
                {"role": "suspect", "name": r["suspect"]},
            ]
            conn.execute(
                update(incident_personal)
                .where(incident_personal.c.incident_id == incident_id("cityx", r["id"]))
                .values(
                    codec=PLAIN_CODEC,
                    key_id=None,
                    full_address=json.dumps(r["address"]).encode(),
                    narrative=json.dumps(r["narrative"]).encode(),
                    persons=json.dumps(persons).encode(),
                )
            )
    before = leaks(_raw(store), rows)
    assert set(before) == {s for r in legacy for s in secrets_of(r)}

    store = open_store(store.url, kek=kek)
    rotate_agency_key(store, "cityx", batch_size=4)
    raw = _raw(store)
    _check_controls(raw, rows)
    assert leaks(raw, rows) == []
    _all_canaries_readable(open_store(store.url, kek=kek), rows)
