"""Turn raw records into incidents of the common model, or say every reason why not.

A :class:`Normaliser` is built once per (profile, agency, file) and applied to each
:class:`~crossbeat.ingest.readers.RawRecord` in order. It validates everything it
reads and collects *every* problem of a record, so the quarantine shows the whole
picture at once. The rules (documented in ``docs/profiles.md``):

* Id: the profile's id columns joined with ``|``; when they are blank and the profile
  allows, a hash of other columns plus its occurrence number within the file.
* Times: see :mod:`crossbeat.ingest.dates`; impossible, future (more than a day ahead
  of the clock) and pre-1900 dates are rejected, as is ``occurred_to`` before
  ``occurred_from``. A blank occurrence date is a warning (precision ``unknown``).
* Location: x/y (or GeoJSON geometry) transformed to WGS84; non-numeric, out of
  range, swapped and far-away (more than 100 km outside the agency's extent) points
  are rejected; blank coordinates and (0, 0) are "no location" with a warning.
* Offences: every offence slot through its crosswalk; an unmapped code is stored
  with a warning, a row without any offence is rejected.
* Sensitivity: crosswalk flags, explicit flag columns, keywords and the word lexicon in
  descriptions and the narrative, and juvenile ages.
* Withdraw and expunge rows need only their id: other problems become warnings,
  because a source's deletion must never be blocked by a bad date.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from crossbeat.clock import Clock, SystemClock
from crossbeat.geo.address import hundred_block
from crossbeat.geo.crs import CRSError, parse_crs
from crossbeat.ingest.dates import DateError, DateParser, ParsedTime, implausible
from crossbeat.ingest.json_ import render
from crossbeat.ingest.occurrences import OccurrenceCounter
from crossbeat.ingest.points import (
    PointError,
    coarsest,
    geometry_point,
    parse_coordinate,
    rounding_precision,
    validate_point,
)
from crossbeat.ingest.profile import DateSpec, Profile, ProfileError
from crossbeat.ingest.readers import RawRecord
from crossbeat.model import (
    CrimeAgainst,
    Incident,
    Location,
    LocationPrecision,
    Offence,
    Person,
    PersonalData,
    Provenance,
    RecordUpdate,
    Sensitivity,
    TimePrecision,
    sha256_hex,
)
from crossbeat.taxonomy import (
    TaxonomyError,
    keyword_sensitivity,
    load_crosswalk,
    narrative_sensitivity,
    nibrs_location_types,
)

Action = Literal["upsert", "withdraw", "expunge"]


class RecordError(ValueError):
    """A record cannot be identified; ``reasons`` says why."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__("; ".join(self.reasons))


