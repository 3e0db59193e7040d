"""Every shared dataset ingests through its example profile, with known facts checked.

These use ../shared/data (skipped without it, a failure in CI). Each feed must account
for every source row on first ingest (new + quarantined = rows) and report 0 new and
0 updated when ingested again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crossbeat.agencies import get_agency, load_boundaries, register_agency
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import load_profile
from crossbeat.model import Agency
from crossbeat.store.schema import incident_jurisdictions, incident_offences, incidents
from tests.conftest import shared_data
from tests.read_support import get_incident

PROFILES = Path(__file__).resolve().parents[1] / "examples" / "profiles"

pytestmark = pytest.mark.shared_data


def _profile(name: str):
    return load_profile(PROFILES / f"{name}.toml")


def _count(store, *where) -> int:
    with store.connect() as conn:
        return conn.execute(select(func.count()).select_from(incidents).where(*where)).scalar_one()


def _register(store, agency, profile) -> None:
    """Register the agency (or the routed agencies) in the profile's time zone.

    The ingest never registers an agency: a new agency's operator runs
    `crossbeat agency add` first, as the README says.
    """
    for a in [agency] if agency else sorted(set(profile.agency_map.values())):
        zone = profile.for_agency(a).source.timezone
        if get_agency(store, a) is None:
            register_agency(store, Agency(a, a, timezone=zone))


def _ingest_twice(store, agency, profile, files):
    _register(store, agency, profile)
    first = ingest_files(store, agency, profile, files)
    assert first.new + first.quarantined == first.rows
    assert first.updated == first.unchanged == 0
    again = ingest_files(store, agency, profile, files)
    assert (again.new, again.updated) == (0, 0)
    assert again.unchanged + again.quarantined == again.rows
    return first


def test_sacramento(store):
    f = shared_data("sacramento-2006", "SacramentocrimeJanuary2006.csv")
    s = _ingest_twice(store, "sacpd", _profile("sacramento-2006.crimes"), [f])
    assert (s.rows, s.new, s.quarantined, s.unmapped) == (7584, 7584, 0, 0)
    t = incidents.c
    assert _count(store, t.offence_local_code == "459 PC  BURGLARY RESIDENCE") == 356
    assert (
        _count(store, t.offence_local_code == "459 PC  BURGLARY RESIDENCE", t.nibrs_code == "220")
        == 356
    )
    assert _count(store, t.crime_against == "not_a_crime") >= 2470 - 50  # information reports
    with store.connect() as conn:
        row = conn.execute(
            select(t.occurred_from, t.time_precision, t.block_address, t.attributes).where(
                t.offence_local_code == "487(A) GRAND THEFT-INSIDE",
                t.block_address == "4800 BLOCK KOKOMO DR",
            )
        ).one()
    # The file's second row: "1/1/06 0:01" Pacific time is 08:01 UTC; the full
    # address "4851 KOKOMO DR" is personal data, the hundred block is not.
    assert row.occurred_from == datetime(2006, 1, 1, 8, 1, tzinfo=UTC)
    assert row.time_precision == "minute"
    assert row.attributes["ucr_ncic_code"] == "2308"


def test_code_homicides_route_rows_to_nine_agencies(store):
    f = shared_data("us-code-crimedata", "homicides15.csv")
    s = _ingest_twice(store, None, _profile("us-code-crimedata.homicides15"), [f])
    assert (s.rows, s.new, s.unmapped) == (1922, 1922, 0)
    t = incidents.c
    assert _count(store, t.agency_id == "chicagopd") == 499
    assert _count(store, t.agency_id == "vbpd") == 19
    assert _count(store, t.nibrs_code == "09A") == 1914
    assert _count(store, t.nibrs_code == "09B") == 8
    assert _count(store, t.crime_against == "person") == 1922
    rec = get_incident(store, "chicagopd", "2872478")
    # 2015-01-03 05:50 in Chicago (CST, UTC-6).
    assert rec["occurred_from"] == datetime(2015, 1, 3, 11, 50, tzinfo=UTC)
    assert rec["block_address"] == "050XX W SUPERIOR ST"
    assert rec["location_type"] == "13"


def test_code_nyc_vehicle_thefts_keep_time_windows(store):
    f = shared_data("us-code-crimedata", "nycvehiclethefts.csv")
    s = _ingest_twice(store, "nypd", _profile("us-code-crimedata.nycvehiclethefts"), [f])
    assert (s.rows, s.new, s.quarantined) == (35746, 35746, 0)
    assert _count(store, incidents.c.nibrs_code == "240") == 35746
    rec = get_incident(store, "nypd", "12386084")
    # date_start 2013-12-31 10:00 .. date_end 2014-01-01 16:30, New York (EST).
    assert rec["occurred_from"] == datetime(2013, 12, 31, 15, 0, tzinfo=UTC)
    assert rec["occurred_to"] == datetime(2014, 1, 1, 21, 30, tzinfo=UTC)
    assert rec["ucr_part1"] == "motor_vehicle_theft"


def test_toronto_mci(store):
    f = shared_data("toronto-mci", "test.csv")
    s = _ingest_twice(store, "tps", _profile("toronto-mci.mci"), [f])
    assert (s.rows, s.new, s.quarantined, s.unmapped) == (30000, 30000, 0, 0)
    t = incidents.c
    assert _count(store, t.offence_local_code == "Assault") == 15645
    assert _count(store, t.offence_local_code == "Break and Enter", t.nibrs_code == "220") == 6829
    assert _count(store, t.offence_local_code == "Auto Theft", t.nibrs_code == "240") == 4039
    assert _count(store, t.time_precision == "hour") == 30000
    assert _count(store, t.location_precision == "snapped") == 30000


@pytest.mark.slow
def test_toronto_mci_full_feed(sqlite_url, kek):
    from crossbeat.store import open_store

    store = open_store(sqlite_url, kek=kek)  # record hashes are keyed by the vault
    files = [shared_data("toronto-mci", "train.csv"), shared_data("toronto-mci", "test.csv")]
    _register(store, "tps", _profile("toronto-mci.mci"))
    s = ingest_files(store, "tps", _profile("toronto-mci.mci"), files)
    # 417 test rows have an identical row in train; the ids hash the file's name, so
    # each is its own incident: every row is a record.
    assert (s.rows, s.new, s.unchanged, s.quarantined) == (240_992, 240_992, 0, 0)
    assert _count(store) == 240_992


def _london(store):
    bounds = shared_data("uk-london", "boundaries", "london_boroughs_wgs84.geojson")
    register_agency(store, Agency("colp", "City of London Police", timezone="Europe/London"))
    register_agency(store, Agency("met", "Metropolitan Police Service", timezone="Europe/London"))
    register_agency(store, Agency("btp", "British Transport Police", timezone="Europe/London"))
    assert load_boundaries(store, "colp", bounds, where={"name": "City of London"}) == 1
    assert (
        load_boundaries(store, "met", bounds, where={"police_force": "Metropolitan Police Service"})
        == 32
    )


def test_btp_january_2020_overlaps_city_and_met(store):
    _london(store)
    f = shared_data("uk-london", "btp_col_2020", "2020-01-btp-street.csv")
    s = _ingest_twice(store, "btp", _profile("uk-london.btp-street"), [f])
    assert (s.rows, s.new, s.quarantined) == (5694, 5694, 0)
    j = incident_jurisdictions.c
    with store.connect() as conn:
        tags = dict(
            conn.execute(
                select(j.agency_id, func.count())
                .select_from(
                    incident_jurisdictions.join(incidents, incidents.c.id == j.incident_id)
                )
                .where(incidents.c.agency_id == "btp")
                .group_by(j.agency_id)
            ).all()
        )
    # Known from the data (SOURCE.md): 164 BTP points inside the City of London polygon,
    # 3,053 inside Greater London; each is in BTP's and the territorial force's jurisdiction.
    assert tags == {"btp": 5694, "colp": 164, "met": 3053 - 164}


def test_city_of_london_outcomes_update_the_street_records(store):
    _london(store)
    months = shared_data("uk-london", "col_2016_2017")
    street = ingest_files(
        store, "colp", _profile("uk-london.col-street"), sorted(months.glob("*/*-street.csv"))
    )
    assert (street.rows, street.new) == (10118, 10118)
    profile = _profile("uk-london.col-outcomes")
    files = sorted(months.glob("*/*-outcomes.csv"))
    first = ingest_files(store, "colp", profile, files)
    # Every row accounted for: outcomes of crimes reported before 2016-01 (not in the
    # street files) wait in quarantine; the rest change or confirm a disposition.
    assert (first.rows, first.new) == (9136, 0)
    assert first.updated + first.unchanged + first.quarantined == first.rows
    assert (first.updated, first.unchanged, first.quarantined) == (2304, 5526, 1306)
    again = ingest_files(store, "colp", profile, list(reversed(files)))
    assert (again.new, again.updated, again.unchanged, again.quarantined) == (0, 0, 7830, 1306)
    # The street files again: they do not undo the outcomes.
    street2 = ingest_files(
        store, "colp", _profile("uk-london.col-street"), sorted(months.glob("*/*-street.csv"))
    )
    assert (street2.new, street2.updated) == (0, 0)
    # A shoplifting reported in 2016-01 ("Awaiting court outcome" in its street file):
    # no suspect in 2016-02, then charged and sentenced in 2017-06, in that row order.
    sid = "8d6e91e1d03698837dbd75066e675144c451f9afb9aa7230bec3cce51f2b8b10"
    rec = get_incident(store, "colp", sid)
    assert rec["disposition"] == "Offender given suspended prison sentence"
    assert rec["version"] == 4
    assert rec["disposition_at"] == datetime(2017, 5, 31, 23, tzinfo=UTC)  # June 1st, BST
    # Two outcomes in one month: the later row wins, as the street file's last outcome says.
    sid = "153f89d7184e111d3558433afb17cb0bdcfde7702112b3040c6a6e8ebdfc71ce"
    assert get_incident(store, "colp", sid)["disposition"] == "Offender given community sentence"


def test_city_of_london_street_feeds(store):
    _london(store)
    files = sorted(shared_data("uk-london", "col_2016_2017").glob("*/*-street.csv"))
    files += sorted(
        shared_data("uk-london", "btp_col_2020").glob("2020-*-city-of-london-street.csv")
    )
    s = _ingest_twice(store, "colp", _profile("uk-london.col-street"), files)
    assert s.rows == 10118 + 5925
    assert s.unmapped == 0
    # police.uk repeats a few Crime IDs within a month file; the repeats wait in quarantine.
    assert 0 < s.quarantined < 200
    t = incidents.c
    assert _count(store, t.location_precision == "none") >= 465  # rows without coordinates
    assert (
        _count(
            store, t.offence_local_code == "Anti-social behaviour", t.crime_against == "not_a_crime"
        )
        >= 1980
    )
    with store.connect() as conn:
        jan = conn.execute(
            select(t.occurred_from, t.occurred_to, t.time_precision)
            .where(t.source_file.like("%2020-01-city-of-london-street.csv"))
            .limit(1)
        ).one()
        months = conn.execute(
            select(func.count(func.distinct(incident_offences.c.local_code)))
        ).scalar_one()
    assert jan.time_precision == "month"
    assert jan.occurred_from == datetime(2020, 1, 1, tzinfo=UTC)
    assert jan.occurred_to.date().isoformat() == "2020-01-31"
    assert months == 14  # the 14 police.uk categories
