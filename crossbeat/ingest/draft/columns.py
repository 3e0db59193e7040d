"""Guess what the columns of an unknown export hold, from a sample of its records.

Used by :mod:`crossbeat.ingest.draft`. Each guesser looks at column names *and*
values (a latitude column must hold latitudes, an id column unique values) and returns
its choice with the reason, which the draft writes as a comment. Nothing here reads
files: :class:`Sample` holds the sampled values, named exactly as the pipeline sees
them (GeoJSON properties by plain name, nested JSON as dotted names).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

from crossbeat.ingest.draft.dates import words

#: Values (after stripping, case-insensitively) that mean "no value", as the pipeline's default.
NULLS = frozenset({"", "null", "na", "n/a", "none"})
#: Distinct values above which a column is not a category (offence, status, premise ...).
MAX_CATEGORIES = 1500

_STRONG_ID = re.compile(
    r"^(id|uid|guid|uuid|objectid|fid|ccn|dr_no|dr_number)$"
    r"|(^|_)(incident|case|event|crime|report|record|offen[cs]e|occurrence|complaint|cmplnt|"
    r"cad|rms|file|evt|inc|rpt|call)_?(unique_)?(id|no|num|nbr|number|key|uid)$"
)
_WEAK_ID = re.compile(r"(^|_)(id|key|uid)$")
_NOT_ID = {
    "agency",
    "officer",
    "beat",
    "district",
    "zone",
    "premise",
    "premises",
    "location",
    "person",
    "victim",
    "suspect",
    "block",
    "tract",
    "lsoa",
    "ward",
    "type",
    "code",
    "category",
    "unit",
    "user",
    "state",
    "county",
    "city",
    "ori",
    "neighbourhood",
    "neighborhood",
    "pub",
    "park",
    "ps",
}
PERSON_WORDS = {
    "victim": "victim",
    "vic": "victim",
    "complainant": "victim",
    "suspect": "suspect",
    "susp": "suspect",
    "offender": "suspect",
    "arrestee": "suspect",
    "witness": "witness",
    "informant": "informant",
    "rp": "other",
    "caller": "other",
    "reporting": "other",
    "owner": "other",
    "driver": "other",
    "person": "other",
}
_NAME_PARTS = {"name", "first", "last", "full", "given", "middle", "surname", "firstname"}
_PERSONAL_WORDS = {"dob", "birth", "phone", "ssn", "email", "surname", "firstname", "lastname"}
_NARRATIVE_WORDS = ("narrative", "synopsis", "summary", "remarks", "notes", "comments", "details")
_FLAG_VALUES = {"y", "n", "yes", "no", "true", "false", "t", "f", "1", "0"}
_FLAGS = (
    ("domestic_violence", ("dv", "domestic", "family")),
    ("juvenile", ("juv", "juvenile", "minor")),
    ("informant", ("ci", "informant", "confidential")),
    ("sexual_offence", ("sexual", "sex_offence", "sex_offense")),
    ("victim_identifying", ("identifying",)),
)


class DraftError(ValueError):
    """The file cannot be drafted from (missing, empty, binary ...); the message says why."""


@dataclass
class Column:
    """The sampled values of one column: non-blank values (stripped) and the blank count."""

    name: str
    values: list[str]
    blank: int

    @property
    def rows(self) -> int:
        """Return how many sampled rows the column was read in."""
        return len(self.values) + self.blank

    @cached_property
    def counts(self) -> Counter[str]:
        """Return how often each value occurs."""
        return Counter(self.values)

    @cached_property
    def numbers(self) -> list[float] | None:
        """Return the values as numbers when (almost) all are numeric, else None."""
        found: list[float] = []
        for value in self.values:
            try:
                number = float(value)
            except ValueError:
                continue
            if math.isfinite(number):
                found.append(number)
        if not found or len(found) < 0.95 * len(self.values):
            return None
        return found

    @cached_property
    def mean_length(self) -> float:
        """Return the mean length of the values."""
        return sum(map(len, self.values)) / len(self.values) if self.values else 0.0

    @property
    def categorical(self) -> bool:
        """Whether the column looks like a category: text with repeating values."""
        return (
            bool(self.values)
            and self.numbers is None
            and len(self.counts) <= MAX_CATEGORIES
            and len(self.counts) < max(2, 0.5 * len(self.values))
        )


@dataclass
class Sample:
    """The first records of an export: every column's values, and GeoJSON geometries."""

    columns: dict[str, Column]
    rows: list[dict[str, str]]
    geometries: list[dict] = field(default_factory=list)
    #: Sampled records with read problems (left out of the sample).
    read_problems: int = 0

    @property
    def names(self) -> list[str]:
        """Return the column names in file order."""
        return list(self.columns)


