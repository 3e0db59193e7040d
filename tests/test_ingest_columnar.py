"""The columnar normaliser against the per-row one, row by row (#9).

Both must give, for every record of a part, the very same result: the same incident
(times, point, offences, flags, personal data, provenance) and warnings, or the same
rejection with every reason. Generated exports mix plain rows with every kind of odd
one; the real exports in ../shared/data and the demo region's exports are compared too.
"""

from __future__ import annotations

import random
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossbeat.clock import FrozenClock
from crossbeat.demo.build import PROFILES
from crossbeat.demo.exports import write_exports
from crossbeat.demo.generate import simulate
from crossbeat.geo.crs import transformer_to_wgs84
from crossbeat.ingest.columnar import ColumnarNormaliser, covers
from crossbeat.ingest.normalise import Normalised, Normaliser
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import Profile, load_profile, parse_profile
from crossbeat.ingest.readers import RawRecord, open_source
from crossbeat.vault.kek import Kek
from tests.conftest import shared_data
from tests.test_ingest_pipeline import PROFILE as PIPELINE_PROFILE
from tests.test_ingest_unchanged import _mutate, _row, _state, _store, _write

CLOCK = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
PORTLAND = (-122.75, 45.45, -122.60, 45.60)
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "profiles"
DEMO_PROFILES = Path(__file__).resolve().parents[1] / "crossbeat" / "demo" / "profiles"

FEED = """
name = "columnar"
status = "STATUS"
narrative = "NARRATIVE"
keep = ["BEAT"]
[source]
format = "csv"
timezone = "America/Los_Angeles"
crs = "CRS"
null_values = ["NULL", "N/A"]
[id]
columns = ["CASE_NO"]
prefix = "R-"
fallback = "hash"
hash_columns = ["OCC_DATE", "CODE1"]
[occurred_from]
date_column = "OCC_DATE"
time_column = "OCC_TIME"
formats = ["%m/%d/%Y", "%Y-%m-%d"]
time_formats = ["%H%M"]
placeholder_times = ["00:00"]
[occurred_to]
date_column = "END_DATE"
formats = ["%m/%d/%Y"]
[reported_at]
column = "RPT"
formats = ["%Y-%m-%d %H:%M"]
[location]
x = "X"
y = "Y"
address = "ADDRESS"
location_type = "PREMISE"
precision_column = "PREC"
[location.precision_values]
exact = "exact"
block = "block"
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
[sensitivity]
domestic_violence = { column = "DV", values = ["Y"] }
keyword_columns = ["NOTES"]
[withdraw]
column = "REC_STATUS"
withdraw_values = ["VOID"]
expunge_values = ["SEALED"]
[defaults]
disposition = "OPEN"
"""


def _profile(crs: str) -> Profile:
    return parse_profile(textwrap.dedent(FEED).replace('"CRS"', repr(crs)), base_dir=".")


def _both(
    profile: Profile,
    recs: Sequence[RawRecord],
    agency: str = "pdx",
    extent: tuple[float, float, float, float] | None = PORTLAND,
) -> tuple[list[object], list[object], int]:
    """Return the per-row results, the columnar ones and how many rows took the common path."""

    def fresh() -> Normaliser:
        return Normaliser(profile, agency, source_file="feed.csv", extent=extent, clock=CLOCK)

    # One normaliser over the rows in order, as the pipeline reads them: the ids of rows
    # without a source id count the earlier rows of the same content (occurrences).
    reference = fresh()
    rows = [reference.normalise(rec) for rec in recs]
    columnar = ColumnarNormaliser(fresh())
    common = sum(1 for c in columnar.common(recs) if c is not None)
    return rows, list(ColumnarNormaliser(fresh()).normalise(recs)), common


# -- generated exports ---------------------------------------------------------------
def _xy(crs: str, lon: float, lat: float) -> tuple[str, str]:
    if crs == "EPSG:4326":
        return f"{lon:.6f}", f"{lat:.6f}"
    inverse = transformer_to_wgs84(crs)
    x, y = inverse.transform(lon, lat, direction="INVERSE")
    return f"{x:.1f}", f"{y:.1f}"


