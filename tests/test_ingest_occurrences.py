"""Hash-id occurrence counts stay exact when they move from memory to disk."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select

from crossbeat.ingest import occurrences
from crossbeat.ingest.occurrences import OccurrenceCounter
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import parse_profile
from crossbeat.store.schema import incidents
from tests.agency_support import register_for_test
from tests.test_ingest_pipeline import PROFILE, row, write_csv


@pytest.fixture(autouse=True)
def _registered_agencies(request: pytest.FixtureRequest) -> None:
    """The ingest never registers an agency: register the ones these tests use."""
    register_for_test(request, {"cityx": "America/Los_Angeles"})


def test_counts_are_the_same_in_memory_and_on_disk():
    rng = random.Random(3)
    keys = [rng.randbytes(2) for _ in range(5000)]  # many repeats among 65,536 values
    small, large = OccurrenceCounter(memory_keys=100), OccurrenceCounter(memory_keys=10**9)
    assert [small.next(k) for k in keys] == [large.next(k) for k in keys]
    assert small._disk is not None and not small._counts  # it did move to disk
    small.clear()
    assert small._disk is None and small.next(keys[0]) == 1


def test_ingest_with_spilled_counts_stores_the_same_ids(store, tmp_path, monkeypatch):
    text = PROFILE.replace(
        'columns = ["id"]', 'columns = ["id"]\nfallback = "hash"\nhash_columns = ["code", "beat"]'
    )
    profile = parse_profile(text)
    rows = [row(i, id="") for i in range(300)]  # 4 codes x 7 beats: many repeats
    f = write_csv(tmp_path / "a.csv", rows)
    monkeypatch.setattr(occurrences, "MEMORY_KEYS", 5)
    spills = []
    spill = OccurrenceCounter._spill
    monkeypatch.setattr(OccurrenceCounter, "_spill", lambda self: spills.append(spill(self)))
    first = ingest_files(store, "cityx", profile, [f], parallel=False)
    assert spills  # the counts did move to disk
    assert (first.new, first.quarantined) == (300, 0)
    with store.connect() as conn:
        spilled = sorted(conn.execute(select(incidents.c.source_id)).scalars())
    monkeypatch.setattr(occurrences, "MEMORY_KEYS", 10**9)
    spills.clear()
    again = ingest_files(store, "cityx", profile, [f], parallel=False)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 300)
    assert len(set(spilled)) == 300 and not spills
