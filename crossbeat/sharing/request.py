"""Who reads and what they ask for: :class:`Viewer` and :class:`ReadRequest` (issue #3).

Both validate themselves on construction, so the policy only ever sees well-formed
input; a malformed request raises :class:`RequestError` listing every problem.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np
import shapely
import shapely.geometry
import shapely.validation
from shapely.geometry import MultiPolygon, Polygon

from crossbeat.auth.roles import Role
from crossbeat.sharing.scope import (
    Purpose,
    ScopeError,
    TimeResolution,
    expand_fields,
    is_call_token,
    parse_layer_ref,
    parse_offences,
)

#: Roles that give access to incident records.
DATA_ROLES: frozenset[Role] = frozenset({Role.OFFICER, Role.ANALYST, Role.SUPERVISOR})
#: Roles that may see personal data (with a stated legal basis).
PERSONAL_ROLES: frozenset[Role] = frozenset({Role.OFFICER, Role.SUPERVISOR})

#: Aggregation dimensions, the fields each needs, and the finest time resolution needed.
GROUP_BY: Mapping[str, tuple[str, ...]] = {
    "agency": (),
    "jurisdiction": ("jurisdictions",),
    "h3_7": ("h3_7",),
    "h3_9": ("h3_9",),
    "h3_11": ("h3_11",),
    "nibrs": ("nibrs_code",),
    "crime_against": ("crime_against",),
    # The call category travels with every call record shown (scope.CALL_FIELD).
    "call_category": (),
    "month": ("occurred_from",),
    "day": ("occurred_from",),
    "hour": ("occurred_from",),
}
TIME_DIMS = {"month": TimeResolution.MONTH, "day": TimeResolution.DAY, "hour": TimeResolution.HOUR}
#: Prefix of the area dimensions: ``area:LAYER`` (the owner's layer) or ``area:AGENCY/LAYER``.
AREA_DIM = "area:"


#: The coarsest map zoom at which each stored H3 resolution is the one to count by.
_ZOOM_DIMS: tuple[tuple[int, str], ...] = ((15, "h3_11"), (12, "h3_9"), (0, "h3_7"))


def h3_dim_for_zoom(zoom: int) -> str:
    """Return the H3 dimension to count by for a web-map zoom level (0-24).

    Cells a few dozen screen pixels across: ``h3_7`` (about 2.5 km) below zoom 12,
    ``h3_9`` (about 350 m) from 12, ``h3_11`` (about 50 m) from 15.

    Examples
    --------
    >>> [h3_dim_for_zoom(z) for z in (3, 11, 12, 14, 15, 22)]
    ['h3_7', 'h3_7', 'h3_9', 'h3_9', 'h3_11', 'h3_11']
    """
    if not 0 <= zoom <= 24:
        raise ValueError("zoom: give a map zoom level from 0 to 24")
    return next(dim for least, dim in _ZOOM_DIMS if zoom >= least)


def area_dim_layer(dim: str) -> str | None:
    """Return the layer reference of an ``area:LAYER`` dimension (None for other dims)."""
    return dim[len(AREA_DIM) :] if dim.startswith(AREA_DIM) else None


def parse_area_filter(items: Iterable[str] | str) -> frozenset[tuple[str, str]]:
    """Turn ``LAYER:NAME`` (or ``AGENCY/LAYER:NAME``) items into (layer, name) pairs.

    Examples
    --------
    >>> sorted(parse_area_filter(["boroughs:Camden", "met/wards:Holborn"]))
    [('boroughs', 'Camden'), ('met/wards', 'Holborn')]
    """
    out: set[tuple[str, str]] = set()
    for item in [items] if isinstance(items, str) else items:
        layer, sep, name = str(item).partition(":")
        if not sep or not name.strip():
            raise ScopeError(f"bad area {item!r}: use LAYER:NAME, e.g. boroughs:Camden")
        out.add((parse_layer_ref(layer), name.strip()))
    if not out:
        raise ScopeError("name at least one area as LAYER:NAME")
    return frozenset(out)


class RequestError(ValueError):
    """A read request is malformed; the message lists every problem.

    ``problems`` holds them one by one, each starting with the request field it is
    about (``"group_by: ..."``), so that an adapter can name its own parameter instead.
    """

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))

    def renamed(self, names: Mapping[str, str]) -> RequestError:
        """Return the error with each problem's field renamed by ``names`` (e.g. ``by``)."""
        out = []
        for problem in self.problems:
            field, sep, rest = problem.partition(": ")
            out.append(f"{names.get(field, field)}{sep}{rest}" if sep else problem)
        return RequestError(out)


