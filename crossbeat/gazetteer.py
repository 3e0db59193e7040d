"""Address points of each agency, and looking an address up to a point on the map (#12).

"What happened near this address in the last 30 days" needs an address turned into a
point. CrossBeat holds no incident address for that (an incident's address is the
owner's data, and the public never sees one): it reads a *gazetteer*, public address
points an agency loads from its county's address file or OpenAddresses
(:func:`store_addresses`, ``crossbeat gazetteer load``). The answer of a lookup comes
from those points only, so it says nothing about where any incident happened; the count
near the point is then an ordinary read through the public policy.

:func:`geocode` matches a typed address the way people write it: the house number, the
street with or without its directional prefix and suffix type, abbreviated or spelt out
(``312 southeast 1st avenue`` finds ``312 SE 1ST AVE``), and an optional locality after
a comma. A house number between two stored numbers of the same street is interpolated
between their points (as Nominatim interpolates address ranges); a street named without
a number gives the street's middle point. Every answer says which of these it is.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import and_, delete, func, insert, select

from crossbeat.agencies import get_agency
from crossbeat.audit import Action, AuditEvent, append
from crossbeat.geo.address import HOUSE_NUMBER
from crossbeat.store import Store
from crossbeat.store.schema import address_points, gazetteers

#: How a place was found: the stored point of that house number, a point interpolated
#: between the two nearest numbers of the street, the nearest stored number (the asked
#: number is beyond the street's range), or the street's middle (no number asked).
Match = Literal["address", "interpolated", "nearest", "street"]

_BATCH = 5000
#: Two stored numbers further apart than this are not interpolated between (metres).
_INTERPOLATE_M = 1000.0

# Street words as people type them, to the USPS / common abbreviations stored.
_WORDS = {
    "STREET": "ST", "STR": "ST", "AVENUE": "AVE", "AV": "AVE", "ROAD": "RD", "DRIVE": "DR",
    "BOULEVARD": "BLVD", "LANE": "LN", "COURT": "CT", "PLACE": "PL", "TERRACE": "TER",
    "HIGHWAY": "HWY", "PARKWAY": "PKWY", "CIRCLE": "CIR", "SQUARE": "SQ", "WAY": "WAY",
    "CRESCENT": "CRES", "CLOSE": "CL", "GARDENS": "GDNS", "TRAIL": "TRL", "EXPRESSWAY": "EXPY",
    "NORTH": "N", "SOUTH": "S", "EAST": "E", "WEST": "W", "NORTHEAST": "NE",
    "NORTHWEST": "NW", "SOUTHEAST": "SE", "SOUTHWEST": "SW", "SAINT": "ST", "MOUNT": "MT",
    "FIRST": "1ST", "SECOND": "2ND", "THIRD": "3RD", "FOURTH": "4TH", "FIFTH": "5TH",
    "SIXTH": "6TH", "SEVENTH": "7TH", "EIGHTH": "8TH", "NINTH": "9TH", "TENTH": "10TH",
}  # fmt: skip
_PAIRS = {("NORTH", "EAST"): "NE", ("NORTH", "WEST"): "NW", ("SOUTH", "EAST"): "SE",
          ("SOUTH", "WEST"): "SW", ("N", "E"): "NE", ("N", "W"): "NW", ("S", "E"): "SE",
          ("S", "W"): "SW"}  # fmt: skip
_NOT_WORD = re.compile(r"[^0-9A-Z]+")

# Column names of address files, lower case: OpenAddresses (LON, LAT, NUMBER, STREET,
# CITY, POSTCODE), OpenStreetMap tags (addr:housenumber ...) and common exports.
_COLUMNS = {
    "lon": ("lon", "long", "lng", "longitude", "x"),
    "lat": ("lat", "latitude", "y"),
    "number": ("number", "house_number", "housenumber", "addr:housenumber", "house_no"),
    "street": ("street", "street_name", "streetname", "addr:street", "road"),
    "address": ("address", "full_address", "fulladdress", "addr"),
    "locality": ("city", "locality", "town", "addr:city", "municipality", "place"),
    "postcode": ("postcode", "zip", "zipcode", "postal_code", "addr:postcode"),
}


#: The widths of the stored text columns (``address_points``): a longer value leaves its
#: row out, counted, rather than being stored cut short.
_WIDTHS: dict[str, int] = {
    name: address_points.c[name].type.length  # type: ignore[attr-defined]
    for name in ("house", "street", "street_key", "locality", "postcode")
}


class GazetteerError(ValueError):
    """An address file that cannot be read, or an agency that is not registered."""


@dataclass(frozen=True, slots=True)
class Place:
    """A point an address was matched to."""

    #: The address as stored (``312 SE 1ST AVE, RIVERTON``).
    label: str
    lat: float
    lon: float
    match: Match
    #: The agency whose address points answered.
    agency_id: str

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"label": self.label, "lat": self.lat, "lon": self.lon, "match": self.match,
                "agency_id": self.agency_id}  # fmt: skip


@functools.lru_cache(maxsize=65536)
def street_key(text: str) -> str:
    """Return the form of a street name that lookups compare: upper case, abbreviated.

    Examples
    --------
    >>> street_key("South-East First Avenue")
    'SE 1ST AVE'
    >>> street_key("se 1st ave.")
    'SE 1ST AVE'
    """
    words = _NOT_WORD.sub(" ", text.upper()).split()
    out: list[str] = []
    i = 0
    while i < len(words):
        pair = _PAIRS.get((words[i], words[i + 1])) if i + 1 < len(words) else None
        if pair is not None and i + 2 < len(words):  # "SOUTH EAST 1ST", not "N E" alone
            out.append(pair)
            i += 2
            continue
        out.append(_WORDS.get(words[i], words[i]))
        i += 1
    return " ".join(out)


def split_address(text: str) -> tuple[int | None, str, str, str]:
    """Split a typed address into ``(number, house, street, locality)``.

    ``house`` is the house number as typed (``312A``), ``locality`` what follows the
    first comma (upper case), both empty when absent.

    >>> split_address("312a SE 1st Ave, Riverton")
    (312, '312A', 'SE 1st Ave', 'RIVERTON')
    >>> split_address("Baker Street")
    (None, '', 'Baker Street', '')
    """
    street, _, rest = text.partition(",")
    locality = " ".join(_NOT_WORD.sub(" ", rest.upper()).split())
    found = HOUSE_NUMBER.match(street)
    if found is None:
        return None, "", street.strip(), locality
    number = int(found.group(1))
    house = f"{number}{(found.group(2) or '').upper()}"
    return number, house, street[found.end() :].strip(), locality


# --- reading address files ---------------------------------------------------------------


@dataclass
class _Read:
    rows: list[dict[str, Any]]
    skipped: Counter[str]


def _pick(header: Iterable[str]) -> dict[str, str]:
    """The file's column for each role (the first alias present, case-insensitive)."""
    names = {h.strip().lower(): h for h in header if h}
    return {
        role: next(names[a] for a in aliases if a in names)
        for role, aliases in _COLUMNS.items()
        if any(a in names for a in aliases)
    }


