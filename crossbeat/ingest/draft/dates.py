"""Guess which columns of an unknown export hold dates and times, in which format.

Every candidate format is tried with the pipeline's own parser
(:class:`crossbeat.ingest.dates.DateParser`) on the distinct values of a sample, so a
format the draft writes is one the ingest reads. Day-first and month-first dates are
told apart by values above 12; a column whose values all fit both is flagged. Offsets
written in the values (``-07:00``) narrow the source time zone down to the zones that
had those offsets at those instants.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from crossbeat.ingest.dates import DateError, DateParser, implausible
from crossbeat.ingest.profile import DateSpec
from crossbeat.model import TimePrecision

#: strptime patterns tried after the named formats, most specific first.
PATTERNS: tuple[str, ...] = (
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y",
    "%m/%d/%y %H:%M:%S",
    "%m/%d/%y %H:%M",
    "%m/%d/%y %I:%M %p",
    "%m/%d/%y",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%d/%m/%y %H:%M",
    "%d/%m/%y",
    "%Y/%m/%d %H:%M:%S%z",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%m-%d-%Y %H:%M",
    "%m-%d-%Y",
    "%d-%m-%Y %H:%M",
    "%d-%m-%Y",
    "%d-%b-%Y %H:%M",
    "%d-%b-%Y",
    "%d-%b-%y",
    "%d %b %Y",
    "%b %d %Y %I:%M:%S %p",
)
#: Formats for values that are only digits (tried only on columns named like dates).
DIGIT_FORMATS: tuple[str, ...] = ("epoch_ms", "epoch_s", "%Y%m%d%H%M%S", "%Y%m%d%H%M", "%Y%m%d")
#: Formats of separate time-of-day columns.
TIME_FORMATS: tuple[str, ...] = ("%H:%M:%S", "%H:%M", "%H%M", "%I:%M:%S %p", "%I:%M %p")
#: Epoch values before this are not taken as dates (an id such as 2872478 is 1970).
EPOCH_EARLIEST = datetime(1980, 1, 1, tzinfo=UTC)
#: Share of a column's distinct values a format (or up to three) must read.
MIN_COVERAGE = 0.9
#: Zones preferred, in this order, among those consistent with the offsets in the data.
PREFERRED_ZONES: tuple[str, ...] = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Toronto",
    "America/Vancouver",
    "America/Halifax",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Helsinki",
    "Australia/Sydney",
    "Australia/Brisbane",
    "Australia/Adelaide",
    "Australia/Perth",
    "Pacific/Auckland",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "America/Mexico_City",
    "Africa/Johannesburg",
    "UTC",
)
_DAY_MONTH = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}")
_DIGITS = re.compile(r"^\d+(\.\d+)?$")
_OFFSET = re.compile(r"(Z|[+-]\d\d(:?\d\d)?)$")
SKIP_DATES = (
    "update",
    "modif",
    "created",
    "entered",
    "closed",
    "cleared",
    "dispatch",
    "arriv",
    "export",
    "load",
    "birth",
    "dob",
    "expir",
)
_DATE_WORDS = ("date", "time", "month", "year", "occur", "report", "stamp", "epoch", "when")
_DATE_TOKENS = {"ts", "dt", "ms", "at", "from", "to", "start", "end", "begin", "until"}


@dataclass
class DateGuess:
    """How one column (or a date and a time column) holds dates."""

    column: str
    formats: list[str]
    #: How many of the distinct sampled values the formats read, of how many.
    read: int
    distinct: int
    #: The finest precision the formats give: minute, hour, day, month.
    precision: str
    notes: list[str] = field(default_factory=list)
    #: A day/month order the values cannot decide (every day and month <= 12).
    ambiguous: bool = False
    #: (UTC instant, offset) of values that carry their own UTC offset.
    offsets: list[tuple[datetime, timedelta]] = field(default_factory=list)
    time_column: str | None = None
    time_formats: list[str] = field(default_factory=list)


def date_named(name: str) -> bool:
    """Return True when a column's name suggests a date or time."""
    low = name.lower()
    return any(w in low for w in _DATE_WORDS) or bool(_DATE_TOKENS & set(words(name)))


