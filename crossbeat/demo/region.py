"""The geography of the demo region: three neighbouring agencies near Portland, Oregon.

The region is fictional but sits on real coordinates south-east of Portland, so the
county's export can honestly use Oregon State Plane North in US feet (EPSG:2913).
Everything is laid out in a local metric frame (UTM zone 10N, metres, origin at the
Riverton Central light-rail station) and projected to WGS84 on the way out:

* ``rivertonpd`` - City of Riverton Police: the city polygon.
* ``clackmerco`` - Clackmer County Sheriff: the county outline minus the city, so the
  two share the city's border and do not overlap.
* ``metrotransit`` - Metro Transit Police: two light-rail lines buffered by 100 m,
  crossing both city and county, so its jurisdiction overlaps both.

A street grid with named streets gives plausible US addresses (``1234 SE ALDER ST``)
for any point, and stations along the lines give the transit feed its locations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, Point, Polygon, box, mapping
from shapely.geometry.base import BaseGeometry

#: Local frame of the layout (UTM zone 10N, metres).
LOCAL_CRS = "EPSG:32610"
#: The county's export CRS: NAD83(HARN) / Oregon North (US feet).
COUNTY_CRS = "EPSG:2913"
#: Riverton Central station, the origin of the local frame (lon, lat).
ORIGIN_LONLAT = (-122.47, 45.42)
#: Width of the transit police's corridor on each side of the track (metres).
TRANSIT_BUFFER_M = 100.0
#: Spacing of the street grid (metres); one grid block = one 100-block of addresses.
BLOCK_M = 160.0

# The city: an irregular polygon of about 8 x 6.5 km around the origin (local metres).
_CITY = (
    (-4100.0, -3000.0),
    (-1200.0, -3350.0),
    (2300.0, -3100.0),
    (4300.0, -1200.0),
    (4000.0, 1700.0),
    (2600.0, 3300.0),
    (-600.0, 3500.0),
    (-3300.0, 2600.0),
    (-4500.0, 300.0),
)
# The county outline (the sheriff's jurisdiction is this minus the city).
_COUNTY = (-13000.0, -10000.0, 13000.0, 10000.0)

_EW_STREETS = (
    "ALDER", "BIRCH", "CEDAR", "DOGWOOD", "ELM", "FIR", "GLISAN", "HAWTHORNE", "IVY",
    "JUNIPER", "KING", "LINCOLN", "MAPLE", "NORTHRUP", "OAK", "PINE", "QUINCE", "RALEIGH",
    "SPRUCE", "TAYLOR", "UMATILLA", "VINE", "WILLOW", "YAMHILL", "ZENITH", "ASH", "BELMONT",
    "CLAY", "DIVISION", "EVERETT", "FLANDERS", "GRANT", "HOLGATE", "INSLEY", "JESSUP",
    "KNAPP", "LAMBERT", "MARKET", "NEHALEM", "OGDEN", "POWELL", "RHONE", "SHERMAN",
    "TENINO", "URBAN", "VALLEY", "WOODSTOCK", "BYBEE", "CRYSTAL", "DUKE", "EMBER",
    "FOSTER", "GLADSTONE", "HARNEY", "HENDERSON", "LEXINGTON", "MALDEN", "NASSAU",
    "OCHOCO", "PARDEE", "ROURKE", "SPOKANE", "TACOMA", "UMPQUA", "CLATSOP", "DAKOTA",
    "ELLIS", "FLAVEL", "HAROLD", "JOHNSON", "KELLY", "LOGAN", "MILWAUKIE",
    "NEWELL", "OTTY", "PERSHING", "RIVER", "STARK", "THURMAN", "VERNON", "WASHINGTON",
    "ASPEN", "BROOKSIDE", "CANYON", "DELTA", "EAGLE", "FERN", "GROVE", "HILLTOP",
    "IRIS", "JADE", "KESTREL", "LAUREL", "MEADOW", "NOBLE", "ORCHARD", "PRAIRIE",
    "QUAIL", "ROSE", "SAGE", "TIMBER", "UNITY", "VISTA", "WREN", "YEW", "ZINNIA",
    "ARBOR", "BRIAR", "COPPER", "DUNE", "ELDER", "FALCON", "GARNET", "HAZEL", "INDIGO",
    "JUNCO", "KNOLL", "LILAC", "MYRTLE", "NUTMEG", "OSPREY", "POPLAR", "RAVEN",
    "SORREL", "TULIP", "UPLAND", "VIOLET", "WALNUT", "YARROW", "ZEPHYR",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Station:
    """A light-rail station (local metres)."""

    name: str
    line: str
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Hotspot:
    """A persistent concentration of some kinds of crime (local metres)."""

    name: str
    x: float
    y: float
    sigma: float
    kinds: tuple[str, ...]
    weight: float


@dataclass(frozen=True, slots=True)
class DemoAgency:
    """One agency of the demo region, with its jurisdiction in local metres."""

    id: str
    name: str
    ori: str
    jurisdiction_name: str
    geometry: BaseGeometry


# Light-rail lines as station lists; the track runs straight between stations.
_LINES: dict[str, tuple[tuple[str, float, float], ...]] = {
    "Blue": (
        ("Sandy Ridge", -11800.0, -2300.0),
        ("Boring Junction", -9000.0, -1900.0),
        ("Pleasant Valley", -6400.0, -1400.0),
        ("Westgate", -3700.0, -900.0),
        ("Lents Park", -1900.0, -450.0),
        ("Riverton Central", 0.0, 0.0),
        ("Civic Center", 1700.0, 450.0),
        ("Eastport Plaza", 3400.0, 900.0),
        ("Foster Road", 5400.0, 1300.0),
        ("Damascus", 8200.0, 1800.0),
        ("Carver", 11500.0, 2400.0),
    ),
    "Green": (
        ("Clackmer Town Center", 1800.0, -8600.0),
        ("Sunnyside", 1100.0, -5900.0),
        ("Southgate", 500.0, -3900.0),
        ("Millbrook", 250.0, -2000.0),
        ("Riverton Central", 0.0, 0.0),
        ("Hawthorne Market", -300.0, 1900.0),
        ("Northgate", -700.0, 4200.0),
        ("Gresham Heights", -1300.0, 6800.0),
        ("Fairview Park", -2000.0, 9200.0),
    ),
}

#: Persistent hotspots: fixed centres with a Gaussian spread (local metres).
HOTSPOTS: tuple[Hotspot, ...] = (
    Hotspot("Riverton downtown", 300.0, 200.0, 260.0,
            ("theft_other", "shoplifting", "disorderly", "assault_simple", "pickpocket",
             "drugs", "vandalism"), 3.0),
    Hotspot("Hawthorne nightlife strip", -350.0, 1750.0, 180.0,
            ("assault_simple", "assault_aggravated", "disorderly", "robbery_street",
             "theft_other"), 2.0),
    Hotspot("Eastport Plaza mall", 3350.0, 800.0, 220.0,
            ("shoplifting", "theft_from_vehicle", "vehicle_theft", "theft_other"), 2.5),
    Hotspot("Clackmer Town Center", 1850.0, -8450.0, 300.0,
            ("shoplifting", "theft_from_vehicle", "theft_other", "vehicle_theft"), 1.6),
    Hotspot("Millbrook apartments", 700.0, -2300.0, 300.0,
            ("burglary_residential", "vehicle_theft", "assault_dv", "vandalism"), 1.4),
    Hotspot("Boring Junction park-and-ride", -9000.0, -1800.0, 200.0,
            ("theft_from_vehicle", "vehicle_theft", "vandalism"), 0.9),
)  # fmt: skip


@cache
def _to_wgs84() -> Transformer:
    return Transformer.from_crs(LOCAL_CRS, "EPSG:4326", always_xy=True)


@cache
def _from_wgs84() -> Transformer:
    return Transformer.from_crs("EPSG:4326", LOCAL_CRS, always_xy=True)


@cache
def _to_county() -> Transformer:
    return Transformer.from_crs(LOCAL_CRS, COUNTY_CRS, always_xy=True)


@cache
def _origin() -> tuple[float, float]:
    x, y = _from_wgs84().transform(*ORIGIN_LONLAT)
    return float(x), float(y)


def to_lonlat(x: float, y: float) -> tuple[float, float]:
    """Return WGS84 ``(lon, lat)`` of a point in local metres."""
    ox, oy = _origin()
    lon, lat = _to_wgs84().transform(ox + x, oy + y)
    return float(lon), float(lat)


def to_county_feet(x: float, y: float) -> tuple[float, float]:
    """Return Oregon North (EPSG:2913, US feet) ``(easting, northing)`` of a local point."""
    ox, oy = _origin()
    e, n = _to_county().transform(ox + x, oy + y)
    return float(e), float(n)


def geometry_to_wgs84(geom: BaseGeometry) -> BaseGeometry:
    """Project a geometry in local metres to WGS84 longitude/latitude."""
    ox, oy = _origin()

    def project(coords: np.ndarray) -> np.ndarray:
        lon, lat = _to_wgs84().transform(coords[:, 0] + ox, coords[:, 1] + oy)
        return np.column_stack([lon, lat])

    return shapely.transform(geom, project)


def city_polygon() -> Polygon:
    """Return the City of Riverton (local metres)."""
    return Polygon(_CITY)


def county_polygon() -> BaseGeometry:
    """Return the Clackmer County Sheriff's jurisdiction: the county minus the city."""
    return box(*_COUNTY).difference(city_polygon())


