"""Helpers for the sharing tests: three agencies with boundaries and direct incident inserts.

Incidents are written straight into the schema tables (as the ingest stores them) so
that property tests can build many populations quickly, with exactly the flags, codes
and descriptions a test needs (including miscoded ones the ingest would have caught).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shapely.geometry import Point, box, mapping
from sqlalchemy import delete, insert

from crossbeat.agencies import register_agency, set_jurisdiction
from crossbeat.geo.cells import h3_cells
from crossbeat.model import Agency
from crossbeat.sharing.tables import (
    public_policy_overrides,
    sharing_agreement_approvals,
    sharing_agreement_versions,
    sharing_agreements,
    sharing_group_members,
    sharing_groups,
)
from crossbeat.store import Store, generation
from crossbeat.store.schema import (
    incident_jurisdictions,
    incident_offences,
    incident_personal,
    incident_versions,
    incidents,
)
from crossbeat.store.tags import refresh_children
from crossbeat.taxonomy.nibrs import nibrs_offences

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)

#: Three agencies: two side by side and a transit corridor across both.
AGENCIES: dict[str, tuple[str, Any]] = {
    "citya": ("America/Los_Angeles", box(-122.70, 45.50, -122.62, 45.56)),
    "countyb": ("America/Denver", box(-122.62, 45.50, -122.54, 45.56)),
    "transitc": ("UTC", box(-122.68, 45.525, -122.56, 45.535)),
}
AREA = (-122.72, 45.49, -122.52, 45.57)

#: Two agency admins of each agency: the approvers of its agreements (issue #7, finding 5).
ADMINS: dict[str, tuple[str, str]] = {a: (f"{a}.admin", f"{a}.admin2") for a in AGENCIES}

FLAG_COLUMNS = {
    "sexual_offence": "sens_sexual",
    "domestic_violence": "sens_domestic",
    "juvenile": "sens_juvenile",
    "victim_identifying": "sens_victim_identifying",
    "informant": "sens_informant",
}


def setup_agencies(store: Store) -> None:
    """Register the three agencies with their boundaries."""
    for agency_id, (tz, geom) in AGENCIES.items():
        register_agency(store, Agency(id=agency_id, name=agency_id.title(), timezone=tz))
        set_jurisdiction(store, agency_id, f"{agency_id} area", mapping(geom))


def add_admins(store: Store, *agencies: str) -> None:
    """Create the :data:`ADMINS` accounts (agency_admin) of these agencies (default all)."""
    from crossbeat.auth.accounts import create_user
    from crossbeat.auth.errors import DuplicateUsername

    for agency in agencies or tuple(ADMINS):
        for name in ADMINS[agency]:
            try:
                create_user(store, agency, name, "correct horse battery staple 7", ["agency_admin"])
            except DuplicateUsername:
                pass


@dataclass
class Inc:
    """An incident as the tests build it (and as the reference reads it)."""

    owner: str
    source_id: str
    lat: float | None
    lon: float | None
    codes: list[str | None]
    occurred_from: datetime | None
    occurred_to: datetime | None = None
    reported_at: datetime | None = None
    flags: frozenset[str] = frozenset()
    descriptions: list[str | None] = field(default_factory=list)
    local_codes: list[str] = field(default_factory=list)
    attributes: dict[str, str] | None = None
    withdrawn: bool = False
    created_at: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    updated_at: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    block_address: str | None = "100 BLOCK MAIN ST"
    location_type: str | None = "20"
    status: str | None = "open"
    time_precision: str = "minute"
    personal: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        """Stable id, as the store derives it."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.owner}/{self.source_id}"))

    @property
    def public_id(self) -> str:
        """The id everyone but the owner sees (the store draws it at random; tests fix it)."""
        return str(uuid.uuid5(uuid.NAMESPACE_OID, f"public/{self.owner}/{self.source_id}"))

    def shown_id(self, own: bool) -> str:
        """Return the id a reader sees: ``id`` for the owner, ``public_id`` for anyone else."""
        return self.id if own else self.public_id

    def offence(self, i: int) -> dict[str, Any]:
        """Return offence ``i`` as stored (NIBRS code, category, Part I class)."""
        code = self.codes[i]
        entry = nibrs_offences().get(code) if code else None
        local = self.local_codes[i] if i < len(self.local_codes) else (code or "LOCAL")
        desc = self.descriptions[i] if i < len(self.descriptions) else None
        return {
            "nibrs_code": code if entry else None,
            "crime_against": entry.crime_against.value if entry and entry.crime_against else None,
            "ucr_part1": entry.ucr_part1 if entry else None,
            "local_code": local,
            "local_description": desc,
        }

    def inside(self) -> list[str]:
        """Return the agencies whose polygon contains the point."""
        if self.lat is None or self.lon is None:
            return []
        p = Point(self.lon, self.lat)
        return sorted(a for a, (_tz, g) in AGENCIES.items() if g.covers(p))

    def jurisdictions(self) -> list[str]:
        """Return the agencies whose polygon contains the point, plus the reporter."""
        return sorted(set(self.inside()) | {self.owner})


