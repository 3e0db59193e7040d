"""Key rotation on real databases: complete, interrupted (exception and SIGKILL), KEK change."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from crossbeat.cli import cli
from crossbeat.model import incident_id
from crossbeat.store import Store, open_store
from crossbeat.store.schema import incident_personal
from crossbeat.vault.cipher import CODEC, PLAIN_CODEC
from crossbeat.vault.errors import KeyConfigError
from crossbeat.vault.kek import generate_kek, parse_kek
from crossbeat.vault.keys import Vault
from crossbeat.vault.rotate import RotationProgress, key_status, rewrap_keys, rotate_agency_key
from crossbeat.vault.tables import agency_keys
from tests.read_support import read_personal_many
from tests.test_vault_personal import PURPOSE, as_tuple, canary_rows, expected, ingest


def _keys(store: Store) -> list[tuple[int, str, bool]]:
    """Return (version, status, has key material) of cityx's keys, oldest first."""
    with store.connect() as conn:
        rows = conn.execute(
            select(agency_keys)
            .where(agency_keys.c.agency_id == "cityx")
            .order_by(agency_keys.c.version)
        ).all()
    return [(r.version, r.status, r.wrapped_key is not None) for r in rows]


def _rows_per_key(store: Store) -> dict[str | None, int]:
    p = incident_personal.c
    with store.connect() as conn:
        return dict(conn.execute(select(p.key_id, func.count()).group_by(p.key_id)).all())


def _key_id(store: Store, version: int) -> str:
    with store.connect() as conn:
        return conn.execute(
            select(agency_keys.c.key_id).where(
                (agency_keys.c.agency_id == "cityx") & (agency_keys.c.version == version)
            )
        ).scalar_one()


def _all_readable(store: Store, rows: list[dict[str, str]], agency: str = "cityx") -> None:
    ids = {incident_id(agency, r["id"]): r for r in rows}
    got = read_personal_many(store, list(ids), purpose=PURPOSE)
    assert {i: as_tuple(p) for i, p in got.items()} == {i: expected(r) for i, r in ids.items()}


def test_rotation_reencrypts_everything_and_retires_the_old_key(
    store: Store, tmp_path: Path
) -> None:
    rows = canary_rows(60)
    ingest(store, tmp_path, rows)
    old = _key_id(store, 1)
    seen: list[RotationProgress] = []
    res = rotate_agency_key(store, "cityx", batch_size=7, progress=seen.append)
    assert (res.reencrypted, res.batches, res.started, res.new_version) == (60, 9, True, 2)
    assert res.retired == [old]
    assert [p.done for p in seen] == [7, 14, 21, 28, 35, 42, 49, 56, 60]
    assert {p.total for p in seen} == {60}
    assert _keys(store) == [(1, "retired", False), (2, "active", True)]
    assert _rows_per_key(store) == {res.new_key_id: 60}
    _all_readable(store, rows)
    # A fresh process (no cached data keys) reads everything with the new key alone.
    _all_readable(store.with_vault(Vault(store.vault.kek)), rows)


def test_rotation_interrupted_then_rerun_completes(store: Store, tmp_path: Path) -> None:
    rows = canary_rows(50)
    ingest(store, tmp_path, rows[:40])

    def crash_after_three(p: RotationProgress) -> None:
        if p.batches == 3:
            raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        rotate_agency_key(store, "cityx", batch_size=6, progress=crash_after_three)
    old, new = _key_id(store, 1), _key_id(store, 2)
    assert _keys(store) == [(1, "rotating", True), (2, "active", True)]
    assert _rows_per_key(store) == {old: 22, new: 18}
    _all_readable(store.with_vault(Vault(store.vault.kek)), rows[:40])  # mixed keys read fine
    ingest(store, tmp_path, rows[40:])  # writes meanwhile use the new key
    assert _rows_per_key(store) == {old: 22, new: 28}

    res = rotate_agency_key(store, "cityx", batch_size=6)
    assert (res.started, res.reencrypted, res.new_key_id, res.retired) == (False, 22, new, [old])
    assert _keys(store) == [(1, "retired", False), (2, "active", True)]
    assert _rows_per_key(store) == {new: 50}
    _all_readable(store.with_vault(Vault(store.vault.kek)), rows)
    # Once finished, rotating again starts a new rotation.
    again = rotate_agency_key(store, "cityx")
    assert (again.started, again.new_version, again.reencrypted) == (True, 3, 50)


