"""Calls for service: a CAD feed ingests honestly, and reads include or exclude calls.

A CAD export's call types that are not offences (alarms, welfare checks, traffic
stops) are mapped by the agency's crosswalk to call-for-service categories. They are
stored as calls (mapped, not a crime, with their category), left out of reads and
counts by default, shown with ``calls=include`` or ``calls=only``, and shared with a
partner only when an agreement names them: "all offences" or "property" never
shares a call. The public never receives calls. Real ingest, both databases.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from crossbeat.clock import FrozenClock
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import load_profile
from crossbeat.sharing import AgreementError
from crossbeat.sharing.agreements import create_agreement
from crossbeat.sharing.policy import ReadRequest, RequestError, Viewer
from crossbeat.sharing.preview import preview
from crossbeat.sharing.reads import aggregate, read_detail, read_incidents
from crossbeat.sharing.scope import ScopeError, offence_subset, offences_overlap, parse_offences
from crossbeat.store.schema import incident_offences, incidents
from crossbeat.taxonomy import load_crosswalk, validate_crosswalk_file
from tests.sharing_support import ADMINS, add_admins, setup_agencies

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
ANALYST_A = Viewer.user("u-a", "citya", ["analyst"])
ANALYST_B = Viewer.user("u-b", "countyb", ["analyst"])
#: "all" fields include personal ones: two different admins of the owner approve.
SHARE = {
    "fields": ["all"],
    "purposes": ["analysis"],
    "approved_by": ADMINS["citya"],
    "precision": "exact",
}

CROSSWALK = """
[crosswalk]
scheme = "citya-cad"
version = "1"
description = "City A CAD call types"

[[map]]
local = "ALARM RES"
call = "alarm"
match = "exact"

[[map]]
local = "WELFARE CHECK"
call = "welfare_check"
match = "exact"

[[map]]
local = "TRAFFIC STOP"
call = "traffic_stop"
match = "exact"

[[map]]
local = "BURG RES"
nibrs = "220"
match = "narrower"

[[map]]
local = "STOLEN VEHICLE"
nibrs = "240"
match = "exact"

[[pattern]]
regex = '^SUSP'
call = "suspicious"
match = "exact"
"""

PROFILE = """
name = "citya-cad"
crosswalks = "crosswalks"

[source]
format = "csv"
timezone = "America/Los_Angeles"

[id]
columns = ["call_id"]

[occurred_from]
column = "received"
formats = ["%Y-%m-%d %H:%M"]

[location]
x = "lon"
y = "lat"

