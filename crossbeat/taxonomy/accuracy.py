"""How often ``taxonomy suggest`` is right, on a labelled list of real-world call types.

``data/labelled_call_types.csv`` lists call types and offence descriptions as written
in public CAD and RMS exports (``code``, ``description``) with the NIBRS code, the
call-for-service category (``call:<category>``) or ``none`` a person would map them to
(``expected``). It is split by a hash of the text into a *tuning* part and a *held-out*
part: the suggester's vocabulary was improved by looking only at the tuning part's
errors, and the held-out part says how well that carries over to call types nobody
tuned for. :func:`measure` computes top-1 and top-3 accuracy on each.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from crossbeat.taxonomy.calls import call_categories
from crossbeat.taxonomy.crosswalk import available_crosswalks, load_crosswalk, normalise_local
from crossbeat.taxonomy.nibrs import TaxonomyError, nibrs_offences
from crossbeat.taxonomy.suggest import suggest, suggest_terms, target_names

#: One in this many labelled rows (by hash of its text) is held out.
HELD_OUT_EVERY = 3


@dataclass(frozen=True, slots=True)
class LabelledCallType:
    """One labelled call type: the local text and what it should be mapped to."""

    code: str
    description: str | None
    #: A NIBRS code, ``call:<category>`` or ``none``.
    expected: str
    style: str = ""

    @property
    def held_out(self) -> bool:
        """Whether this row belongs to the held-out part (a hash of its text decides)."""
        key = f"{self.code}\x1f{self.description or ''}".encode()
        return int(hashlib.sha256(key).hexdigest()[:8], 16) % HELD_OUT_EVERY == 0


@dataclass(frozen=True, slots=True)
class Miss:
    """A labelled call type whose expected target was not the top suggestion."""

    item: LabelledCallType
    #: The suggested targets, best first.
    suggested: tuple[str, ...]


@dataclass(frozen=True)
class Accuracy:
    """Top-1 and top-3 accuracy of the suggester on a set of labelled call types."""

    part: str
    total: int
    top1: int
    top3: int
    misses: tuple[Miss, ...] = field(default=())

    @property
    def top1_rate(self) -> float:
        """Share of call types whose best suggestion is right (0-1)."""
        return self.top1 / self.total if self.total else 0.0

    @property
    def top3_rate(self) -> float:
        """Share of call types whose right target is among the first three (0-1)."""
        return self.top3 / self.total if self.total else 0.0


def labelled_call_types(path: Path | None = None) -> list[LabelledCallType]:
    """Read a labelled call-type file (default: the shipped list).

    Parameters
    ----------
    path
        A CSV with columns ``code``, ``description``, ``expected`` (and optionally
        ``style``); None reads ``data/labelled_call_types.csv``.

    Returns
    -------
    list[LabelledCallType]
        The rows in file order.

    Raises
    ------
    TaxonomyError
        When a column is missing, or an ``expected`` value is not a NIBRS code, a call
        category or ``none`` (every bad line is listed).
    """
    source = path or Path(
        str(resources.files("crossbeat.taxonomy") / "data" / "labelled_call_types.csv")
    )
    known = target_names()
    rows: list[LabelledCallType] = []
    problems: list[str] = []
    with source.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"code", "description", "expected"} - set(reader.fieldnames or ())
        if missing:
            raise TaxonomyError(f"{source}: missing column(s) {', '.join(sorted(missing))}")
        for line, raw in enumerate(reader, start=2):
            expected = (raw["expected"] or "").strip()
            if expected not in known:
                problems.append(f"line {line}: unknown expected target {expected!r}")
                continue
            rows.append(
                LabelledCallType(
                    code=(raw["code"] or "").strip(),
                    description=(raw["description"] or "").strip() or None,
                    expected=expected,
                    style=(raw.get("style") or "").strip(),
                )
            )
    if problems:
        raise TaxonomyError(f"{source}: " + "; ".join(problems))
    return rows


def measure(items: Iterable[LabelledCallType], part: str = "all") -> Accuracy:
    """Return the top-1 and top-3 accuracy of :func:`suggest` on labelled call types.

    Each call type is suggested as a new agency would meet it: no scheme, no agency
    crosswalk folder.

    Parameters
    ----------
    items
        The labelled call types.
    part
        A name for the set (``tuning``, ``held-out``, ``all``).

    Returns
    -------
    Accuracy
        The counts, and every call type whose top suggestion was wrong.
    """
    total = top1 = top3 = 0
    misses: list[Miss] = []
    for item in items:
        found = tuple(s.target for s in suggest(item.code, item.description, limit=3))
        total += 1
        if found[:1] == (item.expected,):
            top1 += 1
        else:
            misses.append(Miss(item, found))
        if item.expected in found[:3]:
            top3 += 1
    return Accuracy(part, total, top1, top3, tuple(misses))


def measure_split(items: Sequence[LabelledCallType]) -> tuple[Accuracy, Accuracy, Accuracy]:
    """Return the accuracy on the tuning part, the held-out part and the whole list."""
    tuning = [i for i in items if not i.held_out]
    held = [i for i in items if i.held_out]
    return measure(tuning, "tuning"), measure(held, "held-out"), measure(items, "all")


def listed_texts() -> frozenset[str]:
    """Return every text the suggester compares with, normalised (case, whitespace).

    NIBRS offence names, everyday terms, call-category names and terms, and the local
    codes and names of the shipped crosswalks. A labelled call type written exactly as
    one of these is found by lookup, not by reading it: :func:`not_listed` leaves
    those out, for the strictest figure.
    """
    texts = [o.name for o in nibrs_offences().values()]
    texts += [t for terms in suggest_terms().values() for t in terms]
    texts += [t for c in call_categories().values() for t in (c.name, *c.terms)]
    for scheme in available_crosswalks():
        texts += [
            t for r in load_crosswalk(scheme).rules if not r.is_pattern for t in (r.local, r.name)
        ]
    return frozenset(normalise_local(t) for t in texts if t)


def not_listed(items: Iterable[LabelledCallType]) -> list[LabelledCallType]:
    """Return the labelled call types whose text is not literally a listed text."""
    listed = listed_texts()
    return [
        i
        for i in items
        if normalise_local(" ".join(t for t in (i.code, i.description) if t)) not in listed
    ]
