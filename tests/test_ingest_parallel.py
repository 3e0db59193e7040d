"""Normalising in a worker process stores exactly what normalising in-process stores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crossbeat.agencies import register_agency, set_jurisdiction
from crossbeat.ingest import parallel
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import ProfileError, load_profile, parse_profile
from crossbeat.model import Agency
from crossbeat.store import open_store
from crossbeat.store.base import close_all
from crossbeat.store.schema import incident_jurisdictions, incidents, ingest_batches, quarantine
from tests.agency_support import register_for_test
from tests.test_ingest_pipeline import PROFILE, row, write_csv


@pytest.fixture(autouse=True)
def _registered_agencies(request: pytest.FixtureRequest) -> None:
    """The ingest never registers an agency: register the one these tests use."""
    register_for_test(request, {"cityx": "America/Los_Angeles"})


pytestmark = pytest.mark.skipif(
    "fork" not in __import__("multiprocessing").get_all_start_methods(),
    reason="the worker process needs the fork start method",
)


def _rows(n: int) -> list[dict[str, str]]:
    rows = [row(i) for i in range(n)]
    for i in range(3, n, 97):
        rows[i] = row(i, lat="north")  # quarantined
    for i in range(50, n, 211):
        rows[i] = row(i - 40)  # duplicate id of an earlier row: quarantined
    return rows


def _state(store) -> dict[str, object]:
    with store.connect() as conn:
        return {
            "records": sorted(
                tuple(r)
                for r in conn.execute(
                    select(
                        incidents.c.source_id,
                        incidents.c.record_hash,
                        incidents.c.row_number,
                        incidents.c.h3_11,
                        incidents.c.occurred_from,
                    )
                )
            ),
            "tags": sorted(
                tuple(r)
                for r in conn.execute(
                    select(
                        incident_jurisdictions.c.agency_id,
                        incident_jurisdictions.c.basis,
                        func.count(),
                    ).group_by(incident_jurisdictions.c.agency_id, incident_jurisdictions.c.basis)
                )
            ),
            "quarantine": sorted(
                tuple(r) for r in conn.execute(select(quarantine.c.row_number, quarantine.c.status))
            ),
            "rows_done": sorted(conn.execute(select(ingest_batches.c.rows_done)).scalars()),
        }


@pytest.fixture
def profile(tmp_path):
    p = tmp_path / "feed.toml"
    p.write_text(PROFILE, encoding="utf-8")
    return load_profile(p)


def test_worker_and_in_process_give_the_same_store(store, profile, tmp_path, monkeypatch):
    monkeypatch.setattr(parallel, "PART_ROWS", 64)  # many parts, several per transaction
    half = {
        "type": "Polygon",
        "coordinates": [[[-123, 45], [-122.66, 45], [-122.66, 46], [-123, 46], [-123, 45]]],
    }
    register_agency(store, Agency("cityx", "City X", timezone="America/Los_Angeles"))
    set_jurisdiction(store, "cityx", "west", half)
    f = write_csv(tmp_path / "a.csv", _rows(1500))
    first = ingest_files(store, "cityx", profile, [f], chunk_size=500, parallel=True)
    assert first.rows == 1500 and first.quarantined > 20
    assert first.new == 1500 - first.quarantined
    after_worker = _state(store)
    assert after_worker["rows_done"] == [1500]
    assert [t[:2] for t in after_worker["tags"]] == [("cityx", "polygon"), ("cityx", "reporter")]
    # The same file in-process: every record unchanged, the store identical.
    again = ingest_files(store, "cityx", profile, [f], chunk_size=500, parallel=False)
    assert (again.new, again.unchanged, again.quarantined) == (0, first.new, first.quarantined)
    assert _state(store)["records"] == after_worker["records"]
    # And a changed file through the worker again.
    changed = _rows(1500)
    changed[10] = row(10, code="13B", when="2024-02-02 02:02")
    g = write_csv(tmp_path / "b.csv", changed)
    third = ingest_files(store, "cityx", profile, [g], chunk_size=500, parallel=True)
    assert (third.updated, third.unchanged) == (1, first.new - 1)


def test_worker_resumes_an_interrupted_batch(store, profile, tmp_path, monkeypatch):
    """A run that committed part of the file: the worker replays, then resumes."""
    monkeypatch.setattr(parallel, "PART_ROWS", 50)
    rows = _rows(600)
    f = write_csv(tmp_path / "a.csv", rows)
    reference = ingest_files(store, "cityx", profile, [f], chunk_size=200, parallel=False)
    # Pretend the run stopped after row 400: reopen its batch at that checkpoint and
    # remove what came after it, as a killed run would have left the store.
    with store.begin() as conn:
        late = select(incidents.c.id).where(incidents.c.row_number > 400)
        for table in ("incident_offences", "incident_jurisdictions", "incident_personal"):
            t = incidents.metadata.tables[table]
            conn.execute(t.delete().where(t.c.incident_id.in_(late)))
        conn.execute(incidents.delete().where(incidents.c.row_number > 400))
        conn.execute(quarantine.delete().where(quarantine.c.row_number > 400))
        new = conn.execute(select(func.count()).select_from(incidents)).scalar()
        held = conn.execute(select(func.count()).select_from(quarantine)).scalar()
        conn.execute(
            ingest_batches.update().values(
                status="running", rows_done=400, rows=400, new=new, quarantined=held
            )
        )
    resumed = ingest_files(store, "cityx", profile, [f], chunk_size=200, parallel=True)
    assert resumed.files[0].resumed_after_row == 400
    assert (resumed.rows, resumed.new, resumed.quarantined) == (
        reference.rows,
        reference.new,
        reference.quarantined,
    )
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(incidents)).scalar() == (reference.new)


def test_worker_errors_are_raised_as_in_process(store, tmp_path):
    bad = parse_profile(PROFILE.replace('scheme = "code-nibrs"', 'scheme = "no-such-scheme"'))
    f = write_csv(tmp_path / "a.csv", _rows(50))
    errors = []
    for mode in (False, True):
        with pytest.raises(ProfileError) as caught:
            ingest_files(store, "cityx", bad, [f], parallel=mode)
        errors.append(str(caught.value))
    assert errors[0] == errors[1] and "no-such-scheme" in errors[0]
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(incidents)).scalar() == 0


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_sigkill_leaves_no_worker_and_the_rerun_completes(db_url, kek_text, tmp_path):
    profile_path = tmp_path / "feed.toml"
    profile_path.write_text(PROFILE, encoding="utf-8")
    data = write_csv(tmp_path / "a.csv", _rows(30000))
    open_store(db_url)  # migrate before the kill
    close_all()
    script = textwrap.dedent(
        f"""
        from crossbeat.ingest.pipeline import ingest_files
        from crossbeat.ingest.profile import load_profile
        from crossbeat.store import open_store
        from crossbeat.vault.kek import parse_kek
        store = open_store({db_url!r}, kek=parse_kek({kek_text!r}))
        summary = ingest_files(
            store, "cityx", load_profile({str(profile_path)!r}), [{str(data)!r}],
            chunk_size=1000, parallel=True,
        )
        print(summary.rows, summary.new, summary.quarantined)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parent.parent)
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while not workers and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        workers = _children(proc.pid)
    assert workers, "the ingest finished or failed before its worker was seen"
    time.sleep(1.0)  # let it commit a few transactions
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 20
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "a worker outlived the killed ingest"

    rerun = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert rerun.returncode == 0, rerun.stderr
    rows, _, quarantined = (int(x) for x in rerun.stdout.split())
    assert rows == 30000
    store = open_store(db_url)
    with store.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(incidents)).scalar()
        distinct = conn.execute(select(func.count(func.distinct(incidents.c.source_id)))).scalar()
        held = conn.execute(select(func.count()).select_from(quarantine)).scalar()
    assert stored == distinct == 30000 - quarantined
    assert held == quarantined
    close_all()


def test_collector_runs_less_often_during_the_ingest_only(store, profile, tmp_path, monkeypatch):
    import gc

    from crossbeat.ingest import pipeline

    seen = []
    real = pipeline.write_chunk

    def spy(*args, **kwargs):
        seen.append(gc.get_threshold())
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "write_chunk", spy)
    before = gc.get_threshold()
    f = write_csv(tmp_path / "a.csv", _rows(30))
    ingest_files(store, "cityx", profile, [f], parallel=False)
    assert seen and all(t[0] >= pipeline.GC_THRESHOLDS[0] for t in seen)
    assert gc.get_threshold() == before
