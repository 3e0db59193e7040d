"""OGC API - Features Part 1 (Core + GeoJSON) under /api/v1/ogc (issue #10).

QGIS's request sequence is landing page -> conformance -> collections ->
``collections/{id}/items?bbox=...&limit=...``, following ``next`` links. The caller is
identified as everywhere else (``Authorization: Bearer cbt_...`` for an API token; in
QGIS an "API Header" authentication), so each user's redaction applies. The logic is
in :mod:`crossbeat.ogc`; this module adds the links and renders the documents.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from crossbeat.api.deps import StoreDep, ViewerDep
from crossbeat.api.errors import ApiError
from crossbeat.api.schemas import ERRORS, PUBLIC
from crossbeat.ogc import (
    CONFORMANCE,
    CRS84,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_OFFSET,
    STANDARD_PARAMS,
    Collection,
    OgcError,
    Page,
    area_item,
    area_items,
    collections,
    find_collection,
    incident_item,
    incident_items,
    incident_request,
)
from crossbeat.store import Store

router = APIRouter(prefix="/ogc", tags=["ogc"])

JSON = "application/json"
GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
_OBJECT = {"schema": {"type": "object"}}

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Features per page.")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Features to skip.")]
F = Annotated[str | None, Query(pattern="^(json|geojson)$", description="json or geojson.")]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + request.scope.get("root_path", "") + "/api/v1/ogc"


def _link(href: str, rel: str, type_: str, title: str | None = None) -> dict[str, str]:
    out = {"href": href, "rel": rel, "type": type_}
    if title:
        out["title"] = title
    return out


def _json(body: dict[str, Any], media_type: str = JSON) -> JSONResponse:
    return JSONResponse(body, media_type=media_type)


@router.get(
    "",
    openapi_extra=PUBLIC,
    responses={**ERRORS, 200: {"content": {JSON: _OBJECT}}},
    summary="OGC API landing page",
)
def landing(request: Request) -> JSONResponse:
    """Return the landing page: links to the API definition, conformance and collections."""
    base = _base(request)
    root = str(request.base_url).rstrip("/")
    return _json(
        {
            "title": "CrossBeat OGC API - Features",
            "description": "Incidents and area layers, as the sharing policy shows them to you.",
            "links": [
                _link(base, "self", JSON, "This document"),
                _link(f"{root}/openapi.json", "service-desc", OPENAPI, "The API definition"),
                _link(f"{root}/docs", "service-doc", "text/html", "The API documentation"),
                _link(f"{base}/conformance", "conformance", JSON, "Conformance classes"),
                _link(f"{base}/collections", "data", JSON, "Collections"),
            ],
        }
    )


@router.get(
    "/conformance",
    openapi_extra=PUBLIC,
    responses={**ERRORS, 200: {"content": {JSON: _OBJECT}}},
    summary="OGC API conformance classes",
)
def conformance() -> JSONResponse:
    """Return the conformance classes implemented: Core, GeoJSON and OpenAPI 3.0."""
    return _json({"conformsTo": list(CONFORMANCE)})


def _collection(base: str, c: Collection) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": c.id,
        "title": c.title,
        "description": c.description,
        "itemType": "feature",
        "crs": [CRS84],
        "extent": {"spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]], "crs": CRS84}},
        "links": [
            _link(f"{base}/collections/{c.id}", "self", JSON, c.title),
            _link(f"{base}/collections/{c.id}/items", "items", GEOJSON, "Features"),
        ],
    }
    return out


@router.get(
    "/collections",
    openapi_extra=PUBLIC,
    responses={**ERRORS, 200: {"content": {JSON: _OBJECT}}},
    summary="OGC API collections you may read",
)
def list_collections(request: Request, store: StoreDep, viewer: ViewerDep) -> JSONResponse:
    """Return the incidents collection and one collection per visible area layer."""
    base = _base(request)
    return _json(
        {
            "links": [_link(f"{base}/collections", "self", JSON, "Collections")],
            "collections": [_collection(base, c) for c in collections(store, viewer)],
        }
    )


def _find(store: Store, viewer: Any, collection_id: str) -> Collection:
    found = find_collection(store, viewer, collection_id)
    if found is None:
        raise ApiError(404, f"no collection {collection_id!r} that you may read: see /collections")
    return found


@router.get(
    "/collections/{collection_id}",
    openapi_extra=PUBLIC,
    responses={**ERRORS, 200: {"content": {JSON: _OBJECT}}},
    summary="One OGC API collection",
)
def get_collection(
    request: Request, store: StoreDep, viewer: ViewerDep, collection_id: str
) -> JSONResponse:
    """Return one collection's description."""
    return _json(_collection(_base(request), _find(store, viewer, collection_id)))


