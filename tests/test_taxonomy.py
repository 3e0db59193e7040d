"""The NIBRS tables and the shipped crosswalks: structure, known facts, real-data coverage."""

from __future__ import annotations

import csv
import os
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from crossbeat.model import CrimeAgainst, Sensitivity
from crossbeat.taxonomy import (
    MATCH_LEVELS,
    NIBRS_VERSION,
    NOT_A_CRIME,
    UCR_PART1_CLASSES,
    TaxonomyError,
    available_crosswalks,
    load_crosswalk,
    nibrs_location_types,
    nibrs_offences,
    validate_crosswalk_file,
)
from tests.conftest import shared_data

SHIPPED = available_crosswalks()
S = Sensitivity
DV = S.DOMESTIC_VIOLENCE


# -- NIBRS tables ----------------------------------------------------------------------
def test_nibrs_version_comes_from_the_version_file() -> None:
    data = Path(__file__).parents[1] / "crossbeat" / "taxonomy" / "data" / "VERSION.toml"
    assert NIBRS_VERSION == tomllib.loads(data.read_text())["nibrs"]["version"]


def test_nibrs_table_has_group_a_and_b_with_the_2019_additions() -> None:
    table = nibrs_offences()
    groups = Counter(o.group for o in table.values())
    assert groups["A"] >= 70 and groups["B"] >= 12
    for code in ("26F", "26G", "26H", "720", "360", "30A", "30D", "49C", "58B", "61B", "620"):
        assert code in table, code
    assert {"101", "103", "90K", "90L", "90M"} <= set(table)
    assert all(o.code == code for code, o in table.items())


@pytest.mark.parametrize(
    ("code", "against", "part1"),
    [
        ("09A", CrimeAgainst.PERSON, "homicide"),
        ("09C", CrimeAgainst.NOT_A_CRIME, None),
        ("11A", CrimeAgainst.PERSON, "rape"),
        ("11D", CrimeAgainst.PERSON, None),
        ("120", CrimeAgainst.PROPERTY, "robbery"),
        ("13A", CrimeAgainst.PERSON, "aggravated_assault"),
        ("13B", CrimeAgainst.PERSON, None),
        ("200", CrimeAgainst.PROPERTY, "arson"),
        ("220", CrimeAgainst.PROPERTY, "burglary"),
        ("23C", CrimeAgainst.PROPERTY, "larceny"),
        ("240", CrimeAgainst.PROPERTY, "motor_vehicle_theft"),
        ("35A", CrimeAgainst.SOCIETY, None),
        ("90Z", CrimeAgainst.SOCIETY, None),
    ],
)
def test_nibrs_known_classes(code: str, against: CrimeAgainst, part1: str | None) -> None:
    offence = nibrs_offences()[code]
    assert offence.crime_against is against
    assert offence.ucr_part1 == part1


def test_part1_classes_cover_exactly_the_index_offences() -> None:
    used = {o.ucr_part1 for o in nibrs_offences().values() if o.ucr_part1}
    assert used == set(UCR_PART1_CLASSES)
    larceny = sorted(c for c, o in nibrs_offences().items() if o.ucr_part1 == "larceny")
    assert larceny == [f"23{x}" for x in "ABCDEFGH"]


def test_sexual_offence_codes_carry_the_flag() -> None:
    table = nibrs_offences()
    for code in ("11A", "11B", "11C", "11D", "36A", "36B", "64A"):
        assert S.SEXUAL_OFFENCE in table[code].sensitivity, code
    assert S.JUVENILE in table["36B"].sensitivity
    assert not table["220"].sensitivity and not table["13B"].sensitivity


def test_federal_only_codes_are_marked() -> None:
    federal = {c for c, o in nibrs_offences().items() if o.federal_only}
    assert {"101", "103", "26H", "30A", "49A", "521", "526", "58A", "61A", "620", "90K"} <= federal
    assert not federal & {"09A", "13A", "220", "23H", "35A", "520", "90Z"}


