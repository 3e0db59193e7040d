"""The ingest pipeline end to end on real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from crossbeat.agencies import register_agency, set_jurisdiction
from crossbeat.cli import cli
from crossbeat.ingest.pipeline import IngestError, ingest_files
from crossbeat.ingest.profile import load_profile, parse_profile
from crossbeat.ingest.quarantine import list_quarantine, retry_quarantine
from crossbeat.model import Agency, incident_id
from crossbeat.store.schema import (
    incident_jurisdictions,
    incident_personal,
    incident_versions,
    incidents,
    quarantine,
)
from crossbeat.store.writes import withdraw_records
from tests.agency_support import register_for_test
from tests.read_support import count_incidents, get_incident


@pytest.fixture(autouse=True)
def _registered_agencies(request: pytest.FixtureRequest) -> None:
    """The ingest never registers an agency: register the ones these tests use."""
    register_for_test(request, {"cityx": "America/Los_Angeles", "cityy": "America/Los_Angeles"})


PROFILE = """
name = "test-feed"
narrative = "narrative"
keep = ["beat"]

[source]
format = "csv"
timezone = "America/Los_Angeles"

[id]
columns = ["id"]

[occurred_from]
column = "when"
formats = ["%Y-%m-%d %H:%M"]

[location]
x = "lon"
y = "lat"
address = "address"

[[offences]]
scheme = "code-nibrs"
code = "code"

[[persons]]
role = "victim"
name = "victim"
"""

HEADER = ["id", "when", "lon", "lat", "address", "code", "victim", "narrative", "beat"]


def row(i: int, **over: str) -> dict[str, str]:
    """Return a valid source row."""
    base = {
        "id": f"R{i}",
        "when": f"2024-03-{1 + i % 28:02d} 1{i % 10}:30",
        "lon": f"{-122.68 + (i % 50) * 0.001:.6f}",
        "lat": f"{45.51 + (i % 40) * 0.001:.6f}",
        "address": f"{100 + i} MAIN ST",
        "code": ["220", "13B", "240", "23F"][i % 4],
        "victim": f"Person {i}",
        "narrative": f"narrative {i}",
        "beat": str(i % 7),
    }
    base.update(over)
    return base


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    """Write rows as CSV with the standard header."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=HEADER)
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def profile(tmp_path):
    p = tmp_path / "feed.toml"
    p.write_text(PROFILE, encoding="utf-8")
    return load_profile(p)


def test_ingest_then_reingest_changes_nothing(store, profile, tmp_path):
    f = write_csv(tmp_path / "a.csv", [row(i) for i in range(25)])
    s1 = ingest_files(store, "cityx", profile, [f])
    assert (s1.rows, s1.new, s1.updated, s1.quarantined) == (25, 25, 0, 0)
    s2 = ingest_files(store, "cityx", profile, [f])
    assert (s2.rows, s2.new, s2.updated, s2.unchanged) == (25, 0, 0, 25)
    assert count_incidents(store, "cityx") == 25
    rec = get_incident(store, "cityx", "R3")
    assert rec is not None
    assert rec["offences"][0]["nibrs_code"] == "23F"
    assert rec["occurred_from"].isoformat() == "2024-03-04T21:30:00+00:00"  # 13:30 PST
    assert rec["h3_9"] and rec["h3_7"] and rec["h3_11"]
    assert rec["attributes"] == {"beat": "3"}


def test_changed_record_becomes_new_version_with_history(store, profile, tmp_path):
    ingest_files(store, "cityx", profile, [write_csv(tmp_path / "a.csv", [row(1), row(2)])])
    s = ingest_files(
        store, "cityx", profile, [write_csv(tmp_path / "b.csv", [row(1, code="120"), row(2)])]
    )
    assert (s.new, s.updated, s.unchanged) == (0, 1, 1)
    rec = get_incident(store, "cityx", "R1")
    assert rec["version"] == 2 and rec["nibrs_code"] == "120"
    with store.connect() as conn:
        hist = (
            conn.execute(
                select(incident_versions).where(
                    incident_versions.c.incident_id == incident_id("cityx", "R1")
                )
            )
            .mappings()
            .all()
        )
    assert len(hist) == 1
    assert hist[0]["version"] == 1
    assert hist[0]["snapshot"]["incident"]["nibrs_code"] == "13B"