def words(name: str) -> list[str]:
    """Return the lower-case words of a column name (``occDate`` -> ``occ``, ``date``)."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def _distinct(values: list[str], limit: int = 400) -> list[str]:
    return list(dict.fromkeys(values))[:limit]


def _reads(values: list[str], fmt: str, now: datetime) -> set[int]:
    """Return the indices of the values ``fmt`` reads as plausible dates."""
    parser = DateParser(DateSpec(column="value", formats=[fmt]))
    ok: set[int] = set()
    for i, value in enumerate(values):
        if _plausible(parser, value, now, epoch=fmt.startswith("epoch")) is not None:
            ok.add(i)
        elif not ok and i >= 20:
            break  # not this format: spare the remaining values
    return ok


def _plausible(parser: DateParser, value: str, now: datetime, *, epoch: bool) -> str | None:
    """Return the precision of ``value`` when it parses to a plausible date, else None."""
    try:
        parsed = parser.parse(value)
    except (DateError, ValueError, OverflowError):
        return None
    if implausible(parsed, now) is not None or (epoch and parsed.start < EPOCH_EARLIEST):
        return None
    return parsed.precision.value


def _candidates(name: str, values: list[str]) -> tuple[str, ...]:
    digits = sum(bool(_DIGITS.match(v)) for v in values) / len(values)
    found: tuple[str, ...] = ()
    if digits >= 0.5 and date_named(name):
        numbers = [float(v) for v in values if _DIGITS.match(v)]
        excel = ("excel",) if all(20000 <= n <= 80000 for n in numbers) else ()
        found = DIGIT_FORMATS + excel
    if digits < 0.9:
        found += ("year_month", "iso", *PATTERNS)
    return found


def guess_date(name: str, values: list[str], now: datetime) -> DateGuess | None:
    """Return how a column holds dates, or None when it does not.

    Parameters
    ----------
    name
        The column name (digit-only values are tried only on date-like names).
    values
        The column's non-blank sampled values.
    now
        The current time: later dates are not plausible.
    """
    distinct = _distinct(values)
    if not distinct or sum(any(c.isdigit() for c in v) for v in distinct) < 0.8 * len(distinct):
        return None
    reads = {fmt: _reads(distinct, fmt, now) for fmt in _candidates(name, distinct)}
    if not reads:
        return None
    chosen: list[str] = []
    covered: set[int] = set()
    while len(chosen) < 3 and len(covered) < len(distinct):
        best = max(reads, key=lambda f: len(reads[f] - covered))
        if not reads[best] - covered or (chosen and len(covered) >= 0.995 * len(distinct)):
            break
        chosen.append(best)
        covered |= reads[best]
    if not chosen or len(covered) < MIN_COVERAGE * len(distinct):
        return None
    precision = _precision(chosen, distinct, now)
    guess = DateGuess(name, chosen, len(covered), len(distinct), precision)
    _day_month(guess, distinct, reads, now)
    guess.offsets = _offsets(distinct, chosen)
    return guess


def _precision(formats: list[str], values: list[str], now: datetime) -> str:
    """Return the finest precision the formats give on the first values."""
    parser = DateParser(DateSpec(column="value", formats=formats))
    epoch = any(f.startswith("epoch") for f in formats)
    found = {_plausible(parser, v, now, epoch=epoch) for v in values[:100]}
    order = ["minute", "hour", "day", "month", "year"]
    return next((p for p in order if p in found), "day")


def _day_month(
    guess: DateGuess, values: list[str], reads: dict[str, set[int]], now: datetime
) -> None:
    """Note how the day/month order was decided, or flag it when the values cannot."""
    fmt = guess.formats[0]
    if not re.match(r"^%[md][/.-]%[md]", fmt):
        return
    swapped = fmt.replace("%m", "%M_").replace("%d", "%m").replace("%M_", "%d")
    other = reads[swapped] if swapped in reads else _reads(values, swapped, now)
    if len(other) >= len(reads[fmt]):
        guess.ambiguous = True
        return
    big = [m for v in values if (m := _DAY_MONTH.match(v))]
    place = "first" if fmt.startswith("%d") else "second"
    example = next(
        (m.group(0) for m in big if int(m.group(1 if place == "first" else 2)) > 12), None
    )
    order = "day/month/year" if place == "first" else "month/day/year"
    if example:
        guess.notes.append(f"{order}: {example!r} has a day above 12 in {place} place")


def _offsets(values: list[str], formats: list[str]) -> list[tuple[datetime, timedelta]]:
    if not any(f == "iso" or "%z" in f for f in formats):
        return []
    found: list[tuple[datetime, timedelta]] = []
    for value in values:
        if not _OFFSET.search(value):
            continue
        moment = _aware(value, formats)
        offset = moment.utcoffset() if moment is not None else None
        if moment is not None and offset is not None:
            found.append((moment.astimezone(UTC), offset))
    return found


def _aware(value: str, formats: list[str]) -> datetime | None:
    for fmt in formats:
        try:
            if fmt == "iso":
                moment = datetime.fromisoformat(value)
            elif "%z" in fmt:
                text = value + "00" if re.search(r"[+-]\d\d$", value) else value
                moment = datetime.strptime(text, fmt)
            else:
                continue
        except ValueError:
            continue
        if moment.tzinfo is not None:
            return moment
    return None


def guess_time(name: str, values: list[str]) -> list[str] | None:
    """Return the formats of a separate time-of-day column, or None.

    Only columns named like times (``OCC_TIME``, ``occurrencehour``) are considered:
    a bare number is a time only by its name.
    """
    low = name.lower()
    if not (any(w in low for w in ("time", "hour", "hhmm")) or {"tm", "hr"} & set(words(name))):
        return None
    distinct = _distinct(values)
    if not distinct:
        return None
    if all(v.isdigit() and len(v) <= 2 and int(v) <= 23 for v in distinct):
        return ["%H"]
    best: list[str] = []
    covered: set[str] = set()
    for fmt in TIME_FORMATS:
        ok = {v for v in distinct if _is_time(v, fmt)} - covered
        if ok:
            best.append(fmt)
            covered |= ok
    if len(covered) < 0.95 * len(distinct):
        return None
    return best[:3]


def _is_time(value: str, fmt: str) -> bool:
    if fmt == "%H%M" and not (value.isdigit() and len(value) in (3, 4)):
        return False
    try:
        datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def stem(name: str) -> str:
    """Return a column name without its date/time words, to pair date and time columns.

    Examples
    --------
    >>> stem("OCC_DATE"), stem("OCC_TIME"), stem("occurrencedate"), stem("occurrencehour")
    ('occ', 'occ', 'occurrence', 'occurrence')
    """
    low = re.sub(r"[^a-z0-9]", "", name.lower())
    for word in ("datetime", "date", "time", "hour", "hhmm", "dt", "tm", "hr"):
        low = low.replace(word, "")
    return low


@cache
def _zones() -> tuple[str, ...]:
    skip = ("Etc/", "SystemV/", "US/", "Canada/", "Mexico/", "Brazil/", "Chile/")
    names = (z for z in available_timezones() if "/" in z and not z.startswith(skip))
    return tuple(sorted(names))


def zones_for_offsets(offsets: list[tuple[datetime, timedelta]]) -> list[str]:
    """Return the time zones that had every given UTC offset at its instant.

    Parameters
    ----------
    offsets
        ``(UTC instant, offset)`` pairs read from values such as ``2025-07-04T21:30-07:00``.

    Returns
    -------
    list[str]
        Consistent IANA zones, the preferred ones (:data:`PREFERRED_ZONES`) first.
    """
    distinct = list(
        dict.fromkeys((t.replace(minute=0, second=0, microsecond=0), o) for t, o in offsets)
    )
    sample = distinct[:: max(1, len(distinct) // 200)]
    found = [z for z in _zones() if all(ZoneInfo(z).utcoffset(t) == o for t, o in sample)]
    rank = {z: i for i, z in enumerate(PREFERRED_ZONES)}
    return sorted(found, key=lambda z: (rank.get(z, len(rank)), z))


def describe_offsets(offsets: list[tuple[datetime, timedelta]]) -> str:
    """Return the distinct offsets as text (``-08:00, -07:00``)."""

    def text(o: timedelta) -> str:
        minutes = int(o.total_seconds() // 60)
        sign = "-" if minutes < 0 else "+"
        return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"

    return ", ".join(text(o) for o in sorted({o for _, o in offsets}))


def date_role(name: str) -> str:
    """Return what a date column is by its name: occurred, end, reported or skip."""
    low = name.lower()
    found = set(words(name)) | set(re.sub(r"[^a-z0-9]+", "_", name.lower()).split("_"))
    if any(k in low for k in ("report", "rpt", "received")):
        return "reported"
    if any(k in low for k in SKIP_DATES):
        return "skip"
    if found & {"end", "to", "until", "thru", "through", "ended"}:
        return "end"
    return "occurred"


def occurrence_score(name: str) -> int:
    """Return how much a column's name sounds like the occurrence (start) date."""
    low = name.lower()
    found = set(words(name)) | set(re.sub(r"[^a-z0-9]+", "_", name.lower()).split("_"))
    score = 3 if any(k in low for k in ("occur", "offen", "incident", "crime", "event")) else 0
    score += 2 if found & {"start", "from", "begin", "began"} else 0
    score += 1 if any(k in low for k in ("date", "month", "time", "when")) else 0
    return score


