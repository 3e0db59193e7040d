"""Rules dropped from a plan's SQL only when an earlier rule covers all of their records.

:func:`crossbeat.sharing.compiled.reachable` leaves out a rule every record of which an
earlier rule of its owner covers (:func:`~crossbeat.sharing.compiled.covers_all_of`).
Here, on random rules and records, without a database: whenever ``covers_all_of(a, b)``
holds, every record ``b`` covers is covered by ``a`` (``Rule.check``, the per-record
reference), so the per-record path never chooses a dropped rule. The property tests of
the read paths (``tests/test_sharing_properties.py``) compare whole reads on both
backends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crossbeat.model import Sensitivity
from crossbeat.sharing.compiled import covers_all_of, reachable
from crossbeat.sharing.policy import ReadPlan, ReadRequest, Viewer
from crossbeat.sharing.rules import Rule
from crossbeat.sharing.scope import TimeResolution, parse_precision

NOW = datetime(2026, 6, 1, tzinfo=UTC)
CODES = [
    ("13A", "person", "aggravated_assault"),
    ("13B", "person", None),
    ("23H", "property", "larceny"),
    ("35A", "society", None),
    ("11A", "person", "rape"),
]
TOKENS = ["all", "13A", "13B", "23H", "35A", "11A", "person", "property", "society", "part1"]
CALLS = ["noise", "alarm"]

token_sets = st.frozensets(st.sampled_from(TOKENS), max_size=3)


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    return Rule(
        "metro", "x", None,
        draw(st.none() | token_sets),
        draw(st.frozensets(st.sampled_from(list(Sensitivity)), max_size=3)),
        draw(token_sets.filter(lambda t: "all" not in t)),
        frozenset({"id", "agency_id"}), parse_precision("h3:9"), TimeResolution.DAY,
        timedelta(hours=draw(st.sampled_from([0, 24, 72]))), False, "UTC",
        calls=draw(st.none() | st.frozensets(st.sampled_from(CALLS), max_size=2)),
    )  # fmt: skip


@st.composite
def records(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]], frozenset[Sensitivity]]:
    def offence() -> dict[str, Any]:
        code, against, part1 = draw(st.sampled_from(CODES))
        return {"nibrs_code": code, "crime_against": against, "ucr_part1": part1}

    first = offence()
    when = NOW - timedelta(hours=draw(st.integers(0, 120)))
    call = draw(st.none() | st.sampled_from(CALLS))
    row = {**first, "agency_id": "metro", "call_category": call, "occurred_from": when,
           "occurred_to": None, "reported_at": when, "created_at": when}  # fmt: skip
    others = [offence() for _ in range(draw(st.integers(0, 2)))]
    flags = draw(st.frozensets(st.sampled_from(list(Sensitivity)), max_size=2))
    return row, [first, *others], flags


@settings(max_examples=400, deadline=None)
@given(rules(), rules(), st.lists(records(), min_size=1, max_size=8))
def test_a_rule_said_to_cover_another_covers_each_of_its_records(
    a: Rule, b: Rule, recs: list[Any]
) -> None:
    if not covers_all_of(a, b):
        return
    for row, offences, flags in recs:
        if b.check(row, offences, flags, NOW) is None:
            assert a.check(row, offences, flags, NOW) is None, (a, b, row, offences, flags)


def test_reachable_drops_only_later_covered_rules_of_the_same_owner() -> None:
    def rule(owner: str, delay: int, flags: set[Sensitivity]) -> Rule:
        return Rule(owner, "x", None, None, frozenset(flags), frozenset(), frozenset({"id"}),
                    parse_precision("h3:9"), TimeResolution.DAY, timedelta(hours=delay),
                    False, "UTC")  # fmt: skip

    agreement = rule("metro", 24, {Sensitivity.SEXUAL_OFFENCE})
    public = rule("metro", 72, set(Sensitivity))
    other = rule("east", 72, set(Sensitivity))
    viewer = Viewer.user("v", "east", ["analyst"])
    plan = ReadPlan(viewer, ReadRequest(), NOW, (), (agreement, public, other))
    assert reachable(plan.rules, plan) == [agreement, other]
    # The other way round (the public rule first) nothing is dropped: it shows records.
    plan = ReadPlan(viewer, ReadRequest(), NOW, (), (public, agreement))
    assert reachable(plan.rules, plan) == [public, agreement]
    # Reads of changes (the live stream) keep every rule.
    since = ReadRequest(changed_since=NOW - timedelta(hours=1))
    plan = ReadPlan(viewer, since, NOW, (), (agreement, public))
    assert reachable(plan.rules, plan) == [agreement, public]
