"""Register the agencies a test ingests for: the ingest never registers one itself."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from crossbeat.agencies import get_agency, register_agency
from crossbeat.model import Agency
from crossbeat.store import Store, open_store


def register_agencies(store: Store, agencies: Mapping[str, str]) -> None:
    """Register each agency id with its time zone (named after its id), unless it exists."""
    for agency_id, zone in agencies.items():
        if get_agency(store, agency_id) is None:
            register_agency(store, Agency(id=agency_id, name=agency_id, timezone=zone))


def register_for_test(request: pytest.FixtureRequest, agencies: Mapping[str, str]) -> None:
    """Register agencies in the test's ``store``, or in its ``db_url`` database.

    Call it from an autouse fixture of a test module whose tests ingest for these
    agencies: tests that use neither fixture are left alone.
    """
    if "store" in request.fixturenames:
        register_agencies(request.getfixturevalue("store"), agencies)
    elif "db_url" in request.fixturenames:
        from crossbeat.vault.kek import parse_kek

        kek = parse_kek(request.getfixturevalue("kek_text"))
        store = open_store(request.getfixturevalue("db_url"), kek=kek)
        register_agencies(store, agencies)
