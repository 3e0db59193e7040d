"""Suggest NIBRS codes for unmapped local codes, for a person to accept or reject.

Nothing here classifies anything: an unmapped code stays unmapped until someone adds
it to the crosswalk file. The suggestions come from three sources, best first:

1. the local code *is* a NIBRS code (``"23F"``);
2. a pattern of a crosswalk matches it (the same scheme's patterns score higher than
   other schemes', whose conventions may differ);
3. fuzzy similarity (rapidfuzz) between the local code and description and the NIBRS
   offence names, everyday terms for them (``data/suggest_terms.toml``) and the local
   codes and names other crosswalks already map.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

from rapidfuzz import fuzz, process, utils

from crossbeat.taxonomy.crosswalk import NOT_A_CRIME, available_crosswalks, load_crosswalk
from crossbeat.taxonomy.nibrs import TaxonomyError, nibrs_offences

_NOT_A_CRIME_NAME = "not a criminal offence"
_SAME_SCHEME_PATTERN = 95.0
_OTHER_SCHEME_PATTERN = 80.0
_SAME_TEXT = 90.0


@dataclass(frozen=True)
class Suggestion:
    """A proposed NIBRS code for a local code, with how it was found."""

    #: A NIBRS offence code, or ``"none"`` (not a criminal offence).
    nibrs_code: str
    name: str
    #: 0-100; higher is more likely.
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class _Candidate:
    text: str
    nibrs: str
    reason: str


def _nibrs_name(code: str) -> str:
    return _NOT_A_CRIME_NAME if code == NOT_A_CRIME else nibrs_offences()[code].name


@cache
def suggest_terms() -> Mapping[str, tuple[str, ...]]:
    """Return the everyday terms for NIBRS offences used to rank suggestions.

    Returns
    -------
    Mapping[str, tuple[str, ...]]
        NIBRS code (or ``"none"``) to terms such as ``"criminal damage"``.

    Raises
    ------
    TaxonomyError
        When the terms file names a code that is not in the NIBRS table.
    """
    path = resources.files("crossbeat.taxonomy") / "data" / "suggest_terms.toml"
    with path.open("rb") as fh:
        raw = tomllib.load(fh)["terms"]
    unknown = [c for c in raw if c != NOT_A_CRIME and c not in nibrs_offences()]
    if unknown:
        raise TaxonomyError(f"suggest_terms.toml: unknown NIBRS codes {unknown}")
    return {code: tuple(terms) for code, terms in raw.items()}


@lru_cache(maxsize=8)
def _candidates(files: tuple[tuple[str, Path, int], ...]) -> tuple[_Candidate, ...]:
    # ``files`` (scheme, path, mtime) only keys the cache; the crosswalks themselves
    # come from load_crosswalk's own cache.
    found = [
        _Candidate(o.name, o.code, f"NIBRS offence name {o.name!r}")
        for o in nibrs_offences().values()
    ]
    for code, terms in suggest_terms().items():
        found += [_Candidate(t, code, f"common term {t!r} for {_nibrs_name(code)}") for t in terms]
    for scheme, path, _ in files:
        cw = load_crosswalk(scheme, [path.parent])
        for rule in cw.rules:
            if rule.is_pattern:
                continue
            label = f"{scheme} {rule.local!r}" + (f" ({rule.name})" if rule.name else "")
            reason = f"similar to {label}, mapped to {rule.nibrs}"
            for text in (rule.local, rule.name):
                if any(c.isalpha() for c in text):
                    found.append(_Candidate(text, rule.nibrs, reason))
    return tuple(found)


def _file_key(extra_dirs: Sequence[Path]) -> tuple[tuple[str, Path, int], ...]:
    return tuple(
        (scheme, path, path.stat().st_mtime_ns)
        for scheme, path in available_crosswalks(extra_dirs).items()
    )


def suggest(
    local_code: str,
    description: str | None = None,
    *,
    scheme: str | None = None,
    limit: int = 5,
    extra_dirs: Sequence[Path] = (),
    min_score: float = 50.0,
) -> list[Suggestion]:
    """Propose NIBRS codes for a local code: proposals for a person, never applied.

    Parameters
    ----------
    local_code
        The unmapped local code (or statute text).
    description
        The local description, if any.
    scheme
        The scheme the code belongs to; its patterns count more than other schemes'.
    limit
        How many suggestions to return at most.
    extra_dirs
        Agency-local crosswalk folders whose entries are also compared.
    min_score
        Drop suggestions scoring below this (0-100).

    Returns
    -------
    list[Suggestion]
        At most ``limit`` suggestions, one per NIBRS code, best first.

    Examples
    --------
    >>> suggest("459 PC BURGLARY GARAGE", scheme="sacramento-statute")[0].nibrs_code
    '220'
    """
    best: dict[str, Suggestion] = {}

    def offer(code: str, score: float, reason: str) -> None:
        if score >= min_score and (code not in best or score > best[code].score):
            best[code] = Suggestion(code, _nibrs_name(code), round(score, 1), reason)

    code_text = local_code.strip()
    if code_text.upper() in nibrs_offences():
        offer(code_text.upper(), 100.0, "the local code is this NIBRS code")

    files = _file_key(extra_dirs)
    for name, path, _ in files:
        cw = load_crosswalk(name, [path.parent])
        for text in (code_text, description):
            # Another scheme's numbers mean something else (NCIC 2305 is not IUCR
            # 2305), so only text carries over between schemes.
            if not text or (name != scheme and not any(c.isalpha() for c in text)):
                continue
            rule = cw.lookup(text)
            if rule is None:
                continue
            if rule.is_pattern:
                score = _SAME_SCHEME_PATTERN if name == scheme else _OTHER_SCHEME_PATTERN
                offer(rule.nibrs, score, f"matches {name} pattern {rule.local!r}")
            else:
                offer(rule.nibrs, _SAME_TEXT, f"{name} maps the same text {rule.local!r}")

    query = " ".join(t for t in (code_text, description) if t)
    candidates = _candidates(files)
    for _, score, index in process.extract(
        query,
        [c.text for c in candidates],
        scorer=fuzz.WRatio,
        processor=utils.default_process,
        limit=max(limit * 8, 20),
    ):
        cand = candidates[index]
        offer(cand.nibrs, float(score) * 0.9, cand.reason)

    ranked = sorted(best.values(), key=lambda s: (-s.score, s.nibrs_code))
    return ranked[: max(limit, 0)]
