"""Date parsing: formats, time zones and DST, precision ranges, impossible values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossbeat.ingest.dates import (
    DateError,
    DateParser,
    coarser,
    format_precision,
    implausible,
    parse_any,
)
from crossbeat.ingest.profile import DateSpec
from crossbeat.model import TimePrecision as P


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def parser(tz: str = "UTC", **spec: object) -> DateParser:
    spec.setdefault("column", "when")
    return DateParser(DateSpec(**spec), tz)  # type: ignore[arg-type]


def test_local_strptime_value_becomes_utc_with_minute_precision() -> None:
    p = parser("America/Los_Angeles", formats=["%m/%d/%y %H:%M"])
    got = p.parse("1/18/06 4:40")
    assert (got.start, got.end, got.precision) == (utc(2006, 1, 18, 12, 40),) * 2 + (P.MINUTE,)


def test_formats_are_tried_in_order() -> None:
    p = parser(formats=["%Y-%m-%d %H:%M", "%d.%m.%Y"])
    assert p.parse("24.12.2019").precision is P.DAY
    assert p.parse("2019-12-24 18:30").start == utc(2019, 12, 24, 18, 30)


def test_iso_with_offset_keeps_the_offset() -> None:
    got = parser("America/New_York", formats=["iso"]).parse("2015-01-03T05:50:00-06:00")
    assert got.start == utc(2015, 1, 3, 11, 50) and got.precision is P.MINUTE


def test_iso_date_only_is_the_whole_local_day() -> None:
    got = parser("America/Chicago", formats=["iso"]).parse("2015-01-03")
    assert got.precision is P.DAY
    assert got.start == utc(2015, 1, 3, 6)
    assert got.end == utc(2015, 1, 4, 6) - timedelta(microseconds=1)


def test_short_utc_offset_and_declared_day_precision_give_the_local_day() -> None:
    # Toronto MCI: "2017/02/28 05:00:00+00" is local midnight written in UTC.
    p = parser("America/Toronto", formats=["%Y/%m/%d %H:%M:%S%z"], precision="day")
    got = p.parse("2017/02/28 05:00:00+00")
    assert got.precision is P.DAY
    assert got.start == utc(2017, 2, 28, 5)
    assert got.end == utc(2017, 3, 1, 5) - timedelta(microseconds=1)


def test_month_only_police_uk_dates_cover_the_month() -> None:
    got = parser("Europe/London", formats=["year_month"]).parse("2020-07")
    assert got.precision is P.MONTH
    assert got.start == utc(2020, 6, 30, 23)  # midnight BST
    assert got.end == utc(2020, 7, 31, 23) - timedelta(microseconds=1)
    december = parser("Europe/London", formats=["year_month"]).parse("2016-12")
    assert december.end == utc(2017, 1, 1) - timedelta(microseconds=1)


def test_composite_date_and_time_columns() -> None:
    p = DateParser(
        DateSpec(date_column="d", time_column="t", formats=["%m/%d/%Y"], time_formats=["%H%M"]),
        "America/Los_Angeles",
    )
    got = p.parse("07/04/2021", "2130")
    assert got.start == utc(2021, 7, 5, 4, 30) and got.precision is P.MINUTE
    # A blank time column: the source knows the day only.
    day = p.parse("07/04/2021", None)
    assert day.precision is P.DAY
    assert (day.start, day.end) == (utc(2021, 7, 4, 7), utc(2021, 7, 5, 7) - timedelta(0, 0, 1))
    with pytest.raises(DateError, match="'2575' is not a valid time"):
        p.parse("07/04/2021", "2575")


def test_declared_precision_never_makes_a_value_finer() -> None:
    p = parser(formats=["%Y-%m-%d"], precision="minute")
    assert p.parse("2020-03-04").precision is P.DAY
    p = parser(formats=["%Y-%m-%d %H:%M"], precision="hour")
    got = p.parse("2020-03-04 10:45")
    assert got.precision is P.HOUR
    assert (got.start, got.end) == (utc(2020, 3, 4, 10), utc(2020, 3, 4, 11) - timedelta(0, 0, 1))


def test_dst_gap_is_read_with_the_offset_before_the_change() -> None:
    got = parser("America/New_York", formats=["iso"]).parse("2021-03-14 02:30")
    assert got.start == utc(2021, 3, 14, 7, 30)  # = 03:30 EDT
    assert "does not exist" in got.notes[0]


def test_dst_fold_is_read_as_the_first_occurrence() -> None:
    got = parser("America/New_York", formats=["iso"]).parse("2021-11-07 01:30")
    assert got.start == utc(2021, 11, 7, 5, 30)  # 01:30 EDT, not EST
    assert "ambiguous" in got.notes[0]
    assert parser("America/New_York", formats=["iso"]).parse("2021-11-07 03:30").notes == ()


def test_days_around_dst_changes_have_their_true_length() -> None:
    p = parser("Europe/London", formats=["iso"])
    spring = p.parse("2021-03-28")
    autumn = p.parse("2021-10-31")
    assert spring.end - spring.start == timedelta(hours=23) - timedelta(microseconds=1)
    assert autumn.end - autumn.start == timedelta(hours=25) - timedelta(microseconds=1)


def test_field_time_zone_overrides_the_profile() -> None:
    spec = DateSpec(column="when", formats=["iso"], timezone="Asia/Tokyo")
    assert DateParser(spec, "UTC").parse("2020-01-01 09:00").start == utc(2020, 1, 1)


@pytest.mark.parametrize(
    ("fmt", "value", "expected", "precision"),
    [
        ("epoch_s", "1577836800", utc(2020, 1, 1), P.MINUTE),
        ("epoch_ms", "1577836800123", utc(2020, 1, 1, 0, 0, 0, 123000), P.MINUTE),
        ("excel", "43831", utc(2020, 1, 1), P.DAY),
        ("excel", "43831.5", utc(2020, 1, 1, 12), P.MINUTE),
    ],
)
def test_named_numeric_formats(fmt: str, value: str, expected: datetime, precision: P) -> None:
    got = parser(formats=[fmt]).parse(value)
    assert (got.start, got.precision) == (expected, precision)


@pytest.mark.parametrize(
    ("value", "fmt", "message"),
    [
        ("2/30/06 4:40", "%m/%d/%y %H:%M", "day is out of range for month"),
        ("13/01/2006", "%m/%d/%Y", "not a valid date"),
        ("2020-13", "year_month", "month must be in 1..12"),
        ("2021-02-29", "iso", "day is out of range for month"),
        ("yesterday", "iso", "not a valid date"),
        ("nan", "epoch_s", "not a finite number"),
    ],
)
def test_impossible_dates_are_errors_naming_the_value(value: str, fmt: str, message: str) -> None:
    with pytest.raises(DateError, match=message) as info:
        parser(formats=[fmt]).parse(value)
    assert repr(value) in str(info.value) and fmt in str(info.value)


@pytest.mark.parametrize(
    ("value", "fmt", "tz"),
    [("9999-12", "year_month", "UTC"), ("0001-01-01 00:00", "iso", "Australia/Lord_Howe")],
)
def test_dates_at_the_ends_of_the_calendar_are_errors(value: str, fmt: str, tz: str) -> None:
    with pytest.raises(DateError, match="outside the supported date range"):
        parser(tz, formats=[fmt]).parse(value)


def test_unknown_named_format_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown date format 'isoo'"):
        parser(formats=["isoo"])


def test_implausible_dates() -> None:
    now = utc(2026, 1, 1)
    assert implausible(parse_any("2026-01-01 23:00", ["iso"]), now) is None
    assert "future" in (implausible(parse_any("2026-01-03", ["iso"]), now) or "")
    assert "before 1900" in (implausible(parse_any("1899-12-31", ["iso"]), now) or "")
    assert implausible(parse_any("1900-01-01", ["iso"]), now) is None


def test_precision_helpers() -> None:
    assert format_precision("%Y%m%d%H%M") is P.MINUTE
    assert format_precision("%Y-%m-%d %H") is P.HOUR
    assert format_precision("%d/%m/%Y") is P.DAY
    assert format_precision("%b %Y") is P.MONTH
    assert format_precision("%Y") is P.YEAR
    assert coarser(P.MINUTE, P.DAY) is P.DAY and coarser(P.UNKNOWN, P.DAY) is P.UNKNOWN


_FORMATS = st.lists(
    st.sampled_from(
        ["iso", "epoch_s", "epoch_ms", "year_month", "excel", "%m/%d/%y %H:%M", "%Y%m%d", "%z"]
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(
    value=st.text(max_size=40),
    time_value=st.one_of(st.none(), st.text(max_size=8)),
    formats=_FORMATS,
    tz=st.sampled_from(["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe"]),
    precision=st.sampled_from(["auto", "minute", "hour", "day", "month", "year"]),
)
def test_garbage_is_a_date_error_or_an_aware_range(
    value: str, time_value: str | None, formats: list[str], tz: str, precision: str
) -> None:
    spec = DateSpec(date_column="d", time_column="t", formats=formats, precision=precision)  # type: ignore[arg-type]
    try:
        got = DateParser(spec, tz).parse(value, time_value)
    except DateError:
        return
    assert got.start.tzinfo is not None and got.end.tzinfo is not None
    assert got.start <= got.end
