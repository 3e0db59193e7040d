"""Normalisation: raw records to incidents, or every reason why not."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossbeat.clock import FrozenClock
from crossbeat.ingest.normalise import Normalised, Normaliser, Rejected, raw_hash
from crossbeat.ingest.profile import Profile, ProfileError, parse_profile
from crossbeat.ingest.readers import RawRecord, open_source
from crossbeat.model import LocationPrecision, PersonRole, Sensitivity, TimePrecision

CLOCK = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
LONDON = (-0.12, 51.50, -0.07, 51.53)

POLICE_UK = """
name = "police-uk"
status = "Last outcome category"
keep = ["LSOA code"]
[source]
format = "csv"
timezone = "Europe/London"
[id]
columns = ["Crime ID"]
fallback = "hash"
hash_columns = ["Month", "Longitude", "Latitude", "Location", "Crime type"]
[occurred_from]
column = "Month"
formats = ["year_month"]
[location]
x = "Longitude"
y = "Latitude"
precision = "snapped"
address = "Location"
address_is_public = true
[[offences]]
scheme = "police-uk"
code = "Crime type"
"""

RMS = """
name = "rms"
status = "STATUS"
disposition = "DISPO"
narrative = "NARRATIVE"
keep = ["BEAT"]
[source]
format = "csv"
timezone = "America/Los_Angeles"
[id]
columns = ["CASE_NO"]
prefix = "R-"
[occurred_from]
date_column = "OCC_DATE"
time_column = "OCC_TIME"
formats = ["%m/%d/%Y"]
time_formats = ["%H%M"]
[occurred_to]
date_column = "END_DATE"
formats = ["%m/%d/%Y"]
[reported_at]
column = "RPT"
formats = ["%Y-%m-%d %H:%M"]
[location]
x = "LON"
y = "LAT"
address = "ADDRESS"
location_type = "PREMISE"
[location.location_types]
RESIDENCE = "20"
STREET = "13"
[[offences]]
scheme = "code-nibrs"
code = "CODE1"
description = "DESC1"
[[offences]]
scheme = "code-nibrs"
code = "CODE2"
[[persons]]
role = "victim"
name = "VICTIM"
age = "VICTIM_AGE"
sex = "VICTIM_SEX"
[[persons]]
role = "suspect"
name = "SUSPECT"
[sensitivity]
domestic_violence = { column = "DV", values = ["Y"] }
informant = { column = "CI" }
keyword_columns = ["NOTES"]
[withdraw]
column = "REC_STATUS"
withdraw_values = ["VOID"]
expunge_values = ["SEALED"]
[defaults]
disposition = "OPEN"
"""

GOOD = {
    "CASE_NO": "26-0001",
    "OCC_DATE": "07/04/2025",
    "OCC_TIME": "2130",
    "END_DATE": "",
    "RPT": "2025-07-05 08:00",
    "LON": "-122.6789",
    "LAT": "45.5149",
    "ADDRESS": "1221 SW 4TH AVE APT 2",
    "PREMISE": "residence",
    "CODE1": "13B",
    "DESC1": "SIMPLE ASSAULT",
    "CODE2": "",
    "VICTIM": "Jane Doe",
    "VICTIM_AGE": "34",
    "VICTIM_SEX": "F",
    "SUSPECT": "",
    "DV": "N",
    "CI": "",
    "NOTES": "",
    "NARRATIVE": "Victim reports an assault.",
    "STATUS": "ACTIVE",
    "DISPO": "",
    "BEAT": "3C",
    "REC_STATUS": "",
}


def profile(text: str, tmp_path: Path | None = None, **overrides: str) -> Profile:
    text = textwrap.dedent(text)
    for old, new in overrides.items():
        text = text.replace(old, new)
    return parse_profile(text, base_dir=str(tmp_path or "."))


def normaliser(prof: Profile, **kw: object) -> Normaliser:
    kw.setdefault("clock", CLOCK)
    return Normaliser(prof, "agency1", source_file="export.csv", **kw)  # type: ignore[arg-type]


def rec(row: int = 1, **fields: str | None) -> RawRecord:
    return RawRecord(row, dict(fields))


def stored(result: Normalised | Rejected) -> Normalised:
    assert isinstance(result, Normalised), getattr(result, "reasons", None)
    return result


def rejected(result: Normalised | Rejected) -> Rejected:
    assert isinstance(result, Rejected), result
    return result


# -- a full record --------------------------------------------------------------------
def test_a_good_rms_row_becomes_a_full_incident() -> None:
    result = stored(normaliser(profile(RMS)).normalise(rec(7, **GOOD)))
    inc = result.incident
    assert result.action == "upsert" and result.warnings == ()
    assert (inc.agency_id, inc.source_id) == ("agency1", "R-26-0001")
    assert inc.occurred_from == datetime(2025, 7, 5, 4, 30, tzinfo=UTC)
    assert inc.occurred_to is None and inc.time_precision is TimePrecision.MINUTE
    assert inc.reported_at == datetime(2025, 7, 5, 15, 0, tzinfo=UTC)
    assert (inc.location.lat, inc.location.lon) == (45.5149, -122.6789)
    assert inc.location.precision is LocationPrecision.EXACT
    assert inc.location.block_address == "1200 BLOCK SW 4TH AVE"
    assert (inc.location.location_type, inc.location.location_type_local) == ("20", "residence")
    (offence,) = inc.offences
    assert (offence.local_code, offence.nibrs_code, offence.match) == ("13B", "13B", "exact")
    assert offence.local_description == "SIMPLE ASSAULT"
    assert (inc.status, inc.disposition) == ("ACTIVE", "OPEN")  # disposition from defaults
    assert inc.personal.full_address == "1221 SW 4TH AVE APT 2"
    assert inc.personal.narrative == "Victim reports an assault."
    (victim,) = inc.personal.persons
    assert (victim.role, victim.name, victim.age, victim.sex) == (
        PersonRole.VICTIM,
        "Jane Doe",
        34,
        "F",
    )
    assert inc.sensitivity == frozenset()
    assert inc.attributes == {"BEAT": "3C"}
    assert inc.provenance is not None
    assert (inc.provenance.source_file, inc.provenance.row_number) == ("export.csv", 7)
    assert inc.provenance.raw_hash == raw_hash(rec(7, **GOOD))
    assert inc.h3 == {} and inc.jurisdictions == () and not inc.withdrawn


def test_every_reason_is_reported_each_naming_column_and_value() -> None:
    bad = {**GOOD, "OCC_DATE": "02/30/2025", "LAT": "north", "CODE1": "", "DESC1": ""}
    result = rejected(normaliser(profile(RMS)).normalise(rec(3, **bad)))
    assert result.row_number == 3 and result.raw == bad
    assert len(result.reasons) == 3
    text = "\n".join(result.reasons)
    assert "occurred_from: column 'OCC_DATE' + 'OCC_TIME'" in text
    assert "'02/30/2025'" in text and "day is out of range" in text
    assert "location: column 'LAT': 'north' is not a number" in text
    assert "offence: no offence code: column(s) 'CODE1', 'CODE2', 'DESC1' are blank" in text


def test_read_problems_reject_the_record() -> None:
    raw = RawRecord(4, dict(GOOD), problems=("the record has 3 fields but the header has 24",))
    result = rejected(normaliser(profile(RMS)).normalise(raw))
    assert result.reasons == ("read: the record has 3 fields but the header has 24",)


# -- ids ---------------------------------------------------------------------------------
def test_hash_ids_count_identical_rows_and_are_stable_across_files() -> None:
    prof = profile(POLICE_UK)
    row = {
        "Crime ID": "",
        "Month": "2020-01",
        "Longitude": "-0.09",
        "Latitude": "51.51",
        "Location": "On or near Baker Street",
        "Crime type": "Anti-social behaviour",
        "Last outcome category": "",
        "LSOA code": "E01000001",
    }
    first = normaliser(prof)
    ids = [first.source_id(rec(i, **row)) for i in (1, 2)]
    other = first.source_id(rec(3, **{**row, "Crime type": "Burglary"}))
    assert ids[0].endswith("-1") and ids[1].endswith("-2") and ids[0][:-2] == ids[1][:-2]
    assert other.endswith("-1") and other[:-2] != ids[0][:-2]
    second = normaliser(prof)
    assert [second.source_id(rec(i, **row)) for i in (1, 2)] == ids
    first.reset()
    assert first.source_id(rec(1, **row)) == ids[0]
    # Padding and case of null markers do not change the id.
    assert normaliser(prof).source_id(rec(1, **{**row, "Month": " 2020-01 "})) == ids[0]
    assert normaliser(prof).source_id(rec(1, **{**row, "Crime ID": "abc"})) == "abc"


def test_blank_id_without_fallback_is_rejected() -> None:
    result = rejected(normaliser(profile(RMS)).normalise(rec(1, **{**GOOD, "CASE_NO": " "})))
    assert result.reasons == ("id: column(s) 'CASE_NO' are blank, so the record has no id",)


# -- police.uk ----------------------------------------------------------------------------
def test_police_uk_month_only_snapped_public_location() -> None:
    row = {
        "Crime ID": "abc123",
        "Month": "2020-07",
        "Longitude": "-0.091",
        "Latitude": "51.515",
        "Location": "On or near Cheapside",
        "Crime type": "Burglary",
        "Last outcome category": "Under investigation",
        "LSOA code": "E01000001",
    }
    inc = stored(normaliser(profile(POLICE_UK), extent=LONDON).normalise(rec(1, **row))).incident
    assert inc.time_precision is TimePrecision.MONTH
    assert inc.occurred_from == datetime(2020, 6, 30, 23, tzinfo=UTC)
    assert inc.occurred_to == datetime(2020, 7, 31, 23, tzinfo=UTC) - timedelta(microseconds=1)
    assert inc.location.precision is LocationPrecision.SNAPPED
    assert inc.location.block_address == inc.personal.full_address == "On or near Cheapside"
    assert inc.offences[0].nibrs_code == "220" and inc.status == "Under investigation"


# -- times ---------------------------------------------------------------------------------
def test_day_precision_without_occurred_to_is_the_whole_day() -> None:
    inc = stored(normaliser(profile(RMS)).normalise(rec(1, **{**GOOD, "OCC_TIME": ""}))).incident
    assert inc.time_precision is TimePrecision.DAY
    assert inc.occurred_from == datetime(2025, 7, 4, 7, tzinfo=UTC)
    assert inc.occurred_to == datetime(2025, 7, 5, 7, tzinfo=UTC) - timedelta(microseconds=1)


def test_occurred_to_is_the_end_of_its_day() -> None:
    row = {**GOOD, "END_DATE": "07/06/2025"}
    inc = stored(normaliser(profile(RMS)).normalise(rec(1, **row))).incident
    assert inc.occurred_to == datetime(2025, 7, 7, 7, tzinfo=UTC) - timedelta(microseconds=1)


def test_occurred_to_before_occurred_from_is_rejected() -> None:
    result = rejected(
        normaliser(profile(RMS)).normalise(rec(1, **{**GOOD, "END_DATE": "07/01/2025"}))
    )
    assert "occurred_to" in result.reasons[0] and "is before occurred_from" in result.reasons[0]


@pytest.mark.parametrize(
    ("date", "why"),
    [("01/03/2026", "is in the future"), ("07/04/1899", "is before 1900")],
)
def test_future_and_ancient_dates_are_rejected(date: str, why: str) -> None:
    result = rejected(normaliser(profile(RMS)).normalise(rec(1, **{**GOOD, "OCC_DATE": date})))
    assert why in result.reasons[0] and repr(f"{date} 2130") in result.reasons[0]


def test_a_date_within_a_day_of_the_clock_is_accepted() -> None:
    clock = FrozenClock(datetime(2025, 7, 5, 3, tzinfo=UTC))  # 20:00 local on 07/04
    result = normaliser(profile(RMS), clock=clock).normalise(rec(1, **GOOD))
    stored(result)


def test_blank_occurrence_date_is_a_warning_not_a_rejection() -> None:
    row = {**GOOD, "OCC_DATE": "", "OCC_TIME": ""}
    result = stored(normaliser(profile(RMS)).normalise(rec(1, **row)))
    assert result.incident.occurred_from is None
    assert result.incident.time_precision is TimePrecision.UNKNOWN
    assert any("occurred_from: no date" in w for w in result.warnings)


def test_dst_gap_is_noted_in_warnings() -> None:
    row = {**GOOD, "OCC_DATE": "03/09/2025", "OCC_TIME": "0230"}
    result = stored(normaliser(profile(RMS)).normalise(rec(1, **row)))
    assert result.incident.occurred_from == datetime(2025, 3, 9, 10, 30, tzinfo=UTC)
    assert any("does not exist" in w for w in result.warnings)


# -- locations -----------------------------------------------------------------------------
PORTLAND = (-122.84, 45.43, -122.47, 45.66)


@pytest.mark.parametrize(
    ("lon", "lat", "extent", "message"),
    [
        ("45.5149", "-122.6789", None, "latitude and longitude look swapped"),
        ("45.5149", "-122.6789", PORTLAND, "latitude and longitude look swapped"),
        ("-200", "45.5", None, "is not a valid point"),
        ("-122.6789", "95", PORTLAND, "is not a valid point"),
        ("-118.24", "34.05", PORTLAND, "km outside the agency's area"),
        ("nan", "45.5", None, "is not a finite number"),
        ("-122.6789", "", None, "column 'LAT' is blank, but column 'LON' holds '-122.6789'"),
    ],
)
def test_bad_points_are_rejected(
    lon: str, lat: str, extent: tuple[float, float, float, float] | None, message: str
) -> None:
    row = {**GOOD, "LON": lon, "LAT": lat}
    result = rejected(normaliser(profile(RMS), extent=extent).normalise(rec(1, **row)))
    (reason,) = result.reasons
    assert reason.startswith("location: ") and message in reason


def test_swapped_point_detected_only_with_an_extent_when_both_orders_are_valid() -> None:
    row = {**GOOD, "LON": "51.515", "LAT": "-0.091"}  # London, swapped: still a valid point
    stored(normaliser(profile(RMS)).normalise(rec(1, **row)))
    result = rejected(normaliser(profile(RMS), extent=LONDON).normalise(rec(1, **row)))
    assert "look swapped" in result.reasons[0] and "inside the agency's area" in result.reasons[0]


def test_point_a_little_outside_the_extent_is_kept() -> None:
    row = {**GOOD, "LON": "-122.9", "LAT": "45.5"}  # ~5 km west of the box
    inc = stored(normaliser(profile(RMS), extent=PORTLAND).normalise(rec(1, **row))).incident
    assert inc.location.lon == -122.9


@pytest.mark.parametrize(("lon", "lat"), [("", ""), ("0", "0"), ("NULL", "null")])
def test_missing_points_are_stored_without_location(lon: str, lat: str) -> None:
    result = stored(normaliser(profile(RMS)).normalise(rec(1, **{**GOOD, "LON": lon, "LAT": lat})))
    loc = result.incident.location
    assert (loc.lat, loc.lon, loc.precision) == (None, None, LocationPrecision.NONE)
    assert loc.block_address == "1200 BLOCK SW 4TH AVE"
    assert any(w.startswith("location: ") for w in result.warnings)


def test_projected_crs_is_transformed_to_wgs84() -> None:
    tz = 'timezone = "America/Los_Angeles"'
    prof = profile(RMS, **{tz: tz + '\ncrs = "EPSG:2913"'})
    row = {**GOOD, "LON": "7643645.0", "LAT": "681349.0"}
    loc = stored(normaliser(prof, extent=PORTLAND).normalise(rec(1, **row))).incident.location
    assert loc.lat == pytest.approx(45.5149, abs=1e-4)
    assert loc.lon == pytest.approx(-122.6789, abs=1e-4)
    swapped = {**GOOD, "LON": "681349.0", "LAT": "7643645.0"}
    result = rejected(normaliser(prof, extent=PORTLAND).normalise(rec(1, **swapped)))
    assert "look swapped" in result.reasons[0]


def test_geojson_in_state_plane_feet_round_trip(tmp_path: Path) -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"case": "P-1", "code": "220", "when": "2024-05-01T10:00:00"},
                "geometry": {"type": "Point", "coordinates": [7643645.0, 681349.0]},
            },
            {
                "type": "Feature",
                "properties": {"case": "P-2", "code": "220", "when": "2024-05-01"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [7643000, 681000],
                            [7644000, 681000],
                            [7644000, 682000],
                            [7643000, 682000],
                            [7643000, 681000],
                        ]
                    ],
                },
            },
            {"type": "Feature", "properties": {"case": "P-3", "code": "220"}, "geometry": None},
        ],
    }
    path = tmp_path / "portland.geojson"
    path.write_text(json.dumps(doc))
    prof = profile(
        """
        name = "portland"
        [source]
        format = "geojson"
        crs = "EPSG:2913"
        timezone = "America/Los_Angeles"
        [id]
        columns = ["case"]
        [occurred_from]
        column = "when"
        [[offences]]
        scheme = "code-nibrs"
        code = "code"
        """
    )
    norm = normaliser(prof, extent=PORTLAND)
    with open_source(path, prof.source, required_columns=prof.referenced_columns()) as reader:
        results = [stored(norm.normalise(r)) for r in reader]
    point, area, none = (r.incident.location for r in results)
    assert point.lat == pytest.approx(45.5149, abs=1e-4)
    assert point.lon == pytest.approx(-122.6789, abs=1e-4)
    assert point.precision is LocationPrecision.EXACT
    assert area.precision is LocationPrecision.AREA and area.lat == pytest.approx(45.515, abs=3e-3)
    assert none.precision is LocationPrecision.NONE
    assert results[1].incident.time_precision is TimePrecision.DAY


GEOJSON = """
name = "geo"
[source]
format = "geojson"
timezone = "America/Los_Angeles"
[id]
columns = ["case"]
[[offences]]
scheme = "code-nibrs"
code = "code"
"""


def feature(geometry: object) -> RawRecord:
    return RawRecord(1, {"case": "G-1", "code": "220"}, geometry)  # type: ignore[arg-type]


def test_swapped_points_are_labelled_lat_lon() -> None:
    row = {**GOOD, "LON": "45.5149", "LAT": "-122.6789"}
    (reason,) = rejected(normaliser(profile(RMS)).normalise(rec(1, **row))).reasons
    assert "columns 'LON', 'LAT' (x=45.5149, y=-122.6789) in EPSG:4326" in reason
    assert "gives (lat=-122.678900, lon=45.514900)" in reason
    assert "swapped it is (lat=45.514900, lon=-122.678900)" in reason
    assert reason.endswith("check location.x / location.y")


@pytest.mark.parametrize(
    ("coordinates", "extent", "message"),
    [
        ([45.5149, -122.6789], PORTLAND, "look swapped"),
        ([-200.0, 45.5], None, "is not a valid point"),
    ],
)
def test_geojson_point_messages_point_at_the_geometry(
    coordinates: list[float], extent: tuple[float, float, float, float] | None, message: str
) -> None:
    point = {"type": "Point", "coordinates": coordinates}
    (reason,) = rejected(
        normaliser(profile(GEOJSON), extent=extent).normalise(feature(point))
    ).reasons
    assert message in reason and "the GeoJSON Point" in reason
    assert "check the geometry / location.crs" in reason
    assert "location.x" not in reason


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        ({"type": "Point", "coordinates": [7]}, "the Point's coordinates [7] are not a position"),
        ({"type": "Point", "coordinates": 5}, "the Point's coordinates 5 are not a position"),
        ({"type": "Point", "coordinates": ["a", "b"]}, "the Point's coordinates ['a', 'b']"),
        ({"type": "Point"}, 'the Point has no "coordinates"'),
        ({"coordinates": [1, 2]}, 'it has no "type"'),
        ({"type": "Blob", "coordinates": [1, 2]}, "type 'Blob' is not a GeoJSON geometry type"),
        ({"type": "Polygon", "coordinates": [[1, 2]]}, "a list of rings, each a list of positions"),
        ({"type": "LineString", "coordinates": [[1, 2]]}, "the LineString is not valid"),
    ],
)
def test_invalid_geojson_geometry_says_what_is_wrong(geometry: dict, message: str) -> None:
    (reason,) = rejected(normaliser(profile(GEOJSON)).normalise(feature(geometry))).reasons
    assert reason.startswith("location: invalid GeoJSON geometry: ") and message in reason
    for internals in ("operand", "gufunc", "not iterable", "NoneType", "'coordinates'"):
        assert internals not in reason


def test_empty_geojson_coordinates_stay_an_empty_geometry() -> None:
    result = stored(
        normaliser(profile(GEOJSON)).normalise(feature({"type": "Point", "coordinates": []}))
    )
    assert result.incident.location.precision is LocationPrecision.NONE
    assert "location: no coordinates (empty geometry)" in result.warnings


def test_precision_column_maps_source_words() -> None:
    prof = profile(
        RMS,
        **{
            'location_type = "PREMISE"': 'location_type = "PREMISE"\nprecision_column = "GEO"\n'
            '[location.precision_values]\nBLOCK = "block"\nBEAT = "area"'
        },
    )
    norm = normaliser(prof)
    inc = stored(norm.normalise(rec(1, **{**GOOD, "GEO": "beat"}))).incident
    assert inc.location.precision is LocationPrecision.AREA
    result = stored(norm.normalise(rec(2, **{**GOOD, "GEO": "rooftop"})))
    assert result.incident.location.precision is LocationPrecision.EXACT
    assert any("'rooftop'" in w for w in result.warnings)


def test_unknown_location_type_keeps_the_local_value() -> None:
    result = stored(normaliser(profile(RMS)).normalise(rec(1, **{**GOOD, "PREMISE": "BOAT"})))
    loc = result.incident.location
    assert (loc.location_type, loc.location_type_local) == (None, "BOAT")
    assert any("'BOAT' is not in location.location_types" in w for w in result.warnings)


# -- offences and sensitivity -------------------------------------------------------------------
def test_unmapped_code_is_stored_with_a_warning() -> None:
    row = {**GOOD, "CODE1": "ZZ9", "DESC1": "", "CODE2": "13B"}
    result = stored(normaliser(profile(RMS)).normalise(rec(1, **row)))
    first, second = result.incident.offences
    assert (first.local_code, first.match, first.nibrs_code) == ("ZZ9", None, None)
    assert second.match == "exact" and result.incident.unmapped
    assert any("'ZZ9' is not in crosswalk 'code-nibrs'" in w for w in result.warnings)


def test_constant_offence_and_agency_crosswalk_folder(tmp_path: Path) -> None:
    (tmp_path / "xwalks").mkdir()
    (tmp_path / "xwalks" / "my-codes.toml").write_text(
        textwrap.dedent(
            """
            [crosswalk]
            scheme = "my-codes"
            version = "1"
            [[map]]
            local = "VEH"
            nibrs = "240"
            match = "exact"
            """
        )
    )
    text = RMS.replace(
        'scheme = "code-nibrs"\ncode = "CODE2"', 'scheme = "my-codes"\nconstant = "VEH"'
    )
    prof = profile('crosswalks = "xwalks"\n' + text, tmp_path)
    offences = stored(normaliser(prof).normalise(rec(1, **GOOD))).incident.offences
    assert [(o.scheme, o.local_code, o.nibrs_code) for o in offences] == [
        ("code-nibrs", "13B", "13B"),
        ("my-codes", "VEH", "240"),
    ]


def test_sensitivity_from_codes_flags_keywords_and_ages() -> None:
    norm = normaliser(profile(RMS))
    assert stored(norm.normalise(rec(1, **{**GOOD, "CODE1": "11A"}))).incident.sensitivity >= {
        Sensitivity.SEXUAL_OFFENCE
    }
    assert (
        Sensitivity.DOMESTIC_VIOLENCE
        in stored(norm.normalise(rec(2, **{**GOOD, "DV": "y"}))).incident.sensitivity
    )
    assert (
        Sensitivity.INFORMANT
        in stored(norm.normalise(rec(3, **{**GOOD, "CI": "TRUE"}))).incident.sensitivity
    )
    assert (
        Sensitivity.SEXUAL_OFFENCE
        in stored(
            norm.normalise(rec(4, **{**GOOD, "NOTES": "possible sexual assault"}))
        ).incident.sensitivity
    )
    assert (
        Sensitivity.JUVENILE
        in stored(norm.normalise(rec(5, **{**GOOD, "VICTIM_AGE": "15"}))).incident.sensitivity
    )
    assert stored(norm.normalise(rec(6, **GOOD))).incident.sensitivity == frozenset()


def test_unreadable_age_is_kept_as_text_with_a_warning() -> None:
    result = stored(normaliser(profile(RMS)).normalise(rec(1, **{**GOOD, "VICTIM_AGE": "30s"})))
    (victim,) = result.incident.personal.persons
    assert victim.age is None and victim.attributes == {"age_text": "30s"}
    assert any("'30s'" in w for w in result.warnings)


# -- withdraw and expunge -------------------------------------------------------------------
def test_withdraw_and_expunge_rows() -> None:
    norm = normaliser(profile(RMS))
    withdrawn = stored(norm.normalise(rec(1, **{**GOOD, "REC_STATUS": "void"})))
    assert withdrawn.action == "withdraw" and withdrawn.incident.withdrawn
    # A deletion is never blocked by other problems of the row ...
    bad = {**GOOD, "REC_STATUS": "SEALED", "OCC_DATE": "99/99/9999", "CODE1": "", "DESC1": ""}
    expunged = stored(norm.normalise(rec(2, **bad)))
    assert expunged.action == "expunge" and expunged.incident.source_id == "R-26-0001"
    assert any("occurred_from" in w for w in expunged.warnings)
    # ... but it needs an id.
    rejected(norm.normalise(rec(3, **{**bad, "CASE_NO": ""})))


# -- values ------------------------------------------------------------------------------
def test_values_are_stripped_and_null_markers_are_none() -> None:
    row = {**GOOD, "STATUS": "  N/A ", "BEAT": "  3C   ", "VICTIM_SEX": "null"}
    inc = stored(normaliser(profile(RMS)).normalise(rec(1, **row))).incident
    assert inc.status is None and inc.attributes == {"BEAT": "3C"}
    assert inc.personal.persons[0].sex is None


def test_dotted_columns_reach_into_nested_json() -> None:
    prof = profile(
        """
        name = "nested"
        [source]
        format = "jsonl"
        [id]
        columns = ["id"]
        [location]
        x = "geo.coordinates.0"
        y = "geo.coordinates.1"
        address = "place.street"
        [[offences]]
        scheme = "code-nibrs"
        code = "offence.code"
        """
    )
    raw = rec(
        1,
        id="9",
        geo='{"type":"Point","coordinates":[-0.09,51.51]}',
        place='{"street":"12 Wood St"}',
        offence='{"code":"220"}',
    )
    inc = stored(normaliser(prof).normalise(raw)).incident
    assert (inc.location.lon, inc.location.lat) == (-0.09, 51.51)
    assert inc.location.block_address == "0 block Wood St"
    assert inc.offences[0].nibrs_code == "220"


# -- profile errors at construction -------------------------------------------------------
@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('timezone = "America/Los_Angeles"', 'crs = "EPSG:999999"', "unknown CRS"),
        ('scheme = "code-nibrs"\ncode = "CODE2"', 'scheme = "nope"\ncode = "CODE2"', "'nope'"),
        ('STREET = "13"', 'STREET = "99"', "unknown NIBRS location codes"),
        ('disposition = "OPEN"', 'colour = "red"', r"defaults: .*unknown keys \['colour'\]"),
        ('formats = ["%Y-%m-%d %H:%M"]', 'formats = ["isoo"]', "unknown date format"),
    ],
)
def test_profile_problems_are_profile_errors(old: str, new: str, message: str) -> None:
    assert old in RMS
    with pytest.raises(ProfileError, match=message):
        normaliser(profile(RMS.replace(old, new)))


# -- robustness -------------------------------------------------------------------------------
_values = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.sampled_from(["", "NULL", "0", "-0", "1e400", "nan", "13/45/2020", "07/04/2025", "2130"]),
)


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries(dict.fromkeys(GOOD, _values)))
def test_any_values_give_an_incident_or_reasons(fields: dict[str, str | None]) -> None:
    result = normaliser(profile(RMS), extent=PORTLAND).normalise(rec(1, **fields))
    if isinstance(result, Rejected):
        assert result.reasons and all(isinstance(r, str) for r in result.reasons)
        json.dumps(result.raw)
    else:
        assert result.incident.source_id
