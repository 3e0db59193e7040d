"""Sensitivity flags from free text: the keyword rules in ``data/sensitive_keywords.toml``.

Offence codes imply flags through the NIBRS table and the crosswalks; this module
adds the flags that descriptions, statute text and other free-text columns reveal.
False positives are the safe error here: a flag only restricts how a record is shared.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from crossbeat.model import Sensitivity
from crossbeat.taxonomy.nibrs import TaxonomyError

_KEYWORDS = resources.files("crossbeat.taxonomy") / "data" / "sensitive_keywords.toml"


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
    with _KEYWORDS.open("rb") as fh:
        raw: dict[str, Any] = tomllib.load(fh)
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


def keyword_sensitivity(*texts: str | None) -> frozenset[Sensitivity]:
    """Return the sensitivity flags that keywords in the given texts imply.

    Parameters
    ----------
    *texts
        Free texts such as an offence description or statute text; None and empty
        values are skipped.

    Returns
    -------
    frozenset[Sensitivity]
        Every flag with at least one matching keyword rule.

    Examples
    --------
    >>> sorted(keyword_sensitivity("273.5 PC CORPORAL INJURY ON SPOUSE"))
    [<Sensitivity.DOMESTIC_VIOLENCE: 'domestic_violence'>]
    >>> keyword_sensitivity("THEFT FROM CHILDREN'S STORE", None)
    frozenset()
    """
    collapsed = [" ".join(t.split()) for t in texts if t and t.strip()]
    if not collapsed:
        return frozenset()
    found = set()
    for flag, patterns in keyword_rules().items():
        if any(p.search(text) for p in patterns for text in collapsed):
            found.add(flag)
    return frozenset(found)