def test_location_types() -> None:
    types = nibrs_location_types()
    expected = {f"{n:02d}" for n in (*range(1, 26), *range(37, 59))} - {"43"}
    assert set(types) == expected
    assert types["20"] == "Residence/Home"
    assert types["58"] == "Cyberspace"


# -- every shipped crosswalk -------------------------------------------------------------
def test_the_five_schemes_are_shipped() -> None:
    assert set(SHIPPED) >= {"police-uk", "code-nibrs", "ncic", "sacramento-statute", "toronto-mci"}


@pytest.mark.parametrize("scheme", sorted(SHIPPED))
def test_shipped_crosswalk_validates(scheme: str) -> None:
    assert validate_crosswalk_file(SHIPPED[scheme]) == []
    cw = load_crosswalk(scheme)
    assert cw.scheme == scheme and cw.version and cw.description
    assert len(cw) > 0
    for rule in cw.rules:
        assert rule.nibrs == NOT_A_CRIME or rule.nibrs in nibrs_offences()
        assert rule.match in MATCH_LEVELS


# -- known facts -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scheme", "code", "description", "nibrs", "flags"),
    [
        ("police-uk", "Burglary", None, "220", set()),
        ("police-uk", "Shoplifting", None, "23C", set()),
        ("toronto-mci", "Break and Enter", None, "220", set()),
        ("toronto-mci", "Auto Theft", None, "240", set()),
        ("code-nibrs", "09A", "murder and nonnegligent manslaughter", "09A", set()),
        ("code-nibrs", "11A", None, "11A", {S.SEXUAL_OFFENCE, S.VICTIM_IDENTIFYING}),
        ("ncic", "2404", None, "240", set()),
        ("ncic", "2204", None, "220", set()),
        ("ncic", "1313", None, "13B", set()),
        ("ncic", "909", None, "09B", set()),
        ("ncic", "0909", None, "09B", set()),
        ("ncic", "2311", None, "23H", set()),
        ("ncic", "1301", None, "13A", {S.DOMESTIC_VIOLENCE}),
        ("sacramento-statute", None, "459 PC  BURGLARY RESIDENCE", "220", set()),
        ("sacramento-statute", None, "459 PC  BURGLARY VEHICLE", "23F", set()),
        ("sacramento-statute", None, "10851(A)VC TAKE VEH W/O OWNER", "240", set()),
        ("sacramento-statute", None, "BAIT CAR 10851 VC TAKE VEHICLE", "240", set()),
        ("sacramento-statute", None, "664/187(A) ATTEMPTED HOMICIDE", "13A", set()),
        ("sacramento-statute", None, "187(A)  HOMICIDE", "09A", set()),
        ("sacramento-statute", None, "484 PETTY THEFT-SHOPLIFT", "23C", set()),
        ("sacramento-statute", None, "487(D) PC GRAND THEFT AUTO", "240", set()),
        ("sacramento-statute", None, "487(A) GRAND THEFT-AUTO PARTS", "23G", set()),
        ("sacramento-statute", None, "530.5 PC USE PERSONAL ID INFO", "26F", set()),
        ("sacramento-statute", None, "273.5 PC CORPORAL INJ SPOUSE", "13B", {DV}),
        ("sacramento-statute", None, "273.5(A) PC DV W/ INJURY", "13B", {DV}),
        (
            "sacramento-statute",
            None,
            "288(A) PC LEWD ACT W/CHILD",
            "11D",
            {S.SEXUAL_OFFENCE, S.JUVENILE, S.VICTIM_IDENTIFYING},
        ),
        (
            "sacramento-statute",
            None,
            "243(E)1 BATTERY NONCOHAB SPOUS",
            "13B",
            {S.DOMESTIC_VIOLENCE},
        ),
    ],
)
def test_known_mappings(
    scheme: str, code: str | None, description: str | None, nibrs: str, flags: set[Sensitivity]
) -> None:
    offence, implied = load_crosswalk(scheme).classify(code, description)
    assert offence.nibrs_code == nibrs
    assert offence.mapped and offence.match in MATCH_LEVELS
    assert offence.crime_against is nibrs_offences()[nibrs].crime_against
    assert offence.ucr_part1 == nibrs_offences()[nibrs].ucr_part1
    assert offence.scheme == scheme and offence.crosswalk_version == load_crosswalk(scheme).version
    assert implied == flags


