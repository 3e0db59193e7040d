"""Sensitivity flags from free text: one rule set in two files.

Offence codes imply flags through the NIBRS table and the crosswalks; this module
adds the flags that narratives, descriptions, statute text and other free-text columns
reveal. Two kinds of rule work together:

* ``data/sensitive_keywords.toml``: regular expressions for codes, statute numbers and
  abbreviations (``273.5 PC``, ``D.V.``, ``MNR``);
* ``data/sensitive_lexicon.toml``: words, lemmatised, with relationship / violence /
  body-part pairs, ages and negation (:mod:`crossbeat.taxonomy.narrative`);
* ``data/narrative_model.npz``: a linear model over static word embeddings that reads
  narratives by meaning and catches wordings no rule names
  (:mod:`crossbeat.taxonomy.narrative_model`).

All three carry the same version (:func:`rules_version`), bumped whenever one changes.
False positives are the safe error here: a flag only restricts how a record is shared.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from crossbeat.model import Sensitivity
from crossbeat.taxonomy import narrative
from crossbeat.taxonomy.narrative import lexicon_sensitivity
from crossbeat.taxonomy.narrative_model import model, model_sensitivity
from crossbeat.taxonomy.nibrs import TaxonomyError

_KEYWORDS = resources.files("crossbeat.taxonomy") / "data" / "sensitive_keywords.toml"


@cache
def _raw_keywords() -> dict[str, Any]:
    with _KEYWORDS.open("rb") as fh:
        return tomllib.load(fh)


@cache
def rules_version(check_model: bool = True) -> str:
    """Return the version of the sensitivity rules (keyword file, lexicon and model).

    Parameters
    ----------
    check_model
        Also require the narrative model to carry the version (False only while the
        model is being refitted for a new version).

    Raises
    ------
    TaxonomyError
        When the files carry different versions (one was changed without the others
        being bumped with it, or the model was not refitted).
    """
    keywords = str(_raw_keywords().get("version", ""))
    words = narrative.lexicon_version()
    if not keywords or keywords != words:
        raise TaxonomyError(
            f"sensitivity rules: sensitive_keywords.toml has version {keywords!r} but "
            f"sensitive_lexicon.toml has {words!r}; they are one rule set, give both the "
            "same new version"
        )
    if check_model and model().version != keywords:
        raise TaxonomyError(
            f"sensitivity rules: narrative_model.npz was fitted for version "
            f"{model().version!r}, the rule files are {keywords!r}; refit it with "
            "python -m crossbeat.taxonomy.narrative_model"
        )
    return keywords


@cache
def rules_fingerprint() -> str:
    """Return a key of the sensitivity rules as loaded: their version and their content.

    The content is hashed too, so that an edited keyword list or lexicon whose version
    was not bumped still counts as a change (flags derived under it are re-derived,
    :mod:`crossbeat.sharing.flags`).
    """
    digest = hashlib.sha256(rules_version().encode())
    for source in (_KEYWORDS, narrative._LEXICON):
        digest.update(source.read_bytes())
    return f"{rules_version()}:{digest.hexdigest()[:12]}"


def reload_rules() -> None:
    """Forget the loaded sensitivity rules: the next use reads the two files again.

    A long-running process calls this after the keyword list or the lexicon changed;
    the flags served by reads are then re-derived under the new rules before any
    record is served (:mod:`crossbeat.sharing.flags`).
    """
    for fn in (_raw_keywords, rules_version, rules_fingerprint, keyword_rules, _combined_rules):
        fn.cache_clear()
    narrative.lexicon.cache_clear()
    narrative.lexicon_version.cache_clear()
    narrative.misspelt.cache_clear()


@cache
def keyword_rules() -> Mapping[Sensitivity, tuple[re.Pattern[str], ...]]:
    """Return the compiled keyword rules, per sensitivity flag.

    Returns
    -------
    Mapping[Sensitivity, tuple[re.Pattern[str], ...]]
        Case-insensitive patterns; a text matching any of a flag's patterns sets it.

    Raises
    ------
    TaxonomyError
        When the keyword file names an unknown flag or holds a bad pattern.
    """
    raw = _raw_keywords()
    rules: dict[Sensitivity, tuple[re.Pattern[str], ...]] = {}
    problems: list[str] = []
    for name, spec in raw.get("flags", {}).items():
        try:
            flag = Sensitivity(name)
        except ValueError:
            problems.append(f"unknown flag {name!r}")
            continue
        compiled = []
        for pattern in spec.get("patterns", []):
            try:
                compiled.append(re.compile(pattern, re.IGNORECASE))
            except re.error as exc:
                problems.append(f"flags.{name}: bad pattern {pattern!r}: {exc}")
        rules[flag] = tuple(compiled)
    if problems:
        raise TaxonomyError("sensitive_keywords.toml: " + "; ".join(problems))
    return MappingProxyType(rules)


_ESCAPES = re.compile(r"\\.")


@cache
def _combined_rules() -> tuple[tuple[Sensitivity, re.Pattern[str]], ...]:
    """Each flag's patterns as one alternation: one search per flag, not per pattern.

    The patterns are written in capitals, so they are matched case-sensitively against
    the upper-cased text, which is much faster than ``re.IGNORECASE``. A pattern with a
    lower-case letter (outside an escape such as ``\\b``) keeps ``re.IGNORECASE``.
    """
    out = []
    for flag, patterns in keyword_rules().items():
        if not patterns:
            continue
        joined = "|".join(f"(?:{p.pattern})" for p in patterns)
        lower = any(c.islower() for c in _ESCAPES.sub("", joined))
        out.append((flag, re.compile(joined, re.IGNORECASE if lower else 0)))
    return tuple(out)


def keyword_sensitivity(*texts: str | None, person_crime: bool = False) -> frozenset[Sensitivity]:
    """Return the sensitivity flags that the given free texts imply.

    Each text is checked on its own with the keyword patterns and the word lexicon
    (:func:`crossbeat.taxonomy.narrative.explain`). A narrative is read with
    :func:`narrative_sensitivity`, which adds the narrative model.

    Parameters
    ----------
    *texts
        Free texts such as a narrative, an offence description or statute text; None
        and empty values are skipped.
    person_crime
        Whether the texts belong to an incident with an offence against a person: then
        any family or intimate relationship word marks possible domestic violence.

    Returns
    -------
    frozenset[Sensitivity]
        Every flag with at least one matching rule.

    Examples
    --------
    >>> sorted(keyword_sensitivity("273.5 PC CORPORAL INJURY ON SPOUSE"))
    [<Sensitivity.DOMESTIC_VIOLENCE: 'domestic_violence'>]
    >>> keyword_sensitivity("THEFT FROM CHILDREN'S STORE", None)
    frozenset()
    >>> sorted(keyword_sensitivity("groped the victim on the crowded platform"))
    [<Sensitivity.SEXUAL_OFFENCE: 'sexual_offence'>]
    """
    collapsed = [" ".join(t.split()) for t in texts if t and t.strip()]
    if not collapsed:
        return frozenset()
    found: set[Sensitivity] = set()
    upper = [text.upper() for text in collapsed]
    for flag, pattern in _combined_rules():
        if any(pattern.search(text) for text in upper):
            found.add(flag)
    for text in collapsed:
        found |= lexicon_sensitivity(text, person_crime=person_crime)
    return frozenset(found)


def narrative_sensitivity(
    text: str | None, *, person_crime: bool = False
) -> frozenset[Sensitivity]:
    """Return the sensitivity flags of a narrative: the rules, then the narrative model.

    The keyword patterns and the lexicon (:func:`keyword_sensitivity`) name wordings;
    when they flag nothing, the narrative model
    (:func:`crossbeat.taxonomy.narrative_model.model_sensitivity`) reads the text by
    meaning and catches wordings no rule names (issue #7). Offence codes and statute
    descriptions ("11350(A)HS POSS CNTRL SUBST") are not narratives: they are read by
    :func:`keyword_sensitivity` alone, the model was not fitted on them.

    Examples
    --------
    >>> sorted(narrative_sensitivity("He fondled a woman's leg on the late bus."))
    [<Sensitivity.SEXUAL_OFFENCE: 'sexual_offence'>]
    >>> narrative_sensitivity("Mother reported her car stolen from the drive overnight.")
    frozenset()
    """
    found = keyword_sensitivity(text, person_crime=person_crime)
    if found or not text:
        return found
    return model_sensitivity(" ".join(text.split()))
