"""Guess the offence column and its crosswalk, and NIBRS location types, for a draft.

Every shipped crosswalk is tried on the distinct values of every candidate column;
the (column, scheme) pair mapping the largest share wins, and the shares are reported
("police-uk maps 14/14 values of 'Crime type'"). When no scheme maps more than half,
the draft says which crosswalk to create and how ``crossbeat taxonomy suggest`` helps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from crossbeat.ingest.draft.columns import (
    MAX_CATEGORIES,
    Column,
    Sample,
    id_name_strength,
    snake,
)
from crossbeat.taxonomy import available_crosswalks, load_crosswalk, nibrs_offences
from crossbeat.taxonomy.suggest import suggest_terms

#: A scheme must map more than this share of a column's values to be chosen outright.
MIN_SHARE = 0.5
_OFFENCE_WORDS = (
    "offen",
    "crime",
    "charge",
    "statute",
    "nature",
    "mci",
    "ucr",
    "nibrs",
    "ncic",
    "incident_type",
    "call_type",
    "category",
    "type",
    "code",
    "desc",
)
#: Columns named like this never hold the offence (a location category, an id).
_NOT_OFFENCE = ("location", "premise", "place", "address", "lsoa", "neighbo", "beat", "district")
_DESCRIPTION_WORDS = {"desc", "description", "descr", "text", "type", "name", "title", "literal"}


@dataclass(frozen=True)
class SchemeScore:
    """How much of one column's values one crosswalk maps."""

    scheme: str
    column: str
    mapped: int
    distinct: int
    rows_mapped: int
    rows: int

    @property
    def share(self) -> float:
        """Return the share of the column's distinct values the scheme maps."""
        return self.mapped / self.distinct if self.distinct else 0.0

    def describe(self) -> str:
        """Return e.g. ``police-uk maps 14/14 values of 'Crime type'``."""
        return f"{self.scheme} maps {self.mapped}/{self.distinct} values of {self.column!r}"


@dataclass
class OffenceGuess:
    """The offence slot of a draft: column, scheme, and what a person must still do."""

    scheme: str
    code: str | None = None
    description: str | None = None
    constant: str | None = None
    comment: str = ""
    todo: str = ""
    scores: list[SchemeScore] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)


def _candidates(sample: Sample, taken: set[str]) -> list[Column]:
    found = []
    for col in sample.columns.values():
        if col.name in taken or not col.values or len(col.counts) > MAX_CATEGORIES:
            continue
        low = snake(col.name)
        if any(w in low for w in _NOT_OFFENCE) or id_name_strength(col.name) == 2:
            continue
        named = any(w in low for w in _OFFENCE_WORDS)
        # Numbers (beats, grids, counts) coincide with numeric codes: only by name.
        if named or (col.numbers is None and len(col.counts) < 0.5 * len(col.values)):
            found.append(col)
    return found


def score_schemes(sample: Sample, *, taken: set[str]) -> list[SchemeScore]:
    """Return every (scheme, column) score, best first."""
    scores = []
    for scheme in available_crosswalks():
        crosswalk = load_crosswalk(scheme)
        for col in _candidates(sample, taken):
            mapped = [v for v in col.counts if crosswalk.lookup(v) is not None]
            scores.append(
                SchemeScore(
                    scheme,
                    col.name,
                    len(mapped),
                    len(col.counts),
                    sum(col.counts[v] for v in mapped),
                    len(col.values),
                )
            )
    return sorted(scores, key=_rank, reverse=True)


def _rank(score: SchemeScore) -> tuple[float, float, int]:
    rows = score.rows_mapped / score.rows if score.rows else 0.0
    return (round(score.share, 3), round(rows, 3), score.mapped)


def guess_offence(sample: Sample, *, taken: set[str], file_stem: str, local: str) -> OffenceGuess:
    """Return the offence slot: the best-mapped column, a TODO, or a constant.

    Parameters
    ----------
    sample
        The sampled records.
    taken
        Columns already assigned to other fields.
    file_stem
        The export's file name without extension (a single-offence extract such as
        ``nycvehiclethefts`` names its offence there).
    local
        The name of the crosswalk to create when no shipped one fits.
    """
    scores = score_schemes(sample, taken=taken)
    best = scores[0] if scores and scores[0].mapped else None
    if best is not None and best.share > MIN_SHARE:
        return _mapped(sample, best, scores, taken)
    column = _offence_named(sample, taken) or (best.column if best else None)
    if column is None:
        return _constant(file_stem, scores)
    own = [s for s in scores if s.column == column]
    mapped = max(own, key=lambda s: s.mapped, default=None)
    # A placeholder scheme that maps as few of these codes as possible: an unmapped code
    # is flagged for review, a code mapped by a foreign crosswalk would be misclassified.
    placeholder = min(own, key=lambda s: (s.mapped, s.scheme != "code-nibrs"), default=None)
    scheme = placeholder.scheme if placeholder else "code-nibrs"
    unmapped = _unmapped(sample.columns[column], scheme)
    share = (
        mapped.describe()
        if mapped and mapped.mapped
        else f"no shipped crosswalk maps a value of {column!r}"
    )
    todo = (
        f"TODO: no shipped crosswalk maps more than half of the offence codes ({share}); "
        f"{scheme!r} is a placeholder that maps as few of them as possible. "
        f"Create the crosswalk crosswalks/{local}.toml (scheme {local!r}; format in "
        f'docs/taxonomy.md), run `crossbeat taxonomy suggest CODE "DESCRIPTION"` for each '
        f'local code to get proposed NIBRS codes, then set scheme = "{local}" here and '
        'crosswalks = "crosswalks" at the top. Until then the codes are stored unmapped '
        "and flagged."
    )
    guess = OffenceGuess(scheme, code=column, todo=todo, scores=scores, unmapped=unmapped)
    guess.description = _description_for(sample, column, taken)
    return guess