def window_stem(name: str) -> str:
    """Return :func:`stem` without from/to words, to pair start and end columns."""
    low = stem(name)
    for word in ("from", "start", "begin", "end", "to", "until", "thru"):
        low = low.replace(word, "")
    return low


def time_partner(time_column: str, guesses: dict[str, DateGuess], times: int) -> DateGuess | None:
    """Return the date column a time-of-day column belongs to (same stem), or None."""
    key = stem(time_column)
    same = [g for g in guesses.values() if key and stem(g.column) == key]
    if same:
        return same[0]
    days = [g for g in guesses.values() if g.precision == "day" and g.time_column is None]
    return days[0] if len(days) == 1 and times == 1 else None


def swap_day_month(fmt: str) -> str:
    """Return a strptime pattern with %d and %m swapped."""
    return fmt.replace("%m", "\0").replace("%d", "%m").replace("\0", "%d")


#: Fewest sampled times from which an excess of one time of day is judged.
MIN_PLACEHOLDER_TIMES = 20
#: Fewest rows one time of day must be on to be proposed as a placeholder.
MIN_PLACEHOLDER_ROWS = 10
#: Least share of the sampled times that one time of day must have to be a placeholder.
PLACEHOLDER_SHARE = 0.02
#: How many times more often than any other time of its kind it must occur.
PLACEHOLDER_RATIO = 3