def _row(values: dict[str, Any], skipped: Counter[str]) -> dict[str, Any] | None:
    """One address point from a record's values by role, or None (counted in skipped)."""
    try:
        lon, lat = float(values.get("lon") or "nan"), float(values.get("lat") or "nan")
    except (TypeError, ValueError):
        lon = lat = math.nan
    if not (math.isfinite(lon) and math.isfinite(lat)):
        skipped["no coordinates"] += 1
        return None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        skipped["coordinates outside longitude/latitude"] += 1
        return None
    number_text = str(values.get("number") or "").strip()
    street = " ".join(str(values.get("street") or "").split())
    if not street and values.get("address"):
        number, house, street, _ = split_address(str(values["address"]))
        number_text = house if number is not None else ""
    if not street:
        skipped["no street"] += 1
        return None
    digits = re.match(r"\d+", number_text)
    if digits and len(digits.group(0)) > 9:
        skipped["house number of more than 9 digits"] += 1
        return None
    key = street_key(street)
    if not key:
        skipped["no street"] += 1
        return None
    row = {
        "number": int(digits.group(0)) if digits else None,
        "house": number_text.upper(),
        "street": street.upper(),
        "street_key": key,
        "locality": " ".join(str(values.get("locality") or "").upper().split()),
        "postcode": str(values.get("postcode") or "").strip().upper(),
        "lon": round(lon, 7),
        "lat": round(lat, 7),
    }
    for name, width in _WIDTHS.items():  # never cut a value short without a word
        if len(str(row[name])) > width:
            skipped[f"{name} longer than {width} characters"] += 1
            return None
    return row


