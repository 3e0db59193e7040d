"""Narrative sensitivity: the word lexicon, negation, ages, the safer default, the measure."""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from crossbeat.cli import cli
from crossbeat.model import Sensitivity
from crossbeat.taxonomy import TaxonomyError, keyword_sensitivity, rules_version
from crossbeat.taxonomy.narrative import expand, explain, lexicon, tokenize
from crossbeat.taxonomy.sensitivity_accuracy import load_labelled, measure

S = Sensitivity
DV, SEX, JUV = S.DOMESTIC_VIOLENCE, S.SEXUAL_OFFENCE, S.JUVENILE


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        # The four narratives of the adversarial review (issue 7, finding 3).
        ("punched by her ex-partner in their shared apartment", DV),
        ("son, 34, struck his mother", DV),
        ("groped the victim on the crowded platform", SEX),
        ("exposed himself to passengers", SEX),
    ],
)
def test_the_reviews_narratives_are_flagged(text: str, flag: Sensitivity) -> None:
    assert flag in keyword_sensitivity(text)
    assert flag in keyword_sensitivity(text.upper())


@pytest.mark.parametrize(
    "text",
    [
        "exposed wiring",
        "Exposed wiring in the hallway after the meter was stolen.",
        "son's bicycle stolen",
        "mother reported her car stolen",
        "touched the screen",
        "Suspect touched the screen of the self-checkout and left without paying.",
        "Domestic burglary, rear window forced, TV taken.",
        "Hit and run; the driver's father gave the registration.",
        "Minor injury collision at the junction.",
        "Baby formula stolen from the supermarket.",
        "Camera stolen from the changing room lockers.",
        "His wife's car was hit by a van in the car park.",
        "Victim's business partner took money from the account.",
        "Naked flame left unattended in the kitchen.",
        "Dog grooming salon broken into.",
        "Officers attended; not a domestic. No children were present.",
        "Graffiti of an obscene gesture on the bus shelter.",
        "Ex-display television stolen from the showroom.",
    ],
)
def test_hard_negatives_are_not_flagged(text: str) -> None:
    assert keyword_sensitivity(text) == frozenset(), [f.reason for f in explain(text)]


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("Her ex-boyfriend gropes her whenever they meet.", SEX),
        ("the male was groping women at the bar", SEX),
        ("He fondles passengers on the night bus.", SEX),
        ("Stepdad has been hitting the victim.", DV),
        ("Victim's step-father punches her.", DV),
        ("The boyfriends argued and one punched the other.", DV),
        ("Male filmed her in the shower through the window.", SEX),
        ("Taxi driver touched her thigh and tried to kiss her.", SEX),
        ("Suspect dropped his trousers in front of the cashier.", SEX),
    ],
)
def test_inflections_and_spellings_match_through_lemmas(text: str, flag: Sensitivity) -> None:
    assert flag in keyword_sensitivity(text)


def test_tokens_split_hyphens_and_drop_possessives() -> None:
    assert [t.word for t in tokenize("Ex-partner's 15-year-old")] == [
        "ex", "partner", "15", "year", "old",
    ]  # fmt: skip
    assert tokenize("GROPED")[0].lemma == "grope"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Generic words are negated ...
        ("Not a domestic; neighbours arguing over parking.", frozenset()),
        ("No children present at the address.", frozenset()),
        ("Non-domestic incident, no injuries.", frozenset()),
        # ... but not acts, relationships, and not by a denial.
        ("He denied punching his wife.", {DV}),
        ("She no longer lives with her ex-partner, who punched her tonight.", {DV}),
        ("Her husband would not stop hitting her.", {DV}),
        ("Groped on the train; no injuries.", {SEX}),
        ("No domestic history, but her boyfriend slapped her tonight.", {DV}),
        ("Not a domestic, but children were present when the suspect assaulted her.", {JUV}),
    ],
)
def test_negation_drops_only_weak_cues(text: str, expected: frozenset[Sensitivity]) -> None:
    assert keyword_sensitivity(text) == expected, [f.reason for f in explain(text)]


@pytest.mark.parametrize(
    ("text", "young"),
    [
        ("a 15-year-old boy had his phone taken", True),
        ("two 14-year-olds were robbed", True),
        ("victim, aged 16, was threatened", True),
        ("Smith (13) was pushed off his bike", True),
        ("daughter, 9, was in the car", True),
        ("a 6 month old was left in the car", True),
        ("son, 34, took the car", False),
        ("victim aged 45 was robbed", False),
        ("243(E)(1) battery", False),
        ("Flat 3, 12 High Street", False),
    ],
)
def test_ages_below_18_mark_a_juvenile(text: str, young: bool) -> None:
    assert (JUV in keyword_sensitivity(text)) is young


