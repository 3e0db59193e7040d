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
    ``h3:6`` (anchor of the cell at that resolution) < ``area:LAYER`` (no point, only
    the areas of one area layer, such as a precinct or a neighbourhood, and the
    jurisdictions the incident lies in) < ``jurisdiction`` (no point, only the
    jurisdictions). Anchors never leave the jurisdiction polygons the true point lies
    in (see :mod:`crossbeat.sharing.public`). ``area:LAYER`` names a layer of the
    records' owner (``area:AGENCY/LAYER`` another agency's layer, see
    :mod:`crossbeat.areas`); it ranks above every point precision because it publishes
    no point, and two different area layers are not comparable: the stricter of them
    is ``jurisdiction`` (:func:`coarser`).
Time resolution
    ``exact`` (as stored) < ``hour`` < ``day`` < ``month``, in the owner's time zone.
Offences
    ``all``, a crime-against category (``person``, ``property``, ``society``), ``part1``
    (UCR Part I offences) or a NIBRS offence code such as ``220``. A record matches by
    its primary offence; unmapped records match only ``all``.
Calls for service
    ``calls`` (every call-for-service category) or ``call:<category>`` (``call:alarm``).
    A CAD call that is not an offence is covered only by these tokens, never by
    ``all`` or a category: an agreement sharing "all offences" or "property" shares no
    calls unless it names them too (``all,calls``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import cache

from crossbeat.model import CrimeAgainst, Sensitivity
from crossbeat.taxonomy.calls import CALL_PREFIX, call_categories
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
    "call_category",
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
    "areas",
    "sensitivity",
    "attributes",
)

