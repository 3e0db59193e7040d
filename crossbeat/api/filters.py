"""The incident filters shared by the incident list, the aggregates and the exports.

:func:`incident_filters` is a route dependency: its parameters are the query
parameters (so every route that uses it documents the same ones), and it returns the
:class:`Filters` from which :meth:`Filters.request` builds the
:class:`~crossbeat.sharing.request.ReadRequest`. Every problem is a 400 that names the
query parameter, never a field of the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Query

from crossbeat.sharing.request import ReadRequest, RequestError

#: Query parameter of each :class:`ReadRequest` field whose name differs.
QUERY_NAMES = {
    "group_by": "by",
    "offences": "offence",
    "agencies": "agency",
    "areas": "area",
    "jurisdictions": "jurisdiction",
    "statuses": "status",
    "codes": "code",
}

Bbox = Annotated[
    str | None,
    Query(
        max_length=200,
        description="min_lon,min_lat,max_lon,max_lat (WGS84), on the published point.",
    ),
]
Since = Annotated[
    datetime | None, Query(description="Occurred at or after, with a zone (2026-03-01T00:00Z).")
]
Until = Annotated[datetime | None, Query(description="Occurred before, with a zone.")]
Offence = Annotated[
    list[str] | None,
    Query(description="all, person, property, society, part1 or NIBRS codes (repeatable)."),
]
Agency = Annotated[list[str] | None, Query(description="Only these owner agencies.")]
Area = Annotated[
    list[str] | None,
    Query(
        description="Only incidents in these areas: LAYER:NAME (the owner's layer) or "
        "AGENCY/LAYER:NAME, repeatable (e.g. boroughs:Camden)."
    ),
]
Calls = Annotated[
    Literal["exclude", "include", "only"],
    Query(
        description="Calls for service (CAD calls that are not offences): exclude (default), "
        "include, or only them."
    ),
]
Purpose = Annotated[
    str | None, Query(description="Why you read: analysis (default), operations, investigation.")
]
Polygon = Annotated[
    str | None,
    Query(
        max_length=200_000,
        description="Only incidents whose published point lies in this polygon (WGS84 "
        "longitude/latitude): a GeoJSON Polygon or MultiPolygon (or a Feature of one), or "
        "WKT such as POLYGON ((-0.2 51.5, -0.1 51.5, -0.1 51.6, -0.2 51.5)).",
    ),
]
Jurisdiction = Annotated[
    list[str] | None,
    Query(description="Only incidents in these agencies' jurisdictions (repeatable)."),
]
Status = Annotated[
    list[str] | None,
    Query(description="Only incidents with these statuses, any case (repeatable)."),
]
Code = Annotated[
    list[str] | None,
    Query(
        description="Only incidents whose primary offence has these codes: the owner's "
        "local code or a NIBRS code (repeatable)."
    ),
]


@dataclass(frozen=True)
class Filters:
    """The filter parameters of a request, as given."""

    bbox: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    offence: list[str] | None = None
    agency: list[str] | None = None
    purpose: str | None = None
    area: list[str] | None = None
    calls: str = "exclude"
    polygon: str | None = None
    jurisdiction: list[str] | None = None
    status: list[str] | None = None
    code: list[str] | None = None

    def request(self, **more: Any) -> ReadRequest:
        """Build the read request; :class:`RequestError` (400) lists every bad parameter.

        Parameters
        ----------
        **more
            Further :class:`ReadRequest` fields (``fields``, ``limit``, ``group_by``...).
        """
        try:
            return ReadRequest(
                bbox=tuple(self.bbox.split(",")) if self.bbox is not None else None,  # type: ignore[arg-type]
                since=self.since,
                until=self.until,
                offences=frozenset(self.offence) if self.offence else None,
                agencies=frozenset(self.agency) if self.agency else None,
                areas=frozenset(self.area) if self.area else None,  # type: ignore[arg-type]
                purpose=self.purpose,  # type: ignore[arg-type]
                calls=self.calls,  # type: ignore[arg-type]
                polygon=self.polygon,
                jurisdictions=_set(self.jurisdiction),
                statuses=_set(self.status),
                codes=_set(self.code),
                **more,
            )
        except RequestError as exc:
            raise exc.renamed(QUERY_NAMES) from None


def _set(items: list[str] | None) -> frozenset[str] | None:
    return frozenset(items) if items is not None else None


def incident_filters(
    bbox: Bbox = None,
    since: Since = None,
    until: Until = None,
    offence: Offence = None,
    agency: Agency = None,
    purpose: Purpose = None,
    area: Area = None,
    calls: Calls = "exclude",
    polygon: Polygon = None,
    jurisdiction: Jurisdiction = None,
    status: Status = None,
    code: Code = None,
) -> Filters:
    """Collect the incident filters of a request (a route dependency)."""
    return Filters(
        bbox, since, until, offence, agency, purpose, area, calls, polygon, jurisdiction,
        status, code,
    )  # fmt: skip


FiltersDep = Annotated[Filters, Depends(incident_filters)]
