"""Time bins on a local calendar: days, weeks and months as the viewer's agency counts them.

Incident times are stored as UTC instants. A day, a week or a month of a time series is
the agency's local one: a bin edge is a local midnight (a local Monday, the first of a
local month) converted to a UTC instant, so a day across a daylight-saving change lasts
23 or 25 hours and an incident at 20:00 on 31 January in Sacramento (04:00 UTC on
1 February) counts in January.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np

from crossbeat.analysis.errors import AnalysisError

Period = Literal["day", "week", "month"]


def local_midnight(day: date, tz: str) -> np.datetime64:
    """Return the UTC instant (naive ``datetime64[us]``) at which local ``day`` begins.

    A midnight skipped by a clock change begins the day at the first local time that
    exists; a midnight that occurs twice begins it at the first.

    >>> str(local_midnight(date(2026, 2, 1), "America/Los_Angeles"))
    '2026-02-01T08:00:00.000000'
    """
    start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)
    return np.datetime64(start.replace(tzinfo=None), "us")


def local_date(t: np.datetime64, tz: str) -> date:
    """Return the local calendar date in ``tz`` of UTC instant ``t`` (naive datetime64).

    >>> local_date(np.datetime64("2026-02-01T04:00"), "America/Los_Angeles")
    datetime.date(2026, 1, 31)
    """
    utc: datetime = np.asarray(t, dtype="datetime64[us]").item().replace(tzinfo=UTC)
    return utc.astimezone(ZoneInfo(tz)).date()


def _month_add(d: date, months: int) -> date:
    k = d.year * 12 + d.month - 1 + months
    return date(k // 12, k % 12 + 1, 1)


def edges(t: np.ndarray, period: Period, bins: int | None, tz: str = "UTC") -> np.ndarray:
    """Return ``bins`` local period edges (UTC instants) ending after the latest time.

    ``bins`` None: as many as it takes to reach back to the period of the earliest time.
    Weeks run Monday to Monday. Edges are local midnights in ``tz`` as UTC instants.

    Raises
    ------
    AnalysisError
        When no time is given.
    """
    valid = t[~np.isnat(t)]
    if valid.size == 0:
        raise AnalysisError("no incident has a time: a time series needs occurred_from")
    first, last = local_date(valid.min(), tz), local_date(valid.max(), tz)
    days: list[date]
    if period == "week":
        first_w = first - timedelta(days=first.weekday())
        end = last - timedelta(days=last.weekday()) + timedelta(days=7)
        n = (end - first_w).days // 7 if bins is None else bins
        days = [end - timedelta(days=7 * k) for k in range(n, -1, -1)]
    elif period == "month":
        end = _month_add(last.replace(day=1), 1)
        n = (end.year - first.year) * 12 + end.month - first.month if bins is None else bins
        days = [_month_add(end, -k) for k in range(n, -1, -1)]
    else:
        end = last + timedelta(days=1)
        n = (end - first).days if bins is None else bins
        days = [end - timedelta(days=k) for k in range(n, -1, -1)]
    return np.array([local_midnight(d, tz) for d in days], dtype="datetime64[us]")