def test_safer_default_for_crimes_against_persons() -> None:
    text = "Victim was assaulted at home; her brother was present."
    assert DV in keyword_sensitivity(text, person_crime=True)
    assert DV in keyword_sensitivity("Male hit at the party; his cousin called police.")
    calm = "Victim's brother reported the theft of his bicycle from the garden."
    assert DV not in keyword_sensitivity(calm)
    assert DV in keyword_sensitivity(calm, person_crime=True)
    assert keyword_sensitivity("Victim punched by a stranger.", person_crime=True) == frozenset()


def test_a_relationship_alone_marks_dv_only_in_a_short_description() -> None:
    assert DV in keyword_sensitivity("CALL RE GIRLFRIEND")
    assert DV in keyword_sensitivity("ASSAULT - HUSBAND")
    long = "My girlfriend left her laptop on the train and someone took it before she got back."
    assert keyword_sensitivity(long) == frozenset()


def test_the_two_rule_files_share_one_version() -> None:
    data = resources.files("crossbeat.taxonomy") / "data"
    with (data / "sensitive_keywords.toml").open("rb") as fh:
        keywords = tomllib.load(fh)["version"]
    assert keywords == lexicon().version == rules_version()


def test_every_pair_rule_names_known_cue_kinds() -> None:
    lex = lexicon()
    kinds = {c.kind for c in lex.cues.values()}
    for pair in lex.pairs:
        assert pair.first <= kinds and pair.second <= kinds


# -- the labelled set and the measure -------------------------------------------------------
def test_the_labelled_set_is_large_varied_and_well_formed() -> None:
    rows = load_labelled()
    assert len(rows) >= 300
    assert len({r.text.casefold() for r in rows}) == len(rows)
    for flag in (DV, SEX, JUV):
        assert sum(flag in r.labels for r in rows) >= 30
    assert sum(not r.labels for r in rows) >= 120
    assert {r.split for r in rows} == {"tune", "holdout"}
    # The held-out batches: each written after the rules it measures were frozen.
    assert sum(r.split == "holdout" for r in rows) >= 300


def test_recall_and_false_positive_rate_on_the_labelled_set() -> None:
    rows = load_labelled()
    tune = measure(rows, "tune")
    assert tune.recall_any >= 0.99
    # The model, not a rule, gives the flags of some later batches: 0.98 per flag.
    assert all(c.recall >= 0.975 for c in tune.classes if c.flag in (DV, SEX, JUV))
    assert tune.false_positive_rate <= 0.05
    everything = measure(rows, "all")
    assert everything.recall_any >= 0.99
    # The held-out figures and their bounds: tests/test_taxonomy_narrative_model.py.


def test_a_bad_labelled_file_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,split,crime_against,labels,text\nx1,tune,,sexual,some text\n")
    with pytest.raises(TaxonomyError, match="line 2"):
        load_labelled(path)
    path.write_text("id,split,labels,text\n")
    with pytest.raises(TaxonomyError, match="crime_against"):
        load_labelled(path)


