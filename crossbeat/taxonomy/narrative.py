"""Sensitivity from free text by words: the lexicon in ``data/sensitive_lexicon.toml``.

Where the regular-expression rules of :mod:`crossbeat.taxonomy.sensitivity` look for
offence names and statute numbers in codes and descriptions, this module reads
narratives as words. The text is split into word tokens (hyphens split too, so
"ex-partner" is "ex partner"), each word is lemmatised with simplemma (dictionary
based, offline: its data ships in the wheel) and matched against a curated lexicon:

* cues that set a flag on their own ("groped", "exposed himself", "restraining order",
  "toddler", "informant" ...);
* cues that count only in pairs: a family or intimate relationship ("ex-partner",
  "son", "stepfather") near violence or a row ("punched", "struck", "argument") is
  domestic violence; a touching verb before an intimate body part or a sexual manner
  ("touched her thigh", "grabbed her bottom") or exposing verbs before "himself" or
  the genitals are a sexual offence; filming near a private scene ("filmed her in the
  changing room") is voyeurism;
* ages below 18 ("15-year-old", "aged 14", "boy (12)", "daughter, 9,") mark a juvenile.

A misspelt word ("boyfreind", "girlfirend") that is no English word is read as the
lexicon word one typing slip away (:func:`misspelt`).

Generic cues ("domestic", "children", "no injuries") can be negated by a negator
shortly before them in the same clause ("not a domestic", "no children present"); acts,
relationships and ages never are, so that a wrong negation cannot hide a victim.
Phrases such as "domestic burglary", "minor injury" or "hit and run" cancel the cue
word inside them.

Terms may carry slots (``take {poss} passport``: "took her passport", "takes my
passport" ...; :func:`expand`), and a one-word term also matches the inflections of its
lemma ("threw": "throws"). A relationship near control of a person ("monitors her phone",
"confined her to the house") is domestic abuse. A violence verb whose object is a thing
("hit my mother car", ``thing_verbs`` / ``things``) is no violence.

Two safer defaults: a relationship word in a code or short description (at most
``short_text_words`` words) marks domestic violence as the old keyword list did, unless
the text names a property event and no act ("Victim's husband's tools were stolen from
his van."); and a relationship word anywhere in the text of an offence against a person
(``person_crime``) marks possible domestic violence.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import simplemma
from rapidfuzz.distance import OSA

from crossbeat.model import Sensitivity
from crossbeat.taxonomy.nibrs import TaxonomyError

_LEXICON = resources.files("crossbeat.taxonomy") / "data" / "sensitive_lexicon.toml"

#: Kinds of cue that are a family, household or intimate relationship.
RELATIONSHIP_KINDS = frozenset({"intimate", "former", "family"})
#: Relationship kinds that, alone in a short text (a code or description), mark DV.
_SHORT_TEXT_KINDS = frozenset({"intimate", "former"})

_WORD = re.compile(r"[a-z0-9\u00c0-\u024f]+(?:'[a-z]+|')?|[.;:!?,()]")
#: Plural possessives that name goods, not a young person ("children's shoes").
_GOODS = frozenset({"children", "kids", "babies", "childrens"})
_PUNCT = frozenset(".;:!?,()")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})

# Ages: "15-year-old", "15 yrs old", "15yo", "aged 15", "age: 15", "boy (15)",
# "daughter, 15," and babies in months or weeks.
_AGE_PATTERNS = (
    re.compile(r"(?<![\d.:/])(\d{1,3})\s*-?\s*(?:years?|yrs?|yr|y)\s*-?\s*(?:of\s+age|olds?)\b"),
    re.compile(r"(?<![\d.:/])(\d{1,3})\s*(?:yo|y/o|y\.o\.?|yoa|yob)(?:[fm]|/[fm])?(?![a-z])"),
    re.compile(r"\baged?\s*:?\s*(?:approx\.?|approximately|about|around|c\.|~)?\s*(\d{1,3})"
               r"(?![\d:.]\d)\b"),
    re.compile(r"\b(?:approx\.?|approximately|about|around|est\.?|estimated|roughly|c\.|~)\s*"
               r"(\d{1,2})(?:\s*(?:-|to)\s*\d{1,2})?\s*(?:yrs?|years?|y/?o)\b"),
    re.compile(r"\b(?:subj|subject|victim|vic|v|susp|suspect|juv|child|son|daughter|boy|girl|"
               r"he|she|who)\s+(?:is|was)\s+(?:only\s+)?(\d{1,2})\b(?!\s*(?:%|percent|[a-z]))"),
    re.compile(r"\b(?!section|subsection|para|paragraph|clause|item|code|count|unit|apt|flat|"
               r"room|article|rule|step|part|pc|vc|hs|wi|bp|pen|suite|no|number|bus|route|"
               r"line|platform|gate|exit|junction|car|door|floor|level|stop)[a-z][a-z0-9]*"
               r"\s*\(\s*(\d{1,2})\s*(?:yrs?|years?|yo|y/o)?\s*\)"),
    re.compile(r"\b[a-z]{2,}\s*,\s*(\d{1,2})\s*(?:,|\)|;|\.(?!\d)|$)"),
)  # fmt: skip
_DIGIT = re.compile(r"\d")
_INFANT_AGE = re.compile(r"\b\d{1,2}\s*-?\s*(?:months?|mos?|weeks?|wks?|days?)\s*-?\s*old\b")


@dataclass(frozen=True, slots=True)
class _Cue:
    name: str
    kind: str
    flags: frozenset[Sensitivity]
    negatable: bool


@dataclass(frozen=True, slots=True)
class _Pair:
    flag: Sensitivity
    first: frozenset[str]
    second: frozenset[str]
    window: int
    after: bool


@dataclass(frozen=True, slots=True)
class Token:
    """One word (or punctuation mark) of a text: its lower-case form and its lemma."""

    word: str
    lemma: str


@dataclass(frozen=True, slots=True)
class Hit:
    """One cue found in a text: which cue, where, and whether it is negated."""

    cue: str
    kind: str
    start: int
    end: int
    text: str
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Finding:
    """Why a flag was set: the flag and a short human-readable reason."""

    flag: Sensitivity
    reason: str


@dataclass(frozen=True)
class Lexicon:
    """The loaded lexicon: phrase index, negation words, except phrases and pair rules."""

    version: str
    index: Mapping[str, tuple[tuple[tuple[str, ...], _Cue], ...]]
    negators: frozenset[str]
    negation_window: int
    pseudo_negations: Mapping[str, tuple[tuple[str, ...], ...]]
    post_negations: Mapping[str, tuple[tuple[str, ...], ...]]
    clause_breaks: frozenset[str]
    excepts: Mapping[str, tuple[tuple[str, ...], ...]]
    pairs: tuple[_Pair, ...]
    short_text_words: int
    #: Cue kinds that name a property event ("stolen", "broken into"): a relationship
    #: word in a short text with one of these and no act is an owner or a reporter.
    owner_kinds: frozenset[str]
    #: Cue kinds whose presence keeps the short-text rule on despite a property event.
    act_kinds: frozenset[str]
    #: Verbs (lemmas) that are no violence when their object is a thing ("hit my car").
    thing_verbs: frozenset[str]
    #: Words skipped between such a verb and its object ("my", "the", "mother").
    object_skip: frozenset[str]
    #: Things a violence verb can hit without hurting anyone ("car", "fence").
    things: frozenset[str]
    cues: Mapping[str, _Cue]
    #: Single-word terms of five or more letters, by first letter: for misspellings.
    fuzzy: Mapping[str, tuple[str, ...]]


@lru_cache(maxsize=65536)
def lemma(word: str) -> str:
    """Return the English lemma of a lower-case word (the word itself if unknown)."""
    if not word.isalpha():
        return word
    return simplemma.lemmatize(word, lang="en")


def tokenize(text: str) -> list[Token]:
    """Split a text into lower-case word and punctuation tokens with their lemmas.

    Hyphens and slashes split words; a possessive ``'s`` is dropped ("son's" is "son");
    "didn't" becomes "didnt".

    Examples
    --------
    >>> [t.word for t in tokenize("Her ex-partner's car; he didn't stop.")]
    ['her', 'ex', 'partner', 'car', ';', 'he', 'didnt', 'stop', '.']
    >>> tokenize("groped")[0].lemma
    'grope'
    """
    out: list[Token] = []
    for m in _WORD.finditer(text.translate(_APOSTROPHES).lower()):
        word = m.group()
        if "'" in word:
            head, _, tail = word.partition("'")
            # "children's" and "kids'" name goods ("children's shoes", "the kids'
            # trampoline"), not a child: they become "childrens", which is no juvenile
            # cue. "a girl's phone" or "the child's scooter" names a young victim and
            # stays "girl", "child".
            if tail in ("s", "") and head in _GOODS:
                word = "childrens"
            else:
                word = head if tail in ("s", "") else head + tail
        out.append(Token(word, word if word in _PUNCT else lemma(word)))
    return out


def _words(phrase: str) -> tuple[str, ...]:
    return tuple(t.word for t in tokenize(phrase))


_SLOT = re.compile(r"\{(\w+)\}")


def expand(term: str, slots: Mapping[str, Sequence[str]]) -> list[str]:
    """Expand the ``{slot}`` placeholders of a lexicon term into every variant.

    ``[settings.slots]`` names the fillers: ``{obj}`` stands for "her", "him", "me",
    "the victim" ..., ``{poss}`` for "her", "his", "my", "the victim's" ... so that one
    term covers every person the act is done to.

    Raises
    ------
    TaxonomyError
        For a placeholder with no fillers.

    Examples
    --------
    >>> expand("take {poss} phone", {"poss": ["her", "my"]})
    ['take her phone', 'take my phone']
    """
    m = _SLOT.search(term)
    if m is None:
        return [term]
    fillers = slots.get(m.group(1))
    if not fillers:
        raise TaxonomyError(f"sensitive_lexicon.toml: no fillers for {{{m.group(1)}}} in {term!r}")
    out: list[str] = []
    for f in fillers:
        out += expand(term[: m.start()] + f + term[m.end() :], slots)
    return out


def _matches(tokens: Sequence[Token], i: int, words: tuple[str, ...]) -> bool:
    if i + len(words) > len(tokens):
        return False
    for k, w in enumerate(words):
        tok = tokens[i + k]
        if w != tok.word and w != tok.lemma:
            return False
    return True


def _phrase_index(
    phrases: Iterable[tuple[str, ...]],
) -> Mapping[str, tuple[tuple[str, ...], ...]]:
    firsts: dict[str, list[tuple[str, ...]]] = {}
    for p in phrases:
        firsts.setdefault(p[0], []).append(p)
    return {k: tuple(v) for k, v in firsts.items()}


def _spans(
    tokens: Sequence[Token], firsts: Mapping[str, tuple[tuple[str, ...], ...]]
) -> list[tuple[int, int]]:
    spans = []
    for i, tok in enumerate(tokens):
        cands = firsts.get(tok.word, ())
        if tok.lemma != tok.word:
            cands = cands + firsts.get(tok.lemma, ())
        for p in cands:
            if _matches(tokens, i, p):
                spans.append((i, i + len(p)))
    return spans


@cache
def lexicon_version() -> str:
    """Return the version ``sensitive_lexicon.toml`` declares, without building the lexicon.

    :func:`lexicon` gives the same version, but building it lemmatises every term (a
    second or two per process): the rules' fingerprint, which every ingest computes,
    needs the version only (issue #9).
    """
    with _LEXICON.open("rb") as fh:
        return str(tomllib.load(fh).get("version", ""))


@cache
def lexicon() -> Lexicon:
    """Load and check ``sensitive_lexicon.toml`` (once per process).

    Raises
    ------
    TaxonomyError
        When the file names an unknown flag or cue kind, or a pair rule is malformed.
    """
    with _LEXICON.open("rb") as fh:
        raw: dict[str, Any] = tomllib.load(fh)
    problems: list[str] = []
    settings = raw.get("settings", {})
    slots = {k: list(v) for k, v in settings.get("slots", {}).items()}
    literal = frozenset(settings.get("literal_terms", []))
    index: dict[str, list[tuple[tuple[str, ...], _Cue]]] = {}
    kinds: set[str] = set()
    for name, spec in raw.get("cues", {}).items():
        kind = spec.get("kind", "")
        flags: set[Sensitivity] = set()
        for f in spec.get("flags", []):
            try:
                flags.add(Sensitivity(f))
            except ValueError:
                problems.append(f"cues.{name}: unknown flag {f!r}")
        if not kind:
            problems.append(f"cues.{name}: no kind")
        kinds.add(kind)
        cue = _Cue(name, kind, frozenset(flags), bool(spec.get("negatable", False)))
        for term in spec.get("terms", []):
            try:
                variants = expand(term, slots)
            except TaxonomyError as exc:
                problems.append(f"cues.{name}: {exc}")
                continue
            for variant in variants:
                words = _words(variant)
                if not words:
                    problems.append(f"cues.{name}: empty term {term!r}")
                    continue
                index.setdefault(words[0], []).append((words, cue))
                # A one-word term also stands for its lemma, so that "threw" matches
                # "throws" and "stole" matches "steals" (not for `literal_terms`, whose
                # lemma means something else: "presents" is not "present").
                base = lemma(words[0])
                if len(words) == 1 and base != words[0] and words[0] not in literal:
                    index.setdefault(base, []).append(((base,), cue))
    pairs = []
    for n, spec in enumerate(raw.get("pairs", [])):
        try:
            flag = Sensitivity(spec["flag"])
            first = frozenset([spec["first"]] if isinstance(spec["first"], str) else spec["first"])
            second = frozenset(spec["second"])
            unknown = (first | second) - kinds
            if unknown:
                problems.append(f"pairs[{n}]: unknown cue kinds {sorted(unknown)}")
            pairs.append(_Pair(flag, first, second, int(spec["window"]), spec["order"] == "after"))
        except (KeyError, ValueError, TypeError) as exc:
            problems.append(f"pairs[{n}]: {exc!r}")
    if problems:
        raise TaxonomyError("sensitive_lexicon.toml: " + "; ".join(problems))
    return Lexicon(
        version=str(raw.get("version", "")),
        index={k: tuple(v) for k, v in index.items()},
        negators=frozenset(settings.get("negators", [])),
        negation_window=int(settings.get("negation_window", 4)),
        pseudo_negations=_phrase_index(_words(p) for p in settings.get("pseudo_negations", [])),
        post_negations=_phrase_index(_words(p) for p in settings.get("post_negations", [])),
        clause_breaks=frozenset(w for b in settings.get("clause_breaks", []) for w in _words(b)),
        excepts=_phrase_index(_words(p) for p in settings.get("except", [])),
        pairs=tuple(pairs),
        short_text_words=int(settings.get("short_text_words", 8)),
        owner_kinds=frozenset(settings.get("owner_kinds", [])),
        act_kinds=frozenset(settings.get("act_kinds", [])),
        thing_verbs=frozenset(settings.get("thing_verbs", [])),
        object_skip=frozenset(w for p in settings.get("object_skip", []) for w in _words(p)),
        things=frozenset(w for p in settings.get("things", []) for w in _words(p)),
        cues={c.name: c for entries in index.values() for _, c in entries},
        fuzzy=_fuzzy_index(index),
    )


def _fuzzy_index(
    index: Mapping[str, Sequence[tuple[tuple[str, ...], _Cue]]],
) -> Mapping[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for first, entries in index.items():
        if len(first) >= 5 and first.isalpha() and any(len(w) == 1 for w, _ in entries):
            out.setdefault(first[0], []).append(first)
    return {k: tuple(sorted(v)) for k, v in out.items()}


@lru_cache(maxsize=65536)
def misspelt(word: str) -> str:
    """Return the lexicon word that ``word`` misspells, or ``""``.

    Only words of five or more letters that are neither lexicon words nor known English
    words (simplemma's dictionary) are compared, with the optimal string alignment
    distance (one insertion, deletion, substitution or swap of neighbours): "boyfreind"
    is "boyfriend", while "rapped" (a known word) is never "raped".
    """
    lex = lexicon()
    if len(word) < 5 or not word.isalpha() or word in lex.index:
        return ""
    if simplemma.is_known(word, lang="en"):
        return ""
    for term in lex.fuzzy.get(word[0], ()):
        if abs(len(term) - len(word)) <= 1 and OSA.distance(word, term, score_cutoff=1) <= 1:
            return term
    return ""


def find_cues(text: str, lex: Lexicon | None = None) -> tuple[list[Token], list[Hit]]:
    """Return the tokens of ``text`` and every lexicon cue in it, with negation marked.

    Cues inside a longer ``except`` phrase are dropped. Overlapping cues of the same
    kind keep only the longest.
    """
    lex = lex or lexicon()
    tokens = tokenize(text)
    raw: list[Hit] = []
    for i, tok in enumerate(tokens):
        cands = lex.index.get(tok.word, ())
        if tok.lemma != tok.word:
            cands = cands + lex.index.get(tok.lemma, ())
        if not cands:
            alias = misspelt(tok.word)
            for words, cue in lex.index.get(alias, ()) if alias else ():
                if len(words) == 1:
                    raw.append(Hit(cue.name, cue.kind, i, i + 1, tok.word, False))
        for words, cue in cands:
            if _matches(tokens, i, words):
                text_ = " ".join(t.word for t in tokens[i : i + len(words)])
                raw.append(Hit(cue.name, cue.kind, i, i + len(words), text_, False))
    if not raw:
        return tokens, []
    excepts = _spans(tokens, lex.excepts)
    raw = [
        h
        for h in raw
        if not any(s <= h.start and h.end <= e and (e - s) > (h.end - h.start) for s, e in excepts)
    ]
    if lex.thing_verbs:
        raw = [h for h in raw if not _hits_a_thing(h, tokens, lex)]
    # Longest match per (cue, start); one hit per (cue name, position).
    best: dict[tuple[str, int], Hit] = {}
    for h in raw:
        key = (h.cue, h.start)
        if key not in best or h.end > best[key].end:
            best[key] = h
    hits = sorted(best.values(), key=lambda h: (h.start, -h.end))
    cues = lex.cues
    if any(cues[h.cue].negatable for h in hits):
        pseudo = {k for s, e in _spans(tokens, lex.pseudo_negations) for k in range(s, e)}
        post = _spans(tokens, lex.post_negations)
        hits = [_negate(h, tokens, lex, pseudo, post) if cues[h.cue].negatable else h for h in hits]
    return tokens, hits


def _hits_a_thing(hit: Hit, tokens: Sequence[Token], lex: Lexicon) -> bool:
    """Whether a one-word violence cue has a thing, not a person, as its object.

    "hit my mother car", "struck the parked van", "kicked his brother's fence": the
    verb is followed, after at most three determiners, possessives or relationship
    words (``object_skip``), by a thing (``things``). "hit her with a bottle" keeps
    its violence: "her" is skipped, "with" is no thing.
    """
    if hit.kind != "violence" or hit.end - hit.start != 1:
        return False
    if (
        tokens[hit.start].lemma not in lex.thing_verbs
        and tokens[hit.start].word not in lex.thing_verbs
    ):
        return False
    j = hit.end
    skipped = 0
    while j < len(tokens) and skipped < 3 and tokens[j].word in lex.object_skip:
        j += 1
        skipped += 1
    if j >= len(tokens):
        return False
    tok = tokens[j]
    return tok.word in lex.things or tok.lemma in lex.things


def _negate(
    hit: Hit,
    tokens: Sequence[Token],
    lex: Lexicon,
    pseudo: set[int],
    post: list[tuple[int, int]],
) -> Hit:
    words = 0
    j = hit.start - 1
    while j >= 0 and words < lex.negation_window:
        tok = tokens[j]
        if tok.word in lex.clause_breaks:
            break
        if tok.word in lex.negators and j not in pseudo:
            return Hit(hit.cue, hit.kind, hit.start, hit.end, hit.text, True)
        words += 1
        j -= 1
    for s, _ in post:
        if hit.end <= s <= hit.end + 4 and not any(
            tokens[k].word in lex.clause_breaks for k in range(hit.end, s)
        ):
            return Hit(hit.cue, hit.kind, hit.start, hit.end, hit.text, True)
    return hit


def _ages(low: str) -> list[int]:
    if not _DIGIT.search(low):
        return []
    ages = []
    for pattern in _AGE_PATTERNS:
        ages += [int(m.group(1)) for m in pattern.finditer(low)]
    return ages


def _pair_match(pair: _Pair, hits: Sequence[Hit]) -> tuple[Hit, Hit] | None:
    """Return the first two live cues that satisfy a pair rule, or None."""
    seconds = [h for h in hits if h.kind in pair.second]
    for a in (h for h in hits if h.kind in pair.first):
        for b in seconds:
            if b.start == a.start or (pair.after and b.start < a.end):
                continue
            gap = b.start - a.end if b.start >= a.end else a.start - b.end
            if 0 <= gap <= pair.window:
                return a, b
    return None


def explain(text: str | None, *, person_crime: bool = False) -> list[Finding]:
    """Return every flag the lexicon sets for ``text``, each with the reason.

    Parameters
    ----------
    text
        A narrative, description or other free text (None or blank: no findings).
    person_crime
        Whether the text belongs to an offence against a person: then a relationship
        word anywhere marks possible domestic violence.

    Returns
    -------
    list[Finding]
        One finding per reason (a flag can appear several times).

    Examples
    --------
    >>> text = "She was punched by her ex-partner in their shared flat last night."
    >>> [f.reason for f in explain(text)]
    ["'ex partner'", "'ex partner' near 'punched'", "'ex' near 'partner'"]
    """
    if not text or not text.strip():
        return []
    lex = lexicon()
    tokens, hits = find_cues(text, lex)
    cues = lex.cues
    found: list[Finding] = []
    live = [h for h in hits if not h.negated]
    for h in live:
        for flag in cues[h.cue].flags:
            found.append(Finding(flag, repr(h.text)))
    for pair in lex.pairs:
        match = _pair_match(pair, live)
        if match is not None:
            found.append(Finding(pair.flag, f"{match[0].text!r} near {match[1].text!r}"))
    relations = [h for h in live if h.kind in RELATIONSHIP_KINDS]
    n_words = sum(1 for t in tokens if t.word not in _PUNCT)
    short = [h for h in relations if h.kind in _SHORT_TEXT_KINDS]
    # In a short text a partner word alone marks DV ("ASSAULT - HUSBAND"), unless the
    # text is about property and names no act: then the partner owns or reports it
    # ("Victim's husband's tools were stolen from his van.").
    owner_only = any(h.kind in lex.owner_kinds for h in live) and not any(
        h.kind in lex.act_kinds for h in live
    )
    if short and n_words <= lex.short_text_words and not owner_only:
        found.append(Finding(Sensitivity.DOMESTIC_VIOLENCE, f"{short[0].text!r} in a short text"))
    if relations and person_crime:
        found.append(
            Finding(
                Sensitivity.DOMESTIC_VIOLENCE, f"{relations[0].text!r} in a crime against a person"
            )
        )
    low = text.translate(_APOSTROPHES).lower()
    young = [a for a in _ages(low) if a < 18]
    if young:
        found.append(Finding(Sensitivity.JUVENILE, f"age {young[0]}"))
    elif _DIGIT.search(low) and _INFANT_AGE.search(low):
        found.append(Finding(Sensitivity.JUVENILE, "age in months, weeks or days"))
    return found


def lexicon_sensitivity(text: str | None, *, person_crime: bool = False) -> frozenset[Sensitivity]:
    """Return the flags the lexicon sets for ``text`` (see :func:`explain`).

    Examples
    --------
    >>> sorted(lexicon_sensitivity("son, 34, struck his mother"))
    [<Sensitivity.DOMESTIC_VIOLENCE: 'domestic_violence'>]
    >>> lexicon_sensitivity("mother reported her car stolen")
    frozenset()
    """
    return frozenset(f.flag for f in explain(text, person_crime=person_crime))
