"""`crossbeat profile check`: the first rows as stored, whole-file counts, exit status."""

from __future__ import annotations

import json
import re
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from crossbeat.agencies import get_agency, register_agency, set_jurisdiction
from crossbeat.cli import cli
from crossbeat.clock import FrozenClock
from crossbeat.ingest.check import check_profile, kind_of
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import Profile, ProfileError, load_profile, parse_profile
from crossbeat.ingest.quarantine import list_quarantine
from crossbeat.model import Agency
from crossbeat.store import Store, open_store
from crossbeat.vault.kek import Kek

from .conftest import shared_data

PROFILE = """
name = "test-rms"
agency = "testpd"
keep = ["beat"]
[source]
format = "csv"
timezone = "America/Los_Angeles"
[id]
columns = ["case"]
[occurred_from]
column = "when"
formats = ["%m/%d/%Y %H:%M"]
[location]
x = "lon"
y = "lat"
address = "address"
[[offences]]
scheme = "code-nibrs"
code = "code"
"""

HEADER = "case,when,lon,lat,address,code,beat,unused\n"
ROWS = [
    "A1,07/04/2025 21:30,-122.6789,45.5149,4851 KOKOMO DR,13B,3C,x\n",
    "A2,02/30/2025 10:00,-122.6789,45.5149,1 MAIN ST,13B,3C,x\n",
    "A3,07/05/2025 10:00,-122.6789,45.5149,1 MAIN ST,ZZ9,3C,x\n",
    "A4,07/06/2025 10:00,,,1 MAIN ST,ZZ9,3C,x\n",
    "A1,07/07/2025 10:00,-122.6789,45.5149,1 MAIN ST,13B,3C,x\n",
    "A6,13/01/2025 10:00,north,45.5149,1 MAIN ST,,3C,x\n",
]
CLOCK = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))


def write(tmp_path: Path, text: str, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def prof(text: str = PROFILE) -> Profile:
    return parse_profile(textwrap.dedent(text))


def test_report_shows_first_rows_as_stored_and_counts_the_whole_file(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "".join(ROWS))
    report = check_profile(prof(), path, agency_id="testpd", limit=2, clock=CLOCK)
    assert report.matches and report.error is None
    assert report.encoding == "utf-8"
    assert report.missing_columns == [] and report.unused_columns == ["unused"]
    first, second = report.rows
    assert first.stored is not None and first.reasons == ()
    assert first.stored["source_id"] == "A1"
    assert first.stored["occurred_from"] == "2025-07-05T04:30:00+00:00"
    assert first.stored["block_address"] == "4800 BLOCK KOKOMO DR"
    assert first.stored["private_full_address"] == "4851 KOKOMO DR"
    assert first.stored["offences"] == ["13B -> 13B (exact)"]
    assert first.stored["attributes"] == {"beat": "3C"}
    assert second.stored is None and "day is out of range" in second.reasons[0]
    assert report.scanned and report.total == 6
    assert report.actions == {"upsert": 3}
    assert report.rejected == 3
    assert report.unmapped == {"code-nibrs: ZZ9": 2}
    reasons = dict(report.reasons)
    assert sum(1 for r in reasons if r.startswith("occurred_from")) == 2
    assert any("duplicate source id" in r for r in reasons)
    assert any(r.startswith("location") for r in reasons)
    assert any(r.startswith("offence: no offence code") for r in reasons)
    assert any(w.startswith("location: no coordinates") for w in report.warnings)
    json.dumps(report.as_dict())


def test_without_scan_only_the_first_rows_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "".join(ROWS))
    report = check_profile(prof(), path, agency_id="testpd", limit=1, scan=False, clock=CLOCK)
    assert report.total == 1 and len(report.rows) == 1 and not report.scanned


def test_missing_columns_mean_no_match(tmp_path: Path) -> None:
    path = write(tmp_path, "case,When,lon,lat,code\nA1,07/04/2025 21:30,1,2,13B\n")
    report = check_profile(prof(), path, agency_id="testpd", clock=CLOCK)
    assert not report.matches
    assert report.missing_columns == ["address", "beat", "when"]
    assert report.unused_columns == ["When"]


def test_file_errors_mean_no_match(tmp_path: Path) -> None:
    report = check_profile(prof(), write(tmp_path, ""), agency_id="testpd")
    assert not report.matches and "empty" in (report.error or "")