class CallsFilter(StrEnum):
    """Whether a read includes calls for service (CAD calls that are not offences).

    ``exclude`` (the default): offences only, so that counts and maps of crime are not
    inflated by alarms, traffic stops and welfare checks. ``include``: offences and
    the calls the viewer may see. ``only``: calls for service alone.
    """

    EXCLUDE = "exclude"
    INCLUDE = "include"
    ONLY = "only"


class ViewerKind(StrEnum):
    """Who is reading."""

    USER = "user"
    TOKEN = "token"
    PUBLIC = "public"


@dataclass(frozen=True)
class Viewer:
    """Who is reading, for which agency, with which roles and purpose.

    Parameters
    ----------
    kind
        ``user`` (signed in), ``token`` (API read token, treated like an analyst) or
        ``public``.
    agency_id
        The agency the user or token belongs to (None for the public).
    roles
        The user's roles.
    groups
        Groups the viewer's agency belongs to. :mod:`crossbeat.sharing.reads` always
        replaces this with the stored membership.
    purpose
        The purpose the viewer acts under (a request may state its own).
    id
        User id, token id or ``public`` (recorded in the audit log).
    source_ip
        The address the request came from (recorded in the audit log).
    """

    kind: ViewerKind
    agency_id: str | None = None
    roles: frozenset[Role] = frozenset()
    groups: frozenset[str] = frozenset()
    purpose: Purpose | None = None
    id: str = "public"
    source_ip: str | None = None

    def __post_init__(self) -> None:
        """Check that users and tokens name an agency and the public does not."""
        object.__setattr__(self, "kind", ViewerKind(self.kind))
        object.__setattr__(self, "roles", frozenset(Role(r) for r in self.roles))
        if self.purpose is not None:
            object.__setattr__(self, "purpose", Purpose(self.purpose))
        if self.kind is ViewerKind.PUBLIC:
            if self.agency_id is not None or self.roles:
                raise ValueError("a public viewer has no agency and no roles")
        elif not self.agency_id:
            raise ValueError(f"a {self.kind.value} viewer needs an agency_id")

    @classmethod
    def public(cls, *, source_ip: str | None = None) -> Viewer:
        """Return the anonymous public viewer."""
        return cls(ViewerKind.PUBLIC, source_ip=source_ip)

    @classmethod
    def user(
        cls,
        user_id: str,
        agency_id: str,
        roles: Iterable[Role | str],
        *,
        purpose: Purpose | str | None = None,
        source_ip: str | None = None,
    ) -> Viewer:
        """Return a signed-in user of an agency."""
        p = Purpose(purpose) if purpose is not None else None
        return cls(
            ViewerKind.USER,
            agency_id,
            frozenset(Role(r) for r in roles),
            purpose=p,
            id=user_id,
            source_ip=source_ip,
        )

    @classmethod
    def token(cls, token_id: str, agency_id: str, *, source_ip: str | None = None) -> Viewer:
        """Return an API read token of an agency (reads like an analyst)."""
        return cls(ViewerKind.TOKEN, agency_id, id=token_id, source_ip=source_ip)

    @property
    def data_roles(self) -> frozenset[Role]:
        """Return the roles that give access to incident data (tokens: analyst)."""
        if self.kind is ViewerKind.TOKEN:
            return frozenset({Role.ANALYST})
        return self.roles & DATA_ROLES

    def label(self) -> str:
        """Return a short description for reasons, e.g. ``analyst of rivertonpd``."""
        if self.kind is ViewerKind.PUBLIC:
            return "the public"
        roles = ", ".join(sorted(r.value for r in self.roles)) or "no roles"
        what = "API token" if self.kind is ViewerKind.TOKEN else roles
        return f"{what} of {self.agency_id}"


