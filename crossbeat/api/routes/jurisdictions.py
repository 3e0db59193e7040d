"""Agency boundaries as GeoJSON, for the maps (issue #12).

A boundary is a public fact about an agency, not incident data: it needs no sign-in
and no sharing decision. The web pages draw it under the data layers.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from crossbeat.agencies import boundary_features
from crossbeat.api.deps import StoreDep
from crossbeat.api.schemas import ERRORS, PUBLIC

router = APIRouter(tags=["jurisdictions"])


@router.get(
    "/jurisdictions",
    openapi_extra=PUBLIC,
    responses={**ERRORS, 200: {"content": {"application/geo+json": {}}}},
    summary="Every agency's jurisdiction polygons (GeoJSON)",
)
def get_jurisdictions(store: StoreDep) -> JSONResponse:
    """Return a FeatureCollection of jurisdiction polygons (agency_id, agency_name, name)."""
    return JSONResponse(boundary_features(store), media_type="application/geo+json")