def snake(name: str) -> str:
    """Return a column name lower-cased with runs of other characters as ``_``.

    Examples
    --------
    >>> snake("Crime ID"), snake("OCC_DATE"), snake("@id")
    ('crime_id', 'occ_date', 'id')
    """
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


# -- ids -----------------------------------------------------------------------------
@dataclass
class IdGuess:
    """The id columns (possibly none), the fallback and why."""

    columns: list[str]
    fallback: str | None
    comment: str


def id_name_strength(name: str) -> int:
    """Return 2 for a clear id name (``incident_id``), 1 for a possible one, 0 otherwise."""
    low = snake(name)
    if set(low.split("_")) & _NOT_ID and not _STRONG_ID.search(low):
        return 0
    if _STRONG_ID.search(low):
        return 2
    return 1 if _WEAK_ID.search(low) else 0


def guess_id(sample: Sample, *, taken: set[str]) -> IdGuess:
    """Return the id column: a named one with unique values, else any identifier-like one.

    A named column blank on some rows is kept with a hash fallback for those rows (as
    police.uk leaves the Crime ID of anti-social behaviour blank).
    """
    named = sorted(
        (c for c in sample.columns.values() if id_name_strength(c.name) and c.name not in taken),
        key=lambda c: -id_name_strength(c.name),
    )
    for col in named:
        if not col.values or len(col.counts) < 0.95 * len(col.values):
            continue
        why = f"guess: {col.name!r} is named like an id"
        few = col.blank < 0.01 * col.rows
        repeats = len(col.values) - len(col.counts)
        if repeats:
            why += (
                f"; {repeats} of its {len(col.values)} sampled values repeat: a repeated id "
                "is quarantined as a duplicate (the first row is kept)"
            )
        if col.blank and few:
            why += (
                f"; blank in {col.blank} of {col.rows} sampled rows, which are quarantined "
                '(fallback = "hash" would store them with a hash id)'
            )
        elif col.blank:
            why += f"; blank in {col.blank} of {col.rows} sampled rows, which get a hash id"
            return IdGuess([col.name], "hash", why)
        return IdGuess([col.name], None, why if col.blank or repeats else why + ", values unique")
    for col in sample.columns.values():
        if col.name not in taken and _identifier_like(col):
            why = (
                f"guess: {col.name!r} is the only column whose {col.rows} sampled values are all "
                "present, unique and code-like; its name does not say it is an id"
            )
            return IdGuess([col.name], None, why)
    blank = next((c for c in named if not c.values and id_name_strength(c.name) == 2), None)
    if blank is not None:
        why = (
            f"guess: {blank.name!r} is named like an id but blank in every sampled row: rows "
            "without it get a hash id"
        )
        return IdGuess([blank.name], "hash", why)
    return IdGuess([], "hash", "guess: no column holds a unique id, so each row gets a hash id")


def _identifier_like(col: Column) -> bool:
    if col.blank or col.rows < 20 or len(col.counts) != len(col.values):
        return False
    if col.numbers is not None and col.mean_length < 4:
        return False  # small numbers: counts, ages, row numbers
    return all(len(v) <= 64 and " " not in v and "." not in v for v in col.values)


def hash_columns(sample: Sample, *, leave_out: set[str]) -> list[str]:
    """Return the columns a hash id is built from: all but personal, changing, blank ones."""
    return [
        c.name
        for c in sample.columns.values()
        if c.values and c.name not in leave_out and not c.name.startswith("_")
    ]


# -- coordinates ---------------------------------------------------------------------
@dataclass
class PointGuess:
    """Where points come from. ``crs`` None: projected values the draft cannot place."""

    x: str | None
    y: str | None
    crs: str | None
    comment: str
    hint: str = ""


def _is_lat(name: str) -> bool:
    return (
        bool({"lat", "latitude", "lati", "ylat"} & set(words(name))) or "latitude" in name.lower()
    )


def _is_lon(name: str) -> bool:
    found = {"lon", "long", "lng", "longitude", "longi", "xlong"} & set(words(name))
    return bool(found) or "longitude" in name.lower()


def _is_axis(name: str, axis: str) -> bool:
    low = words(name)
    other = {"x": "easting", "y": "northing"}[axis]
    return bool(low) and (
        low[0] in (axis, f"{axis}coord", f"{axis}coordinate")
        or low[-1] in (axis, f"{axis}coord")
        or other in low
        or (len(low) > 1 and low[-2] == axis and low[-1] in ("coord", "coordinate"))
    )


