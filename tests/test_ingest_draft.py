"""`crossbeat profile draft`: draft profiles for small generated exports of every kind."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from crossbeat.cli import cli
from crossbeat.clock import FrozenClock
from crossbeat.ingest.check import check_profile
from crossbeat.ingest.draft import Draft, DraftError, draft_profile
from crossbeat.ingest.draft.render import Section, render
from crossbeat.ingest.profile import parse_profile

CLOCK = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(textwrap.dedent(text).lstrip().encode(encoding))
    return path


def draft(path: Path, **kwargs: object) -> Draft:
    """Draft, and assert what every draft must be: valid, and matching its file.

    A draft with TODOs is refused by ``profile check`` (and the ingest) for them only.
    """
    result = draft_profile(path, clock=CLOCK, **kwargs)  # type: ignore[arg-type]
    assert parse_profile(result.text).model_dump() == result.profile.model_dump()
    report = check_profile(result.profile, path, agency_id="testpd", clock=CLOCK)
    assert report.todos == list(result.profile.open_todos)
    assert dataclasses.replace(report, todos=[]).matches, report.as_dict()
    assert report.matches == (not report.todos)
    assert result.checked == report.total and result.stored == report.total - report.rejected
    return result


def todos(result: Draft) -> str:
    return "\n".join(f"{f.key}: {f.message}" for f in result.todos)


def csv_rows(header: str, rows: list[str]) -> str:
    return header + "\n" + "\n".join(rows) + "\n"


# -- coordinates -------------------------------------------------------------------------
STATE_PLANE = csv_rows(
    "INCIDENT_ID,REPORTED,OFFENSE,X_COORD,Y_COORD",
    [
        f"P-{i:04d},2024-03-{1 + i % 28:02d} 10:{i % 60:02d},{('13A', '220', '23H')[i % 3]},"
        f"{7_641_000 + 137 * i:.1f},{681_000 + 91 * i:.1f}"
        for i in range(40)
    ],
)


def test_state_plane_coordinates_are_left_for_a_person_never_guessed(tmp_path: Path) -> None:
    result = draft(write(tmp_path, "rms.csv", STATE_PLANE))
    loc = result.profile.location
    assert loc.x is None and loc.y is None  # commented out: rows store without a point
    assert result.profile.source.crs == "EPSG:4326"  # the default, not a guess
    assert '# x = "X_COORD"' in result.text and '# y = "Y_COORD"' in result.text
    assert "US State Plane" in todos(result) and "EPSG:2913" in todos(result)
    assert result.stored == 40
    assert result.profile.id.columns == ["INCIDENT_ID"] and result.profile.id.fallback == "error"
    assert result.profile.offences[0].scheme == "code-nibrs"


def test_british_national_grid_is_decided_with_a_london_time_zone(tmp_path: Path) -> None:
    text = csv_rows(
        "crime_ref,date,crime_type,easting,northing",
        [f"R{i},2024-01-{1 + i % 28:02d},Burglary,{530_000 + i},{180_000 + i}" for i in range(30)],
    )
    result = draft(write(tmp_path, "met.csv", text), timezone="Europe/London")
    assert result.profile.source.crs == "EPSG:27700"
    assert (result.profile.location.x, result.profile.location.y) == ("easting", "northing")
    assert result.profile.source.timezone == "Europe/London"
    assert result.stored == 30
    first = check_profile(result.profile, tmp_path / "met.csv", agency_id="x", limit=1)
    stored = first.rows[0].stored
    assert stored is not None and 51 < stored["lat"] < 52 and -1 < stored["lon"] < 0


def test_geojson_uses_the_geometry_and_guesses_the_zone_from_offsets(tmp_path: Path) -> None:
    features = []
    for i in range(24):
        offset = "-08:00" if i % 2 else "-07:00"
        month = "01" if i % 2 else "07"
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [-122.6 + i / 1000, 45.5]},
                "properties": {
                    "case_number": f"G-{i}",
                    "occurred": f"2025-{month}-{1 + i:02d}T21:30:00{offset}",
                    "offense": ("Burglary", "Robbery", "Shoplifting")[i % 3],
                    "details": {"beat": f"B{i % 4}"},
                },
            }
        )
    path = tmp_path / "cad.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, indent=1))
    result = draft(path)
    prof = result.profile
    assert prof.source.format == "geojson" and prof.location.x is None
    assert prof.source.timezone == "America/Los_Angeles"
    assert "-08:00, -07:00" in result.text
    assert prof.id.columns == ["case_number"]
    assert prof.occurred_from is not None and prof.occurred_from.column == "occurred"
    assert prof.occurred_from.formats == ["iso"]
    assert (prof.offences[0].scheme, prof.offences[0].code) == ("police-uk", "offense")
    assert "details.beat" in result.text  # nested properties by dotted name
    assert result.stored == 24


def test_geojson_with_a_declared_crs(tmp_path: Path) -> None:
    doc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2913"}},
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [7_641_000 + i, 681_000 + i]},
                "properties": {"incident_id": f"C{i}", "offense": "23H", "date": "2025-01-02"},
            }
            for i in range(5)
        ],
    }
    path = tmp_path / "county.geojson"
    path.write_text(json.dumps(doc))
    result = draft(path)
    assert result.profile.source.crs == "EPSG:2913"
    assert result.stored == 5


# -- JSON flavours -----------------------------------------------------------------------
def test_json_lines_with_epoch_ms_and_nested_objects(tmp_path: Path) -> None:
    start = 1_700_000_000_000
    lines = [
        json.dumps(
            {
                "event": {"uid": f"E{i}", "ts_ms": start + i * 3_600_000},
                "where": {"lat": 51.5 + i / 1000, "lon": -0.1},
                "category": ("Robbery", "Burglary")[i % 2],
            }
        )
        for i in range(30)
    ]
    result = draft(write(tmp_path, "events.jsonl", "\n".join(lines) + "\n"))
    prof = result.profile
    assert prof.source.format == "jsonl"
    assert prof.id.columns == ["event.uid"]
    assert prof.occurred_from is not None
    assert (prof.occurred_from.column, prof.occurred_from.formats) == ("event.ts_ms", ["epoch_ms"])
    assert (prof.location.x, prof.location.y) == ("where.lon", "where.lat")
    assert prof.offences[0].scheme == "police-uk"
    assert result.stored == 30


def test_json_object_with_a_records_key(tmp_path: Path) -> None:
    records = [
        {"id": f"J{i}", "date": f"2024-05-{1 + i:02d}", "offense_code": "13B"} for i in range(10)
    ]
    doc = {"meta": {"count": 10}, "result": {"records": records}}
    path = tmp_path / "api.json"
    path.write_text(json.dumps(doc, indent=2))
    result = draft(path)
    assert result.profile.source.format == "json"
    assert result.profile.source.records_key == "result.records"
    assert result.profile.id.columns == ["id"]
    assert result.stored == 10


# -- delimiters, encodings, dates ---------------------------------------------------------
def test_semicolon_csv_in_cp1252_with_day_first_dates(tmp_path: Path) -> None:
    text = csv_rows(
        "Aktenzeichen;Tatzeit;Delikt;Straße;Lat;Lon",
        [
            f"A-{i};{13 + i % 15:02d}.02.2024 22:{i:02d};Einbruch;Hauptstraße {i};48.1;11.5"
            for i in range(20)
        ],
    )
    result = draft(write(tmp_path, "export.csv", text, encoding="cp1252"))
    prof = result.profile
    assert (prof.source.delimiter, prof.source.encoding) == (";", "cp1252")
    assert prof.occurred_from is not None
    assert prof.occurred_from.formats == ["%d.%m.%Y %H:%M"]
    assert "day/month/year" in result.text
    assert prof.id.columns == ["Aktenzeichen"]  # unique and code-like, though not named id
    assert '"Straße"' in result.text  # the column, named exactly as read
    assert result.stored == 20


def test_tab_separated_with_separate_date_and_time_columns(tmp_path: Path) -> None:
    text = csv_rows(
        "CASE_NO\tOCC_DATE\tOCC_TIME\tRPT_DATE\tOFFENSE\tLAT\tLON",
        [
            f"26-{i:04d}\t07/{4 + i % 20:02d}/2025\t{i % 24:02d}{i * 7 % 60:02d}\t07/25/2025\t13B"
            "\t45.51\t-122.67"
            for i in range(25)
        ],
    )
    result = draft(write(tmp_path, "rms.tsv", text))
    prof = result.profile
    assert prof.source.delimiter == "\t"
    assert prof.occurred_from is not None
    assert (prof.occurred_from.date_column, prof.occurred_from.time_column) == (
        "OCC_DATE",
        "OCC_TIME",
    )
    assert prof.occurred_from.formats == ["%m/%d/%Y"]
    assert prof.occurred_from.time_formats == ["%H%M"]
    assert prof.reported_at is not None and prof.reported_at.column == "RPT_DATE"
    assert result.stored == 25


def test_ambiguous_day_month_order_is_a_todo(tmp_path: Path) -> None:
    text = csv_rows(
        "id,date,offense",
        [f"X{i},{1 + i % 12:02d}/{1 + i % 12:02d}/2024,13A" for i in range(12)],
    )
    path = write(tmp_path, "a.csv", text)
    us = draft(path)
    assert us.profile.occurred_from is not None
    assert us.profile.occurred_from.formats == ["%m/%d/%Y"]
    assert "order cannot be told" in todos(us)
    uk = draft(path, timezone="Europe/London")
    assert uk.profile.occurred_from is not None
    assert uk.profile.occurred_from.formats == ["%d/%m/%Y"]


def test_month_only_dates(tmp_path: Path) -> None:
    text = csv_rows(
        "Crime ID,Month,Crime type", [f"c{i},2020-0{1 + i % 9},Drugs" for i in range(9)]
    )
    result = draft(write(tmp_path, "street.csv", text))
    assert result.profile.occurred_from is not None
    assert result.profile.occurred_from.formats == ["year_month"]


# -- ids, personal data, offences ----------------------------------------------------------
def test_without_an_id_column_rows_get_hash_ids_never_from_personal_columns(
    tmp_path: Path,
) -> None:
    text = csv_rows(
        "occurred,offense,address,victim_name,victim_age,notes,lat,lon",
        [
            f"2024-02-{1 + i % 28:02d} 08:00,{('13A', '13B')[i % 2]},{100 + i} MAIN ST,"
            f"Person {i},{20 + i},Victim was walking home when the suspect approached {i},"
            "38.5,-121.5"
            for i in range(30)
        ],
    )
    result = draft(write(tmp_path, "noid.csv", text))
    ident = result.profile.id
    assert ident.columns == [] and ident.fallback == "hash"
    assert ident.hash_columns and not {"victim_name", "victim_age", "notes"} & set(
        ident.hash_columns
    )
    assert result.profile.narrative == "notes"
    assert result.profile.persons[0].role.value == "victim"
    assert result.profile.persons[0].name == "victim_name"
    assert "victim_name" not in result.profile.keep
    assert result.stored == 30


def test_offence_codes_no_crosswalk_maps_name_the_crosswalk_to_create(tmp_path: Path) -> None:
    codes = ("BURG-RES", "THEFT-VEH", "ASLT-SMP", "VAND", "DUI-1")
    text = csv_rows(
        "INCIDENT_NO,DATE,OFFENSE_CODE,OFFENSE_DESC",
        [f"I{i},2024-01-0{1 + i % 9},{codes[i % 5]},Description {codes[i % 5]}" for i in range(20)],
    )
    result = draft(write(tmp_path, "local.csv", text), agency="testpd")
    todo = todos(result)
    assert "crossbeat taxonomy suggest" in todo and "crosswalks/testpd-local.toml" in todo
    offence = result.profile.offences[0]
    assert (offence.code, offence.description) == ("OFFENSE_CODE", "OFFENSE_DESC")
    assert result.profile.agency == "testpd"
    assert result.stored == 20  # stored unmapped and flagged


def test_single_offence_extract_takes_its_offence_from_the_file_name(tmp_path: Path) -> None:
    text = csv_rows(
        "uid,date_start,date_end,latitude,longitude",
        [f"{i},2014-01-01 01:{i:02d},2014-01-01 02:{i:02d},40.7,-73.9" for i in range(20)],
    )
    result = draft(write(tmp_path, "vehicle-thefts.csv", text))
    prof = result.profile
    assert (prof.offences[0].scheme, prof.offences[0].constant) == ("code-nibrs", "240")
    assert prof.occurred_to is not None and prof.occurred_to.column == "date_end"


def test_an_outcomes_file_becomes_an_update_feed(tmp_path: Path) -> None:
    text = csv_rows(
        "Crime ID,Month,Outcome type",
        [f"c{i % 7},2020-0{1 + i % 9},Suspect charged" for i in range(20)],
    )
    result = draft(write(tmp_path, "outcomes.csv", text))
    prof = result.profile
    assert prof.kind == "updates" and prof.disposition == "Outcome type"
    assert prof.id.columns == ["Crime ID"] and prof.as_of is not None


def test_column_names_that_need_quoting_round_trip(tmp_path: Path) -> None:
    text = 'id,"Crime ""type""",back\\slash,Month\n' + "".join(
        f"{i},Burglary,x{i},2020-01\n" for i in range(5)
    )
    result = draft(write(tmp_path, "q.csv", text))
    assert result.profile.offences[0].code == 'Crime "type"'