def test_profile_errors_are_reported(tmp_path: Path) -> None:
    bad = prof(PROFILE.replace('scheme = "code-nibrs"', 'scheme = "no-such-scheme"'))
    report = check_profile(bad, write(tmp_path, HEADER + ROWS[0]), agency_id="testpd")
    assert not report.matches and "no-such-scheme" in (report.error or "")


def test_every_row_refused_means_no_match(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + ROWS[1])
    report = check_profile(prof(), path, agency_id="testpd", clock=CLOCK)
    assert report.total == report.rejected == 1 and not report.matches


def test_header_only_file_matches_with_no_rows(tmp_path: Path) -> None:
    report = check_profile(prof(), write(tmp_path, HEADER), agency_id="testpd")
    assert report.matches and report.total == 0 and report.rows == []


def test_kind_of_masks_values() -> None:
    assert kind_of("location: column 'LAT': 'north' is not a number") == (
        "location: column 'LAT': … is not a number"
    )
    assert kind_of('id: "it\'s" at row 12') == "id: … at row N"


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (
            "occurred_from: column 'date' + 'time': '02/30/2025 10:00' is not a valid date",
            "occurred_from: column 'date' + 'time': … is not a valid date",
        ),
        (
            "offence: no offence code: column(s) 'code', 'desc' are blank",
            "offence: no offence code: column(s) 'code', 'desc' are blank",
        ),
        (
            "occurred_from: local time 2025-03-09 02:30 does not exist in America/Chicago "
            "(clocks went forward); read as 03:30 CDT",
            "occurred_from: local time YYYY-MM-DD HH:MM does not exist in America/Chicago "
            "(clocks went forward); read as HH:MM CDT",
        ),
        (
            "location: columns 'LON', 'LAT' (x=45.5, y=-122.6) in EPSG:2913 gives "
            "(lat=-122.600000, lon=45.500000)",
            "location: columns 'LON', 'LAT' (x=N, y=N) in EPSG:2913 gives (lat=N, lon=N)",
        ),
        (
            "offence: code 'ZZ9' is not in crosswalk 'code-nibrs' (version 3): stored unmapped",
            "offence: code … is not in crosswalk 'code-nibrs' (version N): stored unmapped",
        ),
        (
            "location: precision 'BEAT' (column 'GEO') is not in location.precision_values",
            "location: precision … (column 'GEO') is not in location.precision_values",
        ),
    ],
)
def test_kind_of_keeps_column_names_and_the_shape_of_dates(message: str, kind: str) -> None:
    assert kind_of(message) == kind


def test_reasons_of_one_kind_in_one_column_are_grouped_by_column(tmp_path: Path) -> None:
    rows = [
        "B1,07/04/2025 21:30,-122.6789,north,1 MAIN ST,13B,3C,x\n",
        "B2,07/04/2025 21:30,-122.6789,south,1 MAIN ST,13B,3C,x\n",
        "B3,07/04/2025 21:30,east,45.5149,1 MAIN ST,13B,3C,x\n",
    ]
    report = check_profile(prof(), write(tmp_path, HEADER + "".join(rows)), clock=CLOCK)
    assert dict(report.reasons) == {
        "location: column 'lat': … is not a number": 2,
        "location: column 'lon': … is not a number": 1,
    }


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('format = "csv"', 'format = "csv"\ndelimiter = ";;"', "delimiter must be one character"),
        ('format = "csv"', 'format = "csv"\nencoding = "klingon"', "unknown encoding 'klingon'"),
        ('column = "when"', 'column = "when"\ntimezone = "Mars/Olympus"', "unknown time zone"),
        ('formats = ["%m/%d/%Y %H:%M"]', 'formats = ["isoo"]', "unknown date format 'isoo'"),
        ('keep = ["beat"]', 'keep = ["beat"]\n[defaults]\nbeat = "1"', r"unknown keys \['beat'\]"),
    ],
)
def test_profile_mistakes_are_caught_at_load_time(old: str, new: str, message: str) -> None:
    assert old in PROFILE
    with pytest.raises(ProfileError, match=message):
        prof(PROFILE.replace(old, new))


