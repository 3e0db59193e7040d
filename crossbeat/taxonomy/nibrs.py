"""The NIBRS reference tables shipped as package data.

``data/nibrs_offences.csv`` lists every Group A and Group B offence of the FBI's
National Incident-Based Reporting System with its crime-against category, its UCR
Part I class and the sensitivity flags the offence implies; ``data/location_types.csv``
lists the NIBRS location types. ``data/VERSION.toml`` versions both tables.
"""

from __future__ import annotations

import csv
import io
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType

from crossbeat.model import CrimeAgainst, Sensitivity

#: The UCR Part I classes an offence can belong to (Summary Reporting System).
UCR_PART1_CLASSES: tuple[str, ...] = (
    "homicide",
    "rape",
    "robbery",
    "aggravated_assault",
    "burglary",
    "larceny",
    "motor_vehicle_theft",
    "arson",
)

_DATA = resources.files("crossbeat.taxonomy") / "data"


class TaxonomyError(ValueError):
    """A taxonomy file or name is wrong; the message lists every problem found."""


@dataclass(frozen=True, slots=True)
class NibrsOffence:
    """One NIBRS offence code with its classification."""

    code: str
    name: str
    #: ``A`` (incident and arrest data) or ``B`` (arrest data only).
    group: str
    crime_against: CrimeAgainst
    #: One of :data:`UCR_PART1_CLASSES`, or None for offences outside Part I.
    ucr_part1: str | None
    #: Flags every incident with this offence carries.
    sensitivity: frozenset[Sensitivity]
    #: Reported by federal agencies only (marked with ``*`` in the FBI manual).
    federal_only: bool = False


def _read_version() -> str:
    with (_DATA / "VERSION.toml").open("rb") as fh:
        return str(tomllib.load(fh)["nibrs"]["version"])


#: Version of the shipped NIBRS tables (``data/VERSION.toml``).
NIBRS_VERSION: str = _read_version()


def _parse_offence(row: dict[str, str], line: int) -> NibrsOffence:
    try:
        flags = frozenset(Sensitivity(f) for f in row["sensitivity"].split())
        crime_against = CrimeAgainst(row["crime_against"])
    except ValueError as exc:
        raise TaxonomyError(f"nibrs_offences.csv line {line}: {exc}") from exc
    ucr = row["ucr_part1"].strip() or None
    if ucr is not None and ucr not in UCR_PART1_CLASSES:
        raise TaxonomyError(f"nibrs_offences.csv line {line}: unknown UCR Part I class {ucr!r}")
    if row["group"] not in ("A", "B"):
        raise TaxonomyError(f"nibrs_offences.csv line {line}: group must be A or B")
    return NibrsOffence(
        code=row["code"].strip(),
        name=row["name"].strip(),
        group=row["group"],
        crime_against=crime_against,
        ucr_part1=ucr,
        sensitivity=flags,
        federal_only=row["federal_only"].strip().lower() == "yes",
    )


@cache
def nibrs_offences() -> Mapping[str, NibrsOffence]:
    """Return the NIBRS offence table, keyed by offence code.

    Returns
    -------
    Mapping[str, NibrsOffence]
        A read-only mapping such as ``"220" -> Burglary/Breaking & Entering``.

    Examples
    --------
    >>> nibrs_offences()["09A"].ucr_part1
    'homicide'
    """
    text = (_DATA / "nibrs_offences.csv").read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = [_parse_offence(row, i) for i, row in enumerate(reader, start=2)]
    table = {o.code: o for o in rows}
    if len(table) != len(rows):
        raise TaxonomyError("nibrs_offences.csv lists an offence code twice")
    return MappingProxyType(table)


@cache
def nibrs_location_types() -> Mapping[str, str]:
    """Return the NIBRS location types, code (``"01"`` ... ``"58"``) to name.

    Returns
    -------
    Mapping[str, str]
        A read-only mapping such as ``"20" -> "Residence/Home"``.
    """
    text = (_DATA / "location_types.csv").read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    table = {row["code"].strip(): row["name"].strip() for row in reader}
    return MappingProxyType(table)
