"""Suggest NIBRS codes or call categories for unmapped local codes, for a person to accept.

Nothing here classifies anything: an unmapped code stays unmapped until someone adds
it to the crosswalk file. The suggestions come from these sources, best first:

1. the local code *is* a NIBRS code (``"23F"``);
2. a pattern of a crosswalk matches it (the same scheme's patterns score higher than
   other schemes', whose conventions may differ), or another crosswalk maps the same
   text;
3. word similarity between the local text and the NIBRS offence names, everyday terms
   for them (``data/suggest_terms.toml``), the call-for-service categories
   (``data/call_categories.csv``) and the local codes and names other crosswalks map.

Before comparing, the local text is read as police and CAD vocabulary
(``data/suggest_vocabulary.toml``): abbreviations are expanded (``BURG RES`` is
"burglary residence", ``UUV`` "unauthorized use of vehicle"), California statute
numbers with their code letters become what they mean (``459 PC`` "burglary"), synonyms
are folded (``auto``, ``car`` -> "vehicle"), negated words are dropped (``NO WEAPON``)
and each word counts by how rare it is among the targets (``vehicle`` tells more than
``theft``). A target that is a sexual offence is proposed only weakly unless the text
itself reads as sexual (the keyword rules of ``data/sensitive_keywords.toml``), so
``ASSAULT WITH WEAPON`` is an aggravated assault, not a sexual assault with an object.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

from rapidfuzz import fuzz

from crossbeat.model import Sensitivity
from crossbeat.taxonomy.calls import CALL_PREFIX, call_categories
from crossbeat.taxonomy.crosswalk import NOT_A_CRIME, available_crosswalks, load_crosswalk
from crossbeat.taxonomy.nibrs import TaxonomyError, nibrs_offences
from crossbeat.taxonomy.sensitivity import keyword_sensitivity

_NOT_A_CRIME_NAME = "not a criminal offence"
_SAME_SCHEME_PATTERN = 95.0
_OTHER_SCHEME_PATTERN = 80.0
_SAME_TEXT = 90.0
#: Word similarity is scaled into 0-90, below a crosswalk's own pattern or text.
_SIMILARITY_SCALE = 0.9
#: Factor on a sexual-offence target when the text does not read as sexual.
_SEXUAL_WITHOUT_WORDS = 0.5
#: F-beta weighting: how much more it counts that the target's words are all in the
#: local text than that all the local text's words are in the target.
_BETA = 1.5

_STOPWORDS = frozenset(
    "a an the of with and or to in on at by for is are was into upon up".split()
    + ["progress", "just", "occurred", "now", "etc"]
)
_NEGATIONS = frozenset({"no", "non", "not", "without"})
_CODE_LETTERS = frozenset({"pc", "vc", "hs", "wi", "bp", "hsc", "cvc", "wic"})
_TOKEN = re.compile(r"\d+(?:\.\d+)?[a-z]?(?![a-z])|[a-z]+")


@dataclass(frozen=True)
class Suggestion:
    """A proposed NIBRS code or call category for a local code, with how it was found."""

    #: A NIBRS offence code, or ``"none"`` (not a criminal offence; also for calls).
    nibrs_code: str
    name: str
    #: 0-100; higher is more likely.
    score: float
    reason: str
    #: The call-for-service category (``alarm`` ...) proposed instead of an offence.
    call_category: str | None = None

    @property
    def target(self) -> str:
        """What to write in the crosswalk: a NIBRS code, ``none`` or ``call:<category>``."""
        if self.call_category is not None:
            return CALL_PREFIX + self.call_category
        return self.nibrs_code


@dataclass(frozen=True, slots=True)
class _Candidate:
    tokens: tuple[str, ...]
    target: str
    reason: str


@cache
def target_names() -> Mapping[str, str]:
    """Return every target a suggestion can name, with its name.

    Returns
    -------
    Mapping[str, str]
        NIBRS codes, ``none`` and ``call:<category>`` to their names.
    """
    names = {code: o.name for code, o in nibrs_offences().items()}
    names[NOT_A_CRIME] = _NOT_A_CRIME_NAME
    for code, cat in call_categories().items():
        names[CALL_PREFIX + code] = f"call for service: {cat.name}"
    return names


def _suggestion(target: str, score: float, reason: str) -> Suggestion:
    name = target_names()[target]
    if target.startswith(CALL_PREFIX):
        return Suggestion(NOT_A_CRIME, name, score, reason, target[len(CALL_PREFIX) :])
    return Suggestion(target, name, score, reason)


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


# -- reading local text as police vocabulary --------------------------------------------
@dataclass(frozen=True)
class _Vocabulary:
    phrases: tuple[tuple[re.Pattern[str], str], ...]
    abbreviations: Mapping[str, str]
    statutes: Mapping[str, str]
    synonyms: Mapping[str, str]


@cache
def _vocabulary() -> _Vocabulary:
    path = resources.files("crossbeat.taxonomy") / "data" / "suggest_vocabulary.toml"
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    abbreviations = {k.lower(): v.lower() for k, v in raw.get("abbreviations", {}).items()}
    phrases = tuple(
        (
            re.compile(
                r"(?<![a-z0-9])" + re.escape(k) + ("" if k.endswith("/") else r"(?![a-z0-9&/])")
            ),
            f" {v} ",
        )
        for k, v in sorted(abbreviations.items(), key=lambda kv: -len(kv[0]))
        if not k.isalnum()
    )
    return _Vocabulary(
        phrases=phrases,
        abbreviations={k: v for k, v in abbreviations.items() if k.isalnum()},
        statutes={k.lower(): v.lower() for k, v in raw.get("statutes", {}).items()},
        synonyms={k.lower(): v.lower() for k, v in raw.get("synonyms", {}).items()},
    )


def _statute(number: str, after: str, vocab: _Vocabulary) -> str | None:
    """Return what a statute number means: its sub-section first (647(F)), then itself."""
    if len(after) == 1 and after.isalpha():
        found = vocab.statutes.get(number + after)
        if found:
            return found
    return vocab.statutes.get(number) or vocab.statutes.get(
        number.rstrip("abcdefghijklmnopqrstuvwxyz")
    )


def _stem(token: str) -> str:
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 4 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def _fold(token: str, vocab: _Vocabulary) -> str:
    token = vocab.synonyms.get(token, token)
    stem = _stem(token)
    return vocab.synonyms.get(stem, stem)


@lru_cache(maxsize=4096)
def read_words(text: str) -> tuple[str, ...]:
    """Return the words of a local call type or offence text, read as police vocabulary.

    Abbreviations are expanded, statute numbers (with code letters, or beside words)
    replaced by their meaning, synonyms folded, plurals stemmed, negated words and
    stop words dropped.

    Examples
    --------
    >>> read_words("BURG RES")
    ('burglary', 'residence')
    >>> read_words("ASSAULT - NO WEAPON")
    ('assault',)
    >>> read_words("459 PC")
    ('burglary',)
    """
    vocab = _vocabulary()
    low = f" {text.lower()} "
    for pattern, expansion in vocab.phrases:
        low = pattern.sub(expansion, low)
    raw = _TOKEN.findall(low)
    # A number is read as a statute when the text names a code (459 PC, 11352(A)HS) or
    # has words besides it (415 FAMILY); a bare number may be another scheme's code.
    statutory = any(t in _CODE_LETTERS or (t.isalpha() and len(t) > 1) for t in raw)
    words: list[str] = []
    for i, token in enumerate(raw):
        if token[:1].isdigit():
            meaning = _statute(token, raw[i + 1] if i + 1 < len(raw) else "", vocab)
            if meaning and statutory:
                words.extend(_TOKEN.findall(meaning))
            elif token == "911":
                words.append(token)
            continue
        if token in _CODE_LETTERS or len(token) == 1:
            continue  # code letters, and sub-section letters such as the (A) of 647(A)
        words.extend(_TOKEN.findall(vocab.abbreviations.get(token, token)))
    out: list[str] = []
    skip = False
    for word in words:
        if word in _NEGATIONS:
            skip = True
            continue
        if word in _STOPWORDS:
            continue
        if skip:
            skip = False
            continue
        out.append(_fold(word, vocab))
    return tuple(dict.fromkeys(out))


# -- the candidates and their word weights ---------------------------------------------
@dataclass(frozen=True)
class _Index:
    candidates: tuple[_Candidate, ...]
    weights: Mapping[str, float]


def _target_of(nibrs: str, call: str | None) -> str:
    return CALL_PREFIX + call if call else nibrs


@lru_cache(maxsize=8)
def _index(files: tuple[tuple[str, Path, int], ...]) -> _Index:
    # ``files`` (scheme, path, mtime) only keys the cache; the crosswalks themselves
    # come from load_crosswalk's own cache.
    texts: list[tuple[str, str, str]] = []
    for o in nibrs_offences().values():
        # "Destruction/Damage/Vandalism of Property": the whole name and each part.
        parts = [o.name, *(p for p in o.name.split("/") if "/" in o.name)]
        texts += [(p, o.code, f"NIBRS offence name {o.name!r}") for p in parts]
    for code, terms in suggest_terms().items():
        name = target_names()[code]
        texts += [(t, code, f"common term {t!r} for {name}") for t in terms]
    for code, cat in call_categories().items():
        target = CALL_PREFIX + code
        texts.append((cat.name, target, f"call category {cat.name!r}"))
        texts += [
            (t, target, f"common term {t!r} for call category {cat.name!r}") for t in cat.terms
        ]
    for scheme, path, _ in files:
        cw = load_crosswalk(scheme, [path.parent])
        for rule in cw.rules:
            if rule.is_pattern:
                continue
            target = _target_of(rule.nibrs, rule.call_category)
            label = f"{scheme} {rule.local!r}" + (f" ({rule.name})" if rule.name else "")
            reason = f"similar to {label}, mapped to {target}"
            for text in (rule.local, rule.name):
                if any(c.isalpha() for c in text):
                    texts.append((text, target, reason))
    candidates = []
    targets_of: dict[str, set[str]] = defaultdict(set)
    for text, target, reason in texts:
        tokens = read_words(text)
        if tokens:
            candidates.append(_Candidate(tokens, target, reason))
            for token in tokens:
                targets_of[token].add(target)
    n = len({c.target for c in candidates})
    weights = {t: math.log(1 + n / len(ts)) for t, ts in targets_of.items()}
    return _Index(tuple(candidates), weights)


def _file_key(extra_dirs: Sequence[Path]) -> tuple[tuple[str, Path, int], ...]:
    return tuple(
        (scheme, path, path.stat().st_mtime_ns)
        for scheme, path in available_crosswalks(extra_dirs).items()
    )


def _same_word(target: str, query: str) -> bool:
    if target == query:
        return True
    # A truncated word ("resid", "burgl") and a misspelt one ("burglery").
    if len(query) >= 4 and target.startswith(query):
        return True
    return len(query) >= 5 and len(target) >= 5 and fuzz.ratio(target, query) >= 88


def _similarity(query: tuple[str, ...], cand: _Candidate, weights: Mapping[str, float]) -> float:
    default = 1.0
    matched_c = [t for t in cand.tokens if any(_same_word(t, q) for q in query)]
    if not matched_c:
        return 0.0
    matched_q = [q for q in query if any(_same_word(t, q) for t in cand.tokens)]
    recall = sum(weights.get(t, default) for t in matched_c) / sum(
        weights.get(t, default) for t in cand.tokens
    )
    precision = sum(weights.get(q, default) for q in matched_q) / sum(
        weights.get(q, default) for q in query
    )
    b2 = _BETA * _BETA
    return (1 + b2) * precision * recall / (b2 * precision + recall)


def _reads_sexual(text: str, words: tuple[str, ...]) -> bool:
    found = keyword_sensitivity(text) | keyword_sensitivity(" ".join(words))
    return Sensitivity.SEXUAL_OFFENCE in found


def suggest(
    local_code: str,
    description: str | None = None,
    *,
    scheme: str | None = None,
    limit: int = 5,
    extra_dirs: Sequence[Path] = (),
    min_score: float = 50.0,
    ignore_schemes: Collection[str] = (),
) -> list[Suggestion]:
    """Propose NIBRS codes or call categories for a local code: never applied.

    Parameters
    ----------
    local_code
        The unmapped local code (or statute text, or CAD call type).
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
    ignore_schemes
        Crosswalks not to consult, e.g. to measure the suggestions for a scheme's texts
        without the answers its own crosswalk holds.

    Returns
    -------
    list[Suggestion]
        At most ``limit`` suggestions, one per target, best first.

    Examples
    --------
    >>> suggest("459 PC BURGLARY GARAGE", scheme="sacramento-statute")[0].nibrs_code
    '220'
    >>> suggest("STOLEN VEHICLE")[0].nibrs_code
    '240'
    >>> suggest("WELFARE CHECK")[0].target
    'call:welfare_check'
    """
    best: dict[str, Suggestion] = {}

    def offer(target: str, score: float, reason: str) -> None:
        if score >= min_score and (target not in best or score > best[target].score):
            best[target] = _suggestion(target, round(score, 1), reason)

    code_text = local_code.strip()
    if code_text.upper() in nibrs_offences():
        offer(code_text.upper(), 100.0, "the local code is this NIBRS code")

    files = tuple(f for f in _file_key(extra_dirs) if f[0] not in ignore_schemes)
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
            target = _target_of(rule.nibrs, rule.call_category)
            if rule.is_pattern:
                score = _SAME_SCHEME_PATTERN if name == scheme else _OTHER_SCHEME_PATTERN
                offer(target, score, f"matches {name} pattern {rule.local!r}")
            else:
                offer(target, _SAME_TEXT, f"{name} maps the same text {rule.local!r}")

    text = " ".join(t for t in (code_text, description) if t)
    query = read_words(text)
    if query:
        index = _index(files)
        sexual = _reads_sexual(text, query)
        sexual_codes = {
            c for c, o in nibrs_offences().items() if Sensitivity.SEXUAL_OFFENCE in o.sensitivity
        }
        for cand in index.candidates:
            score = _similarity(query, cand, index.weights) * 100 * _SIMILARITY_SCALE
            if cand.target in sexual_codes and not sexual:
                score *= _SEXUAL_WITHOUT_WORDS
            offer(cand.target, score, cand.reason)

    ranked = sorted(best.values(), key=lambda s: (-s.score, s.target))
    return ranked[: max(limit, 0)]
