"""Plan the ``[location]`` of a draft profile: the point, its CRS, address and premise.

Used by :mod:`crossbeat.ingest.draft.plan`. Points come from latitude/longitude or x/y
columns (a projected CRS the values cannot identify is left as a TODO with x and y
commented out, never guessed) or from GeoJSON geometry; addresses already generalised
by the source (police.uk's "On or near ...", hundred blocks) are public and imply a
coarser point precision; local location types get NIBRS codes suggested by their words.
"""

from __future__ import annotations

import re

from crossbeat.ingest.draft.columns import (
    PointGuess,
    Sample,
    guess_address,
    guess_named,
    guess_point,
    projected,
)
from crossbeat.ingest.draft.render import Section
from crossbeat.ingest.points import METRES_PER_DEGREE, geometry_point, rounding_precision
from crossbeat.ingest.profile import SourceSpec
from crossbeat.model import LocationPrecision
from crossbeat.taxonomy import nibrs_location_types

#: Column-name parts of a location (premise) type column, in order of preference.
LOCATION_TYPE_KEYS = ("premise", "location_type", "loc_type", "place_type", "location_category")
#: Words in a local location type, in order, and the NIBRS location code they suggest.
_LOCATION_WORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("gas station", "service station", "petrol"), "23"),
    (("convenience", "conv"), "07"),
    (("department", "dept", "discount"), "08"),
    (("parking", "garage", "car park"), "18"),
    (("vehicle",), "13"),
    (("residence", "residential", "house", "apartment", "home", "dwelling", "condo"), "20"),
    (("street", "road", "highway", "alley", "sidewalk", "roadway"), "13"),
    (("bank", "finance", "financial"), "02"),
    (("bar", "nightclub", "club", "pub", "tavern"), "03"),
    (("church", "synagogue", "temple", "mosque", "religious"), "04"),
    (("construction",), "06"),
    (("hospital", "doctor", "pharmacy", "healthcare", "medical"), "09"),
    (("field", "woods", "open space"), "10"),
    (("government",), "11"),
    (("grocery", "supermarket"), "12"),
    (("hotel", "motel"), "14"),
    (("jail", "prison"), "15"),
    (("lake", "waterway", "beach", "river"), "16"),
    (("liquor",), "17"),
    (("storage",), "19"),
    (("restaurant", "cafe"), "21"),
    (("retail", "store", "shop"), "24"),
    (("abandoned", "vacant"), "37"),
    (("arena", "stadium", "entertainment"), "39"),
    (("atm",), "40"),
    (("dealer", "dealership"), "41"),
    (("industrial", "factory", "warehouse"), "48"),
    (("park", "playground", "green space"), "50"),
    (("college", "university"), "52"),
    (("mall",), "55"),
    (
        ("transit", "transportation", "bus", "train", "station", "airport", "terminal", "subway"),
        "01",
    ),
    (("commercial", "office", "business"), "05"),
    (("other", "unknown"), "25"),
)


