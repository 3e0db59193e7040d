"""Crosswalk coverage of stored offences, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from crossbeat.audit import events_for_owner, iter_events, log_size
from crossbeat.model import incident_id
from crossbeat.sharing.coverage import read_coverage as coverage
from crossbeat.store import Store
from crossbeat.store.schema import agencies, incident_offences, incidents
from crossbeat.taxonomy import load_crosswalk

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def add_agency(store: Store, agency_id: str) -> None:
    with store.begin() as conn:
        conn.execute(agencies.insert().values(id=agency_id, name=agency_id, created_at=NOW))


def add_incident(
    store: Store,
    agency_id: str,
    source_id: str,
    offences: list[tuple[str, str | None, str | None]],
    *,
    withdrawn: bool = False,
) -> None:
    """Store an incident whose offences are (scheme, code, description) classified."""
    classified = [load_crosswalk(s).classify(c, d)[0] for s, c, d in offences]
    iid = incident_id(agency_id, source_id)
    first = classified[0]
    with store.begin() as conn:
        conn.execute(
            incidents.insert().values(
                id=iid,
                agency_id=agency_id,
                source_id=source_id,
                version=1,
                record_hash="0" * 64,
                offence_local_code=first.local_code,
                nibrs_code=first.nibrs_code,
                crime_against=first.crime_against,
                ucr_part1=first.ucr_part1,
                unmapped=any(not o.mapped for o in classified),
                time_precision="day",
                location_precision="none",
                sens_sexual=False,
                sens_domestic=False,
                sens_juvenile=False,
                sens_victim_identifying=False,
                sens_informant=False,
                withdrawn_at=NOW if withdrawn else None,
                batch_id="b" * 36,
                source_file="test.csv",
                row_number=1,
                raw_hash="1" * 64,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        conn.execute(
            incident_offences.insert(),
            [
                {
                    "incident_id": iid,
                    "seq": seq,
                    "local_code": o.local_code,
                    "local_description": o.local_description,
                    "scheme": o.scheme,
                    "crosswalk_version": o.crosswalk_version,
                    "nibrs_code": o.nibrs_code,
                    "crime_against": o.crime_against,
                    "ucr_part1": o.ucr_part1,
                    "match": o.match,
                }
                for seq, o in enumerate(classified)
            ],
        )


def fill(store: Store) -> None:
    add_agency(store, "sacpd")
    add_agency(store, "colp")
    sac = "sacramento-statute"
    add_incident(store, "sacpd", "1", [(sac, None, "459 PC  BURGLARY RESIDENCE")])
    add_incident(store, "sacpd", "2", [(sac, None, "ZZ UNKNOWN LOCAL THING")])
    add_incident(
        store,
        "sacpd",
        "3",
        [(sac, None, "242 PC  BATTERY CIVILIAN"), (sac, None, "XYZ BURGLARY OF SHED")],
    )
    add_incident(store, "sacpd", "4", [(sac, None, "XYZ BURGLARY OF SHED")])
    add_incident(store, "sacpd", "5", [(sac, None, "XYZ BURGLARY OF SHED")])
    # Withdrawn incidents do not count, mapped or not.
    add_incident(store, "sacpd", "6", [(sac, None, "WITHDRAWN ODD CODE")], withdrawn=True)
    add_incident(store, "sacpd", "7", [("ncic", "2404", None)])
    add_incident(store, "colp", "a", [("police-uk", "Burglary", None)])
    add_incident(store, "colp", "b", [("police-uk", "Anti-social behaviour", None)])


def test_coverage_counts_and_lists_unmapped_codes(store: Store) -> None:
    fill(store)
    report = coverage(store)
    keys = [(s.agency_id, s.scheme) for s in report.schemes]
    assert keys == [("colp", "police-uk"), ("sacpd", "ncic"), ("sacpd", "sacramento-statute")]
    colp, ncic, sac = report.schemes
    assert (colp.total, colp.mapped, colp.unmapped, colp.unmapped_codes) == (2, 2, 0, ())
    assert colp.mapped_share == 1.0
    assert (ncic.total, ncic.unmapped) == (1, 0)
    assert (sac.total, sac.mapped, sac.unmapped) == (6, 2, 4)
    assert [(u.local_code, u.count) for u in sac.unmapped_codes] == [
        ("XYZ BURGLARY OF SHED", 3),
        ("ZZ UNKNOWN LOCAL THING", 1),
    ]
    assert report.total == 9 and report.unmapped == 4
    top = sac.unmapped_codes[0]
    assert top.description == "XYZ BURGLARY OF SHED"
    assert top.suggestion is not None and top.suggestion.nibrs_code == "220"


def test_coverage_of_one_agency(store: Store) -> None:
    fill(store)
    report = coverage(store, "colp")
    assert [s.agency_id for s in report.schemes] == ["colp"]
    assert coverage(store, "nobody").schemes == ()


def test_coverage_without_suggestions_and_as_json(store: Store) -> None:
    fill(store)
    report = coverage(store, "sacpd", with_suggestions=False)
    sac = report.schemes[-1]
    assert all(u.suggestion is None for u in sac.unmapped_codes)
    data = json.loads(json.dumps(coverage(store).to_dict()))
    assert data["unmapped"] == 4
    assert data["schemes"][-1]["unmapped_codes"][0]["suggestion"]["nibrs_code"] == "220"


def test_empty_store(store: Store) -> None:
    report = coverage(store)
    assert report.schemes == () and report.total == 0 and report.unmapped == 0


def test_the_count_is_an_audited_read_owned_by_each_agency(store: Store) -> None:
    fill(store)
    before = log_size(store)
    coverage(store)
    events = list(iter_events(store, after=before))
    assert [(e.action, e.owner_agencies, e.record_count) for e in events] == [
        ("read", ("colp",), 2),
        ("read", ("sacpd",), 7),
    ]
    assert all(e.resource_type == "offence_coverage" and e.actor == "system" for e in events)
    coverage(store, "nobody")  # a read that counted nothing is recorded too
    (nothing,) = iter_events(store, after=before + 2)
    assert nothing.record_count == 0 and nothing.details == {
        "request": {"agency": "nobody"},
        "schemes": [],
    }
    assert nothing.owner_agencies == ("nobody",)
    assert events_for_owner(store, "sacpd", action="read")[0].resource_type == "offence_coverage"
