"""Update feeds (``kind = "updates"``): dated status/disposition changes to stored incidents.

On both backends: an update applies only when newer (date, then row), each change
is a version, files may come in any order and again, an update for an unknown
incident waits in quarantine until retried, and the incident feed never undoes it.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from crossbeat.cli import cli
from crossbeat.ingest.check import check_profile
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import ProfileError, parse_profile
from crossbeat.ingest.quarantine import list_quarantine, retry_quarantine
from crossbeat.model import incident_id
from crossbeat.store.schema import incident_versions
from crossbeat.store.writes import withdraw_records
from tests.agency_support import register_for_test
from tests.read_support import get_incident
from tests.test_ingest_pipeline import PROFILE, row, write_csv


@pytest.fixture(autouse=True)
def _registered_agencies(request: pytest.FixtureRequest) -> None:
    """The ingest never registers an agency: register the ones these tests use."""
    register_for_test(request, {"cityx": "America/Los_Angeles"})


UPDATES = """
name = "test-outcomes"
kind = "updates"
disposition = "outcome"
status = "state"

[source]
format = "csv"
timezone = "America/Los_Angeles"  # the incident feed's, and the agency's

[id]
columns = ["crime"]

[as_of]
column = "month"
formats = ["year_month"]
"""


def outcomes(path: Path, rows: list[tuple[str, str, str] | tuple[str, str, str, str]]) -> Path:
    """Write an outcomes file: (crime id, month, outcome[, state]) per row."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["crime", "month", "outcome", "state"])
        for r in rows:
            w.writerow([*r, ""] if len(r) == 3 else r)
    return path


@pytest.fixture
def crimes(store, tmp_path):
    """Three stored incidents R0..R2 with disposition 'open', and the incident profile."""
    incident_profile = parse_profile(PROFILE.replace('keep = ["beat"]', 'disposition = "beat"'))
    rows = [row(i, beat="open") for i in range(3)]
    f = write_csv(tmp_path / "crimes.csv", rows)
    s = ingest_files(store, "cityx", incident_profile, [f])
    assert s.new == 3
    return incident_profile, f


def disposition(store, source_id: str) -> str | None:
    rec = get_incident(store, "cityx", source_id)
    assert rec is not None
    return rec["disposition"]


def versions(store, source_id: str) -> list[int]:
    with store.connect() as conn:
        return list(
            conn.execute(
                select(incident_versions.c.version)
                .where(incident_versions.c.incident_id == incident_id("cityx", source_id))
                .order_by(incident_versions.c.version)
            ).scalars()
        )


def test_updates_apply_newest_and_keep_history(store, crimes, tmp_path):
    profile = parse_profile(UPDATES)
    f = outcomes(
        tmp_path / "out.csv",
        [
            ("R0", "2024-04", "Suspect charged"),
            ("R0", "2024-06", "Offender fined"),
            ("R0", "2024-05", "Awaiting court outcome"),  # older than the one above: stale
            ("R1", "2024-04", "Under investigation"),
            ("R1", "2024-04", "No further action"),  # same month, later row: wins
            ("R2", "2024-04", "open"),  # confirms the stored value: only dated
        ],
    )
    s = ingest_files(store, "cityx", profile, [f])
    assert (s.rows, s.new, s.updated, s.unchanged, s.quarantined) == (6, 0, 4, 2, 0)
    assert disposition(store, "R0") == "Offender fined"
    assert disposition(store, "R1") == "No further action"
    assert disposition(store, "R2") == "open"
    assert versions(store, "R0") == [1, 2]  # open -> charged -> fined
    assert versions(store, "R2") == []
    assert get_incident(store, "cityx", "R0")["version"] == 3

    again = ingest_files(store, "cityx", profile, [f])
    assert (again.new, again.updated, again.unchanged) == (0, 0, 6)


