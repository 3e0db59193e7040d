"""Calls for service: the small, documented set of non-offence call categories.

CAD (computer-aided dispatch) exports carry call types that are not offences: alarms,
prowlers, welfare checks, traffic stops, collisions. A crosswalk maps such a local
code to one of the categories of ``data/call_categories.csv`` (``call = "alarm"``)
instead of a NIBRS offence, so that a CAD feed ingests honestly: the record is
mapped (not "unmapped"), is not a crime (``crime_against`` is ``not_a_crime``) and
carries its call category. See ``docs/taxonomy.md``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from crossbeat.taxonomy.nibrs import TaxonomyError

#: Prefix of a call category where a target may also be a NIBRS code
#: (``call:alarm`` in the labelled list and in sharing offence tokens).
CALL_PREFIX = "call:"

_CODE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class CallCategory:
    """One non-offence call-for-service category."""

    code: str
    name: str
    description: str
    #: Everyday words for the category, used only to suggest it for a local call type.
    terms: tuple[str, ...]


@cache
def call_categories() -> Mapping[str, CallCategory]:
    """Return the call-for-service categories, keyed by code (``alarm``, ``noise`` ...).

    Returns
    -------
    Mapping[str, CallCategory]
        A read-only mapping in file order.

    Raises
    ------
    TaxonomyError
        When the shipped table is malformed (bad or duplicate code, no name).

    Examples
    --------
    >>> call_categories()["welfare_check"].name
    'Welfare check'
    """
    path = Path(str(resources.files("crossbeat.taxonomy") / "data" / "call_categories.csv"))
    table: dict[str, CallCategory] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            code = (row.get("code") or "").strip()
            name = (row.get("name") or "").strip()
            if not _CODE.match(code) or not name or code in table:
                raise TaxonomyError(
                    f"call_categories.csv line {line}: need a new lower-case code and a name"
                )
            terms = tuple(t.strip() for t in (row.get("terms") or "").split(";") if t.strip())
            table[code] = CallCategory(code, name, (row.get("description") or "").strip(), terms)
    return MappingProxyType(table)


def is_call_target(target: str) -> bool:
    """Return whether a target string names a call category (``call:alarm``)."""
    return target.startswith(CALL_PREFIX)