def _features(text: str) -> Iterator[dict[str, Any]]:
    """The features of a GeoJSON FeatureCollection, or of line-delimited GeoJSON."""
    stripped = text.lstrip()
    try:
        doc = json.loads(stripped)
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        yield from doc.get("features") or []
        return
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        yield doc
        return
    for n, line in enumerate(stripped.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            raise GazetteerError(f"line {n} is not a GeoJSON feature: {exc.msg}") from exc


def read_addresses(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Read an address file: CSV (OpenAddresses' columns, or lat/lon/number/street/city
    named in common ways, or one ``address`` column) or GeoJSON points (a
    FeatureCollection or OpenAddresses' line-delimited features), in WGS84.

    Returns the address rows and the count of rows left out per reason (no coordinates,
    no street ...).

    Raises
    ------
    GazetteerError
        An unreadable file, missing columns, or not one usable address (coordinates
        that are not longitude/latitude are named as such).
    """
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise GazetteerError(f"cannot read {p}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise GazetteerError(f"{p.name} is not UTF-8 text") from exc
    read = _Read([], Counter())
    if (
        p.suffix.lower() in {".geojson", ".json", ".geojsonl", ".ndjson"}
        or text.lstrip()[:1] in "{["
    ):
        for feature in _features(text):
            geom = (feature or {}).get("geometry") or {}
            props = {
                str(k).lower(): v for k, v in ((feature or {}).get("properties") or {}).items()
            }
            values = {
                role: next((props[a] for a in aliases if props.get(a) not in (None, "")), None)
                for role, aliases in _COLUMNS.items()
                if role not in {"lon", "lat"}
            }
            if geom.get("type") == "Point" and len(geom.get("coordinates") or []) >= 2:
                values["lon"], values["lat"] = geom["coordinates"][0], geom["coordinates"][1]
            row = _row(values, read.skipped)
            if row is not None:
                read.rows.append(row)
    else:
        reader = csv.DictReader(io.StringIO(text))
        columns = _pick(reader.fieldnames or [])
        missing = [r for r in ("lon", "lat") if r not in columns]
        if "street" not in columns and "address" not in columns:
            missing.append("street (or address)")
        if missing:
            found = ", ".join(reader.fieldnames or []) or "none"
            raise GazetteerError(
                f"{p.name}: no {' and no '.join(missing)} column (found: {found}); "
                "expected OpenAddresses' LON, LAT, NUMBER, STREET, CITY, POSTCODE"
            )
        for record in reader:
            values = {role: record.get(col) for role, col in columns.items()}
            row = _row(values, read.skipped)
            if row is not None:
                read.rows.append(row)
    if not read.rows:
        why = ", ".join(f"{n} {reason}" for reason, n in read.skipped.items()) or "it is empty"
        raise GazetteerError(f"{p.name} holds no usable address point ({why})")
    if read.skipped.get("coordinates outside longitude/latitude", 0) > len(read.rows):
        raise GazetteerError(
            f"{p.name}: most coordinates are not longitude/latitude (WGS84); reproject the "
            "file to EPSG:4326 first"
        )
    return read.rows, dict(read.skipped)


# --- storing ------------------------------------------------------------------------------


def store_addresses(
    store: Store, agency_id: str, path: str | Path, *, by: str = "system"
) -> dict[str, Any]:
    """Store ``agency_id``'s address points from an address file, replacing its earlier ones.

    One transaction with its audit event. Returns the summary: source file, addresses,
    streets and the rows left out per reason.

    Raises
    ------
    GazetteerError
        For an unknown agency or a file :func:`read_addresses` refuses; nothing stored
        is changed then.
    """
    if get_agency(store, agency_id) is None:
        raise GazetteerError(f"no agency {agency_id!r} is registered")
    rows, skipped = read_addresses(path)
    summary = {
        "agency_id": agency_id,
        "source": Path(path).name,
        "addresses": len(rows),
        "streets": len({(r["street_key"], r["locality"]) for r in rows}),
    }
    with store.begin() as conn:
        conn.execute(delete(address_points).where(address_points.c.agency_id == agency_id))
        conn.execute(delete(gazetteers).where(gazetteers.c.agency_id == agency_id))
        conn.execute(
            insert(gazetteers).values(**summary, created_at=store.clock.now(), created_by=by)
        )
        for k in range(0, len(rows), _BATCH):
            batch = [{"agency_id": agency_id, **r} for r in rows[k : k + _BATCH]]
            store.bulk_insert(conn, address_points, batch)
        append(
            store,
            AuditEvent(
                action=Action.CHANGE,
                actor=by,
                actor_agency=agency_id,
                resource_type="gazetteer",
                owner_agencies=(agency_id,),
                record_count=len(rows),
                details={"operation": "store", **summary, "skipped": skipped},
            ),
            conn=conn,
        )
    return {**summary, "skipped": skipped}


def list_gazetteers(store: Store) -> list[dict[str, Any]]:
    """Return each agency's loaded address file: agency, source, counts, when and by whom."""
    with store.connect() as conn:
        rows = conn.execute(select(gazetteers).order_by(gazetteers.c.agency_id)).mappings()
        return [dict(r) for r in rows]


# --- looking up ---------------------------------------------------------------------------


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    dy = (a[0] - b[0]) * 111_320.0
    dx = (a[1] - b[1]) * 111_320.0 * math.cos(math.radians((a[0] + b[0]) / 2))
    return math.hypot(dx, dy)


def _label(house: str, street: str, locality: str) -> str:
    text = f"{house} {street}".strip()
    return f"{text}, {locality}" if locality else text


def _streets(conn: Any, key: str, locality: str, limit: int) -> list[tuple[str, str, str, str]]:
    """Streets ``(agency, key, display, locality)`` whose key is ``key``, else holds its words."""
    cols = (address_points.c.agency_id, address_points.c.street_key, address_points.c.street,
            address_points.c.locality)  # fmt: skip
    found = list(
        conn.execute(select(*cols).where(address_points.c.street_key == key).distinct().limit(200))
    )
    if not found:
        words = [w.replace("%", "").replace("_", "") for w in key.split()]
        conds = [address_points.c.street_key.like(f"%{w}%") for w in words if w]
        if not conds:
            return []
        found = list(conn.execute(select(*cols).where(and_(*conds)).distinct().limit(200)))
        # Whole words only: "ELM" matches "ELM ST", not "HELMS DR".
        found = [r for r in found if set(key.split()) <= set(r[1].split())]
    if locality:
        here = [r for r in found if r[3].startswith(locality) or locality.startswith(r[3] or "\0")]
        found = here or found
    # Exact keys first, then the shortest (fewest extra words), then by name.
    found.sort(key=lambda r: (r[1] != key, len(r[1]), r[1], r[3], r[0]))
    return [tuple(r) for r in found[:limit]]


def _on_street(
    conn: Any, street: tuple[str, str, str, str], number: int | None, house: str
) -> Place | None:
    agency, key, display, locality = street
    on = and_(
        address_points.c.agency_id == agency,
        address_points.c.street_key == key,
        address_points.c.locality == locality,
    )
    pt = (address_points.c.house, address_points.c.number, address_points.c.lat,
          address_points.c.lon)  # fmt: skip
    if number is None:
        n = conn.execute(select(func.count()).select_from(address_points).where(on)).scalar()
        row = conn.execute(
            select(*pt).where(on).order_by(address_points.c.number, address_points.c.id)
            .offset(max(int(n or 0) // 2, 0)).limit(1)
        ).first()  # fmt: skip
        if row is None:
            return None
        return Place(_label("", display, locality), row.lat, row.lon, "street", agency)
    exact = conn.execute(
        select(*pt).where(on, address_points.c.number == number)
        .order_by(address_points.c.house != house, address_points.c.id).limit(1)
    ).first()  # fmt: skip
    if exact is not None:
        return Place(_label(exact.house or house, display, locality), exact.lat, exact.lon,
                     "address", agency)  # fmt: skip
    below = conn.execute(
        select(*pt).where(on, address_points.c.number < number)
        .order_by(address_points.c.number.desc(), address_points.c.id).limit(1)
    ).first()  # fmt: skip
    above = conn.execute(
        select(*pt).where(on, address_points.c.number > number)
        .order_by(address_points.c.number, address_points.c.id).limit(1)
    ).first()  # fmt: skip
    if below is not None and above is not None:
        a, b = (below.lat, below.lon), (above.lat, above.lon)
        if _metres(a, b) <= _INTERPOLATE_M:
            f = (number - below.number) / (above.number - below.number)
            lat, lon = a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])
            return Place(_label(house, display, locality), round(lat, 7), round(lon, 7),
                         "interpolated", agency)  # fmt: skip
    near = min(
        (r for r in (below, above) if r is not None),
        key=lambda r: abs(r.number - number),
        default=None,
    )
    if near is None:
        return None
    return Place(_label(near.house, display, locality), near.lat, near.lon, "nearest", agency)


_ORDER = {"address": 0, "interpolated": 1, "nearest": 2, "street": 3}


def geocode(store: Store, text: str, *, limit: int = 5) -> list[Place]:
    """Return up to ``limit`` places for a typed address, best first.

    Matches the street (abbreviations and spelt-out words alike, see :func:`street_key`)
    and then the house number on it: the stored point, else interpolated between the
    nearest numbers below and above (when they are within 1 km of each other), else the
    nearest stored number; with no number, the street's middle point. Streets whose
    locality starts with the text after a comma come first. An empty list when nothing
    matches (or no address points are loaded).
    """
    number, house, street, locality = split_address(text)
    key = street_key(street)
    if not key:
        return []
    limit = max(1, min(int(limit), 20))
    places: list[Place] = []
    with store.connect() as conn:
        for candidate in _streets(conn, key, locality, limit * 2):
            place = _on_street(conn, candidate, number, house)
            if place is not None and place not in places:
                places.append(place)
    places.sort(key=lambda p: _ORDER[p.match])  # stable: street order within a kind
    return places[:limit]


def has_addresses(store: Store) -> bool:
    """Whether any agency has loaded address points."""
    with store.connect() as conn:
        return conn.execute(select(gazetteers.c.agency_id).limit(1)).first() is not None