def test_order_of_files_does_not_matter(store, crimes, tmp_path):
    profile = parse_profile(UPDATES)
    early = outcomes(tmp_path / "early.csv", [("R0", "2024-04", "Suspect charged")])
    late = outcomes(
        tmp_path / "late.csv",
        [("R0", "2024-07", "Offender sent to prison"), ("R1", "2024-07", "Offender fined")],
    )
    s1 = ingest_files(store, "cityx", profile, [late])
    s2 = ingest_files(store, "cityx", profile, [early])
    assert (s1.updated, s2.updated, s2.unchanged) == (2, 0, 1)
    assert disposition(store, "R0") == "Offender sent to prison"
    assert disposition(store, "R1") == "Offender fined"


def test_incident_feed_does_not_undo_an_update(store, crimes, tmp_path):
    incident_profile, crime_file = crimes
    ingest_files(
        store,
        "cityx",
        parse_profile(UPDATES),
        [outcomes(tmp_path / "o.csv", [("R0", "2024-05", "Suspect charged")])],
    )
    again = ingest_files(store, "cityx", incident_profile, [crime_file])
    assert (again.new, again.updated, again.unchanged) == (0, 0, 3)
    assert disposition(store, "R0") == "Suspect charged"
    # A real change to the incident makes a version and keeps the dated disposition.
    changed = write_csv(
        tmp_path / "crimes2.csv",
        [row(0, beat="open", code="13A"), row(1, beat="open"), row(2, beat="open")],
    )
    s = ingest_files(store, "cityx", incident_profile, [changed])
    assert (s.updated, s.unchanged) == (1, 2)
    rec = get_incident(store, "cityx", "R0")
    assert rec["nibrs_code"] == "13A" and rec["disposition"] == "Suspect charged"


def test_status_and_disposition_are_dated_separately(store, crimes, tmp_path):
    profile = parse_profile(UPDATES)
    f = outcomes(
        tmp_path / "o.csv",
        [("R0", "2024-05", "Suspect charged", "closed"), ("R0", "2024-06", "Offender fined", "")],
    )
    s = ingest_files(store, "cityx", profile, [f])
    assert s.updated == 2
    rec = get_incident(store, "cityx", "R0")
    assert (rec["status"], rec["disposition"]) == ("closed", "Offender fined")


def test_unknown_incident_waits_in_quarantine_then_retry_applies(store, crimes, tmp_path):
    incident_profile, _ = crimes
    profile = parse_profile(UPDATES)
    f = outcomes(
        tmp_path / "o.csv",
        [("R0", "2024-05", "Suspect charged"), ("R9", "2024-05", "Offender fined")],
    )
    s = ingest_files(store, "cityx", profile, [f])
    assert (s.rows, s.updated, s.quarantined) == (2, 1, 1)
    (entry,) = list_quarantine(store, agency_id="cityx")
    assert entry.row_number == 2 and "no incident with source id 'R9'" in entry.reasons[0]
    assert "quarantine retry" in entry.reasons[0]
    # Re-ingesting leaves it waiting, once.
    s2 = ingest_files(store, "cityx", profile, [f])
    assert (s2.updated, s2.unchanged, s2.quarantined) == (0, 1, 1)
    assert len(list_quarantine(store, agency_id="cityx")) == 1

    ingest_files(store, "cityx", incident_profile, [write_csv(tmp_path / "r9.csv", [row(9)])])
    # A retry with another feed's profile leaves the entry alone and says so.
    other = retry_quarantine(store, incident_profile, agency_id="cityx")
    assert other.retried == 0 and other.other_profiles == {"test-outcomes": 1}
    res = retry_quarantine(store, profile, agency_id="cityx")
    assert (res.retried, res.stored.updated, res.still_quarantined) == (1, 1, 0)
    assert disposition(store, "R9") == "Offender fined"
    assert list_quarantine(store, agency_id="cityx") == []