def county_outline() -> Polygon:
    """Return the whole county outline, city included (local metres)."""
    return box(*_COUNTY)


def rail_lines() -> dict[str, LineString]:
    """Return the light-rail lines by name (local metres)."""
    return {name: LineString([(x, y) for _, x, y in st]) for name, st in _LINES.items()}


def transit_polygon() -> BaseGeometry:
    """Return the transit police's corridor: the rail lines buffered by 100 m."""
    return shapely.union_all([line.buffer(TRANSIT_BUFFER_M) for line in rail_lines().values()])


def stations() -> tuple[Station, ...]:
    """Return every station once (a shared station is listed under its first line)."""
    seen: dict[str, Station] = {}
    for line, stops in _LINES.items():
        for name, x, y in stops:
            seen.setdefault(name, Station(name, line, x, y))
    return tuple(seen.values())


def agencies() -> tuple[DemoAgency, ...]:
    """Return the demo agencies with their jurisdictions (local metres)."""
    return (
        DemoAgency("rivertonpd", "City of Riverton Police", "OR0990100",
                   "City of Riverton", city_polygon()),
        DemoAgency("clackmerco", "Clackmer County Sheriff", "OR0990000",
                   "Clackmer County (unincorporated)", county_polygon()),
        DemoAgency("metrotransit", "Metro Transit Police", "OR0990200",
                   "Metro light-rail corridor", transit_polygon()),
    )  # fmt: skip


