"""Source profiles: one declarative TOML file per agency feed.

A profile says how to read one agency's export and map it onto the common incident
model: file format and encoding, which columns hold what (including composite fields
such as separate date and time columns), date formats and the source time zone, the
coordinate reference system, which offence scheme (crosswalk) the codes follow, how
the source record id is built, defaults and sensitivity rules.

The format is documented field by field in ``docs/profiles.md``; the models below
are the single source of truth and are validated once, at load time, so nothing
deeper in the pipeline handles untyped configuration.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from crossbeat.model import LocationPrecision, PersonRole, TimePrecision


class ProfileError(ValueError):
    """A profile file is missing, unreadable or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Columns = Annotated[list[str], Field(min_length=1)]


class SourceSpec(_Strict):
    """How to read the file."""

    #: csv | jsonl (one JSON object per line) | json (an array of objects, or an
    #: object holding one under ``records_key``) | geojson (a FeatureCollection).
    format: Literal["csv", "jsonl", "json", "geojson"]
    #: A Python codec name, or ``auto`` to detect it (UTF-8 first, then a guess).
    encoding: str = "utf-8"
    delimiter: str = ","
    #: For ``json``: the key of the record array inside a top-level object.
    records_key: str | None = None
    #: IANA time zone that local times in the file are in.
    timezone: str = "UTC"
    #: Coordinate reference system of x/y columns or GeoJSON geometry.
    crs: str = "EPSG:4326"
    #: Strip surrounding whitespace from every value (most exports pad fixed widths).
    strip: bool = True
    #: Values that mean "no value" (compared after stripping, case-insensitively).
    null_values: list[str] = Field(default_factory=lambda: ["", "NULL", "NA", "N/A", "NONE"])

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError('delimiter must be one character (a tab is "\\t")')
        return value

    @field_validator("encoding")
    @classmethod
    def _codec_exists(cls, value: str) -> str:
        if value.lower() != "auto":
            try:
                codecs.lookup(value)
            except LookupError as exc:
                raise ValueError(
                    f"unknown encoding {value!r}: use a Python codec name such as 'utf-8', "
                    "'cp1252' or 'latin-1', or 'auto'"
                ) from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from exc
        return value


class IdSpec(_Strict):
    """How the source record id is built.

    ``columns`` are joined with ``|``. When they are all blank (police.uk leaves the
    Crime ID empty for anti-social behaviour), and ``fallback = "hash"``, the id is a
    hash of ``hash_columns`` plus the occurrence number of that hash within the file,
    so identical rows stay distinct and the id is stable across re-ingests.
    """

    columns: list[str] = Field(default_factory=list)
    fallback: Literal["error", "hash"] = "error"
    hash_columns: list[str] = Field(default_factory=list)
    #: For hash ids: also hash the file's name, for a feed split into disjoint files
    #: (Toronto's train.csv and test.csv) whose identical rows are distinct records.
    hash_file_name: bool = False
    prefix: str = ""

    @model_validator(mode="after")
    def _check(self) -> IdSpec:
        if not self.columns and self.fallback != "hash":
            raise ValueError("id needs columns, or fallback = 'hash' with hash_columns")
        if self.fallback == "hash" and not self.hash_columns:
            raise ValueError("fallback = 'hash' needs hash_columns")
        if self.hash_file_name and self.fallback != "hash":
            raise ValueError("hash_file_name applies to hash ids: set fallback = 'hash'")
        return self


#: Named date formats (besides strptime patterns); see :mod:`crossbeat.ingest.dates`.
DATE_FORMATS = ("iso", "epoch_s", "epoch_ms", "year_month", "excel")
#: A time of day as placeholder_times are written: HH:MM or HH:MM:SS, 24-hour.
_CLOCK = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d)?$")
#: Fields that ``defaults`` may fill.
DEFAULTABLE = ("status", "disposition", "location_type")