def test_police_uk_burglary_is_part1_burglary_against_property() -> None:
    offence, _ = load_crosswalk("police-uk").classify("Burglary")
    assert (offence.nibrs_code, offence.crime_against, offence.ucr_part1) == (
        "220",
        CrimeAgainst.PROPERTY,
        "burglary",
    )


@pytest.mark.parametrize(
    ("scheme", "code", "description"),
    [
        ("ncic", "7000", None),
        ("police-uk", "Anti-social behaviour", None),
        ("sacramento-statute", None, "TOWED/STORED VEHICLE"),
        ("sacramento-statute", None, "BURGLARY - I RPT"),
        ("code-nibrs", "90I", None),
    ],
)
def test_not_a_crime_entries(scheme: str, code: str | None, description: str | None) -> None:
    offence, _ = load_crosswalk(scheme).classify(code, description)
    assert offence.mapped
    assert offence.nibrs_code is None and offence.ucr_part1 is None
    assert offence.crime_against is CrimeAgainst.NOT_A_CRIME


def test_sacramento_273_5_entries_carry_domestic_violence() -> None:
    cw = load_crosswalk("sacramento-statute")
    for text in ("273.5 PC", "273.5(A) PC CORP INJ SPOUSE/COHAB", "273.6(A) PC VIO DV COURT ORDER"):
        assert S.DOMESTIC_VIOLENCE in cw.classify(None, text)[1], text


def test_crime_against_override() -> None:
    offence, _ = load_crosswalk("ncic").classify("7099")
    assert offence.nibrs_code == "90Z" and offence.crime_against is CrimeAgainst.PERSON


# -- matching rules ------------------------------------------------------------------------
def test_matching_ignores_case_and_whitespace() -> None:
    cw = load_crosswalk("police-uk")
    for text in ("burglary", "  BURGLARY ", "Violence and   sexual\toffences"):
        offence, _ = cw.classify(text)
        assert offence.mapped, text
    assert cw.classify(" Burglary ")[0].local_code == "Burglary"


def test_unknown_code_is_flagged_not_guessed() -> None:
    cw = load_crosswalk("police-uk")
    offence, flags = cw.classify("Burglary of a shed", "something like burglary")
    assert offence.match is None and not offence.mapped
    assert offence.nibrs_code is None and offence.crime_against is None
    assert offence.ucr_part1 is None and flags == frozenset()
    assert offence.local_code == "Burglary of a shed"
    assert offence.local_description == "something like burglary"
    assert offence.scheme == "police-uk" and offence.crosswalk_version == cw.version


def test_code_keyed_scheme_does_not_fall_back_to_the_description() -> None:
    # A code the crosswalk does not know stays unmapped even if its description
    # would match: nothing is guessed.
    offence, _ = load_crosswalk("ncic").classify("9998", "Burglary")
    assert offence.match is None and offence.local_code == "9998"


def test_description_keyed_scheme_uses_the_description() -> None:
    cw = load_crosswalk("sacramento-statute")
    offence, _ = cw.classify("2204", "459 PC  BURGLARY RESIDENCE")
    assert offence.local_code == "459 PC  BURGLARY RESIDENCE"
    assert offence.nibrs_code == "220"
    # Without a description the code is the text to match.
    offence, _ = cw.classify("459 PC BURGLARY BUSINESS")
    assert offence.nibrs_code == "220"


