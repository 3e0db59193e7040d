"""The common incident model: the shared vocabulary every package speaks.

An :class:`Incident` is what one agency reported about one event, normalised from
that agency's own export. It is aligned with NIBRS: an incident carries one or more
:class:`Offence` records, each keeping the local code as received and, through the
agency's crosswalk, the NIBRS offence code, the crime-against category and the UCR
Part I class.

Personal data (persons, narrative, the full address as received) lives in
:class:`PersonalData`, held apart from the shareable part of the record so that it
can be stored separately (and, by the governance layer, encrypted).
"""

from __future__ import annotations

import enum
import functools
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Namespace for incident ids: ``uuid5(NAMESPACE, f"{agency}\x1f{source_id}")``.
INCIDENT_NAMESPACE = uuid.UUID("6f3b8a52-2f0e-5c1e-9d8e-4b1c2a7d9e10")

#: H3 resolutions derived for every located incident (edge ≈ 1.2 km, 174 m, 25 m).
H3_RESOLUTIONS: tuple[int, ...] = (7, 9, 11)


class TimePrecision(enum.StrEnum):
    """How precisely the source knows when an incident happened."""

    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"
    YEAR = "year"
    UNKNOWN = "unknown"


class LocationPrecision(enum.StrEnum):
    """How precisely the stored point represents where the incident happened.

    ``exact``: geocoded address or GPS fix. ``block``: generalised by the source to a
    block or street segment. ``snapped``: moved by the source to an anonymising map
    point (police.uk). ``area``: only an area (beat, neighbourhood) is known and the
    point is that area's representative point. ``none``: no location.
    """

    EXACT = "exact"
    BLOCK = "block"
    SNAPPED = "snapped"
    AREA = "area"
    NONE = "none"


class CrimeAgainst(enum.StrEnum):
    """NIBRS crime-against category."""

    PERSON = "person"
    PROPERTY = "property"
    SOCIETY = "society"
    NOT_A_CRIME = "not_a_crime"


class Sensitivity(enum.StrEnum):
    """Sensitivity flags that restrict how an incident may be shared."""

    SEXUAL_OFFENCE = "sexual_offence"
    DOMESTIC_VIOLENCE = "domestic_violence"
    JUVENILE = "juvenile"
    VICTIM_IDENTIFYING = "victim_identifying"
    INFORMANT = "informant"


class PersonRole(enum.StrEnum):
    """The role a person plays in an incident."""

    VICTIM = "victim"
    WITNESS = "witness"
    SUSPECT = "suspect"
    INFORMANT = "informant"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Offence:
    """One offence within an incident, as received and as classified."""

    local_code: str
    local_description: str | None = None
    scheme: str | None = None
    crosswalk_version: str | None = None
    nibrs_code: str | None = None
    crime_against: CrimeAgainst | None = None
    ucr_part1: str | None = None
    #: How the crosswalk matched: ``exact``, ``broader``, ``narrower``, ``approximate``
    #: or ``None`` when the local code is not mapped (flagged, never guessed).
    match: str | None = None
    #: The call-for-service category (``alarm``, ``welfare_check`` ...) when the local
    #: code is a CAD call type that is not an offence (then there is no NIBRS code and
    #: ``crime_against`` is ``not_a_crime``); see ``crossbeat.taxonomy.calls``.
    call_category: str | None = None

    @property
    def mapped(self) -> bool:
        """Whether the crosswalk mapped this local code to a NIBRS offence."""
        return self.match is not None


@dataclass(frozen=True, slots=True)
class Person:
    """A person involved in an incident. Always personal data."""

    role: PersonRole
    name: str | None = None
    age: int | None = None
    sex: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PersonalData:
    """The private part of an incident: never shared without a stated purpose."""

    full_address: str | None = None
    narrative: str | None = None
    persons: tuple[Person, ...] = ()

    def is_empty(self) -> bool:
        """Return True when there is no personal data at all."""
        return not (self.full_address or self.narrative or self.persons)


