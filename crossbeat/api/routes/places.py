"""Address lookup for the maps: a typed address to points (issue #12).

Reads agencies' address points (:mod:`crossbeat.gazetteer`), public reference data, never
incidents: like a boundary it needs no sign-in and no sharing decision. The public map
then counts what happened near the point through the public policy.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from crossbeat.api.deps import StoreDep
from crossbeat.api.schemas import ERRORS, PUBLIC, PlaceOut, PlacesOut
from crossbeat.gazetteer import geocode, has_addresses

router = APIRouter(tags=["places"])


@router.get(
    "/places",
    openapi_extra=PUBLIC,
    responses=ERRORS,
    summary="Look an address up: the points it matches (from agencies' address points)",
)
def get_places(
    store: StoreDep,
    q: Annotated[
        str,
        Query(
            min_length=3,
            max_length=200,
            description="An address as people write it: `312 SE 1st Ave, Riverton`, "
            "`1st avenue`; the house number, the locality after a comma and the street's "
            "directional and type words are optional.",
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=20, description="At most this many places.")] = 5,
) -> PlacesOut:
    """Return the places ``q`` matches, best first: the stored point of the number, else a
    point interpolated between the street's nearest numbers, else the nearest number;
    a street without a number gives its middle point."""
    places = [PlaceOut(**p.as_dict()) for p in geocode(store, q, limit=limit)]
    return PlacesOut(query=q, places=places, addresses_loaded=bool(places) or has_addresses(store))