def test_cli_prints_recall_per_class_and_the_false_positive_rate(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["taxonomy", "sensitivity-accuracy"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for flag in S:
        assert flag.value in result.output
    assert "recall" in result.output and "false-positive rate" in result.output
    assert "µs of CPU per narrative" in result.output

    own = tmp_path / "own.csv"
    own.write_text(
        "id,split,crime_against,labels,text\n"
        "a,tune,,domestic_violence,her ex-partner slapped her\n"
        "b,tune,,,bike stolen from the rack\n"
        "c,tune,,sexual_offence,he looked at her\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli, ["taxonomy", "sensitivity-accuracy", "--file", str(own), "--json"]
    )
    data = json.loads(result.output)
    assert data["recall_any_flag"] == 0.5
    assert data["false_positive_rate"] == 0.0
    assert [m["id"] for m in data["misses"]] == ["c"]

    shown = CliRunner().invoke(cli, ["taxonomy", "sensitivity", "son, 34, struck his mother"])
    assert "domestic_violence" in shown.output and "'son' near 'struck'" in shown.output


def test_misspelt_words_count_but_known_words_are_not_stretched() -> None:
    assert DV in keyword_sensitivity("Her boyfreind hit her with the remote.")
    assert DV in keyword_sensitivity("Girlfirend punched him in the face.")
    # "rapped" is an English word: never read as "raped".
    assert keyword_sensitivity("Someone rapped on the door and ran off.") == frozenset()
    # A cue inside a harmless phrase is dropped; the same word elsewhere still counts.
    assert keyword_sensitivity("Minor damage to a fence.") == frozenset()
    assert JUV in keyword_sensitivity("A minor was found drinking in the park.")


# -- rules 2026.12.1: structure that generalises ----------------------------------------------
@pytest.mark.parametrize(
    ("text", "flag"),
    [
        # The misses of the 2026.12.0 holdout.
        ("Woman says a stranger slid his hand under her skirt on a crowded tram.", SEX),
        ("Man threatening to take his life after his partner left.", S.VICTIM_IDENTIFYING),
        # Control of a person by a relative or partner, without a blow.
        ("Female reports partner monitors her phone and controls all the money.", DV),
        ("In-laws confined the victim to the house.", DV),
        ("My husband he take my passport and not let me go outside.", DV),
        # Police jargon and CAD capitals.
        ("F ADV HER HUSB HIT HER W/ BELT, REQ AMB", DV),
        ("DOM - F/HALF STATES M/HALF PUSHED HER DOWN STAIRS", DV),
        ("CS#2231 made a controlled buy from the subject at the park.", S.INFORMANT),
        ("Vic received a message demanding money or the explicit pics would be sent.", SEX),
        ("Woman woke up to find her housemate in her bed touching her.", SEX),
        ("Her uncle used to touch her when she was little.", SEX),
        ("Caregiver has been taking the victim's bank card and withholding her meals.",
         S.VICTIM_IDENTIFYING),
        # Repetition near a contact act (stalking told as events); filming near a body
        # part; her clothes near a state.
        ("A man has been waiting outside her flat every evening for a week.",
         S.VICTIM_IDENTIFYING),
        ("He photographed her legs on the escalator.", SEX),
        ("She woke at a party with her underwear removed.", SEX),
        # An inflection the term list does not spell out, through the term's lemma.
        ("Man reports his wife throws things at him.", DV),
    ],
)  # fmt: skip
def test_wordings_beyond_the_set_are_flagged(text: str, flag: Sensitivity) -> None:
    assert flag in keyword_sensitivity(text), [f.reason for f in explain(text)]


@pytest.mark.parametrize(
    "text",
    [
        # A partner or relative as the owner or reporter of property.
        "Victim's husband's tools were stolen from his van.",
        "GF's car window smashed, radio taken.",
        # A violence verb whose object is a thing.
        "Someone hit my mother car in the parking lot and drove away.",
        "Her son struck the parked van while reversing; details exchanged.",
        # Jargon in harmless senses.
        "CS spray was drawn but not used; male arrested for theft.",
        "MVA minor, no injuries, both drivers exchanged info.",
        "Juvenile delinquency unit report: quarterly statistics forwarded.",
        "Welfare check requested by daughter: father fine, phone battery had died.",
        "Private property sign damaged at the entrance.",
        "Report dated 12 May; date of birth not given.",
    ],
)
def test_structure_keeps_owners_and_things_unflagged(text: str) -> None:
    assert keyword_sensitivity(text) == frozenset(), [f.reason for f in explain(text)]


def test_a_violence_verb_on_a_person_stays_violence() -> None:
    assert DV in keyword_sensitivity("Her son hit her with a bottle.")
    assert DV in keyword_sensitivity("Her son hit her car and then hit her.")
    # A short text with an act keeps the partner rule; a property event alone does not.
    assert DV in keyword_sensitivity("ASSAULT - HUSBAND")
    assert DV not in keyword_sensitivity("THEFT - HUSBAND'S VAN")


def test_slots_expand_to_every_filler() -> None:
    assert expand("take {poss} phone", {"poss": ["her", "my"]}) == [
        "take her phone",
        "take my phone",
    ]
    with pytest.raises(TaxonomyError, match="no fillers"):
        expand("hit {nobody}", {})


@pytest.mark.parametrize(
    ("text", "young"),
    [
        ("JUV RUNAWAY - 14YOF LAST SEEN AT THE MALL", True),
        ("Subj stated his dad hits him, subj is 12.", True),
        ("Lad on a scooter snatched a bag, aged approx 14.", True),
        ("He was 12 minutes late for the appointment.", False),
        ("Victim is 45 and lives alone.", False),
    ],
)
def test_more_age_forms(text: str, young: bool) -> None:
    assert (JUV in keyword_sensitivity(text)) is young