@dataclass(frozen=True, slots=True)
class Normalised:
    """A record that becomes (or withdraws, or expunges) a stored incident."""

    incident: Incident
    action: Action
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Updated:
    """A record of an update feed: a dated change to a stored incident."""

    update: RecordUpdate
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that cannot be stored, with every reason (each names column and value).

    ``raw`` is the record's fields, plus ``_geometry`` for a GeoJSON geometry.
    """

    row_number: int
    raw: dict[str, Any]
    reasons: tuple[str, ...]

    @classmethod
    def of(cls, rec: RawRecord, reasons: Sequence[str]) -> Rejected:
        """Reject a record: its fields, plus ``_geometry`` for a GeoJSON geometry."""
        raw: dict[str, Any] = dict(rec.fields)
        if rec.geometry is not None:
            raw["_geometry"] = rec.geometry
        return cls(rec.row_number, raw, tuple(reasons))


def _absent(rec: RawRecord, column: str) -> bool:
    """Return True when a record has no field ``column`` at all (not even a blank one)."""
    return column not in rec.fields and nested_value(rec.fields, column) is None


def raw_hash(rec: RawRecord) -> str:
    """Return the SHA-256 of the canonical JSON of a record's fields (and geometry).

    Examples
    --------
    >>> a = RawRecord(1, {"b": "2", "a": "1"})
    >>> raw_hash(a) == raw_hash(RawRecord(9, {"a": "1", "b": "2"}))
    True
    """
    payload: Any = rec.fields if rec.geometry is None else [rec.fields, rec.geometry]
    return sha256_hex(_RAW_JSON.encode(payload))


#: ``json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False)``, built
#: once: this runs for every row.
_RAW_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class _Issues:
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def reject(self, where: str, text: str) -> None:
        """Add a reason; ``where`` is the field (``occurred_from``, ``location`` ...)."""
        self.reasons.append(f"{where}: {text}")

    def warn(self, text: str) -> None:
        self.warnings.append(text)


class Normaliser:
    """Normalise one file's records for one agency through a profile.

    Parameters
    ----------
    profile
        The validated source profile.
    agency_id
        The agency that owns the records.
    source_file
        Recorded in each incident's provenance.
    extent
        ``(min_lon, min_lat, max_lon, max_lat)`` of the agency's jurisdictions, used to
        detect swapped and misplaced points; ``None`` skips those checks.
    clock
        Decides what "in the future" means (default: the system clock).

    Raises
    ------
    ProfileError
        When the profile names an unknown CRS, offence scheme or NIBRS location type.
    """

    def __init__(
        self,
        profile: Profile,
        agency_id: str,
        *,
        source_file: str,
        extent: tuple[float, float, float, float] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.profile = profile
        self.agency_id = agency_id
        self.source_file = source_file
        self.extent = extent
        self.clock: Clock = clock or SystemClock()
        src, loc = profile.source, profile.location
        self._strip = src.strip
        self._nulls = {v.strip().casefold() for v in src.null_values}
        self.crs = loc.crs or src.crs
        self._dates: dict[str, DateParser] = {}
        try:
            parse_crs(self.crs)
            for name in ("occurred_from", "occurred_to", "reported_at", "as_of"):
                spec: DateSpec | None = getattr(profile, name)
                if spec is not None:
                    self._dates[name] = DateParser(spec, src.timezone)
            dirs = [Path(profile.base_dir) / profile.crosswalks] if profile.crosswalks else []
            self._crosswalks = [(o, load_crosswalk(o.scheme, dirs)) for o in profile.offences]
            # Offence codes repeat across rows: classify each distinct (code, description)
            # once (the result is immutable).
            self._classify = [lru_cache(maxsize=4096)(cw.classify) for _, cw in self._crosswalks]
        except (CRSError, TaxonomyError) as exc:
            raise ProfileError(f"profile {profile.name!r}: {exc}") from exc
        known_types = nibrs_location_types()
        bad = {k: v for k, v in loc.location_types.items() if v not in known_types}
        if bad:
            raise ProfileError(
                f"profile {profile.name!r}: location.location_types maps to unknown NIBRS "
                f"location codes {bad}; use codes such as '20' (residence) or '13' (street)"
            )
        self._types = {k.strip().casefold(): v for k, v in loc.location_types.items()}
        self._precisions = {k.strip().casefold(): v for k, v in loc.precision_values.items()}
        self._rounding = rounding_precision(loc.precision_m)
        sens = profile.sensitivity
        self._flags = [
            (flag, rule.column, {v.strip().casefold() for v in rule.values})
            for flag, rule in (
                (Sensitivity.SEXUAL_OFFENCE, sens.sexual_offence),
                (Sensitivity.DOMESTIC_VIOLENCE, sens.domestic_violence),
                (Sensitivity.JUVENILE, sens.juvenile),
                (Sensitivity.VICTIM_IDENTIFYING, sens.victim_identifying),
                (Sensitivity.INFORMANT, sens.informant),
            )
            if rule is not None
        ]
        self._seen = OccurrenceCounter()
        #: The occurrence number of the last hash id built (None: not a hash id).
        self.last_occurrence: int | None = None
        # Codes and descriptions repeat across rows: scan each distinct text once.
        self._keywords = lru_cache(maxsize=4096)(keyword_sensitivity)

    def reset(self) -> None:
        """Forget per-file state (the hash-id occurrence counts): start a new file."""
        self._seen.clear()

    # -- values ------------------------------------------------------------------------
    def value(self, rec: RawRecord, column: str | None) -> str | None:
        """Return a column's value, stripped, with null markers as ``None``.

        Dotted names (``location.latitude``) reach into nested JSON held as text.
        """
        if column is None:
            return None
        raw = rec.fields.get(column) if column in rec.fields else nested_value(rec.fields, column)
        return self.clean(raw)

    @property
    def null_markers(self) -> frozenset[str]:
        """Return the values read as missing, stripped and casefolded (:meth:`clean`)."""
        return frozenset(self._nulls)

    @property
    def strips(self) -> bool:
        """Return whether :meth:`clean` gives values stripped (the profile's ``strip``)."""
        return bool(self._strip)

    def clean(self, raw: str | None) -> str | None:
        """Return a value as read, stripped, with null markers as ``None`` (:meth:`value`)."""
        if raw is None:
            return None
        stripped = raw.strip()
        if not stripped or stripped.casefold() in self._nulls:
            return None
        return stripped if self._strip else raw

    # -- id ----------------------------------------------------------------------------
    def source_id(self, rec: RawRecord) -> str:
        """Build the record's source id as ``profile.id`` says.

        Call it once per record, in file order: for ``fallback = "hash"`` ids it counts
        occurrences of each hash within the file.

        Raises
        ------
        RecordError
            When the id columns are blank and the profile has no hash fallback.
        """
        spec = self.profile.id
        self.last_occurrence = None
        values = [self.value(rec, c) for c in spec.columns]
        if any(v is not None for v in values):
            return spec.prefix + "|".join(v or "" for v in values)
        if spec.fallback == "hash":
            parts = [self.value(rec, c) for c in spec.hash_columns]
            if spec.hash_file_name:
                parts.append(Path(self.source_file).name)
            digest = hashlib.sha256(
                json.dumps(parts, ensure_ascii=False, separators=(",", ":")).encode()
            ).digest()
            if rec.occurrence is not None:  # a quarantined row retried: counted already
                count = rec.occurrence
            else:
                count = self._seen.next(digest[:16])
            self.last_occurrence = count
            return f"{spec.prefix}h-{digest.hex()[:24]}-{count}"
        cols = ", ".join(repr(c) for c in spec.columns)
        raise RecordError([f"id: column(s) {cols} are blank, so the record has no id"])

    # -- the record ----------------------------------------------------------------------
    def normalise(self, rec: RawRecord) -> Normalised | Updated | Rejected:
        """Normalise one record (this also calls :meth:`source_id`).

        Returns
        -------
        Normalised, Updated or Rejected
            The incident and what to do with it (for an update feed: the update), or
            every reason it cannot be stored.
        """
        if self.profile.kind == "updates":
            return self._update(rec)
        issues, source_id = self._identify(rec)
        action = self._action(rec)
        times = self._times(rec, issues)
        location = self._location(rec, issues)
        offences, flags = self._offences(rec, issues, required=action == "upsert")
        persons = self._persons(rec, issues)
        narrative = self.value(rec, self.profile.narrative)
        flags |= self._sensitivity(rec, offences, narrative, persons)
        # Withdrawals and expungements need only the id (a bad date must not block a
        # deletion), but never act on a record that could not even be read properly.
        if source_id is None or rec.problems or (issues.reasons and action == "upsert"):
            return Rejected.of(rec, issues.reasons)
        defaults = self.profile.defaults
        occurred_from, occurred_to, precision, reported_at = times
        incident = Incident(
            agency_id=self.agency_id,
            source_id=source_id,
            offences=tuple(offences),
            occurred_from=occurred_from,
            occurred_to=occurred_to,
            time_precision=precision,
            location=location,
            reported_at=reported_at,
            status=self.value(rec, self.profile.status) or defaults.get("status"),
            disposition=self.value(rec, self.profile.disposition) or defaults.get("disposition"),
            sensitivity=frozenset(flags),
            personal=PersonalData(
                full_address=self._address(rec), narrative=narrative, persons=tuple(persons)
            ),
            attributes={c: self.value(rec, c) for c in self.profile.keep},
            provenance=Provenance(self.source_file, rec.row_number, raw_hash(rec)),
            withdrawn=action == "withdraw",
        )
        warnings = [*issues.reasons, *issues.warnings]
        return Normalised(incident, action, tuple(warnings))

    def _identify(self, rec: RawRecord) -> tuple[_Issues, str | None]:
        """Start a record's issues with its read problems, and build its source id."""
        issues = _Issues()
        for problem in rec.problems:
            issues.reject("read", problem)
        try:
            return issues, self.source_id(rec)
        except RecordError as exc:
            for reason in exc.reasons:
                issues.reject("id", reason.removeprefix("id: "))
            return issues, None

    def _update(self, rec: RawRecord) -> Updated | Rejected:
        """Normalise one row of an update feed: id, date and the new values."""
        issues, source_id = self._identify(rec)
        as_of = self._time(rec, "as_of", issues, self.clock.now())
        if as_of is None and not any(r.startswith("as_of") for r in issues.reasons):
            issues.reject("as_of", f"{self._columns('as_of')} is blank: an update needs its date")
        defaults = self.profile.defaults
        status = self.value(rec, self.profile.status) or defaults.get("status")
        disposition = self.value(rec, self.profile.disposition) or defaults.get("disposition")
        if status is None and disposition is None:
            cols = " and ".join(
                repr(c) for c in (self.profile.status, self.profile.disposition) if c
            )
            issues.reject("update", f"{cols} blank: nothing to update")
        if issues.reasons or source_id is None or as_of is None:
            return Rejected.of(rec, issues.reasons)
        update = RecordUpdate(
            agency_id=self.agency_id,
            source_id=source_id,
            as_of=as_of.start,
            time_precision=as_of.precision,
            status=status,
            disposition=disposition,
            provenance=Provenance(self.source_file, rec.row_number, raw_hash(rec)),
        )
        return Updated(update, tuple(issues.warnings))

    def _action(self, rec: RawRecord) -> Action:
        spec = self.profile.withdraw
        if spec is None:
            return "upsert"
        value = (self.value(rec, spec.column) or "").casefold()
        if value and value in {v.strip().casefold() for v in spec.expunge_values}:
            return "expunge"
        if value and value in {v.strip().casefold() for v in spec.withdraw_values}:
            return "withdraw"
        return "upsert"

    # -- times -------------------------------------------------------------------------
    def _times(
        self, rec: RawRecord, issues: _Issues
    ) -> tuple[datetime | None, datetime | None, TimePrecision, datetime | None]:
        now = self.clock.now()
        start = self._time(rec, "occurred_from", issues, now)
        end = self._time(rec, "occurred_to", issues, now)
        reported = self._time(rec, "reported_at", issues, now)
        if (
            start is None
            and "occurred_from" in self._dates
            and not any(r.startswith("occurred_from") for r in issues.reasons)
        ):
            issues.warn(f"occurred_from: no date ({self._columns('occurred_from')} blank)")
        if start is not None and end is not None and end.end < start.start:
            issues.reject(
                "occurred_to",
                f"{end.end:%Y-%m-%d %H:%M} UTC ({self._columns('occurred_to')}) is before "
                f"occurred_from {start.start:%Y-%m-%d %H:%M} UTC "
                f"({self._columns('occurred_from')})",
            )
        if start is not None and reported is not None and reported.end < start.start:
            issues.warn("reported_at: the report is dated before the occurrence")
        occurred_to = end.end if end is not None else None
        if occurred_to is None and start is not None and start.precision != TimePrecision.MINUTE:
            occurred_to = start.end
        return (
            start.start if start else None,
            occurred_to,
            start.precision if start else TimePrecision.UNKNOWN,
            reported.start if reported else None,
        )

    def _columns(self, name: str) -> str:
        spec: DateSpec = getattr(self.profile, name)
        cols = [c for c in (spec.column, spec.date_column, spec.time_column) if c]
        return "column " + " + ".join(repr(c) for c in cols)

    def _time(self, rec: RawRecord, name: str, issues: _Issues, now: datetime) -> ParsedTime | None:
        parser = self._dates.get(name)
        if parser is None:
            return None
        spec = parser.spec
        text = self.value(rec, spec.column or spec.date_column)
        clock = self.value(rec, spec.time_column)
        if text is None:
            if clock is not None:
                issues.warn(f"{name}: {self._columns(name)}: a time ({clock!r}) without a date")
            return None
        try:
            parsed = parser.parse(text, clock)
        except DateError as exc:
            issues.reject(name, f"{self._columns(name)}: {exc}")
            return None
        issues.warnings.extend(f"{name}: {note}" for note in parsed.notes)
        why = implausible(parsed, now)
        if why:
            shown = text if clock is None else f"{text} {clock}"
            issues.reject(name, f"{self._columns(name)}: {shown!r} {why}")
            return None
        return parsed

    # -- location ------------------------------------------------------------------------
    def _address(self, rec: RawRecord) -> str | None:
        loc = self.profile.location
        if loc.address:
            return self.value(rec, loc.address)
        parts = [self.value(rec, c) for c in loc.address_parts]
        joined = " ".join(p for p in parts if p)
        return joined or None

    def _location(self, rec: RawRecord, issues: _Issues) -> Location:
        loc = self.profile.location
        local_type = self.value(rec, loc.location_type) or self.profile.defaults.get(
            "location_type"
        )
        nibrs_type = self._types.get(local_type.casefold()) if local_type else None
        if local_type and nibrs_type is None and self._types:
            issues.warn(f"location: type {local_type!r} is not in location.location_types")
        address = self._address(rec)
        block = address if loc.address_is_public else hundred_block(address)
        point = self._point(rec, issues)
        if point is None:
            return Location(None, None, LocationPrecision.NONE, block, nibrs_type, local_type)
        lon, lat, precision = point
        return Location(lat, lon, precision, block, nibrs_type, local_type)

    def _precision(self, rec: RawRecord, issues: _Issues) -> LocationPrecision:
        """Return the declared (or per-row) precision, never finer than the source's rounding."""
        loc = self.profile.location
        value = self.value(rec, loc.precision_column)
        if value is None:
            return coarsest(loc.precision, self._rounding)
        mapped = self._precisions.get(value.casefold())
        if mapped is None:
            issues.warn(
                f"location: precision {value!r} (column {loc.precision_column!r}) is not in "
                f"location.precision_values; used {loc.precision.value!r}"
            )
            return coarsest(loc.precision, self._rounding)
        return coarsest(mapped, self._rounding)

    def _point(
        self, rec: RawRecord, issues: _Issues
    ) -> tuple[float, float, LocationPrecision] | None:
        loc = self.profile.location
        precision = self._precision(rec, issues)
        try:
            if loc.x and loc.y:
                xs, ys = self.value(rec, loc.x), self.value(rec, loc.y)
                if xs is None and ys is None:
                    absent = [c for c in (loc.x, loc.y) if _absent(rec, c)]
                    what = (
                        f"{' and '.join(repr(c) for c in absent)} not in this record"
                        if absent
                        else "blank"
                    )
                    issues.warn(f"location: no coordinates (columns {loc.x!r}, {loc.y!r}: {what})")
                    return None
                if xs is None or ys is None:
                    blank, other, given = (loc.x, loc.y, ys) if xs is None else (loc.y, loc.x, xs)
                    state = "is not in this record" if _absent(rec, blank) else "is blank"
                    raise PointError(
                        f"column {blank!r} {state}, but column {other!r} holds {given!r}"
                    )
                label = f"columns {loc.x!r}, {loc.y!r}"
                errors = []
                for text, column in ((xs, loc.x), (ys, loc.y)):
                    try:
                        parse_coordinate(text, column)
                    except PointError as exc:
                        errors.append(str(exc))
                if errors:
                    raise PointError("; ".join(errors))
                x, y = float(xs), float(ys)
                from_geometry = False
            elif rec.geometry is not None:
                found = geometry_point(rec.geometry)
                if found is None:
                    issues.warn("location: no coordinates (empty geometry)")
                    return None
                x, y, kind = found
                precision = coarsest(precision, kind)
                label = f"the GeoJSON {rec.geometry.get('type')}"
                from_geometry = True
            else:
                if self.profile.source.format == "geojson":
                    issues.warn("location: no coordinates (the feature has no geometry)")
                return None
            if x == 0 and y == 0 and loc.null_island_is_missing:
                issues.warn(f"location: point (0, 0) in {label} treated as missing")
                return None
            lon, lat = validate_point(
                x, y, self.crs, self.extent, label, from_geometry=from_geometry
            )
        except PointError as exc:
            issues.reject("location", str(exc))
            return None
        return lon, lat, precision

    # -- offences, persons, sensitivity --------------------------------------------------
    def crosswalk_labels(self, rec: RawRecord) -> tuple[str, ...]:
        """Return ``scheme@version`` of the crosswalks classifying the record's offences.

        For the audit event of a chunk whose rows were skipped as unchanged
        (:mod:`crossbeat.ingest.unchanged`): the same labels normalising would give.
        """
        labels = []
        for (spec, _), classify in zip(self._crosswalks, self._classify, strict=True):
            code = self.value(rec, spec.code) or spec.constant
            description = self.value(rec, spec.description)
            if code is None and description is None:
                continue
            offence, _implied = classify(code, description)
            if offence.scheme and offence.crosswalk_version:
                labels.append(f"{offence.scheme}@{offence.crosswalk_version}")
        return tuple(labels)

    def _offences(
        self, rec: RawRecord, issues: _Issues, *, required: bool
    ) -> tuple[list[Offence], set[Sensitivity]]:
        offences: list[Offence] = []
        flags: set[Sensitivity] = set()
        for (spec, crosswalk), classify in zip(self._crosswalks, self._classify, strict=True):
            code = self.value(rec, spec.code) or spec.constant
            description = self.value(rec, spec.description)
            if code is None and description is None:
                continue
            offence, implied = classify(code, description)
            if not offence.mapped:
                issues.warn(
                    f"offence: code {offence.local_code!r} is not in crosswalk "
                    f"{crosswalk.scheme!r} (version {crosswalk.version}): stored unmapped"
                )
            offences.append(offence)
            flags |= implied
        if not offences and required:
            cols = sorted({c for s, _ in self._crosswalks for c in (s.code, s.description) if c})
            issues.reject(
                "offence",
                f"no offence code: column(s) {', '.join(repr(c) for c in cols)} are blank",
            )
        return offences, flags

    def _persons(self, rec: RawRecord, issues: _Issues) -> list[Person]:
        persons: list[Person] = []
        for spec in self.profile.persons:
            name = self.value(rec, spec.name)
            age_text = self.value(rec, spec.age)
            sex = self.value(rec, spec.sex)
            if name is None and age_text is None and sex is None:
                continue
            age = _age(age_text)
            extra: dict[str, Any] = {}
            if age_text is not None and age is None:
                issues.warn(f"person: {spec.role.value} age {age_text!r} is not an age in years")
                extra["age_text"] = age_text
            persons.append(Person(spec.role, name, age, sex, extra))
        return persons

    def _sensitivity(
        self,
        rec: RawRecord,
        offences: list[Offence],
        narrative: str | None,
        persons: list[Person],
    ) -> frozenset[Sensitivity]:
        return self.flags_of(
            tuple(self.value(rec, column) for _, column, _ in self._flags),
            tuple(self.value(rec, c) for c in self.profile.sensitivity.keyword_columns)
            + tuple(o.local_description for o in offences),
            any(o.crime_against == CrimeAgainst.PERSON for o in offences),
            narrative,
            any(p.age is not None and p.age < 18 for p in persons),
        )

    def flags_of(
        self,
        flag_values: tuple[str | None, ...],
        texts: tuple[str | None, ...],
        person: bool,
        narrative: str | None,
        juvenile: bool,
    ) -> frozenset[Sensitivity]:
        """Return the sensitivity flags of a record from the values that decide them.

        Parameters
        ----------
        flag_values
            The values of the profile's flag columns, in the order of its rules.
        texts
            The keyword columns' values, then the offences' local descriptions.
        person
            Whether an offence is against a person: then any family or intimate
            relationship named in the free text marks possible DV (the safer default,
            docs/taxonomy.md).
        narrative
            The narrative, read with the word lexicon.
        juvenile
            Whether a person's age is under 18.
        """
        flags: set[Sensitivity] = set()
        for (flag, _, values), value in zip(self._flags, flag_values, strict=True):
            if value is not None and value.casefold() in values:
                flags.add(flag)
        for text in {t for t in texts if t}:
            flags |= self._keywords(text, person_crime=person)
        flags |= narrative_sensitivity(narrative, person_crime=person)
        if juvenile:
            flags.add(Sensitivity.JUVENILE)
        return frozenset(flags)


def nested_value(fields: dict[str, str | None], column: str) -> str | None:
    """Return ``a.b.c`` from nested JSON text in ``fields['a']`` (``None`` if absent)."""
    parts = column.split(".")
    for i in range(1, len(parts)):
        head = ".".join(parts[:i])
        text = fields.get(head)
        if text is None:
            continue
        try:
            value: Any = json.loads(text)
        except ValueError:
            return None
        for key in parts[i:]:
            if isinstance(value, dict) and key in value:
                value = value[key]
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                return None
        return render(value)
    return None


def _age(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0 or number > 130:
        return None
    return int(number)
