"""Reading quarantined rows is audited: the owner agency sees who looked (issue #3)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from crossbeat.audit import events_for_owner, iter_events, verify
from crossbeat.cli import cli
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import parse_profile
from crossbeat.sharing.quarantine import read_quarantine
from crossbeat.store import Store
from tests.agency_support import register_for_test
from tests.test_ingest_pipeline import PROFILE, row, write_csv


@pytest.fixture(autouse=True)
def _registered_agencies(request: pytest.FixtureRequest) -> None:
    """The ingest never registers an agency: register the ones these tests use."""
    register_for_test(request, {"cityx": "America/Los_Angeles", "cityy": "America/Los_Angeles"})


PACKAGE = Path(__file__).resolve().parents[1] / "crossbeat"


def _quarantine_two_agencies(store: Store, tmp_path: Path) -> None:
    """Ingest a feed with two bad rows for cityx and one for cityy."""
    profile = parse_profile(PROFILE)
    bad = [row(0), row(1, when="2024-02-30 10:00"), row(2, lat="95.0")]
    ingest_files(store, "cityx", profile, [write_csv(tmp_path / "x.csv", bad)])
    ingest_files(store, "cityy", profile, [write_csv(tmp_path / "y.csv", bad[:2])])


def test_cli_quarantine_list_writes_a_read_event_for_the_owner(store, db_url, tmp_path):
    _quarantine_two_agencies(store, tmp_path)
    before = list(iter_events(store))
    out = CliRunner().invoke(
        cli, ["quarantine", "list", "--agency", "cityx", "--json", "--db", db_url]
    )
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)["entries"]
    assert len(shown) == 2
    new = list(iter_events(store))[len(before) :]
    assert [(e.action.value, e.actor, e.owner_agencies, e.resource_type) for e in new] == [
        ("read", "system", ("cityx",), "quarantine")
    ]
    assert new[0].record_count == 2
    assert new[0].details["quarantine_ids"] == [e["id"] for e in shown]
    assert new[0].details["request"] == {
        "agency": "cityx",
        "status": "open",
        "limit": 50,
        "offset": 0,
    }
    # The owner's access log shows it; the other agency's does not.
    assert new[0].seq in [e.seq for e in events_for_owner(store, "cityx", action="read")]
    assert not events_for_owner(store, "cityy", action="read")
    assert verify(store).ok


def test_one_event_per_owner_and_empty_reads_are_recorded(store, tmp_path):
    _quarantine_two_agencies(store, tmp_path)
    entries = read_quarantine(store, status=None, limit=None)
    assert sorted(e.agency_id for e in entries) == ["cityx", "cityx", "cityy"]
    reads = [e for e in iter_events(store) if e.resource_type == "quarantine"]
    assert [(e.owner_agencies, e.record_count) for e in reads] == [
        (("cityx",), 2),
        (("cityy",), 1),
    ]
    assert read_quarantine(store, agency_id="cityy", status="dismissed") == []
    last = [e for e in iter_events(store) if e.resource_type == "quarantine"][-1]
    assert (last.owner_agencies, last.record_count) == (("cityy",), 0)


def test_only_the_ingest_and_the_audited_read_unseal_the_quarantine() -> None:
    """Nothing that shows rows to a person may call the unaudited list_quarantine."""
    allowed = {"ingest/quarantine.py", "sharing/quarantine.py"}
    callers = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        if "list_quarantine" in names:
            callers.add(str(path.relative_to(PACKAGE)))
    assert callers <= allowed, f"unaudited quarantine reads in {sorted(callers - allowed)}"