def _mapped(
    sample: Sample, best: SchemeScore, scores: list[SchemeScore], taken: set[str]
) -> OffenceGuess:
    crosswalk = load_crosswalk(best.scheme)
    others = [s.describe() for s in scores[1:4] if s.mapped]
    comment = f"guess: {best.describe()}" + (f" (next: {'; '.join(others)})" if others else "")
    guess = OffenceGuess(best.scheme, comment=comment, scores=scores)
    guess.unmapped = _unmapped(sample.columns[best.column], best.scheme)
    if crosswalk.key == "description":
        guess.description = best.column
    else:
        guess.code = best.column
        guess.description = _description_for(sample, best.column, taken)
    return guess


def _unmapped(col: Column, scheme: str) -> list[str]:
    crosswalk = load_crosswalk(scheme)
    return [v for v, _ in col.counts.most_common() if crosswalk.lookup(v) is None]


#: A column with at most this many distinct values is a coarse category (Part 1 / Part 2,
#: person / property), not the offence code, when a finer offence column exists.
FEW_VALUES = 6


def _offence_named(sample: Sample, taken: set[str]) -> str | None:
    """Return the column named like an offence code that most looks like one.

    A code that comes with its own description column wins (``Case Type`` with
    ``Case Type Description``), then a column with more than :data:`FEW_VALUES` distinct
    values over a coarse category, then the order of :data:`_OFFENCE_WORDS`, then the
    number of distinct values.
    """
    named: list[tuple[tuple[bool, bool, int, int], str]] = []
    for col in _candidates(sample, taken):
        low = snake(col.name)
        order = next((i for i, w in enumerate(_OFFENCE_WORDS) if w in low), None)
        if order is None:
            continue
        described = _description_for(sample, col.name, taken) is not None
        fine = len(col.counts) > FEW_VALUES
        named.append(((described, fine, -order, len(col.counts)), col.name))
    return max(named)[1] if named else None


def _description_for(sample: Sample, code: str, taken: set[str]) -> str | None:
    """Return a column describing each code (one text per code, longer than the code)."""
    code_col = sample.columns[code]
    for col in sample.columns.values():
        if col.name in taken or col.name == code or not col.values:
            continue
        named = set(snake(col.name).split("_")) & _DESCRIPTION_WORDS
        if not named or col.mean_length <= code_col.mean_length:
            continue
        texts: dict[str, set[str]] = {}
        for row in sample.rows:
            if code in row and col.name in row:
                texts.setdefault(row[code], set()).add(row[col.name])
        single = sum(len(t) == 1 for t in texts.values())
        if texts and single >= 0.9 * len(texts):
            return col.name
    return None


def _constant(file_stem: str, scores: list[SchemeScore]) -> OffenceGuess:
    flat = re.sub(r"[^a-z]", "", file_stem.lower())
    found = sorted(
        (
            (len(term), code, term)
            for code, terms in suggest_terms().items()
            for term in terms
            if code != "none" and len(term) >= 6 and term.replace(" ", "") in flat
        ),
        reverse=True,
    )
    if found:
        _, code, term = found[0]
        name = nibrs_offences()[code].name
        comment = (
            f"guess: no column holds offence codes, and the file name {file_stem!r} says "
            f"{term!r}: every row is NIBRS {code} ({name}). Check that the extract holds "
            "only that offence"
        )
        return OffenceGuess("code-nibrs", constant=code, comment=comment, scores=scores)
    todo = (
        "TODO: no column holds offence codes. If every row is one offence, set constant to "
        'its NIBRS code (`crossbeat taxonomy suggest "WHAT IT IS"` proposes one); '
        "otherwise name the offence column in code"
    )
    return OffenceGuess("code-nibrs", constant="unknown", todo=todo, scores=scores)
