"""Crash safety: SIGKILL an ingest at random moments, re-run it, and compare.

The store must end with exactly the source's records — none lost, none duplicated,
no spurious versions — and the same quarantine as an uninterrupted run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from crossbeat.audit import iter_events
from crossbeat.store import open_store
from crossbeat.store.base import close_all
from crossbeat.store.schema import (
    incident_offences,
    incident_personal,
    incident_versions,
    incidents,
    ingest_batches,
    quarantine,
)
from crossbeat.vault.tables import FINGERPRINT, platform_keys
from tests.agency_support import register_agencies, register_for_test
from tests.test_ingest_pipeline import PROFILE, row, write_csv


@pytest.fixture(autouse=True)
def _registered_agencies(request: pytest.FixtureRequest) -> None:
    """The ingest never registers an agency: register the one these tests use."""
    register_for_test(request, {"cityx": "America/Los_Angeles"})


ROWS = 6000


def _rows() -> list[dict[str, str]]:
    rows = [row(i) for i in range(ROWS)]
    rng = random.Random(5)
    for i in rng.sample(range(ROWS), 40):  # some bad rows that must end in quarantine
        rows[i] = row(i, lat="not-a-number")
    return rows


def _run(
    db_url: str, profile: Path, data: Path, *, capture: bool = False
) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "crossbeat", "ingest", "--db", db_url, "--agency", "cityx"]
    args += ["--profile", str(profile), "--chunk-size", "100", "--json", str(data)]
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(args, stdout=out, stderr=out)


def _stored(db_url: str) -> int:
    """Count the records stored so far, read beside a running ingest."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(incidents)).scalar_one()
    finally:
        engine.dispose()


def _state(db_url: str) -> dict[str, object]:
    store = open_store(db_url)
    with store.connect() as conn:
        recs = sorted(conn.execute(select(incidents.c.source_id, incidents.c.record_hash)).all())
        state = {
            "records": [tuple(r) for r in recs],
            "offences": conn.execute(
                select(func.count()).select_from(incident_offences)
            ).scalar_one(),
            "personal": conn.execute(
                select(func.count()).select_from(incident_personal)
            ).scalar_one(),
            "versions": conn.execute(
                select(func.count()).select_from(incident_versions)
            ).scalar_one(),
            "quarantine": sorted(
                conn.execute(select(quarantine.c.row_number, quarantine.c.status)).all()
            ),
        }
    close_all()
    return state


def _copy_fingerprint_key(src_url: str, dst_url: str) -> None:
    """Give a fresh store the (wrapped) key of another store's record hashes."""
    with open_store(src_url).connect() as conn:
        key = conn.execute(select(platform_keys).where(platform_keys.c.scope == FINGERPRINT))
        rows = [dict(r) for r in key.mappings()]
    assert len(rows) == 1
    with open_store(dst_url).begin() as conn:
        conn.execute(platform_keys.insert(), rows)
    close_all()


@pytest.mark.slow
def test_sigkill_at_random_points_then_rerun(db_url, tmp_path):
    profile = tmp_path / "feed.toml"
    profile.write_text(PROFILE, encoding="utf-8")
    data = write_csv(tmp_path / "export.csv", _rows())
    open_store(db_url)  # migrate first, so kills land inside the ingest itself
    close_all()

    # Kill at random points of the ingest's own progress (not at wall-clock guesses,
    # which a fast machine outruns): most kills wait until a random number of records
    # is stored, a few land during start-up before the first chunk.
    rng = random.Random(int(os.environ.get("CROSSBEAT_CRASH_SEED", "20261125")))
    kills_mid_run = 0
    for attempt in range(8):
        before = _stored(db_url)
        proc = _run(db_url, profile, data)
        if attempt % 4 == 0:
            time.sleep(rng.uniform(0.05, 0.6))
        else:
            target = before + rng.randint(1, max(1, ROWS - 40 - before - 1))
            deadline = time.monotonic() + 240
            while proc.poll() is None and time.monotonic() < deadline:
                if _stored(db_url) >= target:
                    break
                time.sleep(0.01)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            if before < _stored(db_url) < ROWS - 40:
                kills_mid_run += 1
        proc.wait()
    final = _run(db_url, profile, data, capture=True)
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()
    assert kills_mid_run >= 3, f"only {kills_mid_run} kills landed between two chunks"

    got = _state(db_url)
    assert len(got["records"]) == ROWS - 40
    assert len({sid for sid, _ in got["records"]}) == ROWS - 40
    assert got["offences"] == ROWS - 40 and got["personal"] == ROWS - 40
    assert got["versions"] == 0
    assert len(got["quarantine"]) == 40 and {s for _, s in got["quarantine"]} == {"open"}

    # The same file ingested in one go into a fresh store gives the very same records
    # (record hashes are keyed: the fresh store gets the same fingerprint key).
    clean_url = f"sqlite:///{tmp_path / 'clean.db'}"
    _copy_fingerprint_key(db_url, clean_url)
    register_agencies(open_store(clean_url), {"cityx": "America/Los_Angeles"})
    close_all()
    proc = _run(clean_url, profile, data, capture=True)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    assert _state(clean_url) == got

    store = open_store(db_url)
    with store.connect() as conn:
        statuses = [r.status for r in conn.execute(select(ingest_batches.c.status))]
    assert statuses.count("complete") >= 1 and "running" not in statuses

    # The audit log accounts for every committed chunk exactly once, kills or not: per
    # batch, the counts of its ingest events add up to the batch's own counters.
    counted: dict[str, dict[str, int]] = {}
    for event in iter_events(store):
        if event.action == "ingest":
            total = counted.setdefault(event.details["batch_id"], {})
            for k, v in event.details["counts"].items():
                total[k] = total.get(k, 0) + v
    with store.connect() as conn:
        batches = {r.id: r._mapping for r in conn.execute(select(ingest_batches))}
    assert counted.keys() == batches.keys()
    for batch_id, total in counted.items():
        assert total == {k: batches[batch_id][k] for k in total}, batch_id
    assert sum(t["new"] for t in counted.values()) == ROWS - 40
