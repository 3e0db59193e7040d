"""Generalise street addresses to hundred blocks.

A full address identifies a household (and so, often, a victim); the shareable form
is the hundred block: ``4851 KOKOMO DR`` becomes ``4800 BLOCK KOKOMO DR``. Forms that
are already general are kept: intersections (``SAN JUAN RD / EL CENTRO RD``), blocks
generalised by the source (``050XX W SUPERIOR ST``, ``1200 BLOCK OF MAIN ST``) and
police.uk's snapped map points (``On or near Baker Street``). Unit and apartment
designators are dropped. The full address as received is kept only as personal data.
"""

from __future__ import annotations

import re

_SPACE = re.compile(r"\s+")
# "On or near ..." (police.uk), already anonymised by the source.
_ON_OR_NEAR = re.compile(r"^\s*on or near\b", re.IGNORECASE)
# Already-generalised forms: 050XX, 12XX, 1200 BLOCK (OF) ...
_GENERALISED = re.compile(r"^\s*\d*X{2,}\b|^\s*\d+\s+BLOCK\b|\bBLOCK OF\b", re.IGNORECASE)
# Intersections: "A / B", "A & B", "A @ B", "A AND B", "junction of ...".
_INTERSECTION = re.compile(r"\s(?:/|&|@|AND)\s|^\s*(?:junction|jct\.?) of\b", re.IGNORECASE)
# Unit designators, from the designator to the end of the segment ("APT 12", "#3B",
# "UNIT B-3", "Flat 3"). State codes such as "FL" are deliberately not in the list.
_UNIT = re.compile(
    r"(?:^|(?<=[\s,]))(?:\#\s*\w|(?:APT|APARTMENT|UNIT|STE|SUITE|SPC|RM|ROOM|FLAT|BLDG|TRLR)\b).*$",
    re.IGNORECASE,
)
#: A leading house number: 4851, 4851A, 4851-4853, 4851 1/2, 12-14. Group 1 is the
#: number, group 2 its letter suffix (``A`` of 4851A) when there is one.
HOUSE_NUMBER = re.compile(
    r"^\s*(\d{1,6})(?:([A-Z])\b|-\d+[A-Z]?\b|\s+1/2\b)?\s+(?=\S)", re.IGNORECASE
)


def _drop_units(segment: str) -> str:
    return _UNIT.sub("", segment).strip(" ,")


def hundred_block(address: str | None) -> str | None:
    """Return the hundred-block form of a street address.

    Parameters
    ----------
    address
        The address as received (street line; city/state parts after a comma are kept).

    Returns
    -------
    str or None
        The generalised address, or ``None`` when there is nothing shareable (blank
        input, or only a house number or unit).

    Examples
    --------
    >>> hundred_block("4851 KOKOMO DR")
    '4800 BLOCK KOKOMO DR'
    >>> hundred_block("4851 KOKOMO DR APT 12")
    '4800 BLOCK KOKOMO DR'
    >>> hundred_block("050XX W SUPERIOR ST")
    '050XX W SUPERIOR ST'
    >>> hundred_block("SAN JUAN RD / EL CENTRO RD")
    'SAN JUAN RD / EL CENTRO RD'
    >>> hundred_block("On or near Baker Street")
    'On or near Baker Street'
    >>> hundred_block("12 Some Road")
    '0 block Some Road'
    """
    if address is None:
        return None
    text = _SPACE.sub(" ", address).strip()
    if not text:
        return None
    if _ON_OR_NEAR.match(text) or _GENERALISED.search(text):
        return text
    segments = [_drop_units(s) for s in text.split(",")]
    segments = [s for s in segments if s]
    if not segments:
        return None
    if _INTERSECTION.search(segments[0]):
        return ", ".join(segments)
    # The street line is the first segment holding more than a unit; a leading
    # "Flat 3," segment was emptied by _drop_units above.
    street, rest = segments[0], segments[1:]
    match = HOUSE_NUMBER.match(street)
    if match:
        number = int(match.group(1))
        name = street[match.end() :].strip()
        if not name:
            return None
        word = "BLOCK" if name.upper() == name else "block"
        street = f"{number // 100 * 100} {word} {name}"
    elif street.isdigit():
        return None
    return ", ".join([street, *rest])