class _Location:
    def __init__(
        self,
        sample: Sample,
        source: SourceSpec,
        src: Section,
        taken: set[str],
        timezone: str | None,
    ) -> None:
        self.sample = sample
        self.source = source
        self.src = src
        self.taken = taken
        self.timezone = timezone
        #: The longitude/latitude values of the sample, as written (for their decimals).
        self.lonlat_texts: list[str] = []

    def take(self, *columns: str | None) -> None:
        self.taken.update(c for c in columns if c)

    def plan(self) -> list[Section]:
        section = Section("location")
        point = self._point(section)
        address = guess_address(self.sample, taken=self.taken)
        if point:
            self._precision(section, address)
        if address:
            column, public, why = address
            self.take(column)
            what = why if not public else f"guess: {column!r} holds the address"
            section.add("address", column, what)
            if public:
                section.add("address_is_public", True, "guess: " + why)
        types = self._location_types(section)
        return [section, *types]

    def _point(self, section: Section) -> bool:
        if self.sample.geometries:
            return self._geometry(section)
        guess = guess_point(self.sample, timezone=self.timezone)
        if guess is None:
            section.add(
                None,
                comment="TODO: no coordinate columns found (latitude/longitude or x/y): rows "
                "are stored without a point; name them in x and y if the file has them",
            )
            return False
        self.take(guess.x, guess.y)
        off = guess.crs is None
        if guess.crs == "EPSG:4326" and guess.x and guess.y:
            for col in (guess.x, guess.y):
                self.lonlat_texts += self.sample.columns[col].values
        if off:
            section.add(None, comment=guess.comment)
        section.add("x", guess.x, "" if off else guess.comment, off=off)
        section.add("y", guess.y, off=off)
        if off:
            section.add("crs", "EPSG:????", off=True)
        else:
            self.src.add("crs", guess.crs, _crs_why(guess))
        return not off

    def _geometry(self, section: Section) -> bool:
        points = []
        for geometry in self.sample.geometries:
            try:
                found = geometry_point(geometry)
            except (TypeError, ValueError, KeyError, IndexError):
                found = None
            if found is not None:
                points.append(found[:2])
        if not points:
            section.add(None, comment="TODO: the features have no usable geometry")
            return False
        xs = (min(p[0] for p in points), max(p[0] for p in points))
        ys = (min(p[1] for p in points), max(p[1] for p in points))
        declared = self.source.crs != "EPSG:4326"
        lonlat = -180 <= xs[0] and xs[1] <= 180 and -90 <= ys[0] and ys[1] <= 90
        if declared:
            why = f"the file declares its CRS ({self.source.crs}); the geometry gives the point"
            self.src.add("crs", self.source.crs, why)
        elif lonlat:
            self.lonlat_texts = [repr(float(v)) for p in points for v in p]
            why = "the GeoJSON geometry gives the point (longitude/latitude): no x/y needed"
            section.add(None, comment="guess: " + why)
        else:
            guess = projected(None, None, xs, ys, self.timezone)
            if guess.crs:
                self.src.add("crs", guess.crs, guess.comment)
            else:
                self.src.add(
                    None,
                    comment=guess.comment.replace(
                        "and uncomment x and y; until then rows are stored without a location",
                        "(source.crs): until then every point is out of range and quarantined",
                    ),
                )
                self.src.add("crs", "EPSG:????", off=True)
        return True

    def _precision(self, section: Section, address: tuple[str, bool, str] | None) -> None:
        why = (
            "guess: the points are exact; set block, snapped or area if the agency "
            "generalises them before export"
        )
        value = "exact"
        rounded = coordinate_rounding(self.lonlat_texts)
        if address and address[1]:
            near = "On or near" in address[2]
            value = "snapped" if near else "block"
            why = (
                "guess: police.uk-style addresses: the points are anonymised map points"
                if near
                else "guess: the addresses are hundred-block generalised, so the points "
                "probably are too; set exact if they are not"
            )
        elif rounded is not None and rounding_precision(rounded[1]) != LocationPrecision.EXACT:
            value = rounding_precision(rounded[1]).value
            why = f"guess: the points are rounded to about {rounded[1]} m (precision_m)"
        section.add("precision", value, why)
        if rounded is not None:
            decimals, metres = rounded
            section.add(
                "precision_m",
                metres,
                f"guess: no sampled coordinate has more than {decimals} decimal place"
                f"{'s' if decimals != 1 else ''}: the source rounded the points to about "
                f"{metres} m, so they are stored no more precise than that (remove it if "
                "the values merely lost trailing zeros)",
            )

    def _location_types(self, section: Section) -> list[Section]:
        column = guess_named(self.sample, LOCATION_TYPE_KEYS, taken=self.taken)
        if column is None:
            return []
        self.take(column)
        section.add("location_type", column, "guess: named like a location (premise) type")
        values = list(self.sample.columns[column].counts)
        mapped = location_types(values)
        table = Section("location.location_types")
        names = nibrs_location_types()
        table.notes.append(
            "guess: NIBRS location codes suggested by the words of each local value; check "
            "every line (crossbeat/taxonomy/data/location_types.csv lists the codes)"
        )
        for value, code in mapped.items():
            table.add(value, code, names.get(code, ""))
        left = [v for v in values if v not in mapped]
        if left:
            shown = ", ".join(repr(v) for v in left[:12]) + (" ..." if len(left) > 12 else "")
            table.add(None, comment=f"TODO: not mapped (stored with a warning): {shown}")
        return [table] if mapped or left else []


def plan_location(
    sample: Sample,
    *,
    source: SourceSpec,
    src: Section,
    taken: set[str],
    timezone: str | None,
) -> list[Section]:
    """Return the ``[location]`` section (and ``[location.location_types]``).

    Parameters
    ----------
    sample
        The sampled records.
    source
        The ``[source]`` settings the sample was read with (its ``crs`` is the CRS the
        file declares, if any).
    src
        The draft's ``[source]`` section: the CRS is written there.
    taken
        Columns already assigned; the ones used here are added to it.
    timezone
        The user's ``--timezone`` (British National Grid is decided only in Europe/London).
    """
    return _Location(sample, source, src, taken, timezone).plan()


def _crs_why(guess: PointGuess) -> str:
    if guess.crs == "EPSG:4326":
        return "guess: longitude/latitude (WGS84), from the column names and value ranges"
    return guess.comment


#: Fewest coordinate values from which the draft judges their rounding.
MIN_ROUNDING_VALUES = 20
#: Most decimal places that still mean "rounded by the source" (4 places: about 11 m).
MAX_ROUNDED_DECIMALS = 4


def coordinate_rounding(texts: list[str]) -> tuple[int, int] | None:
    """Return (decimal places, metres) when longitude/latitude values are rounded.

    The precision the data actually has is the most decimal places any value has; at
    :data:`MAX_ROUNDED_DECIMALS` or fewer the points are rounded (3 places of a degree
    are about 111 m). None when they are finer, or there are too few values to tell.

    Examples
    --------
    >>> coordinate_rounding(["-122.679", "45.515", "45.5"] * 10)
    (3, 111)
    >>> coordinate_rounding(["-122.678912", "45.514901"] * 10) is None
    True
    """
    places = []
    for text in texts:
        head, dot, tail = text.strip().partition(".")
        if not head.lstrip("+-").isdigit() or (dot and not tail.isdigit()):
            continue
        places.append(len(tail))
    if len(places) < MIN_ROUNDING_VALUES:
        return None
    decimals = max(places)
    if decimals > MAX_ROUNDED_DECIMALS:
        return None
    return decimals, round(METRES_PER_DEGREE / 10**decimals)


def location_types(values: list[str]) -> dict[str, str]:
    """Return the NIBRS location code suggested by the words of each local value.

    Examples
    --------
    >>> location_types(["House", "Parking Lot", "Moon"])
    {'House': '20', 'Parking Lot': '18'}
    """
    found: dict[str, str] = {}
    for value in values:
        low = value.lower()
        for keys, code in _LOCATION_WORDS:
            if any(re.search(rf"\b{re.escape(k)}\b", low) for k in keys):
                found[value] = code
                break
    return found
