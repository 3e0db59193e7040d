"""Limits on heavy analyses: the size of the selection and a time budget.

An analysis over a whole region can take minutes (a Knox test is quadratic in the
incidents close in space and time). So that one request cannot tie up a server worker,
the adapters run analyses inside :func:`limits`, which sets, for the current thread
(a context variable), the largest selection an analysis accepts and a deadline:

* :func:`check_size` (called once the selection is read) refuses a selection larger
  than the limit with :class:`SelectionTooLarge`, before any computing;
* :func:`check_time` (called between the steps of the heavy loops: permutations, time
  bins, pair blocks) raises :class:`BudgetExceeded` once the deadline has passed, so the
  worker is freed within one step of it.

Outside :func:`limits` (the library called directly, the CLI by default) nothing is
limited.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from crossbeat.analysis.errors import AnalysisError


class SelectionTooLarge(AnalysisError):
    """The selection holds more incidents than the analysis accepts (narrow it)."""

    def __init__(self, analysis: str, size: int, limit: int) -> None:
        super().__init__(
            f"{analysis} accepts at most {limit:,} incidents and this selection holds "
            f"{size:,}: narrow it (a shorter time window, fewer offences, agencies or a "
            "smaller area)"
        )
        self.size = size
        self.limit = limit


class BudgetExceeded(Exception):
    """The analysis ran past its time budget and was stopped (retry later or narrow it)."""

    def __init__(self, analysis: str, seconds: float) -> None:
        super().__init__(
            f"{analysis} was stopped after its time budget of {seconds:g} s: narrow the "
            "selection or use fewer permutations, or retry when the server is less busy"
        )
        self.seconds = seconds


@dataclass(frozen=True)
class Limits:
    """The limits in force: largest selection, time budget (seconds) and its deadline."""

    analysis: str
    max_incidents: int | None
    seconds: float | None
    deadline: float | None


_CURRENT: ContextVar[Limits | None] = ContextVar("crossbeat_analysis_limits", default=None)


@contextmanager
def limits(
    analysis: str, *, max_incidents: int | None = None, seconds: float | None = None
) -> Iterator[Limits]:
    """Run the body under a selection-size limit and a time budget (None: no limit)."""
    deadline = None if seconds is None else time.monotonic() + seconds
    token = _CURRENT.set(Limits(analysis, max_incidents, seconds, deadline))
    try:
        yield _CURRENT.get()  # type: ignore[misc]
    finally:
        _CURRENT.reset(token)


def check_size(size: int) -> None:
    """Raise :class:`SelectionTooLarge` when ``size`` incidents exceed the limit in force."""
    lim = _CURRENT.get()
    if lim is not None and lim.max_incidents is not None and size > lim.max_incidents:
        raise SelectionTooLarge(lim.analysis, size, lim.max_incidents)


def check_time() -> None:
    """Raise :class:`BudgetExceeded` when the deadline in force has passed."""
    lim = _CURRENT.get()
    if lim is not None and lim.deadline is not None and time.monotonic() > lim.deadline:
        raise BudgetExceeded(lim.analysis, lim.seconds or 0.0)