def test_bad_rows_are_quarantined_with_every_reason(store, profile, tmp_path):
    rows = [row(0), row(1, when="2024-02-30 10:00", lat="95.0"), row(2, id=""), row(3, code="ZZZ")]
    s = ingest_files(store, "cityx", profile, [write_csv(tmp_path / "a.csv", rows)])
    assert s.rows == 4
    assert s.new + s.quarantined == s.rows
    assert s.quarantined == 2
    assert s.unmapped == 1  # ZZZ stored, flagged, not guessed
    entries = list_quarantine(store, agency_id="cityx")
    assert [e.row_number for e in entries] == [2, 3]
    assert len(entries[0].reasons) >= 2  # the date and the latitude
    assert entries[0].raw["when"] == "2024-02-30 10:00"
    rec = get_incident(store, "cityx", "R3")
    assert rec["unmapped"] and rec["offence_local_code"] == "ZZZ" and rec["nibrs_code"] is None
    # Re-ingesting does not duplicate quarantine entries.
    ingest_files(store, "cityx", profile, [tmp_path / "a.csv"])
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(quarantine)).scalar_one() == 2


def test_invalid_geojson_geometries_are_quarantined_with_a_clear_reason(store, tmp_path):
    prof = parse_profile(
        'name = "geo"\n[source]\nformat = "geojson"\ntimezone = "America/Los_Angeles"\n'
        '[id]\ncolumns = ["id"]\n'
        '[[offences]]\nscheme = "code-nibrs"\ncode = "code"\n'
    )
    geometries = [
        {"type": "Point", "coordinates": [-122.68, 45.51]},
        {"type": "Blob", "coordinates": [1, 2]},  # crashed the ingest (shapely's own error)
        {"type": "Point", "coordinates": [7]},
    ]
    features = [
        {"type": "Feature", "properties": {"id": f"G{i}", "code": "220"}, "geometry": g}
        for i, g in enumerate(geometries)
    ]
    path = tmp_path / "a.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    s = ingest_files(store, "cityx", prof, [path])
    assert (s.rows, s.new, s.quarantined) == (3, 1, 2)
    reasons = [tuple(e.reasons) for e in list_quarantine(store, agency_id="cityx")]
    assert reasons == [
        (
            "location: invalid GeoJSON geometry: type 'Blob' is not a GeoJSON geometry type "
            "(Point, LineString, Polygon ...)",
        ),
        (
            "location: invalid GeoJSON geometry: the Point's coordinates [7] are not a position "
            "[x, y] (two or three numbers)",
        ),
    ]


def test_duplicate_ids_in_one_file(store, profile, tmp_path):
    rows = [row(1), row(2), row(1, code="120")]
    f = write_csv(tmp_path / "a.csv", rows)
    s = ingest_files(store, "cityx", profile, [f], chunk_size=2)
    assert (s.new, s.quarantined) == (2, 1)
    entry = list_quarantine(store, agency_id="cityx")[0]
    assert entry.row_number == 3 and "duplicate source id" in entry.reasons[0]
    s2 = ingest_files(store, "cityx", profile, [f], chunk_size=2)
    assert (s2.new, s2.updated, s2.unchanged, s2.quarantined) == (0, 0, 2, 1)
    assert get_incident(store, "cityx", "R1")["nibrs_code"] == "13B"


def test_quarantine_retry_after_profile_fix(store, tmp_path):
    text = PROFILE.replace('formats = ["%Y-%m-%d %H:%M"]', 'formats = ["%Y-%m-%d %H:%M"]\n')
    p1 = parse_profile(text)
    rows = [row(0), row(1, when="03/05/2024 10:00")]
    f = write_csv(tmp_path / "a.csv", rows)
    s = ingest_files(store, "cityx", p1, [f])
    assert s.quarantined == 1
    p2 = parse_profile(
        text.replace(
            'formats = ["%Y-%m-%d %H:%M"]', 'formats = ["%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M"]'
        )
    )
    res = retry_quarantine(store, p2, agency_id="cityx")
    assert (res.retried, res.stored.new, res.still_quarantined) == (1, 1, 0)
    assert list_quarantine(store, agency_id="cityx") == []
    assert list_quarantine(store, agency_id="cityx", status="resolved")[0].row_number == 2
    assert get_incident(store, "cityx", "R1") is not None


