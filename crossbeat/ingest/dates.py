"""Parse source dates and times into aware UTC ranges with their precision.

Agency exports write dates every way there is: ``1/18/06 4:40`` in local time,
``2015-01-03 05:50:00``, ``2017/02/28 05:00:00+00`` (local midnight stored as UTC),
police.uk's month-only ``2020-01``, separate date and time columns, epoch seconds and
Excel serial days. A :class:`DateParser` is built once per :class:`DateSpec` and turns
one value (or a date plus a time value) into a :class:`ParsedTime`: the first and last
instant of what the source knows, in UTC, with the precision of the source.

Rules (see ``docs/profiles.md``):

* A value with its own UTC offset keeps it; otherwise it is local time in the
  field's time zone (``DateSpec.timezone`` or the profile's ``source.timezone``).
* Local times that do not exist (the spring-forward gap) are read with the offset in
  force before the change; ambiguous local times (the autumn fold) are read as the
  first occurrence. Both add a note, so the result is deterministic and visible.
* Precision is inferred from the matched format (``auto``), or declared; the result
  is never finer than the value (a blank time column gives day precision). Coarser
  than minute, the range covers the whole local hour, day, month or year.
* A local time of day the profile declares a placeholder (``placeholder_times``, the
  ``00:00`` many exports write for "time unknown") gives day precision.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from crossbeat.ingest.profile import DateSpec
from crossbeat.model import TimePrecision

#: Dates before this are refused as implausible (typing errors such as 0206 for 2006).
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
#: How far ahead of the clock a date may be (time-zone slack) before it is refused.
FUTURE_SLACK = timedelta(days=1)

_ORDER = [
    TimePrecision.MINUTE,
    TimePrecision.HOUR,
    TimePrecision.DAY,
    TimePrecision.MONTH,
    TimePrecision.YEAR,
]
_ONE_US = timedelta(microseconds=1)
_EXCEL_EPOCH = datetime(1899, 12, 30)
_YEAR_MONTH = re.compile(r"^(\d{4})[-/](\d{1,2})$")
_SHORT_OFFSET = re.compile(r"[+-]\d\d$")
#: Distinct date (and time-of-day) texts remembered per field: exports repeat the same
#: dates on many rows, and strptime is the slowest step of normalising a row.
MATCH_CACHE_SIZE = 8192


class DateError(ValueError):
    """A value is not a valid date or time for its field."""


@dataclass(frozen=True, slots=True)
class ParsedTime:
    """What a source says about when something happened.

    ``start`` and ``end`` are aware UTC datetimes: the first and the last instant of
    the period the source knows (equal for minute precision).
    """

    start: datetime
    end: datetime
    precision: TimePrecision
    notes: tuple[str, ...] = ()


def coarser(a: TimePrecision, b: TimePrecision) -> TimePrecision:
    """Return the coarser of two precisions (``unknown`` counts as coarsest)."""
    if TimePrecision.UNKNOWN in (a, b):
        return TimePrecision.UNKNOWN
    return max(a, b, key=_ORDER.index)


def format_precision(fmt: str) -> TimePrecision:
    """Return the precision a strptime pattern carries.

    Examples
    --------
    >>> format_precision("%m/%d/%y %H:%M").value
    'minute'
    >>> format_precision("%Y-%m").value
    'month'
    """
    if any(d in fmt for d in ("%M", "%S", "%f", "%X", "%c")):
        return TimePrecision.MINUTE
    if "%H" in fmt or "%I" in fmt:
        return TimePrecision.HOUR
    if any(d in fmt for d in ("%d", "%j", "%x", "%a", "%A", "%w", "%u")):
        return TimePrecision.DAY
    if any(d in fmt for d in ("%m", "%b", "%B")):
        return TimePrecision.MONTH
    return TimePrecision.YEAR


def localise(naive: datetime, tz: tzinfo) -> tuple[datetime, str | None]:
    """Attach a time zone to a local time deterministically and return it in UTC.

    Parameters
    ----------
    naive
        A local wall-clock time.
    tz
        The zone it was recorded in.

    Returns
    -------
    tuple
        The aware UTC datetime, and a note when the local time was in a DST gap
        (read with the offset before the change) or fold (read as the first occurrence).
    """
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    utc = first.astimezone(UTC)
    if first.utcoffset() == second.utcoffset():
        return utc, None
    zone = getattr(tz, "key", str(tz))
    if utc.astimezone(tz).replace(tzinfo=None) != naive:
        return utc, (
            f"local time {naive:%Y-%m-%d %H:%M} does not exist in {zone} (clocks went "
            f"forward); read as {utc.astimezone(tz):%H:%M %Z}"
        )
    return utc, (
        f"local time {naive:%Y-%m-%d %H:%M} is ambiguous in {zone} (clocks went back); "
        "read as the first occurrence"
    )


def _period_bounds(local: datetime, precision: TimePrecision) -> tuple[datetime, datetime]:
    """Return the naive local start of ``local``'s period and the next period's start."""
    if precision is TimePrecision.HOUR:
        start = local.replace(minute=0, second=0, microsecond=0)
        return start, start + timedelta(hours=1)
    if precision is TimePrecision.DAY:
        start = datetime.combine(local.date(), time())
        return start, start + timedelta(days=1)
    if precision is TimePrecision.MONTH:
        start = datetime(local.year, local.month, 1)
        nxt = datetime(local.year + local.month // 12, local.month % 12 + 1, 1)
        return start, nxt
    start = datetime(local.year, 1, 1)
    return start, datetime(local.year + 1, 1, 1) if local.year < 9999 else datetime.max


class DateParser:
    """Parse the values of one date field as a :class:`DateSpec` describes.

    Parameters
    ----------
    spec
        The field's specification.
    default_timezone
        The profile's ``source.timezone``, used unless the spec overrides it.
    """

    def __init__(self, spec: DateSpec, default_timezone: str = "UTC") -> None:
        self.spec = spec
        self.tz = ZoneInfo(spec.timezone or default_timezone)
        self.declared = None if spec.precision == "auto" else TimePrecision(spec.precision)
        # Parsing is a pure function of the text: parse each distinct text once. Only
        # successes are remembered (a DateError is raised again for each bad value).
        self._match_cached = functools.lru_cache(maxsize=MATCH_CACHE_SIZE)(self._match)
        self._match_time_cached = functools.lru_cache(maxsize=MATCH_CACHE_SIZE)(self._match_time)
        self.placeholders = frozenset(
            time.fromisoformat(t if t.count(":") == 2 else t + ":00")
            for t in spec.placeholder_times
        )

    def _is_placeholder(self, moment: datetime) -> bool:
        """Return whether the local time of day of ``moment`` is a declared placeholder.

        A value with its own offset is compared in the field's time zone (local
        midnight written in UTC is still midnight).
        """
        local = moment.astimezone(self.tz) if moment.tzinfo is not None else moment
        return local.time().replace(microsecond=0) in self.placeholders and not local.microsecond

    def describe(self) -> str:
        """Return the formats tried, for messages."""
        return ", ".join(self.spec.formats)

    def parse(self, value: str, time_value: str | None = None) -> ParsedTime:
        """Parse one value (and, for composite fields, its time-of-day value).

        Parameters
        ----------
        value
            The date (or date-time) text, already stripped and not blank.
        time_value
            The text of ``time_column``, or ``None`` when it is blank or not used.

        Returns
        -------
        ParsedTime
            The UTC range and precision.

        Raises
        ------
        DateError
            When no format matches or the date is impossible (February 30, month 13).
        """
        moment, inferred = self._match_cached(value)
        if time_value is not None:
            clock, time_precision = self._match_time_cached(time_value)
            if moment.tzinfo is not None:
                # The time column is local time: take the local calendar date of the
                # date value (Toronto writes local midnight as "05:00:00+00").
                moment = moment.astimezone(self.tz).replace(tzinfo=None)
            moment = datetime.combine(moment.date(), clock)
            inferred = time_precision
        elif self.spec.time_column:
            inferred = coarser(inferred, TimePrecision.DAY)
        precision = coarser(inferred, self.declared) if self.declared else inferred
        if self.placeholders and precision in (TimePrecision.MINUTE, TimePrecision.HOUR):
            if self._is_placeholder(moment):
                precision = TimePrecision.DAY
        try:
            return self._to_range(moment, precision)
        except (ValueError, OverflowError) as exc:  # year 1 or 9999 after a zone shift
            raise DateError(f"{value!r} is outside the supported date range ({exc})") from exc

    def _to_range(self, moment: datetime, precision: TimePrecision) -> ParsedTime:
        if moment.tzinfo is not None:
            local = moment.astimezone(self.tz).replace(tzinfo=None)
            if precision is TimePrecision.MINUTE:
                utc = moment.astimezone(UTC)
                return ParsedTime(utc, utc, precision)
        else:
            local = moment
        if precision is TimePrecision.MINUTE:
            utc, note = localise(local, self.tz)
            return ParsedTime(utc, utc, precision, (note,) if note else ())
        first, nxt = _period_bounds(local, precision)
        start, note = localise(first, self.tz)
        if nxt == datetime.max:
            end = datetime.max.replace(tzinfo=UTC)
        else:
            end = localise(nxt, self.tz)[0] - _ONE_US
        return ParsedTime(start, end, precision, (note,) if note else ())

    def _match(self, value: str) -> tuple[datetime, TimePrecision]:
        errors: list[str] = []
        for fmt in self.spec.formats:
            try:
                return _parse_one(value, fmt)
            except (ValueError, OverflowError, OSError) as exc:
                errors.append(str(exc))
        # The most useful message is one that is not merely "does not match".
        detail = next((e for e in errors if "does not match" not in e), errors[-1])
        raise DateError(
            f"{value!r} is not a valid date (formats tried: {self.describe()}): {detail}"
        )

    def _match_time(self, value: str) -> tuple[time, TimePrecision]:
        for fmt in self.spec.time_formats:
            try:
                parsed = datetime.strptime(value, fmt)
            except ValueError:
                continue
            return parsed.time(), coarser(format_precision(fmt), TimePrecision.MINUTE)
        raise DateError(
            f"{value!r} is not a valid time (formats tried: {', '.join(self.spec.time_formats)})"
        )


def _parse_one(value: str, fmt: str) -> tuple[datetime, TimePrecision]:
    """Parse with one format; return the datetime (naive = local) and its precision."""
    if fmt == "iso":
        parsed = datetime.fromisoformat(value)
        has_time = len(value) > 10 and value[10] in "T "
        return parsed, TimePrecision.MINUTE if has_time else TimePrecision.DAY
    if fmt == "year_month":
        m = _YEAR_MONTH.match(value)
        if not m:
            raise ValueError(f"time data {value!r} does not match format 'YYYY-MM'")
        return datetime(int(m.group(1)), int(m.group(2)), 1), TimePrecision.MONTH
    if fmt in ("epoch_s", "epoch_ms"):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is not a finite number")
        seconds = number / 1000 if fmt == "epoch_ms" else number
        return datetime.fromtimestamp(seconds, UTC), TimePrecision.MINUTE
    if fmt == "excel":
        days = float(value)
        if not math.isfinite(days) or days < 1:
            raise ValueError(f"{value!r} is not an Excel serial day number")
        whole = days.is_integer()
        moment = _EXCEL_EPOCH + timedelta(days=days)
        return moment, TimePrecision.DAY if whole else TimePrecision.MINUTE
    if "%z" in fmt and _SHORT_OFFSET.search(value):
        value += "00"  # strptime's %z wants +HHMM; sources write +00 too
    return datetime.strptime(value, fmt), format_precision(fmt)


def implausible(parsed: ParsedTime, now: datetime) -> str | None:
    """Return why a parsed date cannot be right, or ``None``.

    Parameters
    ----------
    parsed
        The parsed value.
    now
        The current time (aware), from the ingest's clock.

    Returns
    -------
    str or None
        ``"is in the future"`` (more than a day ahead of ``now``), ``"is before
        1900"``, or ``None`` when plausible.
    """
    if parsed.start > now + FUTURE_SLACK:
        return f"is in the future (after {now + FUTURE_SLACK:%Y-%m-%d %H:%M} UTC)"
    if parsed.end < EARLIEST:
        return "is before 1900"
    return None


def parse_any(value: str, formats: Sequence[str], timezone: str = "UTC") -> ParsedTime:
    """Parse one value with ad-hoc formats (a convenience over :class:`DateParser`).

    Examples
    --------
    >>> p = parse_any("2020-01", ["year_month"], "Europe/London")
    >>> p.start.isoformat(), p.end.isoformat(), p.precision.value
    ('2020-01-01T00:00:00+00:00', '2020-01-31T23:59:59.999999+00:00', 'month')
    """
    return DateParser(DateSpec(column="value", formats=list(formats)), timezone).parse(value)
