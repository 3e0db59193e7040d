"""Publishing counts so that no sequence of requests recovers a hidden one (issue #7).

Hiding small cells of *one* table is not enough: an attacker asks several tables and
subtracts them (the total minus the person, property and society counts; a query mixing
an owner that publishes records, whose counts anyone can reconstruct, with one that
publishes counts only). This module holds the pure rules :func:`crossbeat.sharing.reads.
aggregate` applies, per owner *before* the owners' counts are combined:

**Exact** parts (the viewer's own agency, a partner agreement): not suppressed; the
viewer may see those records one by one anyway.

**Records** parts (a public release that also publishes the records): a count of 1 to
``k - 1`` is hidden. Anyone can count the published records, so these counts reveal
nothing the records do not, whatever is subtracted from what; hiding small ones only
keeps tables tidy and consistent.

**Base** parts (a public release of counts only, without noise): everything published
about the owner is computed from one fixed *base table* — its counts by crime-against
category, month (in its time zone), H3 resolution-7 cell and set of jurisdictions — in
which every cell below ``k`` is dropped. A request may group only by those dimensions
(or ``agency``), filter only by category, by whole months and by agency, and not by an
area; otherwise the owner is left out of the answer with the reason. So every number
ever published about the owner is a sum of base cells of at least ``k``: no difference
of requests can isolate a dropped cell.

**Noise** parts (an owner that chose differential privacy): counts released through
OpenDP (:mod:`crossbeat.sharing.noise`).

Combining: a cell is the sum of its parts, hidden when any part is hidden. Totals and
margins are the sums of the *published* cells of their line, so a total never contains
a hidden count (``complete`` says whether anything was hidden, dropped or noised).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from crossbeat.sharing.request import ReadRequest

#: Dimensions a counts-only owner's base table is made of (``agency`` is constant).
BASE_DIMS: tuple[str, ...] = ("crime_against", "month", "h3_7", "jurisdiction")
#: Offence tokens that are constant on base cells (a category, or everything).
BASE_OFFENCES = frozenset({"all", "person", "property", "society", "not_a_crime"})

EXACT, RECORDS, BASE, NOISE = "exact", "records", "base", "noise"


def base_refusal(request: ReadRequest, timezone: str) -> str | None:
    """Return why a counts-only owner cannot answer ``request`` from its base table.

    None when every group and filter of the request is constant on base cells.
    """
    extra = [d for d in request.group_by if d != "agency" and d not in BASE_DIMS]
    if extra:
        return (
            f"grouping by {', '.join(extra)} is finer than the owner's published counts "
            f"(by {', '.join(BASE_DIMS)} only)"
        )
    if request.bbox is not None:
        return "the owner publishes counts only by H3 res-7 cell and jurisdiction, not by area"
    if request.areas is not None:
        return "the owner publishes counts only by H3 res-7 cell and jurisdiction, not by area"
    if request.offences is not None and not request.offences <= BASE_OFFENCES:
        return "the owner publishes counts only by crime-against category, not by offence code"
    zone = ZoneInfo(timezone)
    for name in ("since", "until"):
        when: datetime | None = getattr(request, name)
        if when is None:
            continue
        local = when.astimezone(zone)
        if (local.day, local.hour, local.minute, local.second, local.microsecond) != (
            1,
            0,
            0,
            0,
            0,
        ):
            return (
                f"{name} must be the start of a month in the owner's time zone ({timezone}): "
                "it publishes counts by whole months only"
            )
    return None


@dataclass
class Part:
    """One owner's share of a count table, counted under one kind of release."""

    owner: str
    mode: str
    threshold: int | None = None
    counts: dict[tuple[str, ...], int] = field(default_factory=dict)
    #: For ``base`` parts: base-cell key and group key of counted records, with how many.
    base: list[tuple[tuple[str, ...], tuple[str, ...], int]] = field(default_factory=list)

    def add(
        self, key: tuple[str, ...], base_key: tuple[str, ...] | None = None, n: int = 1
    ) -> None:
        """Count ``n`` records under ``key`` (and their base cell, for a base part)."""
        self.counts[key] = self.counts.get(key, 0) + n
        if base_key is not None:
            self.base.append((base_key, key, n))

    def published(self) -> tuple[dict[tuple[str, ...], int | None], bool]:
        """Return the part's cells as published (None: hidden) and whether all are exact.

        ``exact`` and ``noise`` parts (the noise is added by the caller beforehand) are
        returned as they are; ``records`` parts hide counts below the threshold;
        ``base`` parts drop every record of a base cell below the threshold first.
        """
        k = self.threshold or 1
        if self.mode == BASE:
            sizes: dict[tuple[str, ...], int] = {}
            for b, _key, n in self.base:
                sizes[b] = sizes.get(b, 0) + n
            kept: dict[tuple[str, ...], int] = {}
            for b, key, n in self.base:
                if sizes[b] >= k:
                    kept[key] = kept.get(key, 0) + n
            return dict(kept), all(n >= k for n in sizes.values())
        if self.mode == RECORDS:
            cells: dict[tuple[str, ...], int | None] = {
                key: (n if n >= k else None) for key, n in self.counts.items()
            }
            return cells, all(n >= k for n in self.counts.values())
        return dict(self.counts), self.mode == EXACT


