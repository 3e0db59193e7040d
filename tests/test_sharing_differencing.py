"""Differencing recovers no suppressed count (issue #7 finding 2).

The attacks, as run against the demo: (a) ``total - person - property - society``
recovered a hidden cell of 1; (b) for an owner that publishes counts only, a request
mixing it with an owner that publishes records (whose counts anyone can rebuild from its
records) recovered 30 of 30 hidden small cells with 2-4 requests each.

Each test runs the attacker's whole battery of requests twice: on a world with the
hidden small cells and on the same world without those incidents. "Recovers nothing"
is then exact: every answer is the same in both worlds, so no sequence of the answers,
subtracted however one likes, can tell whether the hidden incidents exist.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crossbeat.clock import FrozenClock
from crossbeat.sharing.agreements import create_agreement
from crossbeat.sharing.noise import DELTA, privacy_loss, release_threshold, spent
from crossbeat.sharing.overrides import tighten_public_policy
from crossbeat.sharing.policy import ReadRequest, Viewer
from crossbeat.sharing.reads import aggregate, read_incidents
from crossbeat.store import Store
from crossbeat.store.schema import incident_jurisdictions, incident_offences, incidents
from tests.sharing_support import (
    ADMINS,
    NOW,
    Inc,
    add_admins,
    clear,
    insert_incidents,
    setup_agencies,
)

PUBLIC = Viewer.public()
MAY = datetime(2026, 5, 10, 18, 0, tzinfo=UTC)
JUNE = datetime(2026, 6, 2, 18, 0, tzinfo=UTC)
CITY_X = (45.51, -122.66)  # citya only
COUNTY_X = (45.51, -122.58)  # countyb only
COUNTY_Y = (45.545, -122.57)
CODES = {"person": "13B", "property": "220", "society": "35A"}


def _incs(owner: str, tag: str, n: int, where: tuple[float, float], kind: str, when: datetime):
    return [
        Inc(owner, f"{tag}{i}", where[0], where[1], [CODES[kind]], when + timedelta(minutes=i))
        for i in range(n)
    ]


def _world(store: Store, population: list[Inc], counts_only: list[str]) -> None:
    clear(store)
    with store.begin() as conn:  # clear() keeps agencies; start each world afresh
        for table in (incident_offences, incident_jurisdictions, incidents):
            conn.execute(table.delete())
    insert_incidents(store, population)
    for owner in ("citya", "countyb"):
        create_agreement(store, owner, "public", approved_by=ADMINS[owner][0], clock=store.clock)
    for owner in counts_only:
        tighten_public_policy(store, owner, {"records": False})


@pytest.fixture
def world(store: Store) -> Store:
    store.clock = FrozenClock(NOW)
    setup_agencies(store)
    add_admins(store, "citya", "countyb")
    return store


def _battery(owners: list[str]) -> list[tuple[tuple[str, ...], ReadRequest]]:
    """The attacker's requests: every grouping, filter and mix it could use."""
    month = datetime(2026, 5, 1, 7, 0, tzinfo=UTC)  # 1 May, 00:00 in Los Angeles
    out: list[tuple[tuple[str, ...], ReadRequest]] = []
    dims: list[tuple[str, ...]] = [
        (), ("agency",), ("crime_against",), ("month",), ("h3_7",), ("jurisdiction",),
        ("crime_against", "month"), ("agency", "crime_against"), ("h3_7", "crime_against"),
        ("nibrs",), ("day",), ("h3_9",), ("h3_11",), ("agency", "nibrs"),
    ]  # fmt: skip
    filters: list[dict[str, Any]] = [
        {},
        *({"offences": frozenset({k})} for k in ("person", "property", "society")),
        {"offences": frozenset({"35A"})},
        {"offences": frozenset({"part1"})},
        {"since": month},
        {"until": month},
        {"since": MAY - timedelta(hours=1), "until": MAY + timedelta(days=1)},
        {"bbox": (-122.70, 45.50, -122.60, 45.52)},
    ]
    for agencies in [frozenset(owners), *(frozenset({o}) for o in owners)]:
        for d in dims:
            for f in filters:
                out.append((d, ReadRequest(agencies=agencies, **f)))
    return out


def _answers(store: Store, owners: list[str]) -> list[Any]:
    answers = []
    for dims, request in _battery(owners):
        result = aggregate(store, PUBLIC, request, by=dims)
        answers.append((dims, sorted(result.cells.items()), result.total, result.rows,
                        result.columns))  # fmt: skip
    return answers


def _same_answers(store: Store, make: Callable[[bool], list[Inc]], owners: list[str],
                  counts_only: list[str]) -> list[Any]:  # fmt: skip
    _world(store, make(True), counts_only)
    with_hidden = _answers(store, owners)
    _world(store, make(False), counts_only)
    without = _answers(store, owners)
    assert with_hidden == without
    return with_hidden


def test_total_minus_categories_recovers_nothing(world: Store) -> None:
    """Recipe (a): total - person - property - society, for a counts-only owner."""

    def make(hidden: bool) -> list[Inc]:
        return (
            _incs("citya", "P", 40, CITY_X, "person", MAY)
            + _incs("citya", "R", 50, CITY_X, "property", MAY)
            + (_incs("citya", "S", 1, CITY_X, "society", MAY) if hidden else [])
        )

    _world(world, make(True), ["citya"])
    # The recipe, as the attacker ran it.
    total = aggregate(world, PUBLIC, by=()).total
    parts = [
        aggregate(world, PUBLIC, ReadRequest(offences=frozenset({k})), by=()).total
        for k in ("person", "property", "society")
    ]
    assert total is not None and None not in parts
    assert total - sum(p for p in parts if p is not None) == 0  # not the hidden 1
    by_cat = aggregate(world, PUBLIC, by=("crime_against",))
    assert ("society",) not in by_cat.cells and by_cat.total == total == 90
    assert by_cat.complete is False  # the total says it may leave something out
    # Finer requests that could isolate it are refused for this owner, with the reason.
    by_code = aggregate(world, PUBLIC, ReadRequest(offences=frozenset({"35A"})), by=())
    (decision,) = [d for d in by_code.decisions if d.owner == "citya"]
    assert not decision.allow and "not by offence code" in decision.reasons[-1]
    # And every request of the battery answers the same with and without the incident.
    _same_answers(world, make, ["citya"], ["citya"])