[[offences]]
scheme = "citya-cad"
code = "call_type"
"""

#: (call type, how many): 6 offences, 9 calls of four categories.
CALLS = [
    ("BURG RES", 4),
    ("STOLEN VEHICLE", 2),
    ("ALARM RES", 3),
    ("WELFARE CHECK", 2),
    ("TRAFFIC STOP", 2),
    ("SUSP VEH", 2),
]
CRIMES, CALLS_TOTAL = 6, 9


@pytest.fixture
def cad(store, tmp_path: Path):
    setup_agencies(store)
    add_admins(store, "citya")
    store.clock = FrozenClock(NOW)
    (tmp_path / "crosswalks").mkdir()
    (tmp_path / "crosswalks" / "citya-cad.toml").write_text(CROSSWALK, encoding="utf-8")
    (tmp_path / "citya-cad.toml").write_text(PROFILE, encoding="utf-8")
    rows = []
    n = 0
    for call_type, count in CALLS:
        for _ in range(count):
            when = NOW - timedelta(days=20, hours=n)
            rows.append(
                {
                    "call_id": f"C{n}",
                    "received": when.astimezone().strftime("%Y-%m-%d %H:%M"),
                    "call_type": call_type,
                    "lon": f"{-122.69 + n * 0.002:.6f}",
                    "lat": "45.53",
                }
            )
            n += 1
    path = tmp_path / "cad.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = ingest_files(store, "citya", load_profile(tmp_path / "citya-cad.toml"), [path])
    store.summary = summary
    return store


def test_a_cad_feed_ingests_honestly(cad) -> None:
    assert cad.summary.unmapped == 0
    with cad.connect() as conn:
        rows = conn.execute(
            select(
                incidents.c.offence_local_code,
                incidents.c.call_category,
                incidents.c.nibrs_code,
                incidents.c.crime_against,
                incidents.c.unmapped,
            )
        ).all()
        offence_calls = conn.execute(select(incident_offences.c.call_category)).scalars().all()
    by_type = {r.offence_local_code: r for r in rows}
    assert by_type["ALARM RES"].call_category == "alarm"
    assert by_type["ALARM RES"].nibrs_code is None
    assert by_type["ALARM RES"].crime_against == "not_a_crime"
    assert by_type["SUSP VEH"].call_category == "suspicious"
    assert by_type["BURG RES"].call_category is None
    assert by_type["BURG RES"].nibrs_code == "220"
    assert not any(r.unmapped for r in rows)
    assert sorted(c for c in offence_calls if c) == sorted(
        ["alarm"] * 3 + ["welfare_check"] * 2 + ["traffic_stop"] * 2 + ["suspicious"] * 2
    )


def test_reads_exclude_calls_by_default_and_include_them_on_request(cad) -> None:
    default = read_incidents(cad, ANALYST_A)
    assert len(default.records) == CRIMES
    assert all(r.get("call_category") is None for r in default.records)
    included = read_incidents(cad, ANALYST_A, ReadRequest(calls="include"))
    assert len(included.records) == CRIMES + CALLS_TOTAL
    only = read_incidents(cad, ANALYST_A, ReadRequest(calls="only"))
    assert len(only.records) == CALLS_TOTAL
    assert {r.get("call_category") for r in only.records} == {
        "alarm",
        "welfare_check",
        "traffic_stop",
        "suspicious",
    }
    # An offence filter filters offences; calls are chosen by `calls`.
    burglaries = read_incidents(cad, ANALYST_A, ReadRequest(offences={"220"}, calls="include"))
    assert len(burglaries.records) == 4 + CALLS_TOTAL


def test_aggregates_count_calls_only_when_asked(cad) -> None:
    assert aggregate(cad, ANALYST_A, by=()).total == CRIMES
    by_cat = aggregate(cad, ANALYST_A, ReadRequest(calls="only"), by=("call_category",))
    assert by_cat.cells == {
        ("alarm",): 3,
        ("welfare_check",): 2,
        ("traffic_stop",): 2,
        ("suspicious",): 2,
    }
    by_code = aggregate(cad, ANALYST_A, ReadRequest(calls="include"), by=("nibrs",))
    assert by_code.cells[("call:alarm",)] == 3 and by_code.cells[("220",)] == 4


@pytest.mark.parametrize(
    ("offences", "crimes", "calls"),
    [
        (["property"], CRIMES, set()),
        (["all"], CRIMES, set()),
        (["all", "calls"], CRIMES, {"alarm", "welfare_check", "traffic_stop", "suspicious"}),
        (["property", "call:alarm"], CRIMES, {"alarm"}),
        (["call:welfare_check"], 0, {"welfare_check"}),
    ],
)
def test_a_partner_sees_calls_only_when_granted(cad, offences, crimes, calls) -> None:
    create_agreement(cad, "citya", "countyb", offences=offences, **SHARE)
    seen = read_incidents(cad, ANALYST_B, ReadRequest(agencies={"citya"}, calls="include"))
    got_calls = {r.get("call_category") for r in seen.records if r.get("call_category")}
    assert got_calls == calls
    assert sum(1 for r in seen.records if not r.get("call_category")) == crimes
    # The preview shows the owner what the partner would see, calls included.
    shown = preview(cad, "citya", "countyb")
    assert shown.visible == len(seen.records)


def test_a_shown_call_always_says_it_is_a_call(cad) -> None:
    narrow = {**SHARE, "fields": ["occurred", "location"]}
    create_agreement(cad, "citya", "countyb", offences=["calls"], **narrow)
    seen = read_incidents(cad, ANALYST_B, ReadRequest(agencies={"citya"}, calls="include"))
    assert len(seen.records) == CALLS_TOTAL
    assert all(r["call_category"] for r in seen.records)
    assert all("nibrs_code" not in r for r in seen.records)


def test_calls_are_hidden_from_a_partner_whose_grant_does_not_name_them(cad) -> None:
    create_agreement(cad, "citya", "countyb", offences=["property"], **SHARE)
    call_id = read_incidents(cad, ANALYST_A, ReadRequest(calls="only")).records[0]["id"]
    assert read_detail(cad, ANALYST_A, call_id).record is not None
    # A partner knows incidents by their public id: a granted crime opens by it, the call not.
    with cad.connect() as conn:
        call_public_id = conn.execute(
            select(incidents.c.public_id).where(incidents.c.id == call_id)
        ).scalar_one()
    crime_public_id = read_incidents(cad, ANALYST_B, ReadRequest(agencies={"citya"})).records[0][
        "id"
    ]
    assert read_detail(cad, ANALYST_B, crime_public_id).record is not None
    assert read_detail(cad, ANALYST_B, call_public_id).record is None
    assert aggregate(cad, ANALYST_B, ReadRequest(calls="only"), by=()).total == 0


def test_the_public_never_sees_calls(cad) -> None:
    create_agreement(cad, "citya", "public", approved_by=ADMINS["citya"][0])
    public = read_incidents(cad, Viewer.public(), ReadRequest(calls="include"))
    assert public.records, "the public should see the offences"
    assert all("call_category" not in r or r.get("call_category") is None for r in public.records)
    assert len(public.records) <= CRIMES
    assert read_incidents(cad, Viewer.public(), ReadRequest(calls="only")).records == []


def test_an_agreement_cannot_give_the_public_calls(cad) -> None:
    with pytest.raises(AgreementError, match="the public never receives calls"):
        create_agreement(
            cad, "citya", "public", offences=["all", "calls"], approved_by=ADMINS["citya"][0]
        )


def test_the_api_takes_a_calls_parameter(cad) -> None:
    from crossbeat.auth.tokens import create_token
    from tests.api_support import make_client

    token = create_token(cad, "citya", "read", clock=cad.clock)
    client = make_client(cad, cad.clock)
    headers = {"Authorization": f"Bearer {token.secret}"}
    crimes = client.get("/api/v1/incidents", headers=headers).json()["records"]
    assert len(crimes) == CRIMES
    assert all("call_category" not in r for r in crimes)
    only = client.get("/api/v1/incidents?calls=only", headers=headers).json()["records"]
    assert {r.get("call_category") for r in only} == {
        "alarm",
        "welfare_check",
        "traffic_stop",
        "suspicious",
    }
    counts = client.get("/api/v1/aggregates?by=call_category&calls=only", headers=headers).json()
    assert counts["total"] == CALLS_TOTAL
    assert client.get("/api/v1/incidents?calls=maybe", headers=headers).status_code in (400, 422)
    refused = client.get("/api/v1/incidents?offence=call:alarm", headers=headers)
    assert refused.status_code == 400
    # The API's problems name its query parameter (offence), not the library's field.
    assert refused.json()["errors"] == [
        "offence: calls for service are not offences, use calls=include or calls=only "
        "(and count by call_category)"
    ]


def test_request_validation() -> None:
    with pytest.raises(RequestError, match="calls: use exclude, include, only"):
        ReadRequest(calls="sometimes")
    with pytest.raises(RequestError, match="calls for service are not offences"):
        ReadRequest(offences={"call:alarm"})


def test_offence_tokens_for_calls() -> None:
    assert parse_offences(["all"]) is None
    assert parse_offences(["all,calls"]) == {"all", "calls"}
    assert parse_offences(["property", "call:alarm"]) == {"property", "call:alarm"}
    with pytest.raises(ScopeError, match="call:nope"):
        parse_offences(["call:nope"])
    # Overlap and subset know calls: "all" covers no call, "calls" covers every call.
    assert not offences_overlap(None, frozenset({"call:alarm"}))
    assert offences_overlap(frozenset({"calls"}), frozenset({"call:alarm"}))
    assert not offences_overlap(frozenset({"call:noise"}), frozenset({"call:alarm"}))
    assert offence_subset(frozenset({"call:alarm"}), frozenset({"calls"}))
    assert not offence_subset(frozenset({"calls"}), None)
    assert not offence_subset(frozenset({"call:alarm"}), frozenset({"property"}))
    assert offence_subset(frozenset({"220"}), frozenset({"property", "calls"}))


def test_crosswalk_call_entries_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "bad-cad.toml"
    path.write_text(
        """