_PLAIN = {
    "CASE_NO": st.sampled_from(["26-1", "26-2", "26-3", "27-9", "A 5"]),
    "OCC_DATE": st.sampled_from(["07/04/2025", "01/31/2024", "2024-02-29"]),
    "OCC_TIME": st.sampled_from(["2130", "0000", "1205", ""]),
    "END_DATE": st.sampled_from(["", "07/05/2025"]),
    "RPT": st.sampled_from(["", "2025-07-05 08:00"]),
    "ADDRESS": st.sampled_from(["1221 SW 4TH AVE APT 2", "", "5 MAIN ST"]),
    "PREMISE": st.sampled_from(["residence", "STREET", ""]),
    "PREC": st.sampled_from(["", "exact", "block"]),
    "CODE1": st.sampled_from(["13B", "220", "240", "11A"]),
    "DESC1": st.sampled_from(["SIMPLE ASSAULT", "", "BURGLARY"]),
    "CODE2": st.sampled_from(["", "290"]),
    "VICTIM": st.sampled_from(["", "Jane Doe"]),
    "VICTIM_AGE": st.sampled_from(["", "34", "15"]),
    "DV": st.sampled_from(["", "N", "Y"]),
    "NOTES": st.sampled_from(["", "neighbour dispute", "ex-boyfriend"]),
    "NARRATIVE": st.sampled_from(["", "Victim reports an assault.", "the child was hurt"]),
    "STATUS": st.sampled_from(["", "ACTIVE"]),
    "BEAT": st.sampled_from(["", "3C", "NULL"]),
    "REC_STATUS": st.just(""),
}
#: Values that send a row through the per-row normaliser (or change what it says).
_ODD = {
    "CASE_NO": ["", " ", "NULL"],
    "OCC_DATE": ["", "13/45/2020", "01/01/2099", "03/10/2024", "12/31/1899", "N/A"],
    "OCC_TIME": ["0230", "99", "2500"],
    "END_DATE": ["01/01/2000", "bad"],
    "RPT": ["2020-01-01 00:00", "yesterday"],
    "PREMISE": ["garage"],
    "PREC": ["rooftop"],
    "CODE1": ["ZZZ", "", "90Z"],
    "VICTIM_AGE": ["abc", "200"],
    "REC_STATUS": ["VOID", "SEALED"],
}


@st.composite
def _records(draw: st.DrawFn, crs: str) -> list[RawRecord]:
    count = draw(st.integers(1, 25))
    recs = []
    for i in range(count):
        fields: dict[str, str | None] = {k: draw(v) for k, v in _PLAIN.items()}
        lon = draw(st.floats(-122.74, -122.61))
        lat = draw(st.floats(45.46, 45.59))
        fields["X"], fields["Y"] = _xy(crs, lon, lat)
        for column in draw(st.lists(st.sampled_from(sorted(_ODD)), max_size=2)):
            fields[column] = draw(st.sampled_from(_ODD[column]))
        point = draw(
            st.sampled_from(["plain"] * 6 + ["blank", "half", "zero", "swapped", "far", "text"])
        )
        if point == "blank":
            fields["X"] = fields["Y"] = ""
        elif point == "half":
            fields["Y"] = None
        elif point == "zero":
            fields["X"] = fields["Y"] = "0"
        elif point == "swapped":
            fields["X"], fields["Y"] = fields["Y"], fields["X"]
        elif point == "far":
            fields["X"], fields["Y"] = _xy(crs, lon + 2.0, lat)
        elif point == "text":
            fields["X"] = "nan" if draw(st.booleans()) else "x1"
        problems = ("row 3 has 2 fields, the header 24",) if draw(st.integers(0, 30)) == 0 else ()
        recs.append(RawRecord(i + 1, fields, problems=problems))
    return recs


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:2913"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_columnar_equals_per_row_on_generated_exports(crs: str, data: st.DataObject) -> None:
    profile = _profile(crs)
    recs = data.draw(_records(crs))
    rows, columnar, _ = _both(profile, recs)
    for rec, a, b in zip(recs, rows, columnar, strict=True):
        assert a == b, rec.fields


def test_repeated_rows_without_an_id_count_occurrences_alike() -> None:
    """Identical rows without a case number get the same ids both ways (found by hypothesis).

    The first has a read problem, the third is plain: the third's id is its content's
    second occurrence on either path.
    """
    profile = _profile("EPSG:2913")
    fields = dict.fromkeys(_PLAIN, "")
    fields.update(
        OCC_DATE="07/04/2025", OCC_TIME="2130", ADDRESS="1221 SW 4TH AVE APT 2",
        PREMISE="residence", CODE1="13B", DESC1="SIMPLE ASSAULT", X="7657313.3", Y="675549.9",
    )  # fmt: skip
    problem = ("row 3 has 2 fields, the header 24",)
    recs = [
        RawRecord(1, dict(fields), problems=problem),
        RawRecord(2, dict(fields, CASE_NO="26-1"), problems=problem),
        RawRecord(3, dict(fields)),
    ]
    rows, columnar, _ = _both(profile, recs)
    assert rows == columnar
    third = rows[2]
    assert isinstance(third, Normalised) and third.incident is not None
    assert third.incident.source_id.endswith("-2")


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:2913"])
def test_plain_rows_take_the_common_path(crs: str) -> None:
    """The test above compares something: plain rows are built column by column."""
    profile = _profile(crs)
    plain = {
        **dict.fromkeys(_PLAIN, ""),
        "CASE_NO": "26-1",
        "OCC_DATE": "07/04/2025",
        "OCC_TIME": "2130",
        "CODE1": "13B",
    }
    recs = []
    for i in range(50):
        x, y = _xy(crs, -122.70 + i * 0.001, 45.50)
        recs.append(RawRecord(i + 1, {**plain, "CASE_NO": f"26-{i}", "X": x, "Y": y}))
    rows, columnar, common = _both(profile, recs)
    assert common == len(recs)
    assert rows == columnar
    assert all(isinstance(r, Normalised) and not r.warnings for r in rows)


