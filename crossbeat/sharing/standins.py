"""Synthetic stand-in records: the shape of what a grantee would see, with made-up values.

A preview (:mod:`crossbeat.sharing.preview`) shows agency and platform admins what an
agreement would share. Those roles have no access to incident data, so instead of
real records they get *stand-ins*: records generated here, from no stored incident,
then passed through the very rule the grantee's read would apply
(:meth:`crossbeat.sharing.rules.Rule.transform`). A stand-in therefore has exactly
the fields, the location precision and the time resolution the grantee would get,
but its offence, place and time are drawn at random (the offence from those the
agreement shares and that carry no sensitivity, the place from the owner's
jurisdiction boxes, the time from the month before the delay ends). Nothing about a
stored incident, not even how many there are of a kind, can be read from them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import h3

from crossbeat.model import H3_RESOLUTIONS, TimePrecision
from crossbeat.sharing.public import FLAG_COLUMNS, AnchorIndex
from crossbeat.sharing.rules import Rule
from crossbeat.sharing.scope import offence_matches
from crossbeat.taxonomy.nibrs import nibrs_offences

#: Every stand-in's id starts with this, so it is never mistaken for a record.
STAND_IN_PREFIX = "stand-in-"

#: Fallback box (lon/lat) when the owner has no jurisdiction polygon: 0.1° around 0,0.
_NOWHERE = (-0.05, -0.05, 0.05, 0.05)


def _codes(rule: Rule) -> list[str]:
    """Return NIBRS codes the rule shares that imply no sensitivity (sorted)."""
    table = nibrs_offences()
    return sorted(
        code
        for code, o in table.items()
        if not o.sensitivity
        and not o.federal_only
        and offence_matches(rule.offences, code, o.crime_against.value, o.ucr_part1)
    )


def stand_in_row(
    rule: Rule,
    n: int,
    now: datetime,
    box: tuple[float, float, float, float],
    rng: random.Random,
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """Return a generated ``incidents`` row and its offence rows, or None if none fits.

    Parameters
    ----------
    rule
        The rule whose offences the stand-in is drawn from.
    n
        Its number (the id is ``stand-in-<n>``).
    now
        The current time; the stand-in happened in the month before ``now - delay``.
    box
        ``(min_lon, min_lat, max_lon, max_lat)`` to draw the point from.
    rng
        The random source.
    """
    codes = _codes(rule)
    if not codes:
        return None
    entry = nibrs_offences()[rng.choice(codes)]
    lon = rng.uniform(box[0], box[2])
    lat = rng.uniform(box[1], box[3])
    when = now - rule.delay - timedelta(days=1 + rng.random() * 30)
    sid = f"{STAND_IN_PREFIX}{n}"
    row: dict[str, Any] = {
        "id": sid,
        "public_id": sid,
        "agency_id": rule.owner,
        "nibrs_code": entry.code,
        "crime_against": entry.crime_against.value,
        "ucr_part1": entry.ucr_part1,
        "offence_local_code": f"SAMPLE-{entry.code}",
        "status": "stand-in",
        "disposition": None,
        "location_type": None,
        "attributes": {},
        "occurred_from": when,
        "occurred_to": None,
        "reported_at": when + timedelta(hours=1),
        "time_precision": TimePrecision.MINUTE.value,
        "created_at": when + timedelta(hours=1),
        "updated_at": when + timedelta(hours=1),
        "withdrawn_at": None,
        "lat": lat,
        "lon": lon,
        "location_precision": "exact",
        "block_address": "0 BLOCK OF SAMPLE ST",
        **dict.fromkeys(FLAG_COLUMNS.values(), False),
        **{f"h3_{r}": h3.latlng_to_cell(lat, lon, r) for r in H3_RESOLUTIONS},
    }
    offence = {
        "nibrs_code": entry.code,
        "crime_against": entry.crime_against.value,
        "ucr_part1": entry.ucr_part1,
        "local_code": f"SAMPLE-{entry.code}",
        "local_description": entry.name,
    }
    return row, [offence]


def stand_ins(
    rules: Sequence[Rule],
    count: int,
    now: datetime,
    anchors: AnchorIndex,
    boxes: Sequence[tuple[float, float, float, float]] = (),
    *,
    rng: random.Random | None = None,
) -> list[dict[str, Any]]:
    """Return up to ``count`` stand-in records as the given rules would show them.

    Parameters
    ----------
    rules
        The grantee's rules for the owner, most revealing first; stand-ins cycle
        through them so that each way of sharing is shown.
    count
        How many stand-ins.
    now
        The current time.
    anchors
        The anchor index the real read uses (coarse points are anchors, as for real).
    boxes
        Bounding boxes of the owner's jurisdictions (points are drawn inside them).
    rng
        Random source (default: the operating system's).

    Returns
    -------
    list[dict]
        Records with ``id`` ``stand-in-1`` ... and only the fields the rule shows.
    """
    rng = rng or random.SystemRandom()
    usable = [r for r in rules if _codes(r)]
    out: list[dict[str, Any]] = []
    for i in range(count if usable else 0):
        rule = usable[i % len(usable)]
        box = rng.choice(list(boxes)) if boxes else _NOWHERE
        made = stand_in_row(rule, i + 1, now, box, rng)
        if made is None:
            continue
        row, offences = made
        out.append(rule.transform(row, offences, [rule.owner], anchors))
    return out
