"""Exports of any incident query: CSV, GeoJSON, GeoPackage (issue #10).

The route parses the filters and calls :func:`crossbeat.exports.export_incidents`,
which reads through the sharing policy and audits the read as an ``export``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from crossbeat.api.deps import StoreDep, ViewerDep
from crossbeat.api.filters import FiltersDep
from crossbeat.api.schemas import ERRORS, PUBLIC
from crossbeat.exports import MAX_EXPORT, ExportFormat, export_incidents

router = APIRouter(tags=["exports"])

_FILE = {"schema": {"type": "string", "format": "binary"}}


@router.get(
    "/exports",
    openapi_extra=PUBLIC,
    responses={
        **ERRORS,
        200: {
            "description": "The file; X-Next-After names where the rest begins when cut",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/geo+json": {"schema": {"type": "object"}},
                "application/geopackage+sqlite3": _FILE,
            },
        },
    },
    response_class=Response,
    summary="Download the incidents you may see as CSV, GeoJSON or GeoPackage",
)
def get_export(
    store: StoreDep,
    viewer: ViewerDep,
    filters: FiltersDep,
    format: Annotated[Literal["csv", "geojson", "gpkg"], Query(description="File format.")] = "csv",
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_EXPORT, description="At most this many incidents.")
    ] = None,
    after: Annotated[
        str | None, Query(max_length=200, description="X-Next-After of the previous part.")
    ] = None,
) -> Response:
    """Return a file of the incidents matching the filters, as the sharing policy shows them.

    Only the columns some owner granted you are in the file, and nothing else: no query,
    user or server metadata. The export is audited per owner agency (``export`` events
    with the record ids and counts).
    """
    request = filters.request(limit=limit, after=after)
    export = export_incidents(store, viewer, request, ExportFormat(format))
    headers = {"Content-Disposition": f'attachment; filename="{export.filename}"'}
    if export.next_after is not None:
        headers["X-Next-After"] = export.next_after
    return Response(export.data, media_type=export.format.media_type, headers=headers)