#: Travels with every call-for-service record that is shown (and only with those), so
#: that a call is never mistaken for an offence; the public never receives calls.
CALL_FIELD = "call_category"

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
        "areas",
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
        Position in the order exact < block < h3:9 < h3:8 < h3:7 < h3:6 < area:LAYER
        < jurisdiction.
    name
        ``exact``, ``block``, ``h3:N``, ``area:LAYER`` or ``jurisdiction``.
    resolution
        H3 resolution of the anchor cells (None for exact, area and jurisdiction).
    layer
        For ``area:LAYER``: the layer, ``LAYER`` (the owner's) or ``AGENCY/LAYER``.
    """

    rank: int
    name: str
    resolution: int | None
    layer: str | None = None

    def __str__(self) -> str:
        """Return the name, e.g. ``h3:9``."""
        return self.name

    @property
    def has_point(self) -> bool:
        """Whether records at this precision carry a point."""
        return self.name != "jurisdiction" and self.layer is None

    def layer_key(self, owner: str) -> str | None:
        """Return the ``AGENCY/LAYER`` key of an area precision for an owner's records."""
        return None if self.layer is None else layer_key(self.layer, owner)

    def shows_layer(self, key: str, owner: str) -> bool:
        """Return whether records of ``owner`` at this precision show areas of layer ``key``.

        Exact records show every area; ``area:LAYER`` shows that layer's areas only;
        every other precision shows none (an area can be finer than the published
        point's cell, and would tell on which side of an area boundary the point is).
        """
        return self.name == "exact" or self.layer_key(owner) == key

    def shows_cell(self, column: str) -> bool:
        """Return whether an H3 cell column (``h3_7``...) is no finer than this precision."""
        if self.name == "exact":
            return True
        if self.resolution is None:
            return False
        return H3_COLUMNS[column] <= self.resolution and H3_COLUMNS[column] < 10


#: Anchor resolution of the ``block`` level: an H3 res-10 cell (about 66 m edge).
BLOCK_RESOLUTION = 10

#: Rank of every ``area:LAYER`` precision: coarser than any point, finer than jurisdiction.
AREA_RANK = 6

PRECISIONS: tuple[Precision, ...] = (
    Precision(0, "exact", None),
    Precision(1, "block", BLOCK_RESOLUTION),
    Precision(2, "h3:9", 9),
    Precision(3, "h3:8", 8),
    Precision(4, "h3:7", 7),
    Precision(5, "h3:6", 6),
    Precision(7, "jurisdiction", None),
)
_PRECISION_BY_NAME = {p.name: p for p in PRECISIONS}

#: An area layer name (unique per agency), as :mod:`crossbeat.areas` accepts it.
LAYER_NAME = r"[a-z0-9][a-z0-9_-]{0,39}"
_LAYER_REF = re.compile(rf"^(?:([a-z0-9][a-z0-9_-]{{0,63}})/)?({LAYER_NAME})$")


def parse_layer_ref(text: str) -> str:
    """Return a normalised area layer reference: ``LAYER`` or ``AGENCY/LAYER``.

    Raises
    ------
    ScopeError
        When it is not one.
    """
    ref = str(text).strip().lower()
    if not _LAYER_REF.match(ref):
        raise ScopeError(
            f"bad area layer {text!r}: use LAYER (the records' owner's layer) or AGENCY/LAYER, "
            "with lower-case letters, digits, '-' or '_'"
        )
    return ref


def layer_key(ref: str, owner: str) -> str:
    """Return the ``AGENCY/LAYER`` key a layer reference means for an owner's records.

    Examples
    --------
    >>> layer_key("beats", "rivertonpd"), layer_key("met/boroughs", "btp")
    ('rivertonpd/beats', 'met/boroughs')
    """
    return ref if "/" in ref else f"{owner}/{ref}"


def parse_precision(text: str | Precision) -> Precision:
    """Return the precision level named by ``text``.

    Examples
    --------
    >>> parse_precision("H3:9").resolution
    9
    >>> parse_precision("area:boroughs").layer
    'boroughs'
    """
    if isinstance(text, Precision):
        return text
    key = str(text).strip().lower().replace("h3-", "h3:").replace("h3_", "h3:")
    if key.startswith("area:"):
        ref = parse_layer_ref(key[5:])
        return Precision(AREA_RANK, f"area:{ref}", None, ref)
    try:
        return _PRECISION_BY_NAME[key]
    except KeyError:
        names = ", ".join([*_PRECISION_BY_NAME, "area:LAYER"])
        raise ScopeError(f"unknown precision {text!r}: use one of {names}") from None


def coarser(a: Precision, b: Precision) -> Precision:
    """Return the precision that reveals no more than either ``a`` or ``b``.

    Two different area layers are not comparable (neither contains the other), so
    the stricter of them is ``jurisdiction``.

    Examples
    --------
    >>> str(coarser(parse_precision("h3:9"), parse_precision("area:beats")))
    'area:beats'
    >>> str(coarser(parse_precision("area:beats"), parse_precision("area:wards")))
    'jurisdiction'
    """
    if a.layer is not None and b.layer is not None and a.layer != b.layer:
        return _PRECISION_BY_NAME["jurisdiction"]
    return a if a.rank >= b.rank else b


def finer(a: Precision, b: Precision) -> bool:
    """Return whether ``a`` reveals something ``b`` does not (``a`` is not as coarse)."""
    return coarser(a, b) != a


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


#: The token that covers every call-for-service category.
ALL_CALLS = "calls"


def parse_offences(items: Iterable[str]) -> frozenset[str] | None:
    """Turn offence tokens into a set; None means every offence (``all``) and no calls.

    Parameters
    ----------
    items
        ``all``, ``person``, ``property``, ``society``, ``part1``, NIBRS codes, and for
        calls for service ``calls`` or ``call:<category>``. Commas inside an item
        separate tokens too.

    Raises
    ------
    ScopeError
        Listing every unknown token, or when nothing is given.
    """
    tokens = [t.strip() for item in items for t in str(item).split(",") if t.strip()]
    if not tokens:
        raise ScopeError(
            "name the offences: all, person, property, society, part1, codes, or calls"
        )
    known = nibrs_offences()
    out: set[str] = set()
    bad: list[str] = []
    for token in tokens:
        low = token.lower()
        if low == "all" or low in CATEGORIES or low == "part1" or low == ALL_CALLS:
            out.add(low)
        elif low.startswith(CALL_PREFIX) and low[len(CALL_PREFIX) :] in call_categories():
            out.add(low)
        elif token.upper() in known:
            out.add(token.upper())
        else:
            bad.append(token)
    if bad:
        raise ScopeError(
            "unknown offence(s) "
            + ", ".join(repr(b) for b in bad)
            + ": use all, person, property, society, part1 or a NIBRS code such as 220, "
            + "and for calls for service calls or call:<category> ("
            + ", ".join(call_categories())
            + ")"
        )
    if "all" in out:
        calls = {t for t in out if is_call_token(t)}
        # "all" alone stays None (every offence, no calls), as stored agreements have it.
        return frozenset({"all", *calls}) if calls else None
    return frozenset(out)


def is_call_token(token: str) -> bool:
    """Return whether an offence token names calls for service (``calls``, ``call:x``)."""
    return token == ALL_CALLS or token.startswith(CALL_PREFIX)


def call_scope(tokens: frozenset[str] | None) -> frozenset[str] | None:
    """Return the call categories offence tokens cover: None for every one.

    Examples
    --------
    >>> call_scope(None)
    frozenset()
    >>> call_scope(frozenset({"property", "call:alarm"}))
    frozenset({'alarm'})
    >>> call_scope(frozenset({"calls"})) is None
    True
    """
    if tokens is None:
        return frozenset()
    if ALL_CALLS in tokens:
        return None
    return frozenset(t[len(CALL_PREFIX) :] for t in tokens if t.startswith(CALL_PREFIX))


def call_matches(tokens: frozenset[str] | None, call_category: str) -> bool:
    """Return whether offence tokens cover a call for service of this category."""
    cats = call_scope(tokens)
    return cats is None or call_category in cats


def offence_matches(
    tokens: frozenset[str] | None,
    nibrs_code: str | None,
    crime_against: str | None,
    ucr_part1: str | None,
) -> bool:
    """Return whether an offence (code, category, Part I class) is covered by the tokens.

    Calls for service are not offences: check them with :func:`call_matches`.
    """
    if tokens is None or "all" in tokens:
        return True
    if nibrs_code is None:
        return False
    return (
        nibrs_code in tokens
        or (crime_against is not None and crime_against in tokens)
        or (ucr_part1 is not None and "part1" in tokens)
    )


def offences_overlap(a: frozenset[str] | None, b: frozenset[str] | None) -> bool:
    """Return whether two offence scopes can both cover one offence or call."""
    calls_a, calls_b = call_scope(a), call_scope(b)
    if calls_a is None:
        if calls_b is None or calls_b:
            return True
    elif calls_b is None:
        if calls_a:
            return True
    elif calls_a & calls_b:
        return True
    a, b = _offence_part(a), _offence_part(b)
    if a == frozenset() or b == frozenset():
        return False  # one of them covers calls only
    if a is None or b is None or "all" in a or "all" in b or a & b:
        return True
    table = nibrs_offences()
    return any(
        offence_matches(a, o.code, o.crime_against.value if o.crime_against else None, o.ucr_part1)
        and offence_matches(
            b, o.code, o.crime_against.value if o.crime_against else None, o.ucr_part1
        )
        for o in table.values()
    )


def _offence_part(tokens: frozenset[str] | None) -> frozenset[str] | None:
    """Return the offence tokens without the call tokens (None: every offence)."""
    if tokens is None:
        return None
    return frozenset(t for t in tokens if not is_call_token(t))


def offence_subset(inner: frozenset[str] | None, outer: frozenset[str] | None) -> bool:
    """Return whether every NIBRS offence and call ``inner`` covers is covered by ``outer``."""
    inner_calls, outer_calls = call_scope(inner), call_scope(outer)
    if outer_calls is not None and (inner_calls is None or not inner_calls <= outer_calls):
        return False
    if outer is None or "all" in outer:
        return True
    if inner is None or "all" in inner:
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