def test_a_top_level_key_after_a_table_gets_a_toml_hint() -> None:
    text = PROFILE.replace('keep = ["beat"]\n', "") + 'keep = ["beat"]\nbogus = 1\n'
    with pytest.raises(ProfileError) as info:
        prof(text)
    lines = str(info.value).splitlines()
    assert lines[1] == (
        "  - offences.0.keep: Extra inputs are not permitted ('keep' is a top-level key: "
        "top-level keys must come before the first [table] in TOML)"
    )
    assert lines[2] == "  - offences.0.bogus: Extra inputs are not permitted"


# -- CLI ------------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    profile_path = write(tmp_path, textwrap.dedent(PROFILE), "rms.toml")
    return profile_path, write(tmp_path, HEADER + "".join(ROWS[:4]))


def test_cli_prints_a_table_and_exits_0_when_the_profile_matches(files: tuple[Path, Path]) -> None:
    profile_path, data = files
    result = CliRunner().invoke(
        cli,
        ["profile", "check", str(profile_path), str(data), "--limit", "3"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "matches" in result.output and "4800 BLOCK KOKOMO DR" in result.output
    assert "Whole file: 4 rows" in result.output
    assert "code-nibrs: ZZ9" in result.output


def test_cli_json(files: tuple[Path, Path]) -> None:
    profile_path, data = files
    result = CliRunner().invoke(cli, ["profile", "check", str(profile_path), str(data), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["matches"] is True and report["agency"] == "testpd" and report["total"] == 4


def test_cli_exits_1_when_the_profile_does_not_match(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    profile_path, _ = files
    other = write(tmp_path, "a;b\n1;2\n", "other.csv")
    result = CliRunner().invoke(cli, ["profile", "check", str(profile_path), str(other)])
    assert result.exit_code == 1
    assert "does NOT match" in result.output and "lacks" in result.output


def test_cli_invalid_profile_is_a_clear_error(tmp_path: Path) -> None:
    bad = write(tmp_path, 'name = "x"\n[source]\nformat = "xls"\n', "bad.toml")
    data = write(tmp_path, HEADER)
    result = CliRunner().invoke(cli, ["profile", "check", str(bad), str(data)])
    assert result.exit_code == 1 and "invalid profile" in result.output


# -- the documentation's worked example ----------------------------------------------------
DOCS = Path(__file__).resolve().parents[1] / "docs" / "profiles.md"


def _doc_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)


def test_the_worked_example_in_the_docs_is_true(tmp_path: Path) -> None:
    data = write(tmp_path, _doc_blocks("text")[0])
    profile = write(tmp_path, _doc_blocks("toml")[0], "portland-pd.toml")
    report = check_profile(load_profile(profile), data, agency_id="portlandpd", clock=CLOCK)
    assert report.matches and report.total == 2 and report.rejected == 0
    first, second = (r.stored for r in report.rows)
    assert first is not None and second is not None
    assert first["source_id"] == "26-0001"
    assert (first["occurred_from"], first["time_precision"]) == (
        "2025-07-05T04:30:00+00:00",
        "minute",
    )
    assert first["reported_at"] == "2025-07-05T07:00:00+00:00"
    assert (first["lat"], first["lon"], first["location_precision"]) == (
        45.5149,
        -122.6789,
        "exact",
    )
    assert first["block_address"] == "1200 BLOCK SW 4TH AVE"
    assert first["location_type"] == "20"
    assert first["offences"] == ["13B -> 13B (exact)"]
    assert first["private_full_address"] == "1221 SW 4TH AVE APT 2"
    assert first["private_persons"] == "victim (34)"
    assert first["attributes"] == {"BEAT": "3C"}
    assert (second["occurred_from"], second["occurred_to"], second["time_precision"]) == (
        "2025-07-04T07:00:00+00:00",
        "2025-07-05T06:59:59.999999+00:00",
        "day",
    )
    assert second["block_address"] == "SW 5TH AVE / SW MAIN ST"
    assert second["location_precision"] == "none"
    assert any("no coordinates" in w for w in report.rows[1].warnings)


# -- real data -------------------------------------------------------------------------
@pytest.mark.shared_data
def test_police_uk_city_of_london_month(tmp_path: Path) -> None:
    data = shared_data("uk-london", "btp_col_2020", "2020-01-city-of-london-street.csv")
    profile_path = write(tmp_path, _doc_blocks("toml")[1], "police-uk.toml")
    report = check_profile(load_profile(profile_path), data, agency_id="colp", limit=3)
    assert report.matches and report.total == 797
    # police.uk repeats a few Crime IDs within a month; the pipeline keeps the first.
    assert report.rejected == sum(report.reasons.values()) == 10
    assert all("duplicate source id" in r for r in report.reasons)
    assert report.unmapped == {}
    assert report.rows[0].stored is not None
    assert report.rows[0].stored["time_precision"] == "month"
    assert report.rows[0].stored["location_precision"] == "snapped"


# -- the agencies' boundaries, from a store (SQLite and PostgreSQL) -------------------------
LONDON_PROFILE = """
name = "london"
{agency}
[source]
format = "csv"
timezone = "Europe/London"
[id]
columns = ["case"]
[occurred_from]
column = "when"
[location]
x = "lon"
y = "lat"
[[offences]]
scheme = "code-nibrs"
code = "code"
"""
LONDON_HEADER = "case,when,lon,lat,code,force\n"
# A good point; the same point swapped (a valid point too, in the Indian Ocean); Paris.
LONDON_ROWS = [
    "L1,2025-07-04T21:30,-0.0900,51.5150,13B,{force}\n",
    "L2,2025-07-04T21:30,51.5150,-0.0900,13B,{force}\n",
    "L3,2025-07-04T21:30,2.3500,48.8500,13B,{force}\n",
]
CITY = {
    "type": "Polygon",
    "coordinates": [
        [[-0.12, 51.50], [-0.07, 51.50], [-0.07, 51.53], [-0.12, 51.53], [-0.12, 51.50]]
    ],
}


def _london(
    tmp_path: Path, agency: str = 'agency = "colp"', force: str = "City"
) -> tuple[Path, Path]:
    profile_path = write(tmp_path, textwrap.dedent(LONDON_PROFILE.format(agency=agency)), "l.toml")
    rows = "".join(r.format(force=force) for r in LONDON_ROWS)
    return profile_path, write(tmp_path, LONDON_HEADER + rows, "london.csv")


def _register_city(store: Store) -> None:
    register_agency(store, Agency("colp", "City of London Police", timezone="Europe/London"))
    set_jurisdiction(store, "colp", "City of London", CITY)


def test_with_a_store_points_are_checked_against_the_boundary_as_the_ingest_does(
    store: Store, tmp_path: Path
) -> None:
    profile_path, data = _london(tmp_path)
    profile = load_profile(profile_path)
    blind = check_profile(profile, data, clock=CLOCK)
    assert (blind.total, blind.rejected, blind.boundaries_checked) == (3, 0, False)
    _register_city(store)
    report = check_profile(profile, data, clock=CLOCK, store=store)
    assert report.boundaries_checked and report.agencies_without_boundary == []
    assert [r.row_number for r in report.rows if r.stored is None] == [2, 3]
    assert "look swapped" in report.rows[1].reasons[0]
    assert "km outside the agency's area" in report.rows[2].reasons[0]
    summary = ingest_files(store, "colp", profile, [data])
    assert (summary.new, summary.quarantined) == (3 - report.rejected, report.rejected)
    quarantined = [tuple(e.reasons) for e in list_quarantine(store, agency_id="colp")]
    assert quarantined == [r.reasons for r in report.rows if r.stored is None]


def test_an_agency_without_a_boundary_is_named(store: Store, tmp_path: Path) -> None:
    profile_path, data = _london(tmp_path)
    report = check_profile(load_profile(profile_path), data, clock=CLOCK, store=store)
    assert report.boundaries_checked and report.agencies_without_boundary == ["colp"]
    assert report.rejected == 0  # range only, as the ingest checks an agency with no boundary
    assert get_agency(store, "colp") is None  # only read: the ingest would register it


MULTI = 'agency_column = "force"\n[agency_map]\nCity = "colp"\nMet = "met"\n' + (
    '[agency_timezones]\nmet = "America/New_York"\n'  # not true; shows the zone is per agency
)


def test_a_multi_agency_feed_uses_each_routed_agency_s_boundary_and_zone(
    store: Store, tmp_path: Path
) -> None:
    profile_path, city = _london(tmp_path, MULTI)
    met = write(tmp_path, city.read_text().replace(",City\n", ",Met\n"), "met.csv")
    _register_city(store)
    profile = load_profile(profile_path)
    report = check_profile(profile, city, clock=CLOCK, store=store)
    assert report.agency_id is None and report.agency_column == "force"
    assert report.rejected == 2 and report.agencies_without_boundary == []
    report = check_profile(profile, met, clock=CLOCK, store=store)
    assert report.rejected == 0 and report.agencies_without_boundary == ["met"]
    first = report.rows[0].stored
    assert first is not None and first["occurred_from"] == "2025-07-05T01:30:00+00:00"
    ignored = check_profile(profile, met, agency_id="colp", clock=CLOCK, store=store)
    assert ignored.as_dict() == report.as_dict()


def test_the_same_id_from_two_agencies_is_two_records(tmp_path: Path) -> None:
    profile_path, _ = _london(tmp_path, MULTI)
    data = write(
        tmp_path,
        LONDON_HEADER + "".join(LONDON_ROWS[0].format(force=f) for f in ("City", "Met", "City")),
    )
    report = check_profile(load_profile(profile_path), data, clock=CLOCK)
    assert report.actions == {"upsert": 2} and report.rejected == 1
    assert report.rows[2].reasons[0].startswith("id: duplicate source id 'L1'")


# -- the command line's report --------------------------------------------------------------
def _check(*args: str) -> Result:
    return CliRunner().invoke(cli, ["profile", "check", *args], env={"COLUMNS": "250"})


def test_cli_multi_agency_header_names_the_routing_column(tmp_path: Path) -> None:
    profile_path, data = _london(tmp_path, MULTI)
    result = _check(str(profile_path), str(data))
    assert result.exit_code == 0, result.output
    assert "agencies routed by column 'force')" in result.output
    assert "agency check" not in result.output and "agency None" not in result.output
    assert "--db URL checks them" in result.output
    refused = _check(str(profile_path), str(data), "--agency", "colp")
    assert refused.exit_code == 1 and "check it without --agency" in refused.output


def test_cli_says_points_were_not_checked_without_db(tmp_path: Path) -> None:
    profile_path, data = _london(tmp_path)
    result = _check(str(profile_path), str(data))
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "not checked" in x)
    assert "jurisdiction boundary" in line and "--db URL checks them" in line


def test_cli_db_checks_the_boundary(db_url: str, kek: Kek, tmp_path: Path) -> None:
    _register_city(open_store(db_url, kek=kek))
    profile_path, data = _london(tmp_path)
    result = _check(str(profile_path), str(data), "--db", db_url, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["boundaries_checked"] is True and report["rejected"] == 2
    shown = _check(str(profile_path), str(data), "--db", db_url)
    assert "checked against agency colp's jurisdiction boundary" in shown.output
    assert "not checked" not in shown.output


def test_cli_db_never_creates_a_database(tmp_path: Path) -> None:
    profile_path, data = _london(tmp_path)
    missing = tmp_path / "typo.db"
    result = _check(str(profile_path), str(data), "--db", f"sqlite:///{missing}")
    assert result.exit_code == 1
    errors = [x for x in result.output.splitlines() if x.startswith("Error:")]
    assert len(errors) == 1 and f"no database at {missing}" in errors[0], result.output
    no_scheme = _check(str(profile_path), str(data), "--db", str(missing))
    assert no_scheme.exit_code == 1 and "is not a database URL" in no_scheme.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.toml", "london.csv"]


def test_cli_location_without_a_type_prints_no_placeholder(tmp_path: Path) -> None:
    profile_path, data = _london(tmp_path)
    result = _check(str(profile_path), str(data), "--limit", "1")
    assert result.exit_code == 0, result.output
    assert "51.515, -0.09 (exact)" in result.output
    assert "type - (-)" not in result.output and "type -" not in result.output


def test_cli_keeps_brackets_in_reasons(tmp_path: Path) -> None:
    profile_path = write(
        tmp_path,
        'name = "geo"\nagency = "geo"\n[source]\nformat = "geojson"\n[id]\ncolumns = ["id"]\n'
        '[[offences]]\nscheme = "code-nibrs"\ncode = "code"\n',
        "geo.toml",
    )
    feature = {"type": "Feature", "properties": {"id": "G1", "code": "220"}}
    doc = {"type": "FeatureCollection", "features": [
        {**feature, "geometry": {"type": "Point", "coordinates": [7]}},
    ]}  # fmt: skip
    data = write(tmp_path, json.dumps(doc), "a.geojson")
    result = _check(str(profile_path), str(data))
    assert "are not a position [x, y] (two or three numbers)" in result.output, result.output