#: The dates a read may name: outside them a date is a typo, and calendar arithmetic on
#: it (time zones, day and month boundaries) would overflow.
EARLIEST = datetime(1800, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ReadRequest:
    """What is asked for. Every filter applies to the record as the viewer would see it.

    Parameters
    ----------
    bbox
        ``(min_lon, min_lat, max_lon, max_lat)`` on the published point.
    since, until
        Window ``[since, until)`` on the published ``occurred_from``.
    agencies
        Only these owners.
    offences
        Offence tokens (``all``, categories, ``part1``, NIBRS codes) on the primary offence;
        they filter offences, never calls for service.
    areas
        Only incidents in one of these areas: ``LAYER:NAME`` items (``LAYER`` is the
        owner's layer of that name, ``AGENCY/LAYER`` a given agency's), read into
        ``(layer, name)`` pairs. Needs precision ``exact`` or ``area:LAYER``.
    calls
        ``exclude`` (default), ``include`` or ``only``: see :class:`CallsFilter`.
    ids
        Only these incident ids: public ids, or (for the owner's own readers only) the
        owner's ids.
    polygon
        Only incidents whose published point lies in this polygon (WGS84): a shapely
        Polygon or MultiPolygon, GeoJSON text (a geometry or a Feature) or WKT, read by
        :func:`parse_polygon`. Needs a published point, like ``bbox``.
    jurisdictions
        Only incidents in one of these agencies' jurisdictions (the published
        ``jurisdictions`` field, whose owner may differ from the record's).
    statuses
        Only incidents with one of these statuses (the published ``status``, compared
        without regard to case).
    codes
        Only incidents whose primary offence has one of these codes: the owner's local
        code (published ``offence_local_code``) or a NIBRS code (``nibrs_code``).
    fields
        Only these fields (names or groups); None: every permitted field.
    purpose
        The purpose of this read (default: the viewer's, else ``analysis``).
    personal_data, legal_basis
        Ask for personal data, stating the legal basis (case number, warrant...).
    aggregate, group_by
        An aggregate read and its dimensions (see :data:`GROUP_BY`, or ``area:LAYER``;
        at most two).
    changed_since
        Only records changed, or newly visible, after this time (live streams).
    limit, after
        Page size and keyset cursor (records come in public-id order; the cursor is
        the ``next_after`` of the previous page, never an owner's id).
    """

    bbox: tuple[float, float, float, float] | None = None
    since: datetime | None = None
    until: datetime | None = None
    agencies: frozenset[str] | None = None
    offences: frozenset[str] | None = None
    areas: frozenset[tuple[str, str]] | None = None
    ids: frozenset[str] | None = None
    polygon: Any = None
    jurisdictions: frozenset[str] | None = None
    statuses: frozenset[str] | None = None
    codes: frozenset[str] | None = None
    fields: frozenset[str] | None = None
    purpose: Purpose | None = None
    personal_data: bool = False
    legal_basis: str | None = None
    aggregate: bool = False
    group_by: tuple[str, ...] = ()
    changed_since: datetime | None = None
    limit: int | None = None
    after: str | None = None
    calls: CallsFilter = CallsFilter.EXCLUDE

    def __post_init__(self) -> None:
        """Validate and normalise every field; raise :class:`RequestError` listing problems."""
        problems: list[str] = []
        set_ = object.__setattr__
        if self.bbox is not None:
            try:
                box = tuple(float(v) for v in self.bbox)
            except (TypeError, ValueError):
                box = ()
            if len(box) != 4 or not all(math.isfinite(v) for v in box):
                problems.append("bbox: give four numbers min_lon,min_lat,max_lon,max_lat")
            elif not (-180 <= box[0] <= box[2] <= 180 and -90 <= box[1] <= box[3] <= 90):
                problems.append("bbox: need -180<=min_lon<=max_lon<=180, -90<=min_lat<=max_lat<=90")
            else:
                set_(self, "bbox", box)
        for name in ("since", "until", "changed_since"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                problems.append(f"{name}: give a date and time with a time zone")
            elif value is not None and not EARLIEST <= value < LATEST:
                problems.append(
                    f"{name}: {value.isoformat()} is outside the dates CrossBeat reads "
                    f"({EARLIEST.date()} to {LATEST.date()})"
                )
        if (
            isinstance(self.since, datetime)
            and isinstance(self.until, datetime)
            and self.since.tzinfo
            and self.until.tzinfo
            and self.until <= self.since
        ):
            problems.append("until: must be after since")
        for name, parser in (("offences", parse_offences), ("fields", expand_fields)):
            value = getattr(self, name)
            if value is not None:
                try:
                    set_(self, name, parser([value] if isinstance(value, str) else value))
                except ScopeError as exc:
                    problems.append(f"{name}: {exc}")
        if self.areas is not None:
            try:
                set_(self, "areas", _area_pairs(self.areas))
            except ScopeError as exc:
                problems.append(f"areas: {exc}")
        if isinstance(self.offences, frozenset) and any(is_call_token(t) for t in self.offences):
            problems.append(
                "offences: calls for service are not offences, use calls=include or "
                "calls=only (and count by call_category)"
            )
        try:
            set_(self, "calls", CallsFilter(self.calls))
        except ValueError:
            problems.append(f"calls: use {', '.join(c.value for c in CallsFilter)}")
        for name in ("agencies", "ids", "jurisdictions", "statuses", "codes"):
            value = getattr(self, name)
            if value is not None:
                items = frozenset([value] if isinstance(value, str) else value)
                bad = [
                    v
                    for v in items
                    if not isinstance(v, str) or not v.strip() or "\x00" in v or len(v) > 64
                ]
                if bad or not items:
                    what = _ITEM_NAMES[name]
                    problems.append(
                        f"{name}: an empty {what}, one longer than 64 characters or with a "
                        "NUL character"
                    )
                elif name == "statuses":
                    items = frozenset(v.strip().casefold() for v in items)
                elif name != "ids":
                    items = frozenset(v.strip() for v in items)
                set_(self, name, items)
        if self.polygon is not None:
            try:
                set_(self, "polygon", parse_polygon(self.polygon))
            except ValueError as exc:
                problems.append(f"polygon: {exc}")
        for name in ("after", "legal_basis"):
            value = getattr(self, name)
            if isinstance(value, str) and "\x00" in value:
                problems.append(f"{name}: contains a NUL character")
        if self.purpose is not None:
            try:
                set_(self, "purpose", Purpose(self.purpose))
            except ValueError:
                problems.append(f"purpose: unknown purpose {self.purpose!r}")
        if self.personal_data and not (self.legal_basis or "").strip():
            problems.append("legal_basis: personal data needs a stated legal basis (case number)")
        dims = tuple(self.group_by)
        unknown = [d for d in dims if d not in GROUP_BY and not _area_dim_ok(d)]
        if unknown:
            problems.append(f"group_by: unknown {unknown}; use {', '.join(GROUP_BY)} or area:LAYER")
        if len(dims) > 2 or len(set(dims)) != len(dims):
            problems.append("group_by: at most two different dimensions")
        set_(self, "group_by", dims)
        if self.limit is not None and (isinstance(self.limit, bool) or self.limit < 1):
            problems.append("limit: must be at least 1")
        if problems:
            raise RequestError(problems)


_ITEM_NAMES = {
    "agencies": "agency",
    "ids": "incident id",
    "jurisdictions": "jurisdiction",
    "statuses": "status",
    "codes": "offence code",
}
#: The most vertices a polygon filter may have, and the longest text it may be given in.
MAX_POLYGON_VERTICES = 10_000
MAX_POLYGON_TEXT = 200_000


def parse_polygon(value: object) -> Polygon | MultiPolygon:
    """Read a polygon filter: GeoJSON (geometry or Feature), WKT, or a shapely polygon.

    Parameters
    ----------
    value
        The polygon, in WGS84 longitude/latitude.

    Returns
    -------
    Polygon or MultiPolygon
        The valid, non-empty polygon.

    Raises
    ------
    ValueError
        Not a polygon, unreadable, invalid (e.g. self-intersecting), empty, outside
        -180..180 / -90..90, or too large.

    Examples
    --------
    >>> parse_polygon("POLYGON ((0 0, 1 0, 1 1, 0 0))").area
    0.5
    >>> parse_polygon('{"type": "Polygon", "coordinates": [[[0,0],[2,0],[2,2],[0,0]]]}').area
    2.0
    """
    geom: Any = value
    if isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_POLYGON_TEXT:
            raise ValueError(f"longer than {MAX_POLYGON_TEXT} characters: simplify it")
        geom = _read_geojson(text) if text.startswith("{") else _read_wkt(text)
    if not isinstance(geom, Polygon | MultiPolygon):
        raise ValueError("give a Polygon or MultiPolygon (GeoJSON or WKT) in longitude/latitude")
    if shapely.get_num_coordinates(geom) > MAX_POLYGON_VERTICES:
        raise ValueError(f"more than {MAX_POLYGON_VERTICES} vertices: simplify it")
    coords = shapely.get_coordinates(geom)
    if not np.isfinite(coords).all():
        raise ValueError("coordinates must be finite numbers")
    if geom.is_empty:
        raise ValueError("the polygon is empty")
    min_x, min_y, max_x, max_y = geom.bounds
    if not (-180 <= min_x and max_x <= 180 and -90 <= min_y and max_y <= 90):
        raise ValueError("coordinates must be longitude -180..180 then latitude -90..90")
    if not geom.is_valid:
        raise ValueError(f"not a valid polygon ({shapely.validation.explain_validity(geom)})")
    if geom.area <= 0:
        raise ValueError("the polygon has no area")
    shapely.prepare(geom)
    return geom


def _read_geojson(text: str) -> Any:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not valid GeoJSON ({exc})") from None
    if isinstance(data, dict) and data.get("type") == "Feature":
        data = data.get("geometry")
    if not isinstance(data, dict) or data.get("type") not in ("Polygon", "MultiPolygon"):
        raise ValueError("give a GeoJSON Polygon or MultiPolygon geometry (or a Feature of one)")
    try:
        return shapely.geometry.shape(data)
    except Exception as exc:  # shapely raises several kinds for malformed coordinates
        raise ValueError(f"malformed GeoJSON coordinates ({exc})") from None


def _read_wkt(text: str) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NaN coordinates: checked after
            return shapely.from_wkt(text)
    except Exception:  # shapely.errors.GEOSException or ValueError, depending on the text
        raise ValueError(
            "not GeoJSON or WKT: give e.g. POLYGON ((lon lat, lon lat, lon lat, lon lat))"
        ) from None


def _area_dim_ok(dim: str) -> bool:
    layer = area_dim_layer(dim)
    if layer is None:
        return False
    try:
        return parse_layer_ref(layer) == layer
    except ScopeError:
        return False


def _area_pairs(value: object) -> frozenset[tuple[str, str]]:
    """Accept (layer, name) pairs or ``LAYER:NAME`` strings."""
    items = [value] if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    pairs: set[tuple[str, str]] = set()
    texts: list[str] = []
    for item in items:
        if isinstance(item, tuple) and len(item) == 2:
            pairs.add((parse_layer_ref(item[0]), str(item[1]).strip()))
        else:
            texts.append(str(item))
    if texts:
        pairs |= parse_area_filter(texts)
    if not pairs:
        raise ScopeError("name at least one area as LAYER:NAME")
    return frozenset(pairs)
