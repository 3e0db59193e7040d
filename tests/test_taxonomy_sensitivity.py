"""Keyword sensitivity: what free text flags, and what it must not flag."""

from __future__ import annotations

import pytest

from crossbeat.model import Sensitivity
from crossbeat.taxonomy import keyword_rules, keyword_sensitivity

S = Sensitivity


def test_every_flag_has_rules() -> None:
    rules = keyword_rules()
    assert set(rules) == set(Sensitivity)
    assert all(rules[flag] for flag in Sensitivity)


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("RAPE", S.SEXUAL_OFFENCE),
        ("243.4(A) SEXUAL BATTERY", S.SEXUAL_OFFENCE),
        ("SODOMY - FORCIBLE", S.SEXUAL_OFFENCE),
        ("INDECENT EXPOSURE", S.SEXUAL_OFFENCE),
        ("647(A) PC LEWD CONDUCT", S.SEXUAL_OFFENCE),
        ("CHILD MOLESTATION", S.SEXUAL_OFFENCE),
        ("288 PC LEWD ACT WITH CHILD", S.SEXUAL_OFFENCE),
        ("290(G)(1) FAIL TO REG SEX OFFE", S.SEXUAL_OFFENCE),
        ("Voyeurism", S.SEXUAL_OFFENCE),
        ("DOMESTIC BATTERY", S.DOMESTIC_VIOLENCE),
        ("243(E)1 BATTERY NONCOHAB SPOUS", S.DOMESTIC_VIOLENCE),
        ("ASSAULT - DV", S.DOMESTIC_VIOLENCE),
        ("assault (d.v.)", S.DOMESTIC_VIOLENCE),
        ("273.5 PC CORPORAL INJURY", S.DOMESTIC_VIOLENCE),
        ("273.6(A) PC VIO COURT ORDER", S.DOMESTIC_VIOLENCE),
        ("VIOLATION OF RESTRAINING ORDER", S.DOMESTIC_VIOLENCE),
        ("JUVENILE CURFEW", S.JUVENILE),
        ("25662(A)BP POSS ALC BY MINOR", S.JUVENILE),
        ("11357(E) MNR POSS MARIJ SCHOOL", S.JUVENILE),
        ("CHILD ENDANGERMENT", S.JUVENILE),
        ("child abuse", S.JUVENILE),
        ("RUNAWAY", S.JUVENILE),
        ("273A(A) PC WILLFUL CRUELTY", S.JUVENILE),
        ("601(A) WI INCORRIGIBLE", S.JUVENILE),
        ("STALKING", S.VICTIM_IDENTIFYING),
        ("5150 WI DANGER SELF/OTHERS", S.VICTIM_IDENTIFYING),
        ("MISSING PERSON", S.VICTIM_IDENTIFYING),
        ("368(B)(1) CRUELTY/ELDER", S.VICTIM_IDENTIFYING),
        ("HUMAN TRAFFICKING", S.VICTIM_IDENTIFYING),
        ("INFORMANT INFO", S.INFORMANT),
        ("buy via CI", S.INFORMANT),
        ("C.I. controlled buy", S.INFORMANT),
        ("CONFIDENTIAL SOURCE REPORT", S.INFORMANT),
    ],
)
def test_keywords_flag(text: str, flag: Sensitivity) -> None:
    assert flag in keyword_sensitivity(text)


@pytest.mark.parametrize(
    "text",
    [
        "THEFT FROM CHILDREN'S STORE",
        "THEFT FROM CHILDREN\u2019S STORE",
        "GRAPE THEFT FROM VINEYARD",
        "DRAPES STOLEN",
        "SUSSEX STREET BURGLARY",
        "ADVANCED VEHICLE THEFT",
        "MINOR INJURY COLLISION",
        "MINOR DAMAGE TO FENCE",
        "SPECIAL EVENT",
        "CIRCLE K ROBBERY",
        "459 PC  BURGLARY RESIDENCE",
        "290",  # NIBRS 290 (vandalism) as text is not Penal Code 290
        "288",
        "273",
        "Sex: F",
        "DVD PLAYER STOLEN",
        "MINORITY OWNED BUSINESS",
        "Criminal damage and arson",
        "",
    ],
)
def test_keywords_do_not_flag(text: str) -> None:
    assert keyword_sensitivity(text) == frozenset()


def test_several_texts_and_none() -> None:
    flags = keyword_sensitivity(None, "BATTERY ON SPOUSE", "", "JUVENILE SUSPECT")
    assert flags == {S.DOMESTIC_VIOLENCE, S.JUVENILE}
    assert keyword_sensitivity() == frozenset()
    assert keyword_sensitivity(None, "   ") == frozenset()


def test_whitespace_is_collapsed_before_matching() -> None:
    assert S.VICTIM_IDENTIFYING in keyword_sensitivity("MISSING\n   PERSON")