def _kind_of_time(clock: str) -> str:
    """Return how round a time of day is: people round real times to these."""
    minute = int(clock[3:5])
    if clock[5:] not in ("", ":00"):
        return "seconds"
    if minute == 0:
        return "hour"
    return "half" if minute == 30 else "five" if minute % 5 == 0 else "minute"


@dataclass(frozen=True)
class Placeholder:
    """A time of day a column holds far more often than any other: "time unknown"?"""

    time: str
    count: int
    total: int

    def describe(self) -> str:
        """Return the draft's comment on the ``placeholder_times`` it proposes."""
        return (
            f"guess: {self.count} of the {self.total} sampled times "
            f"({100 * self.count / self.total:.0f}%) are exactly {self.time}, far more than "
            "any time like it: the export's placeholder for an unknown time? They are stored "
            f"as the whole day; remove this line if {self.time} is a real time"
        )


def placeholder_time(
    rows: list[dict[str, str]], guess: DateGuess, timezone: str | None
) -> Placeholder | None:
    """Return the time of day a date column holds too often to be real, if any.

    Crimes happen at all hours; an export that writes 00:00 (or 12:00, or 00:01) for
    "time unknown" shows one time of day on far more rows than any like it. Times are
    compared with times as round as they are (on the hour, on the half hour, on five
    minutes, other minutes), because people round the real times they write down too. A
    time is proposed when it is on at least :data:`MIN_PLACEHOLDER_ROWS` rows and
    :data:`PLACEHOLDER_SHARE` of at least :data:`MIN_PLACEHOLDER_TIMES` sampled times with
    minutes, and at least :data:`PLACEHOLDER_RATIO` times as frequent as any other time
    of its kind.

    Examples
    --------
    >>> g = DateGuess("when", ["%Y-%m-%d %H:%M"], 1, 1, "minute")
    >>> rows = [{"when": f"2024-03-{d:02d} 00:00"} for d in range(1, 11)]
    >>> rows += [{"when": f"2024-03-05 {h:02d}:{m:02d}"} for h in range(1, 21) for m in (7, 41)]
    >>> placeholder_time(rows, g, None)
    Placeholder(time='00:00', count=10, total=50)
    """
    spec = (
        DateSpec(
            date_column=guess.column,
            time_column=guess.time_column,
            formats=guess.formats,
            time_formats=guess.time_formats or ["%H:%M"],
        )
        if guess.time_column
        else DateSpec(column=guess.column, formats=guess.formats)
    )
    parser = DateParser(spec, timezone or "UTC")
    times: Counter[str] = Counter()
    for row in rows:
        value = (row.get(guess.column) or "").strip()
        clock = (row.get(guess.time_column) or "").strip() if guess.time_column else None
        if not value or (guess.time_column and not clock):
            continue
        try:
            parsed = parser.parse(value, clock)
        except DateError:
            continue
        if parsed.precision is TimePrecision.MINUTE:
            local = parsed.start.astimezone(parser.tz)
            times[local.strftime("%H:%M:%S" if local.second else "%H:%M")] += 1
    total = sum(times.values())
    if total < MIN_PLACEHOLDER_TIMES:
        return None
    best: Placeholder | None = None
    for clock, count in times.items():
        if count < max(MIN_PLACEHOLDER_ROWS, PLACEHOLDER_SHARE * total):
            continue
        kind = _kind_of_time(clock)
        rival = max(
            (n for c, n in times.items() if c != clock and _kind_of_time(c) == kind), default=0
        )
        if count >= PLACEHOLDER_RATIO * max(rival, 1) and (best is None or count > best.count):
            best = Placeholder(clock, count, total)
    return best