class DateSpec(_Strict):
    """A date/time field, from one column or from separate date and time columns.

    ``formats`` are tried in order: strptime patterns, or one of the named formats
    ``iso`` (ISO 8601, with or without offset), ``epoch_s``, ``epoch_ms``,
    ``year_month`` (``2020-01``), ``excel`` (serial day number). A value with its own
    UTC offset is honoured; otherwise it is local time in the source time zone.
    ``precision`` is the precision of the source; ``auto`` infers it from what the
    matched format contains (no time → day, ``year_month`` → month).
    """

    column: str | None = None
    date_column: str | None = None
    time_column: str | None = None
    formats: Columns = Field(default_factory=lambda: ["iso"])
    time_formats: list[str] = Field(default_factory=lambda: ["%H:%M:%S", "%H:%M", "%H%M"])
    precision: Literal["auto", "minute", "hour", "day", "month", "year"] = "auto"
    #: Override the profile's time zone for this field.
    timezone: str | None = None
    #: Times of day the source writes when the time is unknown (``["00:00"]``): a value
    #: at one of them is stored with day precision (the whole local day).
    placeholder_times: list[str] = Field(default_factory=list)

    @field_validator("placeholder_times")
    @classmethod
    def _clock_times(cls, value: list[str]) -> list[str]:
        for text in value:
            if not _CLOCK.match(text):
                raise ValueError(
                    f"placeholder time {text!r} is not a time of day: write it as HH:MM or "
                    'HH:MM:SS (24-hour), e.g. "00:00"'
                )
        return value

    @field_validator("formats")
    @classmethod
    def _known_formats(cls, value: list[str]) -> list[str]:
        for fmt in value:
            if "%" not in fmt and fmt not in DATE_FORMATS:
                raise ValueError(
                    f"unknown date format {fmt!r}: use a strptime pattern such as "
                    f"'%m/%d/%Y %H:%M' or one of {', '.join(DATE_FORMATS)}"
                )
        return value

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str | None) -> str | None:
        return None if value is None else SourceSpec._zone_exists(value)

    @model_validator(mode="after")
    def _one_source(self) -> DateSpec:
        if bool(self.column) == bool(self.date_column):
            raise ValueError("give either column, or date_column (with optional time_column)")
        if self.time_column and not self.date_column:
            raise ValueError("time_column needs date_column")
        return self


class LocationSpec(_Strict):
    """Where the point and address come from.

    Points come from ``x``/``y`` columns (longitude/latitude in EPSG:4326, or
    easting/northing in a projected CRS) or, for GeoJSON, from the geometry. The
    address is one column or several parts joined with spaces.
    """

    x: str | None = None
    y: str | None = None
    #: Override the source CRS for x/y.
    crs: str | None = None
    precision: LocationPrecision = LocationPrecision.EXACT
    #: A column whose value is the location precision in the source's words, with a
    #: mapping from those words to CrossBeat precisions.
    precision_column: str | None = None
    precision_values: dict[str, LocationPrecision] = Field(default_factory=dict)
    #: How coarsely the source rounded its coordinates, in metres (3 decimal places of
    #: a degree are about 111 m): a point is then never stored as more precise than that
    #: (:func:`crossbeat.ingest.points.rounding_precision`).
    precision_m: float | None = Field(default=None, gt=0)
    address: str | None = None
    address_parts: list[str] = Field(default_factory=list)
    #: Treat the address as already generalised (e.g. police.uk "On or near ...").
    address_is_public: bool = False
    location_type: str | None = None
    #: Map local location-type values to NIBRS location codes (see taxonomy).
    location_types: dict[str, str] = Field(default_factory=dict)
    #: Points exactly at (0, 0) or these values are treated as "no location".
    null_island_is_missing: bool = True

    @model_validator(mode="after")
    def _pairs(self) -> LocationSpec:
        if bool(self.x) != bool(self.y):
            raise ValueError("location needs both x and y, or neither")
        if self.address and self.address_parts:
            raise ValueError("give address or address_parts, not both")
        return self


