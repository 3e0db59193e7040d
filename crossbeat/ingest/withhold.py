"""Keeping personal values out of the reasons a row was quarantined.

Quarantine reasons stay readable in the database (the operator needs them, and they
are listed without the key), so they must never contain a person's name, an
address or a narrative. Reasons name the column and may quote the bad value; a
value is withheld when it is the value of a personal column of the row (person
names, narrative, full address or its parts). A record whose fields do not line up
with the header (it has read problems) may hold any of these in any column, so all
of its values are withheld. The raw record itself is kept sealed
(:mod:`crossbeat.vault.quarantine`), so the operator still sees every value through
``crossbeat quarantine list``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from crossbeat.ingest.normalise import nested_value
from crossbeat.ingest.profile import Profile
from crossbeat.ingest.readers import RawRecord

#: What replaces a withheld value in a reason.
WITHHELD = "<withheld: personal data>"
#: Shorter values are withheld only where a reason quotes them exactly, so that a
#: two-letter name cannot blank out words of the message.
_EMBEDDED_MIN = 4


def personal_columns(profile: Profile) -> tuple[str, ...]:
    """Return the columns of a profile that hold personal data (names, narrative, address)."""
    loc = profile.location
    names = [p.name for p in profile.persons if p.name]
    cols = [*names, profile.narrative, loc.address, *loc.address_parts]
    return tuple(dict.fromkeys(c for c in cols if c))


def withheld_values(profile: Profile, rec: RawRecord) -> list[str]:
    """Return the values of a record that no reason may quote.

    Parameters
    ----------
    profile
        The profile reading the record.
    rec
        The record as read.

    Returns
    -------
    list[str]
        The values of its personal columns; every value when the record has read
        problems (its fields may not line up with the header).
    """
    if rec.problems:
        return [v for v in rec.fields.values() if v]
    found = []
    for column in personal_columns(profile):
        value = rec.fields.get(column) if column in rec.fields else nested_value(rec.fields, column)
        if value:
            found.append(value)
    return found


def withhold_personal(reasons: Sequence[str], values: Iterable[str]) -> tuple[str, ...]:
    """Return the reasons with every quoted or embedded personal value replaced.

    Parameters
    ----------
    reasons
        The reasons a record was rejected.
    values
        Values that must not appear (:func:`withheld_values`).

    Returns
    -------
    tuple[str, ...]
        The reasons, each occurrence of a value (quoted as ``repr`` does, or, for
        values of at least 4 characters, anywhere) replaced by :data:`WITHHELD`.

    Examples
    --------
    >>> withhold_personal(["occurred_from: column 'd': 'Ann Lee' is not a valid date"], ["Ann Lee"])
    ("occurred_from: column 'd': <withheld: personal data> is not a valid date",)
    >>> withhold_personal(["column 'x': 'Al' is not a number; also bad"], ["Al"])
    ("column 'x': <withheld: personal data> is not a number; also bad",)
    """
    forms: set[str] = set()
    for value in values:
        for text in {value, value.strip()}:
            if not text.strip():
                continue
            forms.add(repr(text))
            if len(text.strip()) >= _EMBEDDED_MIN:
                forms.update({text, repr(text)[1:-1]})
    if not forms:
        return tuple(reasons)
    ordered = sorted(forms, key=len, reverse=True)
    out = []
    for reason in reasons:
        for form in ordered:
            if form in reason:
                reason = reason.replace(form, WITHHELD)
        out.append(reason)
    return tuple(out)