def test_update_feeds_and_geometries_are_not_covered() -> None:
    assert covers(_profile("EPSG:4326"))
    assert not covers(load_profile(DEMO_PROFILES / "clackmer-sheriff.toml"))


# -- real exports ------------------------------------------------------------------------
def _compare_file(profile: Profile, path: Path, part: int = 2000) -> tuple[int, int]:
    """Compare both paths over a whole file, part by part; return (rows, common rows)."""
    amap = {k.strip().casefold(): v for k, v in profile.agency_map.items()}
    total = common = 0
    normalisers: dict[str, tuple[Normaliser, ColumnarNormaliser]] = {}
    extent = None

    def pair(agency: str) -> tuple[Normaliser, ColumnarNormaliser]:
        if agency not in normalisers:
            p = profile.for_agency(agency)
            normalisers[agency] = (
                Normaliser(p, agency, source_file=path.name, extent=extent, clock=CLOCK),
                ColumnarNormaliser(
                    Normaliser(p, agency, source_file=path.name, extent=extent, clock=CLOCK)
                ),
            )
        return normalisers[agency]

    def compare(recs: list[RawRecord]) -> None:
        nonlocal total, common
        groups: dict[str, list[RawRecord]] = {}
        for rec in recs:
            if profile.agency_column:
                agency = amap.get((rec.fields.get(profile.agency_column) or "").strip().casefold())
                if agency is None:
                    continue
            else:
                agency = profile.agency or "agency"
            groups.setdefault(agency, []).append(rec)
        for agency, group in groups.items():
            rows, columnar = pair(agency)
            expected = [rows.normalise(rec) for rec in group]
            assert columnar.normalise(group) == expected
            common += sum(1 for r in expected if isinstance(r, Normalised) and not r.warnings)
            total += len(group)

    with open_source(path, profile.source, required_columns=profile.referenced_columns()) as src:
        recs: list[RawRecord] = []
        for rec in src:
            recs.append(rec)
            if len(recs) == part:
                compare(recs)
                recs = []
        compare(recs)
    return total, common


REAL = [
    (("sacramento-2006", "SacramentocrimeJanuary2006.csv"), "sacramento-2006.crimes"),
    (("toronto-mci", "test.csv"), "toronto-mci.mci"),
    (
        ("uk-london", "col_2016_2017", "2017-01", "2017-01-city-of-london-street.csv"),
        "uk-london.col-street",
    ),
    (("uk-london", "btp_col_2020", "2020-01-btp-street.csv"), "uk-london.btp-street"),
    (("us-code-crimedata", "homicides15.csv"), "us-code-crimedata.homicides15"),
    (("us-code-crimedata", "nycvehiclethefts.csv"), "us-code-crimedata.nycvehiclethefts"),
]


@pytest.mark.shared_data
@pytest.mark.parametrize("parts,example", REAL, ids=[r[1] for r in REAL])
def test_columnar_equals_per_row_on_real_exports(parts: tuple[str, ...], example: str) -> None:
    profile = load_profile(EXAMPLES / f"{example}.toml")
    total, common = _compare_file(profile, shared_data(*parts))
    assert total > 0
    if covers(profile):
        assert common > 0


def test_columnar_equals_per_row_on_the_demo_exports(tmp_path: Path) -> None:
    files = write_exports(simulate(7, 0.2), tmp_path)
    for agency, export in files.items():
        profile = load_profile(DEMO_PROFILES / PROFILES[agency])
        total, _ = _compare_file(profile, export.path)
        assert total == export.rows


# -- through the pipeline ----------------------------------------------------------------
@pytest.mark.parametrize("seed,parallel", [(1, False), (2, True)])
def test_the_pipeline_stores_the_same_either_way(
    seed: int, parallel: bool, tmp_path: Path, kek: Kek
) -> None:
    """Records, versions, quarantine, counts and audit events: columnar or row by row."""
    profile_path = tmp_path / "feed.toml"
    profile_path.write_text(PIPELINE_PROFILE, encoding="utf-8")
    profile = load_profile(profile_path)
    rng = random.Random(seed)
    rows = [_row(rng, i) for i in range(80)]
    files = [_write(tmp_path / "e0.csv", rows)]
    for k in range(1, 3):
        rows = _mutate(rng, [r for r in rows if r["id"] and not r["id"].startswith("BAD")], 100 * k)
        files.append(_write(tmp_path / f"e{k}.csv", rows))
    rows_store, cols_store = _store(tmp_path / "rows.db", kek), _store(tmp_path / "cols.db", kek)
    for f in [files[0], files[1], files[0], files[2]]:
        a = ingest_files(rows_store, "cityz", profile, [f], columnar=False, parallel=parallel)
        b = ingest_files(cols_store, "cityz", profile, [f], parallel=parallel)
        assert b.totals.as_dict() == a.totals.as_dict(), f.name
    assert _state(cols_store) == _state(rows_store)
