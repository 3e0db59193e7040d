"""Errors and the skipped-input report shared by every analysis."""

from __future__ import annotations

from dataclasses import dataclass, field


class AnalysisError(ValueError):
    """The input cannot support the analysis asked for (empty, too few, degenerate)."""


class NotComparable(AnalysisError):
    """An incident the viewer may see has no usable place, time or offence to compare.

    Not a bad request: the incident exists, and the answer is that nothing can be
    ranked against it (the API says so with an empty list and the reason).
    """


@dataclass(frozen=True)
class Skipped:
    """How many inputs an analysis left out, by reason (``{"missing time": 3}``).

    Every result carries one, so a map or table never silently drops incidents.
    """

    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """The number of inputs skipped for any reason."""
        return sum(self.reasons.values())

    def merged(self, other: Skipped) -> Skipped:
        """Return the sum of two reports."""
        out = dict(self.reasons)
        for reason, count in other.reasons.items():
            out[reason] = out.get(reason, 0) + count
        return Skipped({k: v for k, v in out.items() if v})