def _span(col: Column) -> tuple[float, float]:
    """Return the 2nd and 98th percentile of a column's non-zero numbers (robust to a few
    swapped or mistyped values)."""
    numbers = sorted(n for n in col.numbers or [] if n != 0)
    if not numbers:
        return 0.0, 0.0
    cut = len(numbers) // 50
    return numbers[cut], numbers[-1 - cut]


def guess_point(sample: Sample, *, timezone: str | None) -> PointGuess | None:
    """Return the x/y columns and CRS, or None when the records have no coordinates."""
    numeric = [c for c in sample.columns.values() if c.numbers is not None]
    lats = [c for c in numeric if _is_lat(c.name)]
    lons = [c for c in numeric if _is_lon(c.name)]
    if lats and lons:
        lat, lon = lats[0], lons[0]
        (y0, y1), (x0, x1) = _span(lat), _span(lon)
        if -90 <= y0 and y1 <= 90 and -180 <= x0 and x1 <= 180:
            why = f"{lon.name!r}/{lat.name!r} are named and ranged like longitude/latitude"
            return PointGuess(lon.name, lat.name, "EPSG:4326", "guess: " + why)
        if -90 <= x0 and x1 <= 90 and -180 <= y0 and y1 <= 180:
            why = f"the column named {lat.name!r} holds longitudes and {lon.name!r} latitudes"
            return PointGuess(lat.name, lon.name, "EPSG:4326", "guess: " + why)
    xs = [c for c in numeric if _is_axis(c.name, "x")]
    ys = [c for c in numeric if _is_axis(c.name, "y")]
    if xs and ys:
        return _xy(xs[0], ys[0], timezone)
    return None


def _xy(x: Column, y: Column, timezone: str | None) -> PointGuess:
    (x0, x1), (y0, y1) = _span(x), _span(y)
    if -180 <= x0 and x1 <= 180 and -90 <= y0 and y1 <= 90:
        why = f"guess: {x.name!r}/{y.name!r} values are in longitude/latitude ranges"
        return PointGuess(x.name, y.name, "EPSG:4326", why)
    return projected(x.name, y.name, (x0, x1), (y0, y1), timezone)


def projected(
    x: str | None,
    y: str | None,
    xs: tuple[float, float],
    ys: tuple[float, float],
    timezone: str | None,
) -> PointGuess:
    """Return the guess for projected coordinates: decided only for British National Grid."""
    where = f"x {xs[0]:,.0f} to {xs[1]:,.0f}, y {ys[0]:,.0f} to {ys[1]:,.0f}"
    bng = 0 <= xs[0] and xs[1] <= 700_000 and 0 <= ys[0] and ys[1] <= 1_300_000
    if bng and timezone == "Europe/London":
        why = (
            f"guess: projected values ({where}) fit the British National Grid and the time "
            "zone is Europe/London"
        )
        return PointGuess(x, y, "EPSG:27700", why)
    hints = []
    if bng:
        hints.append("British National Grid, metres (EPSG:27700) if the agency is in Great Britain")
    if 160_000 <= xs[0] and xs[1] <= 840_000 and 0 <= ys[0] and ys[1] <= 9_400_000:
        hints.append("UTM, metres (EPSG:326NN for zone NN north, e.g. EPSG:32610)")
    if 100_000 <= xs[0] and xs[1] <= 10_000_000 and 0 <= ys[0] and ys[1] <= 4_000_000:
        hints.append(
            "US State Plane, in feet (US survey feet: e.g. EPSG:2227 California zone 3, "
            "EPSG:2263 New York Long Island, EPSG:3435 Illinois East; international feet: "
            "e.g. EPSG:2913 Oregon North; check which foot the agency's GIS team uses)"
        )
    hint = "; ".join(hints) or "a projected CRS in the agency's local grid"
    todo = (
        f"TODO: the coordinates are projected ({where}), not longitude/latitude, and their "
        f"CRS cannot be told from the values. They look like: {hint}. Set crs to the "
        "agency's CRS (ask its GIS team) and uncomment x and y; until then rows are stored "
        "without a location."
    )
    return PointGuess(x, y, None, todo, hint)


# -- other columns -------------------------------------------------------------------
def is_personal(name: str, narrative: str | None = None) -> bool:
    """Return True for a column holding personal data (names, birth dates, narrative)."""
    if name == narrative:
        return True
    found = set(words(name)) | set(snake(name).split("_"))
    if found & _PERSONAL_WORDS:
        return True
    if found & set(PERSON_WORDS) and found & {"age", "sex", "gender", "race", "ethnicity"}:
        return True
    if "name" not in found:
        return False
    return found - _NAME_PARTS <= set(PERSON_WORDS)


