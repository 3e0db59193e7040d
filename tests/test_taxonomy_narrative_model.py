"""Narrative sensitivity by meaning (issue 7, finding 3): the narrative model and its measure.

The model is the real one shipped in ``crossbeat/taxonomy/data/narrative_model.npz``, over
the real WordLlama embeddings; fitting is exercised on a slice of the real labelled set.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from crossbeat.cli import cli
from crossbeat.model import Sensitivity
from crossbeat.taxonomy import TaxonomyError, keyword_sensitivity, narrative_sensitivity
from crossbeat.taxonomy import narrative_model as nm
from crossbeat.taxonomy import sensitivity as sens
from crossbeat.taxonomy.sensitivity_accuracy import (
    holdout_batches,
    load_labelled,
    measure,
    measure_splits,
)

S = Sensitivity
DV, SEX, JUV = S.DOMESTIC_VIOLENCE, S.SEXUAL_OFFENCE, S.JUVENILE


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("punched by her ex-partner in their shared apartment", DV),
        ("son, 34, struck his mother", DV),
        ("groped the victim on the crowded platform", SEX),
        ("exposed himself to passengers", SEX),
    ],
)
def test_the_reviews_four_narratives(text: str, flag: Sensitivity) -> None:
    assert flag in narrative_sensitivity(text)
    assert flag in narrative_sensitivity(text.upper())


@pytest.mark.parametrize(
    "text",
    [
        # Wordings no rule names: the model reads them by meaning.
        "Victim says the man she lives with has been knocking her about for months.",
        "The woman told officers her fella gave her a hiding last night.",
        "Her bloke roughed her up again after the pub, she has a cut lip.",
        "Suspect befriended the lad online and kept asking him to keep their chats secret "
        "from his parents.",
    ],
)
def test_the_model_catches_wordings_the_rules_miss(text: str) -> None:
    assert keyword_sensitivity(text) == frozenset()
    assert narrative_sensitivity(text) != frozenset()


@pytest.mark.parametrize(
    "text",
    [
        "Exposed wiring in the hallway after the meter was stolen.",
        "Mother reported her car stolen from the driveway.",
        "Ex-employee took laptops from the office before he left.",
        "Son's bicycle stolen from the front garden.",
        "Suspect touched the screen of the self-checkout and left without paying.",
        "Domestic burglary, rear window forced, TV taken.",
        "His wife's car was hit by a van in the car park.",
        "Camera stolen from the changing room lockers.",
        "Baby formula stolen from the supermarket.",
        "Hit and run; the driver's father gave the registration.",
        "Dog grooming salon broken into overnight.",
        "Ex-display television stolen from the showroom.",
        # Negated cues are not read by the model either.
        "Officers attended; not a domestic. No children were present.",
        "No injuries, no children present, no domestic history; a noise complaint only.",
    ],
)
def test_look_alikes_and_negations_stay_ordinary(text: str) -> None:
    assert narrative_sensitivity(text) == frozenset(), nm.model_score(text)


def test_negated_cues_are_dropped_from_what_the_model_reads() -> None:
    assert "children" not in nm.reading("No children were present.")
    # Acts and relationships are never negated: "not" does not hide a victim.
    assert "punched" in nm.reading("Victim was not injured but her ex-partner punched her.")
    assert DV in narrative_sensitivity("He denied punching his wife.")


def test_codes_and_statute_text_are_left_to_the_rules() -> None:
    # Statute descriptions are not narratives: the ingest reads them with the rules alone.
    assert keyword_sensitivity("11350(A)HS POSS CNTRL SUBST") == frozenset()
    assert nm.model_sensitivity("THEFT - SHOPLIFTING") == frozenset()  # too short to read
    assert nm.model_score("Bike stolen") is None


# -- the measure on the labelled set ---------------------------------------------------
@pytest.fixture(scope="module")
def rows():
    return load_labelled()


def test_training_and_evaluation_rows_are_separate_batches(rows) -> None:
    train = {nm.batches([r.id])[0] for r in rows if r.split == "tune"}
    held = {nm.batches([r.id])[0] for r in rows if r.split == "holdout"}
    assert not train & held
    assert sum(r.split == "holdout" for r in rows) >= 300
    assert sum(bool(r.labels) for r in rows if r.split == "holdout") >= 230


def test_recall_on_held_out_narratives_meets_the_target(rows) -> None:
    # Every held-out batch was written after the rules and model it measures were frozen
    # and never trained on (docs/sharing.md): 231/231 sensitive caught, 29/141 ordinary
    # flagged with rules 2026.12.7.
    held = measure(rows, "holdout")
    assert held.recall_any >= 0.99
    assert held.false_positive_rate <= 0.25
    for cls in held.classes:
        if cls.flag in (DV, SEX, JUV):
            assert cls.recall >= 0.95, cls
    for batch, sensitive, caught, ordinary, flagged in holdout_batches(rows):
        assert caught / sensitive >= 0.98, batch
        assert flagged / ordinary <= 0.3, batch
    tune = measure(rows, "tune")
    assert tune.recall_any >= 0.99
    assert tune.false_positive_rate <= 0.05


def test_the_cli_reports_each_split_and_each_held_out_batch(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["taxonomy", "sensitivity-accuracy"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.index("HELD-OUT evaluation") < out.index("TUNE training")
    assert "held-out batch y: recall" in out
    assert "false-positive rate" in out
    own = tmp_path / "own.csv"
    own.write_text(
        "id,split,crime_against,labels,text\n"
        "a1,tune,,domestic_violence,Her bloke roughed her up again after the pub.\n"
        "b1,holdout,,,Parcel stolen from the doorstep of the house.\n",
        encoding="utf-8",
    )
    as_json = CliRunner().invoke(
        cli, ["taxonomy", "sensitivity-accuracy", "--file", str(own), "--json"]
    )
    data = json.loads(as_json.output)
    assert set(data) == {"holdout", "tune"}
    assert data["tune"]["recall_any_flag"] == 1.0
    assert data["holdout"]["false_positive_rate"] == 0.0

    shown = CliRunner().invoke(
        cli, ["taxonomy", "sensitivity", "Her bloke roughed her up again after the pub."]
    )
    assert "narrative model:" in shown.output and "the narrative model" in shown.output


def test_measure_splits_skips_a_split_an_own_file_lacks(rows) -> None:
    only = [r for r in rows if r.split == "tune"][:20]
    assert [r.split for r in measure_splits(only)] == ["tune"]


# -- fitting and the version ------------------------------------------------------------
def test_fit_logistic_separates_and_penalises() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 3))
    y = x[:, 0] + 0.2 * x[:, 1] > 0
    w = nm.fit_logistic(x, y, c=10.0)
    assert w[0] > 0 and abs(w[2]) < w[0] / 3
    assert np.mean((x @ w[:-1] + w[-1] > 0) == y) > 0.95
    assert np.linalg.norm(nm.fit_logistic(x, y, c=0.01)[:-1]) < np.linalg.norm(w[:-1])


def test_train_save_and_load_round_trip(rows, tmp_path: Path, monkeypatch) -> None:
    tune = [r for r in rows if r.split == "tune"]
    chosen = [r for r in tune if nm.batches([r.id])[0] in ("t", "v", "w")][:240]
    fitted = nm.train(
        [r.text for r in chosen],
        [r.labels for r in chosen],
        [r.id for r in chosen],
        version="test",
        target_recall=0.9,
    )
    assert 0.0 < fitted.threshold < 1.0
    path = tmp_path / "model.npz"
    nm.save(fitted, path)
    monkeypatch.setattr(nm, "MODEL_FILE", path)
    nm.model.cache_clear()
    try:
        loaded = nm.model()
        assert loaded.version == "test" and loaded.vocabulary == fitted.vocabulary
        text = "Her boyfriend punched her in the face at the flat."
        assert np.allclose(loaded.probabilities([text]), fitted.probabilities([text]), atol=1e-4)
        # A model fitted for another version is refused by rules_version.
        sens.rules_version.cache_clear()
        with pytest.raises(TaxonomyError, match="refit"):
            sens.rules_version()
    finally:
        nm.model.cache_clear()
        sens.rules_version.cache_clear()


def test_the_shipped_model_carries_the_rules_version() -> None:
    assert nm.model().version == sens.rules_version()
    assert replace(nm.model(), version="x").version == "x"
