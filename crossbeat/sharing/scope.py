"""The vocabulary of a sharing scope: fields, precision levels, offences, time, purposes.

Everything an agreement (or the public release policy) can say is defined here, with
an order from "reveals more" to "reveals less" for each knob, so that two scopes can be
compared and merged by taking the stricter value of each knob (issue #3).

Field allow-list
    Only the fields in :data:`RECORD_FIELDS` (and, for agency and group grantees,
    :data:`PERSONAL_FIELDS`) can be shared. ``id`` and ``agency_id`` always travel with
    a record. Group names (:data:`FIELD_GROUPS`) expand to several fields.
Precision
    ``exact`` (the stored point) < ``block`` (anchor of the H3 resolution-10 cell, about
    a city block, plus the hundred-block address) < ``h3:9`` < ``h3:8`` < ``h3:7`` <
    ``h3:6`` (anchor of the cell at that resolution) < ``jurisdiction`` (no point, only
    the jurisdictions the incident lies in). Anchors never leave the jurisdiction
    polygons the true point lies in (see :mod:`crossbeat.sharing.public`).
Time resolution
    ``exact`` (as stored) < ``hour`` < ``day`` < ``month``, in the owner's time zone.
Offences
    ``all``, a crime-against category (``person``, ``property``, ``society``), ``part1``
    (UCR Part I offences) or a NIBRS offence code such as ``220``. A record matches by
    its primary offence; unmapped records match only ``all``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import cache

from crossbeat.model import CrimeAgainst, Sensitivity
from crossbeat.taxonomy.nibrs import nibrs_offences


class ScopeError(ValueError):
    """A scope value is malformed; the message says what is accepted."""


class Purpose(StrEnum):
    """Why data is read; an agreement lists the purposes it serves."""

    ANALYSIS = "analysis"
    """Crime analysis, patterns, statistics, patrol planning."""
    OPERATIONS = "operations"
    """Situational awareness for officers on duty."""
    INVESTIGATION = "investigation"
    """Work on a named case; the only purpose that can reach personal data of partners."""
    PUBLIC_INFORMATION = "public_information"
    """Publication to the public (the public grantee only)."""


#: The purpose of a read that states none (documented in docs/sharing.md).
DEFAULT_PURPOSE = Purpose.ANALYSIS

#: Fields that always travel with a shared record.
ALWAYS_FIELDS: tuple[str, ...] = ("id", "agency_id")

#: Every non-personal field a record can carry, in output order.
RECORD_FIELDS: tuple[str, ...] = (
    "id",
    "agency_id",
    "nibrs_code",
    "offence_name",
    "crime_against",
    "ucr_part1",
    "offence_local_code",
    "offences",
    "occurred_from",
    "occurred_to",
    "time_precision",
    "reported_at",
    "status",
    "disposition",
    "lat",
    "lon",
    "location_precision",
    "block_address",
    "location_type",
    "h3_7",
    "h3_9",
    "h3_11",
    "jurisdictions",
    "sensitivity",
    "attributes",
)

#: Personal data fields (held encrypted apart from the record; read only with a purpose).
PERSONAL_FIELDS: tuple[str, ...] = ("full_address", "narrative", "persons")

#: Names that expand to several fields.
FIELD_GROUPS: Mapping[str, tuple[str, ...]] = {
    "offence": ("nibrs_code", "offence_name", "crime_against", "ucr_part1"),
    "occurred": ("occurred_from", "occurred_to", "time_precision"),
    "location": ("lat", "lon", "location_precision"),
    "h3": ("h3_7", "h3_9", "h3_11"),
    "personal": PERSONAL_FIELDS,
    "all": RECORD_FIELDS,
}

#: The most the public can ever receive (agencies can only remove fields).
PUBLIC_FIELDS: frozenset[str] = frozenset(
    (
        *ALWAYS_FIELDS,
        *FIELD_GROUPS["offence"],
        *FIELD_GROUPS["occurred"],
        *FIELD_GROUPS["location"],
        "offences",
        "h3_7",
        "h3_9",
        "jurisdictions",
    )
)

#: The H3 resolution of each stored cell column.
H3_COLUMNS: Mapping[str, int] = {"h3_7": 7, "h3_9": 9, "h3_11": 11}


@dataclass(frozen=True, order=True)
class Precision:
    """A spatial precision level; a larger ``rank`` reveals less.

    Parameters
    ----------
    rank
        Position in the order exact < block < h3:9 < h3:8 < h3:7 < h3:6 < jurisdiction.
    name
        ``exact``, ``block``, ``h3:N`` or ``jurisdiction``.
    resolution
        H3 resolution of the anchor cells (None for exact and jurisdiction).
    """

    rank: int
    name: str
    resolution: int | None

    def __str__(self) -> str:
        """Return the name, e.g. ``h3:9``."""
        return self.name

    @property
    def has_point(self) -> bool:
        """Whether records at this precision carry a point."""
        return self.name != "jurisdiction"

    def shows_cell(self, column: str) -> bool:
        """Return whether an H3 cell column (``h3_7``...) is no finer than this precision."""
        if self.name == "exact":
            return True
        if self.resolution is None:
            return False
        return H3_COLUMNS[column] <= self.resolution and H3_COLUMNS[column] < 10


#: Anchor resolution of the ``block`` level: an H3 res-10 cell (about 66 m edge).
BLOCK_RESOLUTION = 10

PRECISIONS: tuple[Precision, ...] = (
    Precision(0, "exact", None),
    Precision(1, "block", BLOCK_RESOLUTION),
    Precision(2, "h3:9", 9),
    Precision(3, "h3:8", 8),
    Precision(4, "h3:7", 7),
    Precision(5, "h3:6", 6),
    Precision(6, "jurisdiction", None),
)
_PRECISION_BY_NAME = {p.name: p for p in PRECISIONS}


def parse_precision(text: str | Precision) -> Precision:
    """Return the precision level named by ``text``.

    Examples
    --------
    >>> parse_precision("H3:9").resolution
    9
    """
    if isinstance(text, Precision):
        return text
    key = str(text).strip().lower().replace("h3-", "h3:").replace("h3_", "h3:")
    try:
        return _PRECISION_BY_NAME[key]
    except KeyError:
        names = ", ".join(_PRECISION_BY_NAME)
        raise ScopeError(f"unknown precision {text!r}: use one of {names}") from None


class TimeResolution(StrEnum):
    """How precisely times are published (in the owner's time zone)."""

    EXACT = "exact"
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"

    @property
    def rank(self) -> int:
        """Position in the order exact < hour < day < month."""
        return list(TimeResolution).index(self)


def parse_time_resolution(text: str | TimeResolution) -> TimeResolution:
    """Return the time resolution named by ``text`` (exact, hour, day, month)."""
    try:
        return TimeResolution(str(text).strip().lower())
    except ValueError:
        names = ", ".join(t.value for t in TimeResolution)
        raise ScopeError(f"unknown time resolution {text!r}: use one of {names}") from None


_DELAY = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNITS = {"": 3600, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


#: The longest publication delay (ten years): longer is a typo, and would overflow dates.
MAX_DELAY = timedelta(days=3653)


def parse_delay(text: str | int | timedelta) -> timedelta:
    """Return a publication delay from ``24h``, ``7d``, ``2w``, ``90m``, seconds or a timedelta.

    Examples
    --------
    >>> parse_delay("24h") == timedelta(days=1)
    True
    """
    if isinstance(text, timedelta):
        value = text
    elif isinstance(text, int) and not isinstance(text, bool):
        value = timedelta(seconds=text)
    else:
        m = _DELAY.match(str(text))
        if not m:
            raise ScopeError(f"bad delay {text!r}: use a number with s, m, h, d or w (e.g. 24h)")
        seconds = int(m.group(1)) * _UNITS[m.group(2).lower()]
        if seconds > MAX_DELAY.total_seconds():
            raise ScopeError(f"delay {text!r} is longer than {MAX_DELAY.days} days")
        value = timedelta(seconds=seconds)
    if value < timedelta(0):
        raise ScopeError(f"a delay cannot be negative ({text!r})")
    if value > MAX_DELAY:
        raise ScopeError(f"delay {format_delay(value)} is longer than {MAX_DELAY.days} days")
    return value


def format_delay(delay: timedelta) -> str:
    """Return a delay in the largest whole unit (``7d``, ``24h``, ``0s``)."""
    seconds = int(delay.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


CATEGORIES: frozenset[str] = frozenset(
    c.value for c in CrimeAgainst if c is not CrimeAgainst.NOT_A_CRIME
)


def parse_offences(items: Iterable[str]) -> frozenset[str] | None:
    """Turn offence tokens into a set; None means every offence (``all``).

    Parameters
    ----------
    items
        ``all``, ``person``, ``property``, ``society``, ``part1`` or NIBRS codes.
        Commas inside an item separate tokens too.

    Raises
    ------
    ScopeError
        Listing every unknown token, or when nothing is given.
    """
    tokens = [t.strip() for item in items for t in str(item).split(",") if t.strip()]
    if not tokens:
        raise ScopeError("name the offences: all, person, property, society, part1 or codes")
    known = nibrs_offences()
    out: set[str] = set()
    bad: list[str] = []
    for token in tokens:
        low = token.lower()
        if low == "all":
            return None
        if low in CATEGORIES or low == "part1":
            out.add(low)
        elif token.upper() in known:
            out.add(token.upper())
        else:
            bad.append(token)
    if bad:
        raise ScopeError(
            "unknown offence(s) "
            + ", ".join(repr(b) for b in bad)
            + ": use all, person, property, society, part1 or a NIBRS code such as 220"
        )
    return frozenset(out)


def offence_matches(
    tokens: frozenset[str] | None,
    nibrs_code: str | None,
    crime_against: str | None,
    ucr_part1: str | None,
) -> bool:
    """Return whether an offence (code, category, Part I class) is covered by the tokens."""
    if tokens is None:
        return True
    if nibrs_code is None:
        return False
    return (
        nibrs_code in tokens
        or (crime_against is not None and crime_against in tokens)
        or (ucr_part1 is not None and "part1" in tokens)
    )


def offences_overlap(a: frozenset[str] | None, b: frozenset[str] | None) -> bool:
    """Return whether two offence scopes can both cover one offence."""
    if a is None or b is None:
        return True
    if a & b:
        return True
    table = nibrs_offences()
    return any(
        offence_matches(a, o.code, o.crime_against.value if o.crime_against else None, o.ucr_part1)
        and offence_matches(
            b, o.code, o.crime_against.value if o.crime_against else None, o.ucr_part1
        )
        for o in table.values()
    )


def offence_subset(inner: frozenset[str] | None, outer: frozenset[str] | None) -> bool:
    """Return whether every NIBRS offence ``inner`` covers is covered by ``outer``."""
    if outer is None:
        return True
    if inner is None:
        return False
    table = nibrs_offences()
    for o in table.values():
        ca = o.crime_against.value if o.crime_against else None
        if offence_matches(inner, o.code, ca, o.ucr_part1) and not offence_matches(
            outer, o.code, ca, o.ucr_part1
        ):
            return False
    return True


def expand_fields(items: Iterable[str], *, personal: bool = True) -> frozenset[str]:
    """Expand field names and group names into a set of fields (plus id and agency_id).

    Parameters
    ----------
    items
        Field or group names; commas separate names too.
    personal
        Whether personal data fields may be named.

    Raises
    ------
    ScopeError
        Listing every name not on the allow-list.
    """
    names = [t.strip() for item in items for t in str(item).split(",") if t.strip()]
    out: set[str] = set(ALWAYS_FIELDS)
    bad: list[str] = []
    for name in names:
        low = name.lower()
        if low in FIELD_GROUPS:
            out.update(FIELD_GROUPS[low])
        elif low in RECORD_FIELDS or low in PERSONAL_FIELDS:
            out.add(low)
        else:
            bad.append(name)
    if bad:
        groups = ", ".join(FIELD_GROUPS)
        raise ScopeError(
            "field(s) not on the allow-list: "
            + ", ".join(repr(b) for b in bad)
            + f"; use field names ({', '.join(RECORD_FIELDS)}) or groups ({groups})"
        )
    if not personal and out & set(PERSONAL_FIELDS):
        raise ScopeError("personal data fields cannot be named here")
    return frozenset(out)


def parse_sensitivity(items: Iterable[str]) -> frozenset[Sensitivity]:
    """Turn sensitivity flag names into flags (``all`` for every flag)."""
    names = [t.strip().lower() for item in items for t in str(item).split(",") if t.strip()]
    if "all" in names:
        return frozenset(Sensitivity)
    out = set()
    bad = []
    for name in names:
        try:
            out.add(Sensitivity(name))
        except ValueError:
            bad.append(name)
    if bad:
        valid = ", ".join(s.value for s in Sensitivity)
        raise ScopeError(f"unknown sensitivity flag(s) {', '.join(bad)}: use {valid} or all")
    return frozenset(out)


@cache
def sensitive_codes(flags: frozenset[Sensitivity]) -> frozenset[str]:
    """Return the NIBRS codes whose offence implies any of the given flags."""
    return frozenset(c for c, o in nibrs_offences().items() if o.sensitivity & flags)


def offence_name(code: str | None) -> str | None:
    """Return the NIBRS offence name of a code (None if unknown or None)."""
    if code is None:
        return None
    entry = nibrs_offences().get(code)
    return entry.name if entry else None