def guess_address(sample: Sample, *, taken: set[str]) -> tuple[str, bool, str] | None:
    """Return (column, already generalised?, why) for the address column."""
    ranked = []
    for col in sample.columns.values():
        low = snake(col.name)
        if col.name in taken or not col.values or col.numbers is not None:
            continue
        parts = set(low.split("_"))
        if parts & {"type", "category", "id", "code", "desc", "description", "precision"}:
            continue
        score = 2 if "address" in low or "addr" in parts else 0
        score = score or (1 if parts & {"location", "street", "block", "place"} else 0)
        wordy = sum(any(ch.isalpha() for ch in v) and " " in v for v in col.values)
        if score and wordy >= 0.5 * len(col.values):
            ranked.append((score, col))
    if not ranked:
        return None
    col = max(ranked, key=lambda item: item[0])[1]
    near = sum(v.lower().startswith("on or near") for v in col.values)
    if near >= 0.5 * len(col.values):
        return col.name, True, "police.uk style 'On or near ...': already generalised"
    if _hundred_blocks(col.values):
        return (
            col.name,
            True,
            "hundred-block addresses ('050XX W ...', '600 W 74TH ST'): already generalised",
        )
    return col.name, False, f"guess: {col.name!r} holds street addresses (personal data)"


def _hundred_blocks(values: list[str]) -> bool:
    """Whether (nearly) every numbered address is a hundred block: 050XX, 1200 BLOCK, 600."""
    block = sum(bool(re.search(r"\d+XX\b|\bBLOCK\b", v, re.I)) for v in values)
    numbers = [m.group(1) for v in values if (m := re.match(r"^(\d+)\s", v))]
    rounded = sum(n.endswith("00") for n in numbers)
    numbered = block + len(numbers)
    return numbered >= 10 and block + rounded >= 0.9 * numbered


def guess_named(sample: Sample, keys: tuple[str, ...], *, taken: set[str]) -> str | None:
    """Return the first categorical column whose name holds one of ``keys`` (by key order)."""
    for key in keys:
        for col in sample.columns.values():
            if col.name not in taken and key in snake(col.name) and col.categorical:
                return col.name
    return None


def guess_narrative(sample: Sample, *, taken: set[str]) -> str | None:
    """Return a free-text column: named like a narrative, or long, varied text."""
    for col in sample.columns.values():
        if col.name in taken or not col.values or col.numbers is not None:
            continue
        named = any(w in snake(col.name) for w in _NARRATIVE_WORDS)
        spaced = sum(v.count(" ") >= 3 for v in col.values) >= 0.5 * len(col.values)
        long_text = col.mean_length >= 60 and len(col.counts) >= 0.5 * len(col.values)
        if spaced and (named or long_text):
            return col.name
    return None


def guess_persons(sample: Sample, *, taken: set[str]) -> dict[str, dict[str, str]]:
    """Return person slots by role: ``{"victim": {"name": ..., "age": ...}}``."""
    slots: dict[str, dict[str, str]] = {}
    for col in sample.columns.values():
        if col.name in taken:
            continue
        found = set(words(col.name)) | set(snake(col.name).split("_"))
        roles = [PERSON_WORDS[w] for w in found if w in PERSON_WORDS]
        field_ = next(
            (
                f
                for f, keys in (("name", {"name"}), ("age", {"age"}), ("sex", {"sex", "gender"}))
                if found & keys
            ),
            None,
        )
        if roles and field_:
            slots.setdefault(sorted(roles)[0], {}).setdefault(field_, col.name)
    return slots


def guess_flags(sample: Sample, *, taken: set[str]) -> dict[str, str]:
    """Return sensitivity flag columns: yes/no columns named for the flag."""
    flags: dict[str, str] = {}
    for col in sample.columns.values():
        if col.name in taken or not col.values:
            continue
        if not {v.casefold() for v in col.counts} <= _FLAG_VALUES:
            continue
        found = set(words(col.name)) | set(snake(col.name).split("_"))
        for flag, keys in _FLAGS:
            if flag not in flags and (
                found & set(keys) or any("_" in k and k in snake(col.name) for k in keys)
            ):
                flags[flag] = col.name
                break
    return flags


def agency_hint(sample: Sample) -> str | None:
    """Return a note when a column seems to name several agencies (a multi-agency feed)."""
    keys = {"agency", "ori", "department", "dept", "force", "city", "jurisdiction"}
    for col in sample.columns.values():
        parts = set(snake(col.name).split("_"))
        if parts & keys and col.categorical and 2 <= len(col.counts) <= 60:
            values = ", ".join(sorted(col.counts)[:5])
            return (
                f"TODO: {col.name!r} has {len(col.counts)} values ({values} ...): if they are "
                "different agencies, route the rows with agency_column and agency_map (see "
                "docs/profiles.md) instead of agency"
            )
    return None
