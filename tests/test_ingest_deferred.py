"""A large first load builds the secondary indexes after the load (issue #9).

The store holds the same records either way; the indexes are all there when the run
ends, and indexes a killed run left missing are built by the next ingest before it
writes anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select

from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import parse_profile
from crossbeat.store.schema import incident_offences, incidents
from crossbeat.store.spatial import KEPT, deferrable, drop_secondary, missing_secondary
from tests.agency_support import register_for_test
from tests.test_ingest_pipeline import PROFILE, row, write_csv


@pytest.fixture(autouse=True)
def _registered_agencies(request: pytest.FixtureRequest) -> None:
    register_for_test(request, {"cityx": "America/Los_Angeles"})


def _stored(store: Any) -> list[tuple[Any, ...]]:
    with store.connect() as conn:
        recs = conn.execute(
            select(incidents.c.source_id, incidents.c.record_hash, incidents.c.version)
        ).all()
        offs = conn.execute(select(incident_offences.c.local_code)).all()
    return sorted(recs) + sorted(offs)


def _index_names(store: Any) -> set[str]:
    with store.connect() as conn:
        inspector = inspect(conn)
        return {
            str(ix["name"])
            for table in (
                "incidents",
                "incident_offences",
                "incident_jurisdictions",
                "incident_areas",
            )
            for ix in inspector.get_indexes(table)
        }


def test_a_deferred_first_load_stores_the_same_and_ends_with_every_index(
    store: Any, tmp_path: Path
) -> None:
    data = write_csv(tmp_path / "a.csv", [row(i) for i in range(300)])
    profile = parse_profile(PROFILE)
    before = _index_names(store)
    assert {ix.name for ix in deferrable()} <= before and KEPT <= before
    summary = ingest_files(store, "cityx", profile, [data], defer_indexes=True)
    assert summary.new == 300
    assert _index_names(store) == before
    with store.connect() as conn:
        assert missing_secondary(conn) == []
    deferred = _stored(store)
    # The same file again, without deferring: everything unchanged, the same records.
    again = ingest_files(store, "cityx", profile, [data], defer_indexes=False)
    assert again.unchanged == 300 and _stored(store) == deferred


def test_indexes_a_killed_run_left_missing_are_built_by_the_next_ingest(
    store: Any, tmp_path: Path
) -> None:
    profile = parse_profile(PROFILE)
    ingest_files(store, "cityx", profile, [write_csv(tmp_path / "a.csv", [row(1)])])
    before = _index_names(store)
    # What a deferred first load killed by SIGKILL leaves: committed rows, no indexes.
    with store.begin() as conn:
        dropped = drop_secondary(conn)
    assert dropped and not set(dropped) & _index_names(store)
    ingest_files(store, "cityx", profile, [write_csv(tmp_path / "b.csv", [row(2)])])
    assert _index_names(store) == before