class OffenceSpec(_Strict):
    """One offence slot of a record: the local code and its scheme (crosswalk).

    Profiles with several offence columns per row list several ``[[offences]]``;
    blank slots are skipped. ``code`` may be omitted when ``description`` carries the
    code (statute text).
    """

    scheme: str
    code: str | None = None
    description: str | None = None
    #: A fixed local code for every row (single-offence feeds such as a
    #: vehicle-theft extract).
    constant: str | None = None

    @model_validator(mode="after")
    def _some_code(self) -> OffenceSpec:
        if not (self.code or self.description or self.constant):
            raise ValueError("an offence needs code, description or constant")
        return self


class FlagRule(_Strict):
    """A sensitivity flag set from an explicit source column."""

    column: str
    #: Values (case-insensitive) that set the flag.
    values: list[str] = Field(default_factory=lambda: ["Y", "YES", "TRUE", "1", "T"])


class SensitivitySpec(_Strict):
    """Rules that mark incidents as sensitive, besides the offence codes."""

    sexual_offence: FlagRule | None = None
    domestic_violence: FlagRule | None = None
    juvenile: FlagRule | None = None
    victim_identifying: FlagRule | None = None
    informant: FlagRule | None = None
    #: Columns scanned for sensitive keywords (the taxonomy's keyword list).
    keyword_columns: list[str] = Field(default_factory=list)


class PersonSpec(_Strict):
    """Columns describing one person slot."""

    role: PersonRole
    name: str | None = None
    age: str | None = None
    sex: str | None = None


class WithdrawSpec(_Strict):
    """A column by which the source withdraws or expunges a record."""

    column: str
    withdraw_values: list[str] = Field(default_factory=list)
    expunge_values: list[str] = Field(default_factory=list)


