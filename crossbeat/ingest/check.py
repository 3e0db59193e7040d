"""Check a source profile against a file before ingesting it.

:func:`check_profile` answers "does this profile read this file the way I think?":
the header against the profile's columns, the first rows exactly as they would be
stored (or every reason they would be quarantined), and, over the whole file, how
many rows would be stored, withdrawn or quarantined and why, which offence codes the
crosswalk does not map, and which source ids repeat. Nothing is written anywhere.

Given a store, points are checked against each agency's registered jurisdictions as
the ingest checks them (swapped points, points more than 100 km outside); the store is
only read. :mod:`crossbeat.ingest.check_render` prints the report.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossbeat.agencies import jurisdiction_index
from crossbeat.clock import Clock
from crossbeat.geo.jurisdictions import JurisdictionIndex
from crossbeat.ingest.normalise import Normalised, Normaliser, Rejected, Updated
from crossbeat.ingest.preflight import store_problems
from crossbeat.ingest.profile import Profile, ProfileError
from crossbeat.ingest.readers import RawRecord, SourceError, open_source
from crossbeat.ingest.source import display_encoding
from crossbeat.model import Offence
from crossbeat.store import Store

#: How many distinct source ids the duplicate check remembers (8 bytes each).
MAX_TRACKED_IDS = 2_000_000
#: The agency id rows of a single-agency profile are normalised for when none is given.
_NO_AGENCY = "check"
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
#: Text just before a quoted name that is not a value: ``column 'X'``, ``columns 'X', 'Y'``,
#: ``column(s) 'X'``, ``crosswalk 'code-nibrs'``.
_NAME_LEAD = re.compile(r"\b(?:columns?|column\(s\)|crosswalk) $")
_NAME_LIST = (", ", " + ")
_DATETIME = re.compile(
    r"(?<![\w:])(?:(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?"
    r"|(\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?))(?:Z|[+-]\d{2}:?\d{2})?(?![\w:])"
)
_HEX_BYTE = re.compile(r"\b0x[0-9A-Fa-f]{2}\b")
#: A number standing on its own (not part of a name such as ``EPSG:2913`` or ``13B``).
_NUMBER = re.compile(r"(?<![\w:.-])-?\d+(?:\.\d+)?(?!\w|\.\d)")


@dataclass(frozen=True, slots=True)
class CheckRow:
    """One of the first rows: the flat stored fields, or the reasons it is refused."""

    row_number: int
    stored: dict[str, Any] | None
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass
class CheckReport:
    """What :func:`check_profile` found.

    ``matches`` is False when the file cannot be read as the profile says: a file
    error, columns the profile needs that the file lacks, or every row refused.
    ``agency_id`` is None for a profile that routes rows to agencies by
    ``agency_column`` (or when no agency was given). ``boundaries_checked`` says
    whether points were checked against the agencies' jurisdictions in a store;
    ``agencies_without_boundary`` lists the agencies rows went to that have none there.
    """

    profile: str
    path: str
    agency_id: str | None
    format: str
    agency_column: str | None = None
    reads_points: bool = False
    boundaries_checked: bool = False
    agencies_without_boundary: list[str] = field(default_factory=list)
    encoding: str | None = None
    columns: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    unused_columns: list[str] = field(default_factory=list)
    error: str | None = None
    rows: list[CheckRow] = field(default_factory=list)
    scanned: bool = False
    total: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    unmapped: Counter[str] = field(default_factory=Counter)
    duplicates_complete: bool = True
    #: Lines of the profile with an unsettled ``TODO`` comment: the ingest refuses it.
    todos: list[str] = field(default_factory=list)
    #: Why the ingest would refuse the run against the store checked (``--db``): an
    #: unregistered agency, a time zone differing from the agency's.
    refusals: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        """Whether the profile reads the file (no file error, no missing columns...)."""
        if self.error or self.missing_columns or self.todos or self.refusals:
            return False
        return not (self.total and self.rejected == self.total)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "profile": self.profile,
            "path": self.path,
            "agency": self.agency_id,
            "agency_column": self.agency_column,
            "boundaries_checked": self.boundaries_checked,
            "agencies_without_boundary": self.agencies_without_boundary,
            "format": self.format,
            "encoding": self.encoding,
            "matches": self.matches,
            "error": self.error,
            "columns": self.columns,
            "missing_columns": self.missing_columns,
            "unused_columns": self.unused_columns,
            "rows": [
                {
                    "row_number": r.row_number,
                    "stored": r.stored,
                    "reasons": list(r.reasons),
                    "warnings": list(r.warnings),
                }
                for r in self.rows
            ],
            "scanned": self.scanned,
            "total": self.total,
            "actions": dict(self.actions),
            "rejected": self.rejected,
            "reasons": dict(self.reasons.most_common()),
            "warnings": dict(self.warnings.most_common()),
            "unmapped": dict(self.unmapped.most_common()),
            "duplicates_complete": self.duplicates_complete,
            "todos": self.todos,
            "refusals": self.refusals,
        }


def kind_of(message: str) -> str:
    """Return a message with its values masked, to count messages of one kind.

    Column (and crosswalk) names stay, so a reader sees which column is wrong; quoted
    values become ``…``, dates and times their shape, other numbers ``N``.

    Examples
    --------
    >>> kind_of("occurred_from: column 'Month': '2020-13' is not a valid date")
    "occurred_from: column 'Month': … is not a valid date"
    >>> kind_of("occurred_from: local time 2025-03-09 02:30 does not exist in America/Chicago")
    'occurred_from: local time YYYY-MM-DD HH:MM does not exist in America/Chicago'
    """
    parts: list[str] = []
    pos = 0
    name = False
    for quoted in _QUOTED.finditer(message):
        before = message[pos : quoted.start()]
        name = bool(_NAME_LEAD.search(before)) or (name and before in _NAME_LIST)
        parts += [_mask(before), quoted.group() if name else "…"]
        pos = quoted.end()
    parts.append(_mask(message[pos:]))
    return "".join(parts)


def _mask(text: str) -> str:
    """Mask the dates, times, bytes and numbers of unquoted text."""
    text = _DATETIME.sub(_datetime_shape, text)
    text = _HEX_BYTE.sub("0xNN", text)
    return _NUMBER.sub("N", text)


def _datetime_shape(match: re.Match[str]) -> str:
    date, clock, bare = match.groups()
    shape = "YYYY-MM-DD" if date else ""
    if clock or bare:
        shape += (" " if date else "") + ("HH:MM:SS" if (clock or bare).count(":") > 1 else "HH:MM")
    return shape


def stored_fields(result: Normalised | Updated) -> dict[str, Any]:
    """Return the fields a normalised record would be stored with, flattened for display."""
    if isinstance(result, Updated):
        u = result.update
        return {
            "action": "update",
            "source_id": u.source_id,
            "as_of": u.as_of.isoformat(),
            "time_precision": u.time_precision.value,
            "status": u.status,
            "disposition": u.disposition,
            "raw_hash": u.provenance.raw_hash if u.provenance else None,
        }
    inc = result.incident
    loc = inc.location
    persons = ", ".join(
        p.role.value + (f" ({p.age})" if p.age is not None else "") for p in inc.personal.persons
    )
    return {
        "action": result.action,
        "source_id": inc.source_id,
        "occurred_from": inc.occurred_from.isoformat() if inc.occurred_from else None,
        "occurred_to": inc.occurred_to.isoformat() if inc.occurred_to else None,
        "time_precision": inc.time_precision.value,
        "reported_at": inc.reported_at.isoformat() if inc.reported_at else None,
        "offences": [
            f"{o.local_code} -> {_target(o)} ({o.match or 'unmapped'})" for o in inc.offences
        ],
        "lat": loc.lat,
        "lon": loc.lon,
        "location_precision": loc.precision.value,
        "block_address": loc.block_address,
        "location_type": loc.location_type,
        "location_type_local": loc.location_type_local,
        "status": inc.status,
        "disposition": inc.disposition,
        "sensitivity": sorted(s.value for s in inc.sensitivity),
        "attributes": inc.attributes,
        "private_full_address": inc.personal.full_address,
        "private_narrative": inc.personal.narrative,
        "private_persons": persons or None,
        "raw_hash": inc.provenance.raw_hash if inc.provenance else None,
    }


def check_profile(
    profile: Profile,
    path: str | Path,
    *,
    agency_id: str | None = None,
    limit: int = 10,
    scan: bool = True,
    clock: Clock | None = None,
    store: Store | None = None,
) -> CheckReport:
    """Check how a profile reads a file, without storing anything.

    Parameters
    ----------
    profile
        The validated profile.
    path
        The export file.
    agency_id
        The agency the rows would belong to (default: the profile's ``agency``).
        Ignored for a profile that routes rows by ``agency_column``: each row goes to
        its agency, with that agency's time zone, as the ingest does.
    limit
        How many first rows to show as they would be stored.
    scan
        Also read the whole file and count outcomes, reasons and unmapped codes.
    clock
        Decides what "in the future" means (default: the store's, else the system clock).
    store
        Where the agencies' jurisdictions are registered: points are then checked
        against each agency's extent exactly as the ingest checks them (swapped,
        more than 100 km outside). Only read. Without it points are checked for range
        only, and the ingest may quarantine rows the report would store.

    Returns
    -------
    CheckReport
        Everything found; ``report.matches`` says whether the profile fits the file
        and the ingest would accept it (no unsettled ``TODO``; with a store, the
        agency registered there, in the profile's time zone).
    """
    agency = None if profile.agency_column else (agency_id or profile.agency)
    report = CheckReport(
        profile.name,
        str(path),
        agency,
        profile.source.format,
        agency_column=profile.agency_column,
        reads_points=profile.kind == "incidents"
        and bool(profile.location.x or profile.source.format == "geojson"),
        boundaries_checked=store is not None
        and (agency is not None or bool(profile.agency_column)),
        todos=list(profile.open_todos),
    )
    if store is not None:
        report.refusals = store_problems(store, profile, agency)
    try:
        reader = open_source(path, profile.source)
    except SourceError as exc:
        report.error = str(exc)
        return report
    with reader:
        report.encoding = display_encoding(reader.encoding)
        report.columns = list(reader.columns)
        needed = profile.referenced_columns()
        report.missing_columns = sorted(c for c in needed if not reader.has_column(c))
        tops = {c.split(".", 1)[0] if reader.nested else c for c in needed}
        report.unused_columns = [c for c in reader.columns if c not in tops and c not in needed]
        index = jurisdiction_index(store) if store and report.boundaries_checked else None
        if clock is None and store is not None:
            clock = store.clock  # as the ingest decides what "in the future" means
        try:
            router = _Router(profile, agency, str(path), index, clock)
        except ProfileError as exc:
            report.error = str(exc)
            return report
        _scan(report, reader, router, limit, scan)
        if index is not None:
            report.agencies_without_boundary = sorted(
                a for a in router.routed if index.extent(a) is None
            )
    return report


class _Router:
    """Mirror the pipeline's RowRouter: each row's agency, and one normaliser per agency.

    A normaliser gets its agency's time zone (``agency_timezones``) and, with a store,
    its agency's extent, as in the ingest.
    """

    def __init__(
        self,
        profile: Profile,
        agency_id: str | None,
        source_file: str,
        index: JurisdictionIndex | None,
        clock: Clock | None,
    ) -> None:
        self.profile = profile
        #: The agencies rows went to (a single-agency profile's agency from the start).
        self.routed: set[str] = {agency_id} if agency_id and not profile.agency_column else set()
        self._map = {k.strip().casefold(): v for k, v in profile.agency_map.items()}
        agencies = sorted(set(self._map.values())) if profile.agency_column else [agency_id]
        # Every normaliser is made now, so that a profile error is reported before any row.
        self._normalisers = {
            a: Normaliser(
                profile.for_agency(a) if a else profile,
                a or _NO_AGENCY,
                source_file=source_file,
                extent=index.extent(a) if index is not None and a else None,
                clock=clock,
            )
            for a in agencies
        }

    def route(self, rec: RawRecord) -> tuple[str | None, Normaliser | None, str | None]:
        """Return (agency, its normaliser, None) or (None, None, why the row has none)."""
        column = self.profile.agency_column
        if column is None:
            (agency,) = self._normalisers
            return agency, self._normalisers[agency], None
        value = (rec.fields.get(column) or "").strip()
        agency = self._map.get(value.casefold())
        if agency is None:
            why = f"agency: column {column!r} value {value!r} is not in the profile's agency_map"
            return None, None, why
        self.routed.add(agency)
        return agency, self._normalisers[agency], None


def _scan(report: CheckReport, reader: Any, router: _Router, limit: int, scan: bool) -> None:
    first_rows: dict[bytes, int] = {}
    for rec in reader:
        if not scan and rec.row_number > limit:
            break
        report.total += 1
        agency, normaliser, why = router.route(rec)
        if normaliser is None:
            result: Normalised | Updated | Rejected = Rejected(
                rec.row_number, dict(rec.fields), (*rec.problems, why or "")
            )
        else:
            result = normaliser.normalise(rec)
        if isinstance(result, Normalised):
            why = _duplicate(report, first_rows, agency, result.incident.source_id, rec.row_number)
            if why:
                result = Rejected(rec.row_number, dict(rec.fields), (why,))
        if isinstance(result, Rejected):
            report.rejected += 1
            report.reasons.update({kind_of(r) for r in result.reasons})
            row = CheckRow(rec.row_number, None, result.reasons)
        elif isinstance(result, Updated):
            report.actions["update"] += 1
            report.warnings.update({kind_of(w) for w in result.warnings})
            row = CheckRow(rec.row_number, stored_fields(result), (), result.warnings)
        else:
            report.actions[result.action] += 1
            report.warnings.update({kind_of(w) for w in result.warnings})
            for o in result.incident.offences:
                if not o.mapped:
                    report.unmapped[f"{o.scheme}: {o.local_code}"] += 1
            row = CheckRow(rec.row_number, stored_fields(result), (), result.warnings)
        if len(report.rows) < limit:
            report.rows.append(row)
    report.scanned = scan


def _duplicate(
    report: CheckReport,
    first_rows: dict[bytes, int],
    agency: str | None,
    source_id: str,
    row: int,
) -> str | None:
    """Mirror the pipeline: a repeated id of one agency in one file is quarantined.

    The first occurrence is kept. The same id from two agencies of a multi-agency feed
    is two records (the incident id is derived from both).
    """
    key = hashlib.blake2b(f"{agency}\x00{source_id}".encode(), digest_size=8).digest()
    first = first_rows.get(key)
    if first is not None:
        return (
            f"id: duplicate source id {source_id!r}: the same id is already at row {first} "
            "of this file; the first occurrence would be kept"
        )
    if len(first_rows) < MAX_TRACKED_IDS:
        first_rows[key] = row
    else:
        report.duplicates_complete = False
    return None


def _target(o: Offence) -> str:
    """What an offence was mapped to: a NIBRS code, ``call:<category>`` or its category."""
    if o.call_category:
        return f"call:{o.call_category}"
    return o.nibrs_code or o.crime_against or "?"
