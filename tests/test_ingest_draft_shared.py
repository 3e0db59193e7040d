"""Drafts of the real exports in ../shared/data against the hand-written example profiles.

For every dataset the drafted profile must let ``profile check`` store (nearly) every
row, and its main choices must be those of the hand-written profile in
``examples/profiles/``. The known differences (what the data cannot tell) are listed
per dataset: the time zone, police.uk's "No Location", Toronto's snapped points and
split files, and the routing of the multi-agency homicide file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from crossbeat.ingest.check import check_profile
from crossbeat.ingest.draft import draft_profile
from crossbeat.ingest.profile import Profile, load_profile
from tests.conftest import shared_data

pytestmark = pytest.mark.shared_data

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "profiles"
UK = ("uk-london", "col_2016_2017", "2017-01")

CASES: list[tuple[tuple[str, ...], str, float]] = [
    (("sacramento-2006", "SacramentocrimeJanuary2006.csv"), "sacramento-2006.crimes", 1.0),
    (("toronto-mci", "test.csv"), "toronto-mci.mci", 1.0),
    ((*UK, "2017-01-city-of-london-street.csv"), "uk-london.col-street", 1.0),
    ((*UK, "2017-01-city-of-london-outcomes.csv"), "uk-london.col-outcomes", 1.0),
    (("uk-london", "btp_col_2020", "2020-01-btp-street.csv"), "uk-london.btp-street", 1.0),
    # 10 repeated Crime IDs, quarantined as duplicates by the hand-written profile too
    (
        ("uk-london", "btp_col_2020", "2020-01-city-of-london-street.csv"),
        "uk-london.col-street",
        0.98,
    ),
    (("us-code-crimedata", "homicides15.csv"), "us-code-crimedata.homicides15", 1.0),
    (("us-code-crimedata", "nycvehiclethefts.csv"), "us-code-crimedata.nycvehiclethefts", 1.0),
]


def _choices(profile: Profile) -> dict[str, Any]:
    """Return the choices a draft should share with a hand-written profile."""
    choices: dict[str, Any] = {
        "kind": profile.kind,
        "id.columns": profile.id.columns,
        "status": profile.status,
        "disposition": profile.disposition,
    }
    for key in ("occurred_from", "occurred_to", "as_of"):
        spec = getattr(profile, key)
        choices[key] = spec and (spec.column, spec.date_column, spec.time_column)
    if profile.kind == "incidents":
        loc = profile.location
        choices["location"] = (loc.x, loc.y, loc.address, loc.address_is_public)
        choices["crs"] = profile.source.crs
        choices["offences"] = [
            (o.scheme, o.code, o.description, o.constant) for o in profile.offences
        ]
    return choices


def _rows_stored(profile: Profile, path: Path) -> tuple[int, int]:
    report = check_profile(profile, path, agency_id=profile.agency or "check")
    reads = dataclasses.replace(report, todos=[])  # a draft is refused for its TODOs only
    assert reads.matches, report.as_dict()["error"] or report.as_dict()["reasons"]
    return report.total - report.rejected, report.total


@pytest.mark.parametrize(
    "parts,example,share", CASES, ids=[c[0][-1].removesuffix(".csv") for c in CASES]
)
def test_draft_reads_the_export_like_the_hand_written_profile(
    parts: tuple[str, ...], example: str, share: float
) -> None:
    path = shared_data(*parts)
    hand = load_profile(EXAMPLES / f"{example}.toml")
    draft = draft_profile(path)
    stored, total = _rows_stored(draft.profile, path)
    assert stored >= share * total
    hand_stored, _ = _rows_stored(hand.for_agency(hand.agency or "check"), path)
    assert stored == hand_stored
    assert _choices(draft.profile) == _choices(hand)


def test_draft_formats_read_the_same_dates() -> None:
    """Where the draft writes other formats than the hand-written profile, they agree."""
    homicides = draft_profile(shared_data("us-code-crimedata", "homicides15.csv")).profile
    assert homicides.occurred_from is not None
    assert homicides.occurred_from.formats == ["iso"]  # hand-written: three strptime patterns
    toronto = draft_profile(shared_data("toronto-mci", "test.csv")).profile
    assert toronto.occurred_from is not None
    assert toronto.occurred_from.formats == ["%Y/%m/%d %H:%M:%S%z"]
    assert toronto.occurred_from.time_formats == ["%H"]


def test_known_differences_are_todos_or_guesses() -> None:
    """What the data cannot tell is flagged, not guessed silently."""
    street = draft_profile(shared_data(*UK, "2017-01-city-of-london-street.csv"))
    assert street.profile.source.timezone == "UTC"
    assert any(f.key == "source.timezone" for f in street.todos)
    assert street.profile.location.precision.value == "snapped"
    homicides = draft_profile(shared_data("us-code-crimedata", "homicides15.csv"))
    assert any("'city_name' has 9 values" in f.message for f in homicides.todos)
    assert homicides.profile.location.precision.value == "block"
    sacramento = draft_profile(shared_data("sacramento-2006", "SacramentocrimeJanuary2006.csv"))
    hand = load_profile(EXAMPLES / "sacramento-2006.crimes.toml")
    assert sacramento.profile.id.hash_columns == hand.id.hash_columns
    notes = " ".join(f.message for f in sacramento.findings)
    assert "sacramento-statute maps 182/182 values of 'crimedescr'" in notes