@pytest.mark.slow
def test_sigkill_during_cli_rotation_then_rerun_completes(db_url: str, kek, tmp_path: Path) -> None:
    store = open_store(db_url, kek=kek)
    rows = canary_rows(1200)
    ingest(store, tmp_path, rows)
    old = _key_id(store, 1)
    args = [sys.executable, "-m", "crossbeat", "keys", "rotate", "--db", db_url]
    args += ["--agency", "cityx", "--batch-size", "4"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # CROSSBEAT_KEK is set by conftest
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert b"rows re-encrypted (batch 1)" in line, err.decode()
    assert proc.returncode == -signal.SIGKILL

    new = _key_id(store, 2)
    per_key = _rows_per_key(store)
    assert per_key[old] > 0 and per_key[new] > 0 and sum(per_key.values()) == 1200
    assert _keys(store) == [(1, "rotating", True), (2, "active", True)]

    result = CliRunner().invoke(cli, ["keys", "rotate", "--db", db_url, "--agency", "cityx"])
    assert result.exit_code == 0, result.output
    assert "rotation resumed and done" in result.output
    assert f"{per_key[old]} rows re-encrypted under key v2 {new}" in result.output
    assert _keys(store) == [(1, "retired", False), (2, "active", True)]
    assert _rows_per_key(store) == {new: 1200}
    _all_readable(store.with_vault(Vault(kek)), rows)


def test_legacy_plain_rows_are_read_and_encrypted_by_rotation(store: Store, tmp_path: Path) -> None:
    rows = canary_rows(12)
    ingest(store, tmp_path, rows)
    legacy = rows[:5]
    with store.begin() as conn:  # as written before encryption existed
        for r in legacy:
            persons = [
                {"role": "victim", "name": r["victim"], "age": None, "sex": None, "attributes": {}},
                {"role": "suspect", "name": r["suspect"], "age": None, "sex": None},
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
    _all_readable(store, rows)
    status, fingerprint = key_status(store)  # cityx, then the key of record hashes
    assert status.owner == "cityx" and fingerprint.owner == "@fingerprint"
    assert status.plain_rows == 5 and status.keys[0].rows == 7

    res = rotate_agency_key(store, "cityx", batch_size=4)
    assert res.reencrypted == 12
    with store.connect() as conn:
        codecs = set(conn.execute(select(incident_personal.c.codec)).scalars())
    assert codecs == {CODEC}
    status, _ = key_status(store)
    assert status.plain_rows == 0 and [k.rows for k in status.keys] == [12, 0]
    _all_readable(store, rows)


def test_rewrap_moves_data_keys_to_a_new_kek(store: Store, tmp_path: Path, kek) -> None:
    rows = canary_rows(5)
    ingest(store, tmp_path, rows)
    ingest(store, tmp_path, canary_rows(2, seed=3, prefix="Y"), agency="cityy")
    new_kek = parse_kek(generate_kek())
    with pytest.raises(KeyConfigError, match="keys rewrap"):
        read_personal_many(store.with_vault(Vault(new_kek)), [_first(store)], purpose=PURPOSE)
    # Both agencies' data keys and the fingerprint key of the record hashes.
    assert rewrap_keys(store, Vault(new_kek, old_keks=[kek])) == 3
    assert rewrap_keys(store, Vault(new_kek, old_keks=[kek])) == 0  # safe to run again
    _all_readable(store.with_vault(Vault(new_kek)), rows)
    with pytest.raises(KeyConfigError, match=new_kek.id):
        read_personal_many(store.with_vault(Vault(kek)), [_first(store)], purpose=PURPOSE)


def _first(store: Store) -> str:
    with store.connect() as conn:
        return conn.execute(select(func.min(incident_personal.c.incident_id))).scalar_one()


def test_keys_cli_status_rotate_and_new_kek(store: Store, tmp_path: Path) -> None:
    ingest(store, tmp_path, canary_rows(9))
    runner = CliRunner()
    out = runner.invoke(cli, ["keys", "status", "--db", store.url])
    assert out.exit_code == 0, out.output
    assert f"cityx: active key {_key_id(store, 1)}" in out.output and "rows 9" in out.output

    usage = runner.invoke(cli, ["keys", "rotate", "--db", store.url])
    assert usage.exit_code == 2 and "--agency ID" in usage.output
    unknown = runner.invoke(cli, ["keys", "rotate", "--db", store.url, "--agency", "nope"])
    assert unknown.exit_code == 1 and "unknown agency nope" in unknown.output

    done = runner.invoke(cli, ["keys", "rotate", "--db", store.url, "--all", "--batch-size", "5"])
    assert done.exit_code == 0, done.output
    assert "cityx: 5/9 rows re-encrypted (batch 1)" in done.output
    assert "cityx: rotation done; 9 rows re-encrypted under key v2" in done.output

    status = json.loads(runner.invoke(cli, ["keys", "status", "--db", store.url, "--json"]).output)
    assert [(k["version"], k["status"], k["rows"]) for k in status[0]["keys"]] == [
        (2, "active", 9),
        (1, "retired", 0),
    ]
    fresh = runner.invoke(cli, ["keys", "new-kek"]).output.strip()
    assert parse_kek(fresh).id != store.vault.kek.id
