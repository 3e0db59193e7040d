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
