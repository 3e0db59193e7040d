"""`taxonomy suggest` knows police and CAD vocabulary, measured on a labelled list.

The floors are a little below what was measured when the vocabulary was last changed
(docs/taxonomy.md quotes the figures): tuning part 138/138 top-1, held-out part 66/69
top-1 (95.7%) and 67/69 top-3 (97.1%). A change that makes the suggester worse on call
types nobody tuned for fails here.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from crossbeat.cli import cli
from crossbeat.model import Sensitivity
from crossbeat.taxonomy import TaxonomyError, load_crosswalk, nibrs_offences, suggest
from crossbeat.taxonomy.accuracy import labelled_call_types, measure, measure_split, not_listed
from crossbeat.taxonomy.calls import call_categories
from crossbeat.taxonomy.suggest import read_words
from tests.conftest import shared_data

SEXUAL = {c for c, o in nibrs_offences().items() if Sensitivity.SEXUAL_OFFENCE in o.sensitivity}


def test_the_labelled_list_is_large_and_uses_known_targets() -> None:
    items = labelled_call_types()
    assert len(items) >= 150
    assert len({(i.code, i.description) for i in items}) == len(items), "duplicate call types"
    calls = {i.expected for i in items if i.expected.startswith("call:")}
    offences = {i.expected for i in items if not i.expected.startswith("call:")}
    assert len(calls) >= 15 and len(offences) >= 40
    held = [i for i in items if i.held_out]
    assert 0.25 * len(items) <= len(held) <= 0.42 * len(items)


def test_accuracy_stays_above_the_measured_floor() -> None:
    tuning, held, whole = measure_split(labelled_call_types())
    assert held.total >= 60
    assert held.top1_rate >= 0.9, [(m.item.code, m.item.expected, m.suggested) for m in held.misses]
    assert held.top3_rate >= 0.94
    assert tuning.top1_rate >= 0.95, [
        (m.item.code, m.item.expected, m.suggested) for m in tuning.misses
    ]
    assert whole.top1 == tuning.top1 + held.top1
    assert whole.top3 >= whole.top1
    # The strictest figure: held-out call types not written exactly as a listed term
    # (measured 28 of 31).
    unlisted = measure(not_listed(i for i in labelled_call_types() if i.held_out))
    assert unlisted.total >= 25
    assert unlisted.top1_rate >= 0.85, [(m.item.code, m.suggested) for m in unlisted.misses]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The trial's worst case: stolen vehicle was "negligent manslaughter".
        ("STOLEN VEHICLE", "240"),
        ("VEHICLE - STOLEN", "240"),
        ("Stolen vehicle", "240"),
        # Abbreviations of police and CAD vocabulary.
        ("BURG", "220"),
        ("BURG RES", "220"),
        ("B&E", "220"),
        ("UUV", "240"),
        ("MVT", "240"),
        ("GTA", "240"),
        ("ADW", "13A"),
        ("DV", "13B"),
        ("DUI", "90D"),
        ("CCW", "520"),
        # Statute numbers with code letters.
        ("459 PC", "220"),
        ("10851 VC", "240"),
        ("11350 HS", "35A"),
        ("5150 WI", "call:mental_health"),
        # Negation: a weapon that was not there does not make it aggravated.
        ("ASSAULT - NO WEAPON", "13B"),
        # Calls for service, not offences.
        ("WELFARE CHECK", "call:welfare_check"),
        ("SUSPICIOUS VEHICLE", "call:suspicious"),
        ("PROWLER", "call:suspicious"),
        ("TRAFFIC STOP", "call:traffic_stop"),
        ("ALARM RES", "call:alarm"),
        ("NOISE COMPLAINT", "call:noise"),
    ],
)
def test_police_vocabulary(text: str, expected: str) -> None:
    found = suggest(text, limit=3)
    assert found and found[0].target == expected, [(s.target, s.score, s.reason) for s in found]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ASSAULT WITH WEAPON", "13A"),
        ("ASSAULT W/ WEAPON", "13A"),
        ("ROBBERY WITH WEAPON", "120"),
        ("ASSAULT WITH A DEADLY WEAPON", "13A"),
    ],
)
def test_with_weapon_is_about_a_weapon_not_a_sexual_offence(text: str, expected: str) -> None:
    found = suggest(text, limit=3)
    assert found[0].target == expected
    assert not {s.target for s in found} & SEXUAL, [(s.target, s.reason) for s in found]


def test_sexual_texts_still_get_sexual_offences() -> None:
    assert suggest("SEXUAL ASSAULT WITH AN OBJECT")[0].target == "11C"
    assert suggest("RAPE")[0].target == "11A"
    assert suggest("261 PC")[0].target == "11A"


def test_stolen_vehicle_is_never_manslaughter() -> None:
    assert "09B" not in {s.target for s in suggest("STOLEN VEHICLE", limit=5)}


def test_a_bare_number_is_not_read_as_a_statute() -> None:
    # NCIC 2305 or IUCR 0459 is not a California statute; with code letters or
    # beside words it is.
    assert read_words("459") == ()
    assert read_words("459 PC") == ("burglary",)
    assert read_words("415 FAMILY") == ("disturbance", "family")


def test_call_suggestions_name_the_category() -> None:
    top = suggest("WELFARE CHECK")[0]
    assert top.call_category == "welfare_check"
    assert top.nibrs_code == "none"
    assert top.name == f"call for service: {call_categories()['welfare_check'].name}"


def test_measure_counts_top1_and_top3(tmp_path: Path) -> None:
    path = tmp_path / "mini.csv"
    path.write_text(
        "code,description,expected\nSTOLEN VEHICLE,,240\nSTOLEN VEHICLE,,09A\nALARM,,call:alarm\n",
        encoding="utf-8",
    )
    result = measure(labelled_call_types(path))
    assert (result.total, result.top1) == (3, 2)
    assert [m.item.expected for m in result.misses] == ["09A"]


def test_a_labelled_file_with_an_unknown_target_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("code,description,expected\nX,,99Q\nY,,call:nope\n", encoding="utf-8")
    with pytest.raises(TaxonomyError, match=r"line 2: unknown expected target '99Q'.*line 3"):
        labelled_call_types(path)


def test_the_command_prints_the_figures() -> None:
    result = CliRunner().invoke(
        cli, ["taxonomy", "suggest-accuracy", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    parts = {p["part"]: p for p in json.loads(result.output)}
    assert set(parts) == {"tuning", "held-out", "all", "unlisted"}
    tuning, held, whole = measure_split(labelled_call_types())
    assert parts["held-out"]["top1"] == held.top1
    assert parts["held-out"]["top3"] == held.top3
    assert parts["all"]["total"] == whole.total
    text = CliRunner().invoke(cli, ["taxonomy", "suggest-accuracy"]).output
    assert "held-out" in text and f"{held.top1_rate:.1%}".strip() in text


@pytest.mark.shared_data
def test_real_statute_texts_without_their_crosswalk() -> None:
    """Sacramento PD's 304 offence texts, suggested with its own crosswalk hidden.

    The crosswalk (written by hand, before call categories existed) is the label; a
    call category counts as right where it says "none" (not a crime). Measured: 173 of
    304 top-1 (56.9%), 184 top-3 (60.5%); before the police vocabulary 91 (29.9%).
    """
    path = shared_data("sacramento-2006", "SacramentocrimeJanuary2006.csv")
    with path.open(encoding="utf-8", newline="") as fh:
        texts = sorted({row["crimedescr"].strip() for row in csv.DictReader(fh)})
    crosswalk = load_crosswalk("sacramento-statute")

    def plain(target: str) -> str:
        return "none" if target.startswith("call:") else target

    top1 = top3 = 0
    for text in texts:
        rule = crosswalk.lookup(text)
        assert rule is not None, text
        found = [
            plain(s.target) for s in suggest(text, limit=3, ignore_schemes={"sacramento-statute"})
        ]
        top1 += found[:1] == [plain(rule.target)]
        top3 += plain(rule.target) in found
    assert len(texts) == 304
    assert top1 >= 160 and top3 >= 172, (top1, top3)