[crosswalk]
scheme = "bad-cad"
version = "1"

[[map]]
local = "A"
call = "alarm"
nibrs = "220"
match = "exact"

[[map]]
local = "B"
call = "nope"
match = "exact"

[[map]]
local = "C"
match = "exact"

[[map]]
local = "D"
call = "noise"
crime_against = "person"
match = "exact"
""",
        encoding="utf-8",
    )
    problems = validate_crosswalk_file(path)
    assert any("map[0]" in p and "not both or neither" in p for p in problems)
    assert any("map[1]" in p and "unknown call category 'nope'" in p for p in problems)
    assert any("map[2]" in p and "not both or neither" in p for p in problems)
    assert any("map[3]" in p and "crime_against cannot be set on a call" in p for p in problems)


def test_classify_a_call(tmp_path: Path) -> None:
    (tmp_path / "citya-cad.toml").write_text(CROSSWALK, encoding="utf-8")
    cw = load_crosswalk("citya-cad", [tmp_path])
    offence, flags = cw.classify("ALARM RES")
    assert (offence.call_category, offence.nibrs_code, offence.match) == ("alarm", None, "exact")
    assert offence.crime_against == "not_a_crime" and offence.mapped and not flags
    assert cw.lookup("SUSP PERSON").target == "call:suspicious"