def test_classify_without_code_or_description_is_an_error() -> None:
    with pytest.raises(TaxonomyError, match="neither a code nor a description"):
        load_crosswalk("police-uk").classify(None, "  ")


# -- validation and loading ------------------------------------------------------------------
GOOD = """
[crosswalk]
scheme = "{scheme}"
version = "1"
description = "test"

[[map]]
local = "BURG"
nibrs = "220"
match = "exact"
"""


def _write(folder: Path, scheme: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{scheme}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_validation_lists_every_problem(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "my-scheme",
        """
[crosswalk]
scheme = "other-name"
version = "1"

[[map]]
local = "A"
nibrs = "99X"
match = "exact"

[[map]]
local = "B"
aliases = [" a "]
nibrs = "220"
match = "exact"

[[map]]
local = "C"
nibrs = "none"
match = "exact"
crime_against = "person"

[[pattern]]
regex = '^(unclosed'
nibrs = "220"
match = "narrower"
""",
    )
    problems = validate_crosswalk_file(path)
    text = "\n".join(problems)
    assert "differs from the file name" in text
    assert "unknown NIBRS code '99X'" in text
    assert "duplicate local code ' a '" in text
    assert "crime_against cannot be set" in text
    assert "bad regular expression" in text
    assert len(problems) == 5


def test_validation_reports_structure_errors(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "x",
        """
[crosswalk]
scheme = "x"

[[map]]
local = "A"
nibrs = "220"
match = "close enough"
sensitivity = ["spicy"]
colour = "red"
""",
    )
    problems = "\n".join(validate_crosswalk_file(path))
    assert "crosswalk.version" in problems
    assert "map.0.match" in problems
    assert "map.0.sensitivity.0" in problems
    assert "map.0.colour" in problems
    assert validate_crosswalk_file(_write(tmp_path, "y", "[crosswalk\n"))[0].startswith(
        "not valid TOML"
    )


def test_loading_an_invalid_file_raises_with_every_problem(tmp_path: Path) -> None:
    _write(tmp_path, "bad", GOOD.format(scheme="bad").replace('"220"', '"999"'))
    with pytest.raises(TaxonomyError) as err:
        load_crosswalk("bad", [tmp_path])
    assert "unknown NIBRS code '999'" in str(err.value)
    assert "crossbeat taxonomy check" in str(err.value)


def test_unknown_scheme_lists_the_available_ones() -> None:
    with pytest.raises(TaxonomyError) as err:
        load_crosswalk("no-such-scheme")
    message = str(err.value)
    assert "no-such-scheme" in message
    for scheme in SHIPPED:
        assert scheme in message


def test_agency_folders_come_first(tmp_path: Path) -> None:
    local = tmp_path / "crosswalks"
    _write(local, "police-uk", GOOD.format(scheme="police-uk"))
    _write(local, "agency-codes", GOOD.format(scheme="agency-codes"))
    found = available_crosswalks([local])
    assert found["police-uk"] == local / "police-uk.toml"
    assert found["ncic"] == SHIPPED["ncic"]
    assert load_crosswalk("police-uk", [local]).classify("BURG")[0].nibrs_code == "220"
    assert load_crosswalk("police-uk", [local]).classify("Burglary")[0].match is None
    assert load_crosswalk("police-uk").classify("Burglary")[0].match == "exact"
    assert load_crosswalk("agency-codes", [local]).version == "1"


def test_cached_crosswalk_is_reread_after_an_edit(tmp_path: Path) -> None:
    path = _write(tmp_path, "mine", GOOD.format(scheme="mine"))
    first = load_crosswalk("mine", [tmp_path])
    assert load_crosswalk("mine", [tmp_path]) is first
    path.write_text(GOOD.format(scheme="mine").replace('version = "1"', 'version = "2"'))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert load_crosswalk("mine", [tmp_path]).version == "2"


def test_patterns_are_tried_in_file_order_after_exact_entries(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "order",
        """
[crosswalk]
scheme = "order"
version = "1"
key = "description"

[[map]]
local = "459 PC SPECIAL"
nibrs = "90Z"
match = "approximate"

[[pattern]]
regex = '^459\\b.*VEH'
nibrs = "23F"
match = "narrower"

[[pattern]]
regex = '^459\\b'
nibrs = "220"
match = "narrower"
sensitivity = ["informant"]
""",
    )
    cw = load_crosswalk("order", [tmp_path])
    assert cw.classify(None, "459  pc special")[0].nibrs_code == "90Z"
    assert cw.classify(None, "459 PC VEHICLE")[0].nibrs_code == "23F"
    offence, flags = cw.classify(None, "459 PC HOUSE")
    assert offence.nibrs_code == "220" and flags == {S.INFORMANT}


# -- 100 % of the distinct codes in the real files ---------------------------------------------
def _distinct(path: Path, column: str, encoding: str = "utf-8") -> set[str]:
    with path.open(encoding=encoding, newline="") as fh:
        return {row[column] for row in csv.DictReader(fh) if row[column].strip()}


def _unmapped(scheme: str, values: set[str], *, as_description: bool = False) -> list[str]:
    cw = load_crosswalk(scheme)
    return sorted(
        v
        for v in values
        if cw.classify(None, v)[0].match is None
        or (not as_description and cw.classify(v)[0].match is None)
    )


@pytest.mark.shared_data
def test_sacramento_statute_maps_every_description() -> None:
    path = shared_data("sacramento-2006", "SacramentocrimeJanuary2006.csv")
    values = _distinct(path, "crimedescr", "latin-1")
    assert len(values) == 304
    assert _unmapped("sacramento-statute", values, as_description=True) == []


@pytest.mark.shared_data
def test_ncic_maps_every_sacramento_code() -> None:
    path = shared_data("sacramento-2006", "SacramentocrimeJanuary2006.csv")
    values = _distinct(path, "ucr_ncic_code", "latin-1")
    assert len(values) == 88
    assert _unmapped("ncic", values) == []


@pytest.mark.shared_data
def test_ncic_and_statute_agree_on_the_pairs_sacramento_reports() -> None:
    # The file pairs statute text with an NCIC code; where both crosswalks give a
    # crime-against category they should mostly agree (they disagree only where
    # Sacramento files an offence under another family, e.g. vehicle burglary).
    path = shared_data("sacramento-2006", "SacramentocrimeJanuary2006.csv")
    with path.open(encoding="latin-1", newline="") as fh:
        pairs = Counter((r["crimedescr"], r["ucr_ncic_code"]) for r in csv.DictReader(fh))
    statute, ncic = load_crosswalk("sacramento-statute"), load_crosswalk("ncic")
    agree = sum(
        n
        for (text, code), n in pairs.items()
        if statute.classify(None, text)[0].crime_against == ncic.classify(code)[0].crime_against
    )
    assert agree / sum(pairs.values()) > 0.95


@pytest.mark.shared_data
def test_police_uk_maps_every_crime_type() -> None:
    root = shared_data("uk-london")
    values: set[str] = set()
    for path in root.rglob("*-street.csv"):
        values |= _distinct(path, "Crime type")
    assert len(values) == 14
    assert _unmapped("police-uk", values) == []


@pytest.mark.shared_data
def test_toronto_mci_maps_every_category() -> None:
    root = shared_data("toronto-mci")
    values = _distinct(root / "train.csv", "MCI") | _distinct(root / "test.csv", "MCI")
    assert values == {"Assault", "Break and Enter", "Auto Theft", "Robbery", "Theft Over"}
    assert _unmapped("toronto-mci", values) == []


@pytest.mark.shared_data
def test_code_nibrs_maps_every_homicide_code() -> None:
    path = shared_data("us-code-crimedata", "homicides15.csv")
    values = _distinct(path, "offense_code")
    assert values == {"09A", "09B"}
    assert _unmapped("code-nibrs", values) == []