def test_render_writes_commented_out_keys_and_wraps_long_comments() -> None:
    section = Section("location")
    section.add("x", "X", "TODO: " + "long words " * 20, off=True)
    text = render([Section(""), section], ["preamble"])
    assert '# x = "X"' in text and all(len(line) <= 92 for line in text.splitlines())


# -- bad input ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content,expected",
    [
        (None, "file not found"),
        (b"", "is empty (0 bytes)"),
        (b"PK\x03\x04" + bytes(range(256)) * 4, "ZIP archive"),
        (bytes(range(256)) * 8, "binary"),
        (b"a,b,c\n", "no readable records"),
    ],
    ids=["missing", "empty", "zip", "binary", "header-only"],
)
def test_bad_input_is_one_line_naming_the_next_step(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    path = tmp_path / "export.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DraftError) as err:
        draft_profile(path)
    message = str(err.value)
    assert expected in message and "\n" not in message
    result = CliRunner().invoke(cli, ["profile", "draft", str(path)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"Error: {message}"]


def test_bad_arguments() -> None:
    with pytest.raises(DraftError, match="unknown time zone"):
        draft_profile("x.csv", timezone="Mars/Olympus")
    with pytest.raises(DraftError, match="invalid agency id"):
        draft_profile("x.csv", agency="Bad Agency")
    with pytest.raises(DraftError, match="invalid profile name"):
        draft_profile("x.csv", name="Bad Name")


# -- the command -----------------------------------------------------------------------------
def test_cli_writes_the_draft_and_lists_the_todos(tmp_path: Path) -> None:
    export = write(tmp_path, "rms.csv", STATE_PLANE)
    out = tmp_path / "rms.toml"
    args = ["profile", "draft", str(export), "--out", str(out), "--agency", "testpd"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert parse_profile(out.read_text(encoding="utf-8")).agency == "testpd"
    assert "TODO [location]" in result.stderr and "US State Plane" in result.stderr
    assert f"crossbeat profile check {out} {export}" in result.stderr
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "--force" in again.stderr
    assert CliRunner().invoke(cli, [*args, "--force"]).exit_code == 0
    check = CliRunner().invoke(cli, ["profile", "check", str(out), str(export), "--json"])
    report = json.loads(check.stdout)
    assert check.exit_code == 1 and not report["matches"]  # refused until its TODOs are settled
    assert report["todos"] and all("TODO" in line for line in report["todos"])


def test_cli_prints_the_draft_to_stdout(tmp_path: Path) -> None:
    export = write(tmp_path, "rms.csv", STATE_PLANE)
    result = CliRunner().invoke(cli, ["profile", "draft", str(export), "--format", "csv"])
    assert result.exit_code == 0
    assert parse_profile(result.stdout).source.format == "csv"
    assert "Drafted from the first 40 records" in result.stderr


def test_dates_in_the_future_are_not_taken_for_dates(tmp_path: Path) -> None:
    late = datetime(2026, 6, 1, tzinfo=UTC)
    text = csv_rows(
        "id,when,offense",
        [f"F{i},{(late + timedelta(days=i)):%Y-%m-%d},13A" for i in range(10)],
    )
    result = draft_profile(write(tmp_path, "future.csv", text), clock=CLOCK)
    assert result.profile.occurred_from is None
    assert "no column reads as the occurrence date" in todos(result)