@dataclass(frozen=True, slots=True)
class Location:
    """Where an incident happened, in WGS84."""

    lat: float | None = None
    lon: float | None = None
    precision: LocationPrecision = LocationPrecision.NONE
    block_address: str | None = None
    location_type: str | None = None
    location_type_local: str | None = None

    @property
    def has_point(self) -> bool:
        """Whether a point is known."""
        return self.lat is not None and self.lon is not None


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a stored record came from."""

    source_file: str
    row_number: int
    raw_hash: str
    batch_id: str | None = None


@dataclass(frozen=True, slots=True)
class Incident:
    """One agency's record of one incident, normalised to the common model.

    ``record_hash`` is computed from the normalised content (not the raw row), so a
    re-ingest of an unchanged record is recognised as unchanged even when the source
    file moved or was re-exported with other row numbers.
    """

    agency_id: str
    source_id: str
    offences: tuple[Offence, ...]
    occurred_from: datetime | None
    occurred_to: datetime | None
    time_precision: TimePrecision
    location: Location
    reported_at: datetime | None = None
    status: str | None = None
    disposition: str | None = None
    sensitivity: frozenset[Sensitivity] = frozenset()
    personal: PersonalData = PersonalData()
    attributes: dict[str, Any] = field(default_factory=dict)
    provenance: Provenance | None = None
    h3: dict[int, str] = field(default_factory=dict)
    jurisdictions: tuple[str, ...] = ()
    withdrawn: bool = False

    @property
    def id(self) -> str:
        """Stable global id derived from (agency, source record id)."""
        return incident_id(self.agency_id, self.source_id)

    @property
    def unmapped(self) -> bool:
        """Whether any offence's local code is not mapped by the crosswalk."""
        return any(not o.mapped for o in self.offences)

    @property
    def call_category(self) -> str | None:
        """The call-for-service category, when the incident is a call, not a crime.

        Like the other offence columns of a stored incident, this follows the primary
        (first) offence: a CAD record's call type.
        """
        return self.offences[0].call_category if self.offences else None


@dataclass(frozen=True, slots=True)
class RecordUpdate:
    """A dated change to the status or disposition of an incident already stored.

    Update feeds carry these (police.uk's outcomes files: one row per outcome of a
    crime, in the month it was reached). ``None`` leaves a field as it is. An update
    applies only if it is newer than the one that last set the field (``as_of``);
    each applied update makes a new version of the incident.
    """

    agency_id: str
    source_id: str
    as_of: datetime
    time_precision: TimePrecision
    status: str | None = None
    disposition: str | None = None
    provenance: Provenance | None = None

    @property
    def id(self) -> str:
        """The global id of the incident this update is for."""
        return incident_id(self.agency_id, self.source_id)


@functools.lru_cache(maxsize=1 << 16)
def incident_id(agency_id: str, source_id: str) -> str:
    """Return the stable global id of an agency's source record.

    Examples
    --------
    >>> incident_id("sacpd", "123") == incident_id("sacpd", "123")
    True
    >>> incident_id("sacpd", "123") != incident_id("county", "123")
    True
    """
    return str(uuid.uuid5(INCIDENT_NAMESPACE, f"{agency_id}\x1f{source_id}"))


def new_public_id() -> str:
    """Return a fresh public id: a random UUID4, unrelated to agency and source id.

    :func:`incident_id` is derivable by anyone who knows (or guesses) the source id, and
    source ids are often sequential case numbers. Everyone but the owner sees an
    incident under its public id instead, drawn once when the record is first stored
    (``incidents.public_id``), so that published ids reveal no case number and no gap
    between them (issue #7).

    Examples
    --------
    >>> new_public_id() != new_public_id()
    True
    """
    return str(uuid.uuid4())


def sha256_hex(data: bytes | str) -> str:
    """Return the hex SHA-256 digest of bytes or UTF-8 text."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Agency:
    """A law-enforcement agency that owns the incidents it reports."""

    id: str
    name: str
    ori: str | None = None
    timezone: str = "UTC"
