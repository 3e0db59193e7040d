"""Vector tiles of the incidents you may see, with ETag and cache headers (issue #8).

The route parses ``z/x/y`` and the filters, calls :func:`crossbeat.sharing.tiles.tile`
(which applies the policy, suppresses counts and writes the audit event) and renders
the MVT with its ``ETag`` and ``Cache-Control``: ``public, max-age=60`` for the public's
tiles, ``private, no-store`` for an authenticated caller's. A matching
``If-None-Match`` answers 304 without a body.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import Response

from crossbeat.api.deps import StoreDep, ViewerDep
from crossbeat.api.errors import ApiError
from crossbeat.api.filters import (
    Agency,
    Area,
    Filters,
    Jurisdiction,
    Offence,
    Purpose,
    Since,
    Until,
)
from crossbeat.api.public_answers import VARY, PublicAnswer, question
from crossbeat.api.schemas import ERRORS, PUBLIC
from crossbeat.sharing.request import ViewerKind
from crossbeat.sharing.tiles import TileError, tile

router = APIRouter(tags=["tiles"])

MVT = "application/vnd.mapbox-vector-tile"


def _int(name: str, text: str) -> int:
    if not text.isdigit() or len(text) > 8:
        raise ApiError(400, f"{name} must be a whole number (tile z/x/y), not {text[:20]!r}")
    return int(text)


@router.get(
    "/tiles/incidents/{z}/{x}/{y}.mvt",
    response_class=Response,
    openapi_extra=PUBLIC,
    responses={
        **ERRORS,
        200: {"content": {MVT: {}}, "description": "The tile (empty body: no features)."},
        304: {"description": "Not modified: your If-None-Match names this tile's ETag."},
    },
    summary="A vector tile of the incidents you may see",
)
def get_tile(
    http: Request,
    store: StoreDep,
    viewer: ViewerDep,
    z: Annotated[str, Path(description="Zoom, 0 to 22.")],
    x: Annotated[str, Path(description="Column, 0 to 2^z - 1.")],
    y: Annotated[str, Path(description="Row, 0 to 2^z - 1 (XYZ: 0 is north).")],
    since: Since = None,
    until: Until = None,
    offence: Offence = None,
    agency: Agency = None,
    area: Area = None,
    jurisdiction: Jurisdiction = None,
    purpose: Purpose = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    """Return one Mapbox Vector Tile, your sharing policy applied.

    From zoom 13 up, layer ``incidents``: a point per incident at the precision you are
    granted (the public's snapped point, an H3 anchor for an ``h3:N`` grant; none for
    area or jurisdiction grants) with ``id``, ``agency_id``, ``crime_against``,
    ``nibrs`` and ``occurred_from`` where you may see them. Below zoom 13, layer
    ``hexagons``: H3 cells (resolution 7 to zoom 11, 9 at zoom 12) with ``h3``,
    ``count`` and a count per crime-against category, suppressed exactly as
    ``/api/v1/aggregates`` (a suppressed count is absent and named in ``hidden``).
    """
    zoom, col, row = _int("z", z), _int("x", x), _int("y", y)
    request = Filters(
        since=since,
        until=until,
        offence=offence,
        agency=agency,
        area=area,
        jurisdiction=jurisdiction,
        purpose=purpose,
    ).request()
    try:
        if viewer.kind is ViewerKind.PUBLIC:
            # Kept while no write or policy change happened (issue #10), and served
            # again by crossbeat.api.public_answers; 304 decided there and here.
            def compute() -> PublicAnswer:
                found = tile(store, viewer, zoom, col, row, request)
                return PublicAnswer(found.data, MVT, found.etag, found.cache_control)

            kept = http.app.state.public_cache.read(store, viewer, question(http.scope), compute)
            answer: PublicAnswer = kept
            return answer.response(if_none_match)
        result = tile(store, viewer, zoom, col, row, request, if_none_match=if_none_match)
    except TileError as exc:
        raise ApiError(400, str(exc)) from None
    headers = {"ETag": result.etag, "Cache-Control": result.cache_control, "Vary": VARY}
    if result.not_modified:
        return Response(status_code=304, headers=headers)
    return Response(result.data, media_type=MVT, headers=headers)