class Profile(_Strict):
    """A validated source profile."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str = ""
    #: ``incidents``: each row is an incident (the default). ``updates``: each row
    #: changes the status and/or disposition of an incident already stored, as of
    #: the date in ``as_of`` (police.uk outcomes files, case-status exports).
    kind: Literal["incidents", "updates"] = "incidents"
    #: Agency id the feed belongs to, if the profile is specific to one agency.
    agency: str | None = None
    #: For a multi-agency feed (a regional or state repository): the column naming
    #: each row's reporting agency, and the map from its values to agency ids. A
    #: value not in the map sends the row to quarantine.
    agency_column: str | None = None
    agency_map: dict[str, str] = Field(default_factory=dict)
    #: Time zone per routed agency id, where it differs from ``source.timezone``
    #: (a national repository mixes cities in several zones).
    agency_timezones: dict[str, str] = Field(default_factory=dict)
    source: SourceSpec
    id: IdSpec
    occurred_from: DateSpec | None = None
    occurred_to: DateSpec | None = None
    reported_at: DateSpec | None = None
    #: For ``kind = "updates"``: when each row's status/disposition took effect.
    as_of: DateSpec | None = None
    location: LocationSpec = LocationSpec()
    offences: list[OffenceSpec] = Field(default_factory=list)
    status: str | None = None
    disposition: str | None = None
    narrative: str | None = None
    persons: list[PersonSpec] = Field(default_factory=list)
    sensitivity: SensitivitySpec = SensitivitySpec()
    withdraw: WithdrawSpec | None = None
    #: Values used when a column is absent or blank, by field name
    #: (``status``, ``disposition``, ``location_type``).
    defaults: dict[str, str] = Field(default_factory=dict)
    #: Extra source columns kept verbatim in the incident's ``attributes``.
    keep: list[str] = Field(default_factory=list)
    #: Directory of extra crosswalk files (relative to the profile file).
    crosswalks: str | None = None
    #: Set by :func:`load_profile`: the file's SHA-256 and directory.
    content_hash: str = ""
    base_dir: str = ""
    #: Set by :func:`parse_profile`: the lines holding an unsettled ``TODO`` comment
    #: (as ``profile draft`` writes them), each as ``"line N: text"``.
    open_todos: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _kind(self) -> Profile:
        if self.kind == "incidents":
            if not self.offences:
                raise ValueError("an incident feed needs at least one [[offences]] entry")
            if self.as_of is not None:
                raise ValueError('as_of belongs to update feeds: set kind = "updates"')
            return self
        if self.status is None and self.disposition is None:
            raise ValueError("an update feed needs status or disposition (the column it updates)")
        if self.as_of is None:
            raise ValueError(
                "an update feed needs [as_of]: the column saying when each update took effect"
            )
        if not self.id.columns or self.id.fallback == "hash":
            raise ValueError(
                "an update feed finds its incidents by id: give id.columns, without a hash "
                "fallback (a hash id names a row, not an incident)"
            )
        extra = [
            name
            for name, given in (
                ("offences", bool(self.offences)),
                ("occurred_from", self.occurred_from is not None),
                ("occurred_to", self.occurred_to is not None),
                ("reported_at", self.reported_at is not None),
                ("location", self.location != LocationSpec()),
                ("narrative", self.narrative is not None),
                ("persons", bool(self.persons)),
                ("sensitivity", self.sensitivity != SensitivitySpec()),
                ("withdraw", self.withdraw is not None),
                ("keep", bool(self.keep)),
            )
            if given
        ]
        if extra:
            raise ValueError(
                f"an update feed changes only status and disposition; remove {', '.join(extra)}"
            )
        return self

    @model_validator(mode="after")
    def _routing(self) -> Profile:
        if self.agency_column and not self.agency_map:
            raise ValueError("agency_column needs agency_map (source value -> agency id)")
        if self.agency_column and self.agency:
            raise ValueError("give agency (one agency's feed) or agency_column (many), not both")
        for agency_id, zone in self.agency_timezones.items():
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(
                    f"agency_timezones.{agency_id}: unknown time zone {zone!r}"
                ) from exc
        return self

    def for_agency(self, agency_id: str) -> Profile:
        """Return this profile with the source time zone of a routed agency."""
        zone = self.agency_timezones.get(agency_id)
        if zone is None or zone == self.source.timezone:
            return self
        return self.model_copy(update={"source": self.source.model_copy(update={"timezone": zone})})

    @field_validator("defaults")
    @classmethod
    def _defaultable(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(DEFAULTABLE))
        if unknown:
            raise ValueError(f"unknown keys {unknown}; defaults can set {', '.join(DEFAULTABLE)}")
        return value

    @property
    def default_time_precision(self) -> TimePrecision:
        """Return the declared precision of ``occurred_from`` (or unknown)."""
        if self.occurred_from is None or self.occurred_from.precision == "auto":
            return TimePrecision.UNKNOWN
        return TimePrecision(self.occurred_from.precision)

    def referenced_columns(self) -> set[str]:
        """Return every source column the profile reads."""
        cols: set[str] = set(self.id.columns) | set(self.id.hash_columns) | set(self.keep)
        for d in (self.occurred_from, self.occurred_to, self.reported_at, self.as_of):
            if d:
                cols |= {c for c in (d.column, d.date_column, d.time_column) if c}
        loc = self.location
        cols |= {
            c for c in (loc.x, loc.y, loc.address, loc.location_type, loc.precision_column) if c
        }
        cols |= set(loc.address_parts)
        for o in self.offences:
            cols |= {c for c in (o.code, o.description) if c}
        cols |= {c for c in (self.status, self.disposition, self.narrative) if c}
        for p in self.persons:
            cols |= {c for c in (p.name, p.age, p.sex) if c}
        sens = self.sensitivity
        for rule in (
            sens.sexual_offence,
            sens.domestic_violence,
            sens.juvenile,
            sens.victim_identifying,
            sens.informant,
        ):
            if rule:
                cols.add(rule.column)
        cols |= set(sens.keyword_columns)
        if self.withdraw:
            cols.add(self.withdraw.column)
        if self.agency_column:
            cols.add(self.agency_column)
        return cols


def parse_profile(text: str, *, source: str = "<string>", base_dir: str = ".") -> Profile:
    """Parse and validate profile TOML text.

    Raises
    ------
    ProfileError
        With every problem found, each naming the offending key.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML: {exc}") from exc
    data = dict(data)
    for key in _SET_BY_LOADING:
        data.pop(key, None)
    data["content_hash"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    data["base_dir"] = base_dir
    data["open_todos"] = tuple(open_todos(text))
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            problems.append(f"  - {where}: {err['msg']}{_table_hint(err)}")
        raise ProfileError(f"{source}: invalid profile:\n" + "\n".join(problems)) from exc


#: Fields set while loading, never by the file.
_SET_BY_LOADING = ("content_hash", "base_dir", "open_todos")
#: Keys a profile file sets at its top level (the others are set by :func:`load_profile`).
_TOP_LEVEL_KEYS = frozenset(Profile.model_fields) - set(_SET_BY_LOADING)
#: A ``TODO`` marker as ``profile draft`` writes it: a comment that starts with the word,
#: in capitals (``# TODO: ...``). Prose mentioning a TODO later in a comment is not one.
_TODO = re.compile(r"^#+\s*TODO\b")


def open_todos(text: str) -> list[str]:
    """Return the lines of profile TOML text with an unsettled ``TODO`` comment.

    A marker is a comment that starts with ``TODO``, as ``profile draft`` writes them
    (``# TODO: ...``, alone or after a value). Only comments count (a ``#`` outside a
    string): ``TODO`` inside a quoted value or a multi-line string is data, and a
    comment that only mentions the word later ("settle each TODO") is prose.

    Examples
    --------
    >>> open_todos('name = "x"\\ntimezone = "UTC"  # TODO: set the zone\\nnote = "# TODO"')
    ['line 2: timezone = "UTC"  # TODO: set the zone']
    >>> open_todos('# settle each TODO, then check the profile')
    []
    """
    found = []
    in_multiline: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        comment, in_multiline = _comment_of(line, in_multiline)
        if comment is not None and _TODO.search(comment):
            found.append(f"line {number}: {line.strip()}")
    return found


def require_settled(profile: Profile, source: str | None = None) -> None:
    """Refuse a profile with an unsettled ``TODO`` comment (as ``profile draft`` writes them).

    Raises
    ------
    ProfileError
        Naming every line with a ``TODO``.
    """
    if not profile.open_todos:
        return
    lines = "\n".join(f"  - {t}" for t in profile.open_todos)
    raise ProfileError(
        f"{source or 'profile ' + repr(profile.name)} has {len(profile.open_todos)} unsettled "
        f"TODO(s):\n{lines}\nSettle each one (set the value it asks for, then delete the "
        "word TODO from its comment); nothing was stored."
    )


def _comment_of(line: str, in_multiline: str | None) -> tuple[str | None, str | None]:
    """Return the comment of one TOML line (or None) and the multi-line string still open."""
    i = 0
    quote: str | None = None
    while i < len(line):
        if in_multiline:
            end = line.find(in_multiline, i)
            if end < 0:
                return None, in_multiline
            i, in_multiline = end + 3, None
            continue
        c = line[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 2
                continue
            if c == quote:
                quote = None
        elif line.startswith(('"""', "'''"), i):
            in_multiline = line[i : i + 3]
            i += 3
            continue
        elif c in "\"'":
            quote = c
        elif c == "#":
            return line[i:], None
        i += 1
    return None, in_multiline


def _table_hint(err: ErrorDetails) -> str:
    """Explain a top-level key that TOML put inside the table written before it.

    In TOML every key after a ``[table]`` header belongs to that table, so
    ``crosswalks = "..."`` written below ``[sensitivity]`` is ``sensitivity.crosswalks``.
    """
    loc = err["loc"]
    if err["type"] != "extra_forbidden" or len(loc) < 2 or loc[-1] not in _TOP_LEVEL_KEYS:
        return ""
    return (
        f" ({loc[-1]!r} is a top-level key: top-level keys must come before the first "
        "[table] in TOML)"
    )


def load_profile(path: str | Path) -> Profile:
    """Load and validate a profile file.

    Raises
    ------
    ProfileError
        If the file cannot be read or is invalid.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ProfileError(f"profile file not found: {p}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"cannot read profile {p}: {exc}") from exc
    return parse_profile(text, source=str(p), base_dir=str(p.resolve().parent))