def _incident_row(inc: Inc) -> dict[str, Any]:
    first = inc.offence(0)
    cells = h3_cells(inc.lat, inc.lon)  # as ingest derives them
    row = {
        "id": inc.id,
        "public_id": inc.public_id,
        "agency_id": inc.owner,
        "source_id": inc.source_id,
        "version": 1,
        "record_hash": "0" * 64,
        "offence_local_code": first["local_code"],
        "nibrs_code": first["nibrs_code"],
        "crime_against": first["crime_against"],
        "ucr_part1": first["ucr_part1"],
        "unmapped": first["nibrs_code"] is None,
        "occurred_from": inc.occurred_from,
        "occurred_to": inc.occurred_to,
        "time_precision": inc.time_precision,
        "reported_at": inc.reported_at,
        "status": inc.status,
        "disposition": None,
        "lat": inc.lat,
        "lon": inc.lon,
        "location_precision": "exact" if inc.lat is not None else "none",
        "block_address": inc.block_address,
        "location_type": inc.location_type,
        "location_type_local": None,
        "h3_7": cells.get(7),
        "h3_9": cells.get(9),
        "h3_11": cells.get(11),
        "attributes": inc.attributes,
        "withdrawn_at": datetime(2026, 2, 1, tzinfo=UTC) if inc.withdrawn else None,
        "batch_id": "test",
        "source_file": "test.csv",
        "row_number": 1,
        "raw_hash": "0" * 64,
        "created_at": inc.created_at,
        "updated_at": inc.updated_at,
    }
    for flag, column in FLAG_COLUMNS.items():
        row[column] = flag in inc.flags
    return row


def insert_incidents(store: Store, population: Sequence[Inc]) -> None:
    """Write incidents (rows, offences, jurisdictions, plain personal data)."""
    import json

    with store.begin() as conn:
        for inc in population:
            conn.execute(insert(incidents).values(**_incident_row(inc)))
            conn.execute(
                insert(incident_offences),
                [
                    {"incident_id": inc.id, "seq": i, "scheme": "test", **inc.offence(i)}
                    for i in range(len(inc.codes))
                ],
            )
            conn.execute(
                insert(incident_jurisdictions),
                [
                    {
                        "incident_id": inc.id,
                        "agency_id": a,
                        "basis": "polygon" if a in inc.inside() else "reporter",
                    }
                    for a in inc.jurisdictions()
                ],
            )
            if inc.personal:
                conn.execute(
                    insert(incident_personal).values(
                        incident_id=inc.id,
                        agency_id=inc.owner,
                        codec="plain",
                        key_id=None,
                        full_address=json.dumps(inc.personal.get("full_address")).encode(),
                        narrative=json.dumps(inc.personal.get("narrative")).encode(),
                        persons=json.dumps(inc.personal.get("persons", [])).encode(),
                        updated_at=inc.updated_at,
                    )
                )
        # The offences and jurisdictions kept on the rows, from the tables (a bulk write).
        refresh_children(conn, [inc.id for inc in population])


def clear(store: Store) -> None:
    """Delete every incident and every sharing row (the audit log stays: append-only)."""
    with store.begin() as conn:
        for table in (
            incident_personal,
            incident_versions,
            incident_jurisdictions,
            incident_offences,
            incidents,
            sharing_agreement_versions,
            sharing_agreement_approvals,
            sharing_agreements,
            sharing_group_members,
            sharing_groups,
            public_policy_overrides,
        ):
            conn.execute(delete(table))
        # Not an audited change (a test's reset), so bump the data generation as every
        # audited change does: reads keep their plan inputs per generation.
        generation.bump(conn)


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Return every row of the sharing tables (to check that nothing changed)."""
    from sqlalchemy import select

    out = {}
    with store.connect() as conn:
        for table in (
            sharing_agreements,
            sharing_agreement_versions,
            sharing_agreement_approvals,
            sharing_groups,
            sharing_group_members,
            public_policy_overrides,
        ):
            rows = conn.execute(select(table)).all()
            out[table.name] = sorted(tuple(map(str, r)) for r in rows)
    return out


def replace(inc: Inc, **changes: Any) -> Inc:
    """Return a copy of an incident with some fields changed."""
    return dataclasses.replace(inc, **changes)