def _properties(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        if name not in STANDARD_PARAMS:
            out.setdefault(name, []).append(value)
    return out


def _page_links(request: Request, page: Page, limit: int) -> list[dict[str, str]]:
    url = str(request.url)
    links = [_link(url, "self", GEOJSON, "This page")]
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("after", "offset")]
    path = str(request.url.replace(query=""))
    if page.next_after is not None:
        query = urlencode([*kept, ("after", page.next_after)])
        links.append(_link(f"{path}?{query}", "next", GEOJSON, "Next page"))
    elif page.next_offset is not None:
        query = urlencode([*kept, ("offset", str(page.next_offset))])
        links.append(_link(f"{path}?{query}", "next", GEOJSON, "Next page"))
    return links


@router.get(
    "/collections/{collection_id}/items",
    openapi_extra=PUBLIC,
    responses={**ERRORS, 200: {"content": {GEOJSON: _OBJECT}}},
    summary="Features of an OGC API collection",
)
def get_items(
    request: Request,
    store: StoreDep,
    viewer: ViewerDep,
    collection_id: str,
    bbox: Annotated[
        str | None, Query(max_length=200, description="minx,miny,maxx,maxy in CRS84.")
    ] = None,
    datetime: Annotated[
        str | None,
        Query(max_length=100, description="An RFC 3339 instant or interval (a/b, ../b, a/..)."),
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
    after: Annotated[
        str | None, Query(max_length=200, description="Cursor from a next link.")
    ] = None,
    f: F = None,
    agency_id: Annotated[list[str] | None, Query(description="Property filter.")] = None,
    nibrs_code: Annotated[list[str] | None, Query(description="Property filter.")] = None,
    crime_against: Annotated[list[str] | None, Query(description="Property filter.")] = None,
    status: Annotated[list[str] | None, Query(description="Property filter.")] = None,
    offence_local_code: Annotated[list[str] | None, Query(description="Property filter.")] = None,
    jurisdictions: Annotated[list[str] | None, Query(description="Property filter.")] = None,
    name: Annotated[list[str] | None, Query(description="Area layers: the area's name.")] = None,
) -> JSONResponse:
    """Return a page of features with ``numberMatched``, ``numberReturned`` and links.

    Property filters (``?status=open``, repeatable) are the incident properties
    ``agency_id``, ``nibrs_code``, ``crime_against``, ``status``, ``offence_local_code``
    and ``jurisdictions``, or ``name`` for an area layer. An unknown parameter is a 400.
    """
    collection = _find(store, viewer, collection_id)
    properties = _properties(request)
    try:
        if collection.layer is None:
            read = incident_request(
                bbox=bbox, datetime_=datetime, properties=properties, limit=limit,
                offset=offset, after=after,
            )  # fmt: skip
            page = incident_items(store, viewer, read, offset=offset)
        else:
            page = area_items(
                store, collection, bbox=bbox, properties=properties, limit=limit, offset=offset
            )
    except OgcError as exc:
        raise ApiError(400, str(exc)) from None
    body: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": page.features,
        "numberReturned": len(page.features),
        "links": _page_links(request, page, limit),
    }
    if page.number_matched is not None:
        body["numberMatched"] = page.number_matched
    return _json(body, GEOJSON)


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    openapi_extra=PUBLIC,
    responses={**ERRORS, 200: {"content": {GEOJSON: _OBJECT}}},
    summary="One feature of an OGC API collection",
)
def get_item(
    request: Request, store: StoreDep, viewer: ViewerDep, collection_id: str, feature_id: str
) -> JSONResponse:
    """Return one feature, as you may see it (404 when unknown or not visible)."""
    collection = _find(store, viewer, collection_id)
    if collection.layer is None:
        feature = incident_item(store, viewer, feature_id)
    else:
        feature = area_item(store, collection, feature_id)
    if feature is None:
        raise ApiError(404, f"no feature {feature_id!r} in {collection_id} that you may see")
    base = _base(request)
    feature["links"] = [
        _link(str(request.url), "self", GEOJSON, "This feature"),
        _link(f"{base}/collections/{collection_id}", "collection", JSON, collection.title),
    ]
    return _json(feature, GEOJSON)