#: The demo's area layer: the City of Riverton's police districts (agency, layer).
DISTRICTS = ("rivertonpd", "districts")


def district_geojson() -> dict[str, Any]:
    """Return the City of Riverton's four police districts as GeoJSON in WGS84.

    The city cut into quadrants around its centroid, each feature named by its
    ``DISTRICT`` property (a demo area layer, :mod:`crossbeat.areas`).
    """
    city = city_polygon()
    minx, miny, maxx, maxy = city.bounds
    cx, cy = city.centroid.x, city.centroid.y
    quadrants = {
        "North-West": box(minx, cy, cx, maxy),
        "North-East": box(cx, cy, maxx, maxy),
        "South-West": box(minx, miny, cx, cy),
        "South-East": box(cx, miny, maxx, cy),
    }
    features = [
        {
            "type": "Feature",
            "properties": {"DISTRICT": name, "AGENCY": DISTRICTS[0]},
            "geometry": mapping(geometry_to_wgs84(city.intersection(quadrant))),
        }
        for name, quadrant in quadrants.items()
    ]
    return {"type": "FeatureCollection", "features": features}


def jurisdiction_geojson(agency_id: str) -> dict[str, Any]:
    """Return one agency's jurisdiction as a GeoJSON FeatureCollection in WGS84.

    Parameters
    ----------
    agency_id
        One of the ids returned by :func:`agencies`.

    Returns
    -------
    dict
        A FeatureCollection with one feature whose ``name`` is the jurisdiction's name.
    """
    for agency in agencies():
        if agency.id == agency_id:
            geom = geometry_to_wgs84(agency.geometry)
            return {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"agency": agency.id, "name": agency.jurisdiction_name},
                        "geometry": mapping(geom),
                    }
                ],
            }
    known = ", ".join(a.id for a in agencies())
    raise KeyError(f"no demo agency {agency_id!r} (known: {known})")


def owner_at(x: float, y: float) -> str:
    """Return the territorial agency (city or county sheriff) for a local point."""
    return "rivertonpd" if city_polygon().covers(Point(x, y)) else "clackmerco"