def test_withdraw_and_expunge(store, profile, tmp_path):
    f = write_csv(tmp_path / "a.csv", [row(i) for i in range(4)])
    ingest_files(store, "cityx", profile, [f])
    res = withdraw_records(store, "cityx", ["R1", "nope"], reason="unfounded")
    assert res.changed == ["R1"] and res.unknown == ["nope"]
    assert get_incident(store, "cityx", "R1") is None
    res = withdraw_records(store, "cityx", ["R2"], expunge_records=True, reason="court order")
    assert res.changed == ["R2"]
    s = ingest_files(store, "cityx", profile, [f])
    assert (s.new, s.updated, s.unchanged, s.expunged) == (0, 0, 3, 1)
    assert get_incident(store, "cityx", "R1") is None  # still withdrawn
    assert get_incident(store, "cityx", "R2") is None  # never comes back
    with store.connect() as conn:
        ids = set(conn.execute(select(incident_personal.c.incident_id)).scalars())
    assert incident_id("cityx", "R2") not in ids
    assert count_incidents(store) == 2


def test_jurisdictions_tag_every_containing_agency(store, profile, tmp_path):
    register_agency(store, Agency("cityx", "City X", timezone="America/Los_Angeles"))
    register_agency(store, Agency("transit", "Transit"))
    box = {
        "type": "Polygon",
        "coordinates": [
            [[-122.7, 45.5], [-122.6, 45.5], [-122.6, 45.6], [-122.7, 45.6], [-122.7, 45.5]]
        ],
    }
    strip = {
        "type": "Polygon",
        "coordinates": [
            [[-122.7, 45.5], [-122.675, 45.5], [-122.675, 45.6], [-122.7, 45.6], [-122.7, 45.5]]
        ],
    }
    set_jurisdiction(store, "cityx", "city", box)
    set_jurisdiction(store, "transit", "lines", strip)
    f = write_csv(tmp_path / "a.csv", [row(0), row(30), row(1, lon="-122.55")])
    ingest_files(store, "cityx", profile, [f])
    with store.connect() as conn:
        tags = {
            (r.incident_id, r.agency_id, r.basis)
            for r in conn.execute(select(incident_jurisdictions))
        }
    r0, r30, r1 = (incident_id("cityx", f"R{i}") for i in (0, 30, 1))
    assert {(r0, "cityx", "polygon"), (r0, "transit", "polygon")} <= tags
    assert (r30, "cityx", "polygon") in tags and (r30, "transit", "polygon") not in tags
    assert (r1, "cityx", "reporter") in tags


def test_profile_for_another_agency_is_refused(store, tmp_path):
    p = parse_profile(PROFILE.replace('name = "test-feed"', 'name = "test-feed"\nagency = "other"'))
    with pytest.raises(IngestError, match="--agency other"):
        ingest_files(store, "cityx", p, [write_csv(tmp_path / "a.csv", [row(0)])])


def test_profile_not_matching_file_stores_nothing(store, profile, tmp_path):
    f = tmp_path / "wrong.csv"
    f.write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    with pytest.raises(IngestError):
        ingest_files(store, "cityx", profile, [f])
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(incidents)).scalar_one() == 0


def test_cli_ingest_json(db_url, tmp_path):
    prof = tmp_path / "feed.toml"
    prof.write_text(PROFILE, encoding="utf-8")
    f = write_csv(tmp_path / "a.csv", [row(i) for i in range(5)] + [row(9, lat="abc")])
    args = ["ingest", "--db", db_url, "--agency", "cityx", "--profile", str(prof), str(f), "--json"]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert {
        k: data[k] for k in ("rows", "new", "updated", "unchanged", "quarantined", "unmapped")
    } == {
        "rows": 6,
        "new": 5,
        "updated": 0,
        "unchanged": 0,
        "quarantined": 1,
        "unmapped": 0,
    }
    again = json.loads(CliRunner().invoke(cli, args).output)
    assert (again["new"], again["updated"], again["unchanged"]) == (0, 0, 5)


def test_cli_errors_name_the_next_step(db_url, tmp_path):
    out = CliRunner().invoke(
        cli,
        [
            "ingest",
            "--db",
            db_url,
            "--agency",
            "cityx",
            "--profile",
            str(tmp_path / "nope.toml"),
            "x.csv",
        ],
    )
    assert out.exit_code != 0 and "profile file not found" in out.output