def test_bad_update_rows_are_quarantined_with_reasons(store, crimes, tmp_path):
    profile = parse_profile(UPDATES)
    f = outcomes(
        tmp_path / "o.csv",
        [
            ("R0", "2024-13", "Suspect charged"),
            ("", "2024-05", "Suspect charged"),
            ("R1", "", "Suspect charged"),
            ("R2", "2024-05", ""),
        ],
    )
    before = [get_incident(store, "cityx", f"R{i}") for i in range(3)]
    s = ingest_files(store, "cityx", profile, [f])
    assert (s.rows, s.quarantined, s.updated) == (4, 4, 0)
    reasons = {e.row_number: " ".join(e.reasons) for e in list_quarantine(store, agency_id="cityx")}
    assert "as_of" in reasons[1] and "2024-13" in reasons[1]
    assert "id" in reasons[2]
    assert "as_of" in reasons[3] and "blank" in reasons[3]
    assert "nothing to update" in reasons[4]
    assert [get_incident(store, "cityx", f"R{i}") for i in range(3)] == before


def test_update_of_expunged_or_withdrawn_incident(store, crimes, tmp_path):
    withdraw_records(store, "cityx", ["R1"], expunge_records=True, reason="court order")
    withdraw_records(store, "cityx", ["R2"], reason="duplicate")
    f = outcomes(
        tmp_path / "o.csv",
        [("R1", "2024-05", "Suspect charged"), ("R2", "2024-05", "Suspect charged")],
    )
    s = ingest_files(store, "cityx", parse_profile(UPDATES), [f])
    assert (s.expunged, s.updated, s.quarantined) == (1, 1, 0)
    assert get_incident(store, "cityx", "R1") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace('[as_of]\ncolumn = "month"\nformats = ["year_month"]\n', ""), "as_of"),
        (lambda t: t.replace('disposition = "outcome"\nstatus = "state"\n', ""), "status or"),
        (lambda t: t + '\n[[offences]]\nscheme = "police-uk"\ncode = "x"\n', "offences"),
        (
            lambda t: t.replace('columns = ["crime"]', 'fallback = "hash"\nhash_columns = ["x"]'),
            "id",
        ),
        (lambda t: t.replace('kind = "updates"', 'kind = "deltas"'), "kind"),
    ],
)
def test_invalid_update_profiles_are_refused(change, message):
    with pytest.raises(ProfileError, match=message):
        parse_profile(change(UPDATES))


def test_incident_profile_needs_offences_and_no_as_of():
    no_offences = PROFILE[: PROFILE.index("[[offences]]")] + PROFILE[PROFILE.index("[[persons]]") :]
    with pytest.raises(ProfileError, match="offences"):
        parse_profile(no_offences)
    with pytest.raises(ProfileError, match="as_of"):
        parse_profile(PROFILE + '\n[as_of]\ncolumn = "when"\n')


def test_profile_check_shows_updates(tmp_path):
    f = outcomes(tmp_path / "o.csv", [("R0", "2024-05", "Suspect charged"), ("R1", "x", "y")])
    report = check_profile(parse_profile(UPDATES), f, agency_id="cityx")
    assert report.matches
    assert report.actions == {"update": 1} and report.rejected == 1
    first = report.rows[0].stored
    assert first["source_id"] == "R0" and first["disposition"] == "Suspect charged"
    assert first["as_of"].startswith("2024-05-01") and first["time_precision"] == "month"


def test_cli_ingest_of_update_feed(db_url, crimes, tmp_path):
    (tmp_path / "o.toml").write_text(UPDATES, encoding="utf-8")
    f = outcomes(tmp_path / "o.csv", [("R0", "2024-05", "Suspect charged")])
    args = ["ingest", "--db", db_url, "--agency", "cityx", "--profile", str(tmp_path / "o.toml")]
    res = CliRunner().invoke(cli, [*args, "--json", str(f)])
    assert res.exit_code == 0, res.output
    assert '"updated": 1' in res.output
    res = CliRunner().invoke(cli, ["profile", "check", str(tmp_path / "o.toml"), str(f)])
    assert res.exit_code == 0, res.output
    assert "would store: 1 update" in res.output and "Suspect" in res.output