def test_mixing_with_a_records_owner_recovers_no_small_cell(world: Store) -> None:
    """Recipe (b): counts-only countyb mixed with citya, which publishes its records."""

    def make(hidden: bool) -> list[Inc]:
        population = (
            _incs("citya", "A", 6, CITY_X, "property", MAY)
            + _incs("citya", "B", 3, CITY_X, "person", JUNE - timedelta(days=20))
            + _incs("countyb", "C", 12, COUNTY_X, "property", MAY)
        )
        if hidden:  # countyb's small cells: 2 to 4 incidents each
            population += (
                _incs("countyb", "D", 3, COUNTY_X, "person", MAY)
                + _incs("countyb", "E", 2, COUNTY_Y, "society", MAY)
                + _incs("countyb", "F", 4, COUNTY_X, "property", JUNE)
            )
        return population

    answers = _same_answers(world, make, ["citya", "countyb"], ["countyb"])
    # The answers are not empty: countyb's large cell and citya's records are counted.
    published = [n for _d, cells, *_ in answers for _k, n in cells if n]
    assert 12 in published and 6 in published and 18 in published
    # citya's records are public, so its counts hide nothing; the old recipe (the mixed
    # cell minus citya's records) now gives only countyb's published base cells.
    _world(world, make(True), ["countyb"])
    mixed = aggregate(world, PUBLIC, by=("h3_7",))
    records = Counter(r["h3_7"] for r in read_incidents(world, PUBLIC).records)
    county = aggregate(world, PUBLIC, ReadRequest(agencies=frozenset({"countyb"})), by=("h3_7",))
    for (cell,), n in mixed.cells.items():
        assert n is None or n - records.get(cell, 0) in (0, county.cells.get((cell,)))
    assert set(county.cells.values()) <= {None, *range(5, 1000)}


def test_noise_spends_a_monthly_budget_and_publishes_no_records(world: Store) -> None:
    population = _incs("citya", "P", 40, CITY_X, "person", MAY) + _incs(
        "citya", "R", 50, CITY_X, "property", MAY
    )
    _world(world, population, [])
    tighten_public_policy(world, "citya", {"noise_epsilon": 1.0, "noise_budget": 3.0})
    assert not [r for r in read_incidents(world, PUBLIC).records if r["agency_id"] == "citya"]
    totals = []
    for _ in range(3):
        result = aggregate(world, PUBLIC, ReadRequest(agencies=frozenset({"citya"})), by=())
        assert result.noisy == ("citya",) and result.complete is False
        totals.append(result.total)
    # Laplace noise of scale 1/ε: the totals scatter around 90 (18 is 18 standard
    # deviations of 1.41: never reached in practice), and only noisy counts of at least
    # the release threshold are shown.
    assert all(t is not None and abs(t - 90) < 18 for t in totals)
    assert release_threshold(1.0) > 5
    # The fourth request would overspend the month's budget: citya is left out.
    refused = aggregate(world, PUBLIC, ReadRequest(agencies=frozenset({"citya"})), by=())
    (decision,) = refused.decisions
    assert refused.total == 0 and refused.noisy == () and not decision.allow
    assert "privacy budget for 2026-06" in decision.reasons[-1]
    with world.begin() as conn:
        assert spent(conn, "citya", world.clock.now()) == (3.0, 3)
    # OpenDP's own accounting of one release: (ε, δ) with δ at most DELTA.
    eps, delta = privacy_loss(1.0)
    assert eps <= 1.0 + 1e-9 and delta <= DELTA
    # A new month, a new budget.
    world.clock.advance(days=20)
    again = aggregate(world, PUBLIC, ReadRequest(agencies=frozenset({"citya"})), by=())
    assert again.noisy == ("citya",)


def test_noise_can_only_be_tightened(world: Store) -> None:
    from crossbeat.sharing._manage import AgreementError

    tighten_public_policy(world, "citya", {"noise_epsilon": 0.5})
    with pytest.raises(AgreementError, match="spends more privacy"):
        tighten_public_policy(world, "citya", {"noise_epsilon": 2})
    with pytest.raises(AgreementError, match="spends more privacy"):
        tighten_public_policy(world, "citya", {"noise_budget": 50})
    done = tighten_public_policy(world, "citya", {"noise_budget": 2})
    assert (done.noise_epsilon, done.noise_budget) == (0.5, 2.0)
    with pytest.raises(AgreementError, match="at least noise_epsilon"):
        tighten_public_policy(world, "countyb", {"noise_epsilon": 1, "noise_budget": 0.5})


def test_cli_sets_noise(world: Store) -> None:
    import json

    from click.testing import CliRunner

    from crossbeat.cli import cli

    env = {"CROSSBEAT_DB": world.url}
    args = ["public-policy", "tighten", "citya", "--noise-epsilon", "0.5"]
    out = CliRunner().invoke(cli, args, env=env)
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)
    assert (shown["noise_epsilon"], shown["noise_budget"]) == ("0.5", "5")
    looser = CliRunner().invoke(cli, [*args[:3], "--noise-epsilon", "1"], env=env)
    assert looser.exit_code == 1 and "can only be tightened" in looser.output