def test_boundary_change_and_retag_are_one_transaction(store, profile, tmp_path):
    from crossbeat.agencies import AgencyError, set_jurisdictions

    register_agency(store, Agency("cityx", "City X", timezone="America/Los_Angeles"))
    ingest_files(store, "cityx", profile, [write_csv(tmp_path / "a.csv", [row(0), row(1)])])
    good = {
        "type": "Polygon",
        "coordinates": [
            [[-122.7, 45.5], [-122.6, 45.5], [-122.6, 45.6], [-122.7, 45.6], [-122.7, 45.5]]
        ],
    }
    bad = {"type": "Point", "coordinates": [0, 0]}
    with pytest.raises(AgencyError, match="Polygon"):
        set_jurisdictions(store, "cityx", [("a", good), ("b", bad)])
    with store.connect() as conn:
        bases = {r.basis for r in conn.execute(select(incident_jurisdictions))}
        from crossbeat.store.schema import jurisdictions

        assert conn.execute(select(func.count()).select_from(jurisdictions)).scalar_one() == 0
    assert bases == {"reporter"}  # nothing changed
    set_jurisdictions(store, "cityx", [("a", good)])
    with store.connect() as conn:
        assert {r.basis for r in conn.execute(select(incident_jurisdictions))} == {"polygon"}


def test_a_file_the_profile_cannot_read_stores_nothing(store, profile, tmp_path):
    good = write_csv(tmp_path / "good.csv", [row(0)])
    bad = tmp_path / "bad.csv"
    bad.write_text("incident,date\n1,2024-01-01\n", encoding="utf-8")
    with pytest.raises(IngestError, match="lacks|missing|column"):
        ingest_files(store, "cityx", profile, [good, bad])
    assert count_incidents(store) == 0  # the good file before it was not ingested either


def test_an_unknown_agency_is_refused_and_not_registered(store, profile, tmp_path):
    from crossbeat.agencies import list_agencies

    good = write_csv(tmp_path / "good.csv", [row(0)])
    with pytest.raises(IngestError, match="unknown agency 'typoagency'.*cityx"):
        ingest_files(store, "typoagency", profile, [good])
    assert [a.id for a in list_agencies(store)] == ["cityx", "cityy"]
    assert count_incidents(store) == 0


def test_hash_file_name_keeps_identical_rows_of_two_files_apart(store, tmp_path):
    text = PROFILE.replace(
        'columns = ["id"]',
        'columns = ["id"]\nfallback = "hash"\n'
        'hash_columns = ["when", "code"]\nhash_file_name = true',
    )
    p = parse_profile(text)
    rows = [row(0, id=""), row(0, id="")]  # two identical rows without an id
    a = write_csv(tmp_path / "train.csv", rows)
    b = write_csv(tmp_path / "test.csv", rows[:1])
    s = ingest_files(store, "cityx", p, [a, b])
    assert (s.rows, s.new, s.unchanged) == (3, 3, 0)
    again = ingest_files(store, "cityx", p, [a, b])
    assert (again.new, again.updated, again.unchanged) == (0, 0, 3)
    without = parse_profile(text.replace("hash_file_name = true", ""))
    fresh = ingest_files(store, "cityy", without, [a, b])
    assert (fresh.new, fresh.unchanged) == (2, 1)  # the same hash and number: one record


def test_retry_gives_a_hash_id_row_the_id_it_had_in_its_file(store, tmp_path):
    text = PROFILE.replace(
        'columns = ["id"]',
        'columns = ["id"]\nfallback = "hash"\nhash_columns = ["code", "address"]',
    )
    p1 = parse_profile(text)
    # Three rows alike in the hashed columns: ids h-...-1, -2, -3; the second has a bad date.
    rows = [row(0, id=""), row(0, id="", when="03/05/2024 10:00"), row(0, id="")]
    f = write_csv(tmp_path / "a.csv", rows)
    s = ingest_files(store, "cityx", p1, [f])
    assert (s.new, s.quarantined) == (2, 1)
    p2 = parse_profile(text.replace('["%Y-%m-%d %H:%M"]', '["%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M"]'))
    res = retry_quarantine(store, p2, agency_id="cityx")
    assert (res.stored.new, res.still_quarantined) == (1, 0)
    with store.connect() as conn:
        ids = sorted(conn.execute(select(incidents.c.source_id)).scalars())
    assert [i.rsplit("-", 1)[1] for i in ids] == ["1", "2", "3"]
    # The fixed profile on the whole file now finds all three stored.
    again = ingest_files(store, "cityx", p2, [f])
    assert (again.new, again.updated, again.unchanged) == (0, 0, 3)
