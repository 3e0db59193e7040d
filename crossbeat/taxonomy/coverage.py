"""How much of the stored offences each crosswalk maps, and which local codes it misses.

Unmapped offences keep their local code and are flagged (``match`` is NULL). This
report counts them per agency and scheme and lists the missing local codes, most
frequent first, each with the best suggestion for the person who extends the
crosswalk. Withdrawn incidents are left out.

This module builds the report from counts; the counting reads the agencies' offences
and is done, audited, by :func:`crossbeat.sharing.coverage.read_coverage`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from crossbeat.taxonomy.suggest import Suggestion, suggest


@dataclass(frozen=True, slots=True)
class UnmappedCode:
    """One local code no crosswalk rule maps, with how often it occurs."""

    local_code: str
    description: str | None
    count: int
    suggestion: Suggestion | None


def format_share(part: int, whole: int, *, digits: int = 1) -> str:
    """Return ``part / whole`` as a percentage that reads 100% or 0% only when it is.

    A plain ``f"{share:.1%}"`` prints 2,244 of 2,245 as ``100.0%``, which says nothing
    is missing when one is; this rounds towards the nearest end the share has not
    reached.

    Examples
    --------
    >>> format_share(2244, 2245)
    '99.9%'
    >>> format_share(2245, 2245)
    '100.0%'
    >>> format_share(1, 100_000)
    '0.1%'
    >>> format_share(1, 3)
    '33.3%'
    >>> format_share(0, 0)
    '100.0%'
    """
    if whole <= 0 or part >= whole:
        return f"{100:.{digits}f}%"
    step = 10.0**-digits
    value = round(100 * part / whole, digits)
    if part > 0:
        value = max(value, step)
    value = min(value, 100 - step)
    return f"{value:.{digits}f}%"


@dataclass(frozen=True, slots=True)
class SchemeCoverage:
    """Mapped and unmapped offence counts of one agency and scheme."""

    agency_id: str
    #: The offence scheme, or None for offences stored without one.
    scheme: str | None
    total: int
    mapped: int
    unmapped: int
    unmapped_codes: tuple[UnmappedCode, ...]

    @property
    def mapped_share(self) -> float:
        """Return the share of offences the crosswalk maps (1.0 when there are none)."""
        return self.mapped / self.total if self.total else 1.0

    @property
    def mapped_percent(self) -> str:
        """Return the mapped share as a percentage that never rounds up to 100.0%."""
        return format_share(self.mapped, self.total)


@dataclass(frozen=True, slots=True)
class CoverageReport:
    """Crosswalk coverage of the stored offences, per agency and scheme."""

    schemes: tuple[SchemeCoverage, ...]

    @property
    def total(self) -> int:
        """Return the number of offences counted."""
        return sum(s.total for s in self.schemes)

    @property
    def unmapped(self) -> int:
        """Return the number of unmapped offences."""
        return sum(s.unmapped for s in self.schemes)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready data."""
        return {
            "total": self.total,
            "unmapped": self.unmapped,
            "schemes": [
                {**asdict(s), "mapped_share": round(s.mapped_share, 6)} for s in self.schemes
            ],
        }


def build_report(
    totals: Iterable[Any], code_rows: Iterable[Any], *, with_suggestions: bool = True
) -> CoverageReport:
    """Build the coverage report from counted offences (no database access here).

    The counting is a read of the agencies' offences, so it goes through the sharing
    module, which audits it: :func:`crossbeat.sharing.coverage.read_coverage`.

    Parameters
    ----------
    totals
        Rows with ``agency_id``, ``scheme``, ``total`` and ``unmapped``: the offences
        of live incidents per agency and scheme.
    code_rows
        Rows with ``agency_id``, ``scheme``, ``local_code``, ``description`` and
        ``n``: the unmapped local codes and how often each occurs.
    with_suggestions
        Attach the best NIBRS suggestion to each unmapped local code.

    Returns
    -------
    CoverageReport
        One :class:`SchemeCoverage` per (agency, scheme), ordered by agency and scheme;
        unmapped codes most frequent first.
    """
    missing: dict[tuple[str, str | None], list[UnmappedCode]] = {}
    for row in sorted(code_rows, key=lambda r: (-r.n, r.local_code)):
        best = None
        if with_suggestions:
            found = suggest(row.local_code, row.description, scheme=row.scheme, limit=1)
            best = found[0] if found else None
        missing.setdefault((row.agency_id, row.scheme), []).append(
            UnmappedCode(row.local_code, row.description, int(row.n), best)
        )
    schemes = [
        SchemeCoverage(
            agency_id=row.agency_id,
            scheme=row.scheme,
            total=int(row.total),
            mapped=int(row.total) - int(row.unmapped or 0),
            unmapped=int(row.unmapped or 0),
            unmapped_codes=tuple(missing.get((row.agency_id, row.scheme), ())),
        )
        for row in totals
    ]
    schemes.sort(key=lambda s: (s.agency_id, s.scheme or ""))
    return CoverageReport(tuple(schemes))
