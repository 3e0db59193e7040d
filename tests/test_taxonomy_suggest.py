"""Suggestions for unmapped codes: the right code first for realistic local codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossbeat.taxonomy import NOT_A_CRIME, nibrs_offences, suggest
from crossbeat.taxonomy.suggest import suggest_terms


@pytest.mark.parametrize(
    ("local", "description", "scheme", "expected"),
    [
        # Statute text of a new variant: the same scheme's pattern finds it.
        ("459 PC BURGLARY GARAGE", None, "sacramento-statute", "220"),
        ("10851 VC TAKE VEH-MOTORCYCLE", None, "sacramento-statute", "240"),
        # A neighbouring agency's statute text, matched by Sacramento's patterns.
        ("459 PC BURG COMMERCIAL", None, "folsom-statute", "220"),
        # Plain-language categories of other schemes.
        ("BURGLARY - COMMERCIAL", None, None, "220"),
        ("Theft from a motor vehicle", None, None, "23F"),
        ("PETTY THEFT FROM AUTO", None, None, "23F"),
        ("Criminal damage", None, None, "290"),
        ("Graffiti", None, None, "290"),
        ("SIMPLE ASSAULT", None, None, "13B"),
        ("Stolen vehicle", None, None, "240"),
        ("Drunk driving", None, None, "90D"),
        ("Residential burglary", None, None, "220"),
        ("Shoplifting", None, None, "23C"),
        ("Lost property", None, None, NOT_A_CRIME),
        # A numeric code with a telling description.
        ("0810", "AGGRAVATED ASSAULT - HANDGUN", "chicago-iucr", "13A"),
        # A local code that is a NIBRS code.
        ("23f", None, None, "23F"),
        # NCIC code not listed one by one: the family pattern.
        ("2311", None, "ncic", "23H"),
    ],
)
def test_right_code_first(
    local: str, description: str | None, scheme: str | None, expected: str
) -> None:
    found = suggest(local, description, scheme=scheme)
    assert found, local
    assert found[0].nibrs_code == expected, [(s.nibrs_code, s.score, s.reason) for s in found]
    assert found[0].reason


def test_suggestions_are_ranked_unique_and_limited() -> None:
    found = suggest("THEFT FROM VEHICLE", limit=3)
    assert len(found) <= 3
    assert [s.score for s in found] == sorted((s.score for s in found), reverse=True)
    assert len({s.target for s in found}) == len(found)
    for s in found:
        assert s.nibrs_code == NOT_A_CRIME or s.name == nibrs_offences()[s.nibrs_code].name
    calls = suggest("ALARM", limit=5)
    assert len({s.target for s in calls}) == len(calls)
    assert suggest("THEFT FROM VEHICLE", limit=0) == []


def test_same_scheme_pattern_outranks_other_schemes() -> None:
    own = suggest("459 PC BURGLARY GARAGE", scheme="sacramento-statute")[0]
    other = suggest("459 PC BURGLARY GARAGE", scheme="folsom-statute")[0]
    assert own.score > other.score
    assert "sacramento-statute pattern" in own.reason


def test_numeric_codes_do_not_carry_over_between_schemes() -> None:
    # IUCR 2305 is not NCIC 2305 (theft from auto): no suggestion may come from NCIC.
    found = suggest("2305", scheme="chicago-iucr")
    assert all("ncic" not in s.reason for s in found)


def test_min_score_drops_weak_matches() -> None:
    assert suggest("qqxzv", min_score=60) == []


def test_agency_crosswalks_are_compared(tmp_path: Path) -> None:
    (tmp_path / "county-codes.toml").write_text(
        """
[crosswalk]
scheme = "county-codes"
version = "1"

[[map]]
local = "CATCONV"
name = "Catalytic converter removed from parked car"
nibrs = "23G"
match = "exact"
""",
        encoding="utf-8",
    )
    found = suggest("CATALYTIC CONVERTER REMOVED", extra_dirs=[tmp_path])
    assert found[0].nibrs_code == "23G"


def test_suggest_terms_use_known_codes() -> None:
    terms = suggest_terms()
    assert set(terms) - {NOT_A_CRIME} <= set(nibrs_offences())
    assert all(terms.values())