@dataclass(frozen=True)
class Combined:
    """A count table combined from owners' parts; margins are sums of published cells."""

    cells: dict[tuple[str, ...], int | None]
    rows: dict[str, int | None]
    columns: dict[str, int | None]
    total: int | None
    hidden: int
    complete: bool


def combine(parts: Sequence[Part], dims: int) -> Combined:
    """Combine owners' published parts into one table.

    A cell is the sum of its parts, or hidden (None) when any part of it is hidden.
    Every margin is the sum of the published cells of its line, so no margin holds a
    hidden count; ``complete`` is False when any count was hidden, dropped or noised
    (then the margins are totals of what is published, not of every incident).
    """
    cells: dict[tuple[str, ...], int | None] = {}
    complete = True
    for part in parts:
        published, exact = part.published()
        complete = complete and exact
        if not cells:  # the first part (often the only one): its cells as they are
            cells = published
            continue
        for key, n in published.items():
            if n is None:
                cells[key] = None
            elif key not in cells:
                cells[key] = n
            elif cells[key] is not None:
                cells[key] = (cells[key] or 0) + n
    cells = {k: v for k, v in cells.items() if v != 0}
    hidden = sum(1 for v in cells.values() if v is None)
    shown = {k: v for k, v in cells.items() if v is not None}
    rows: dict[str, int | None] = {}
    columns: dict[str, int | None] = {}
    if dims == 2:
        for (r, c), n in shown.items():
            rows[r] = (rows.get(r) or 0) + n
            columns[c] = (columns.get(c) or 0) + n
        for r, c in cells:
            rows.setdefault(r, 0)
            columns.setdefault(c, 0)
    if dims == 0:
        total = cells.get((), 0)
    else:
        total = sum(shown.values())
    return Combined(cells, rows, columns, total, hidden, complete and not hidden)


def part_mode(rule: Any) -> str:
    """Return how counts of records shown by ``rule`` are released."""
    if rule.threshold is None:
        return EXACT
    if rule.noise_epsilon is not None:
        return NOISE
    return RECORDS if rule.publishes_records else BASE


def base_key(record: Mapping[str, Any], timezone: str) -> tuple[str, ...]:
    """Return the base-table cell of a published record (see :data:`BASE_DIMS`)."""
    when = record.get("occurred_from")
    month = when.astimezone(ZoneInfo(timezone)).strftime("%Y-%m") if when else "unknown"
    return (
        str(record.get("crime_against") or "unmapped"),
        month,
        str(record.get("h3_7") or "none"),
        "+".join(record.get("jurisdictions") or []) or "none",
    )


def keys_as_text(keys: Iterable[tuple[str, ...]]) -> list[str]:
    """Return group keys as single strings (for the noise mechanism)."""
    return ["\x1f".join(k) for k in keys]