def _ordinal(n: int) -> str:
    suffix = "TH" if 10 <= n % 100 <= 20 else {1: "ST", 2: "ND", 3: "RD"}.get(n % 10, "TH")
    return f"{n}{suffix}"


def street_address(x: float, y: float, *, parity: int = 0) -> tuple[str, str]:
    """Return a plausible ``(full address, block address)`` for a local point.

    The grid has numbered avenues running north-south and named streets running east-
    west, ``BLOCK_M`` apart; a point is put on the nearer street, with a house number
    that grows by 100 per block away from the origin (US style), quadrant prefixes
    (``NE``/``SE``/``SW``/``NW``) and ``parity`` choosing the side of the street.

    Examples
    --------
    A point 10 m east of the first avenue and 500 m south of the origin is on that
    avenue, 3.1 blocks south:

    >>> street_address(10.0, -500.0)
    ('312 SE 1ST AVE', '3XX SE 1ST AVE')
    >>> street_address(10.0, -500.0, parity=1)[0]
    '313 SE 1ST AVE'
    """
    col = round(x / BLOCK_M)
    row = round(y / BLOCK_M)
    quadrant = ("N" if y >= 0 else "S") + ("E" if x >= 0 else "W")
    if abs(x - col * BLOCK_M) <= abs(y - row * BLOCK_M):
        # On a north-south avenue: the number counts blocks north or south.
        name = f"{_ordinal(abs(col) + 1)} AVE"
        along = abs(y) / BLOCK_M
    else:
        name = f"{_EW_STREETS[abs(row) % len(_EW_STREETS)]} ST"
        along = abs(x) / BLOCK_M
    block = int(along)
    house = max(block * 100 + int((along - block) * 50) * 2 + parity % 2, 1)
    return f"{house} {quadrant} {name}", f"{block}XX {quadrant} {name}"


#: Where in a block the demo's address points lie: house numbers ``block*100 + 2`` and
#: ``block*100 + 50`` (:func:`street_address`), the rest interpolated between them.
_ADDRESS_FRACTIONS = (0.03, 0.5)


def address_points() -> list[dict[str, Any]]:
    """Return the region's address points, as a county's address file would hold them.

    Two points per block face of every avenue and street of the grid inside the county
    (house numbers ``N02`` and ``N50``: an address lookup interpolates the others, as
    with a real county file), each with the address :func:`street_address` gives its
    place, the locality (``RIVERTON`` or ``CLACKMER COUNTY``) and the territorial agency
    whose file it is in (``agency``). WGS84 ``lon``/``lat``.
    """
    xmin, ymin, xmax, ymax = _COUNTY
    local: list[tuple[float, float]] = []
    for col in range(int(xmin // BLOCK_M) + 1, int(xmax // BLOCK_M) + 1):
        for sign in (1, -1):
            for block in range(int(ymax // BLOCK_M) + 1):
                for f in _ADDRESS_FRACTIONS:
                    local.append((col * BLOCK_M, sign * (block + f) * BLOCK_M))
    for row in range(int(ymin // BLOCK_M) + 1, int(ymax // BLOCK_M) + 1):
        for sign in (1, -1):
            for block in range(int(xmax // BLOCK_M) + 1):
                for f in _ADDRESS_FRACTIONS:
                    local.append((sign * (block + f) * BLOCK_M, row * BLOCK_M))
    inside = [(x, y) for x, y in local if xmin < x < xmax and ymin < y < ymax]
    xy = np.asarray(inside, dtype=float)
    ox, oy = _origin()
    lon, lat = _to_wgs84().transform(xy[:, 0] + ox, xy[:, 1] + oy)
    city = city_polygon()
    inner = shapely.contains_xy(city, xy[:, 0], xy[:, 1])
    out = []
    for (x, y), a, b, in_city in zip(inside, lon, lat, inner, strict=True):
        number, _, street = street_address(x, y)[0].partition(" ")
        out.append({
            "agency": "rivertonpd" if in_city else "clackmerco",
            "lon": round(float(a), 7),
            "lat": round(float(b), 7),
            "number": number,
            "street": street,
            "city": "RIVERTON" if in_city else "CLACKMER COUNTY",
        })  # fmt: skip
    return out


def distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Return the Euclidean distance between two local points (metres)."""
    return math.hypot(a[0] - b[0], a[1] - b[1])
