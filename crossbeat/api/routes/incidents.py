"""Incidents and counts, read through the sharing policy (issue #3).

Every route here calls :mod:`crossbeat.sharing.reads` and nothing else: the policy
decides what each caller sees and how precisely, and writes the audit event. The
routes only parse the query, call the read and render the result with the model for
the caller (:class:`IncidentPublic` for the public, :class:`IncidentShared` for
agency users and API tokens).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from crossbeat.api.deps import SignedInDep, StoreDep, ViewerDep
from crossbeat.api.errors import ApiError
from crossbeat.api.filters import FiltersDep
from crossbeat.api.public_answers import PublicAnswer, question
from crossbeat.api.schemas import (
    ERRORS,
    PUBLIC,
    AggregateOut,
    CellOut,
    DecisionOut,
    DuplicateOut,
    FeatureCollectionOut,
    FeatureOut,
    HistoryOut,
    IncidentDetailOut,
    IncidentListOut,
    IncidentPublic,
    IncidentShared,
    PersonalOut,
    PersonOut,
    VersionOut,
)
from crossbeat.exports import ExportFormat, export_columns, to_csv
from crossbeat.model import PersonalData, PersonRole
from crossbeat.sharing.history import read_history
from crossbeat.sharing.policy import Decision
from crossbeat.sharing.reads import aggregate, read_detail, read_incidents
from crossbeat.sharing.request import GROUP_BY, ReadRequest, Viewer, ViewerKind, h3_dim_for_zoom
from crossbeat.store import Store

router = APIRouter(tags=["incidents"])

#: Header carrying the legal basis (a case number) of a personal-data read.
PURPOSE_HEADER = "X-Purpose"

GEOJSON = "application/geo+json"
_FEATURES = {"$ref": "#/components/schemas/FeatureCollectionOut"}
_CSV = {"type": "string", "description": "A header row, then one row per incident."}
MAX_LIMIT = 5000


@router.get(
    "/incidents",
    openapi_extra=PUBLIC,
    response_model=IncidentListOut,
    responses={
        **ERRORS,
        200: {"content": {GEOJSON: {"schema": _FEATURES}, "text/csv": {"schema": _CSV}}},
    },
    summary="List the incidents you may see",
)
def list_incidents(
    store: StoreDep,
    viewer: ViewerDep,
    filters: FiltersDep,
    fields: Annotated[list[str] | None, Query(description="Only these fields/groups.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    after: Annotated[
        str | None, Query(max_length=200, description="next_after of the previous page.")
    ] = None,
    f: Annotated[
        Literal["json", "geojson", "csv"],
        Query(description="Output format: json, geojson (a FeatureCollection) or csv."),
    ] = "json",
) -> Response:
    """Return a page of incidents as the sharing policy shows them to you, in public-id order.

    The public gets generalised points and times only, never sensitive incidents;
    agency users and API tokens get what their agreements grant, with the decision
    (and its reasons) for every owner agency. ``f=geojson`` returns a FeatureCollection,
    ``f=csv`` a CSV page with only the granted columns (the cursor of the next page in
    the ``X-Next-After`` header).
    """
    request = filters.request(
        fields=frozenset(fields) if fields else None, limit=limit, after=after
    )
    result = read_incidents(store, viewer, request)
    model = _record_model(viewer)
    records = [_record(model, r) for r in result.records]
    if f == "csv":
        rows = [r.model_dump(exclude_none=True) for r in records]
        text = to_csv(rows, export_columns(rows, viewer))
        headers = {"X-Next-After": result.next_after} if result.next_after else None
        return Response(text, media_type=ExportFormat.CSV.media_type, headers=headers)
    if f == "geojson":
        features = [_feature(r) for r in records]
        body = FeatureCollectionOut(features=features, next_after=result.next_after)
        return _render(body, viewer, GEOJSON)
    out = IncidentListOut(
        records=records,
        next_after=result.next_after,
        decisions=_decisions(viewer, result.decisions),
    )
    return _render(out, viewer)


@router.get(
    "/incidents/{incident_id}",
    openapi_extra=PUBLIC,
    response_model=IncidentDetailOut,
    responses=ERRORS,
    summary="Read one incident (its personal data needs a stated purpose)",
)
def get_incident(
    request: Request,
    store: StoreDep,
    viewer: ViewerDep,
    incident_id: str,
    purpose: Annotated[
        str | None,
        Header(
            alias=PURPOSE_HEADER,
            max_length=500,
            description="Legal basis (case number, warrant...) for reading the personal "
            "data. Without it no personal data is returned; with it, the read is audited "
            "as a personal-data view under this purpose. A header, not a query parameter, "
            "so that case numbers stay out of URLs and access logs.",
        ),
    ] = None,
) -> JSONResponse:
    """Return one incident as you may see it, and its personal data if you state a purpose.

    The legal basis travels in the ``X-Purpose`` header; ``?purpose=`` in the URL is
    refused with 400 (a case number in a URL lands in proxy and server access logs).
    404 when the incident is unknown or not visible to you (the two are not told
    apart). 403 when you stated a purpose but may not see its personal data.
    """
    if "purpose" in request.query_params:
        raise ApiError(
            400,
            f"purpose: send the legal basis in the {PURPOSE_HEADER} header, not in the URL "
            "(URLs are written to access logs)",
        )
    if purpose is not None and not purpose.strip():
        raise ApiError(400, "purpose is blank: state the legal basis (case number, warrant)")
    result = read_detail(store, viewer, incident_id, purpose=purpose)
    if result.record is None:
        raise ApiError(404, f"no incident {incident_id!r} that you may see")
    if purpose is not None and result.personal is None:
        reasons = [r for d in result.decisions for r in d.reasons]
        if viewer.kind is ViewerKind.PUBLIC:
            # The public gets no decisions anywhere: its refusal names no agreement
            # (ids of the public agreements stay the owners' business; issue #7).
            reasons = ["personal data is never shown to the public: sign in"]
        raise ApiError(403, "you may not read this incident's personal data", reasons)
    personal = _personal(result.personal) if result.personal is not None else None
    out = IncidentDetailOut(
        record=_record(_record_model(viewer), result.record),
        personal=personal,
        decisions=_decisions(viewer, result.decisions),
    )
    return _render(out, viewer)


#: The public's aggregates: kept by each browser or proxy, but asked again (If-None-Match)
#: each time, since a write changes them at once.
PUBLIC_CACHING = "no-cache"
JSON = "application/json"


@router.get(
    "/incidents/{incident_id}/history",
    response_model=HistoryOut,
    responses=ERRORS,
    summary="An incident's earlier versions and linked duplicates, as you may see them",
)
def get_history(
    store: StoreDep, viewer: ViewerDep, _signed_in: SignedInDep, incident_id: str
) -> JSONResponse:
    """Return the versions the incident went through and the duplicates linked to it.

    Each version is shown by the grant that shows you the incident now, with only its
    fields and precision (null when that grant would not have shown it); ``changed``
    names the fields that differ in the next version. Linked duplicates (stored by the
    duplicates analysis) are listed only when you may see them. 404 when the incident
    is unknown or not visible to you. Audited as a detail view.
    """
    result = read_history(store, viewer, incident_id)
    if result.record is None:
        raise ApiError(404, f"no incident {incident_id!r} that you may see")
    out = HistoryOut(
        record=IncidentShared.model_validate(result.record),
        versions=[
            VersionOut.model_validate(
                {
                    **v.to_dict(),
                    "record": IncidentShared.model_validate(v.record) if v.record else None,
                }
            )
            for v in result.versions
        ],
        duplicates=[DuplicateOut.model_validate(d) for d in result.duplicates],
        decisions=_decisions(viewer, result.decisions) or [],
    )
    return _render(out, viewer)


@router.get(
    "/aggregates",
    openapi_extra=PUBLIC,
    response_model=AggregateOut,
    responses={
        **ERRORS,
        304: {"description": "Not modified: your If-None-Match names this answer's ETag."},
    },
    summary="Count the incidents you may see by up to two dimensions",
)
def get_aggregates(
    http: Request,
    store: StoreDep,
    viewer: ViewerDep,
    filters: FiltersDep,
    by: Annotated[
        list[str] | None,
        Query(
            description="Dimensions (repeatable, at most two): "
            f"{', '.join(GROUP_BY)} or area:LAYER (an area layer, e.g. area:boroughs)."
        ),
    ] = None,
    zoom: Annotated[
        int | None,
        Query(
            ge=0,
            le=24,
            description="Count by the H3 cells that suit this web-map zoom level: h3_7 "
            "below 12, h3_9 from 12, h3_11 from 15 (added to by).",
        ),
    ] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    """Count exactly the records you could list, grouped; small counts are suppressed.

    Without ``by`` (or ``zoom``) only the total is returned. A null count is suppressed
    (too few incidents to publish). The total and margins are sums of the published
    cells (``complete`` false: something was hidden, dropped or noised). An owner that
    publishes counts only answers only by crime_against, month, h3_7 and jurisdiction,
    with whole-month time filters; one that chose noise answers with differential
    privacy from a monthly budget (``noisy``). The public's answer carries a strong
    ``ETag``: a matching ``If-None-Match`` answers 304 without a body.
    """
    dims = tuple(by or ())
    if zoom is not None:
        if any(d.startswith("h3_") for d in dims):
            raise ApiError(400, "zoom: give either zoom or an h3 dimension in by, not both")
        dims += (h3_dim_for_zoom(zoom),)
    request = filters.request(group_by=dims)

    if viewer.kind is not ViewerKind.PUBLIC:
        return _aggregate_response(store, viewer, request, dims)

    def compute() -> PublicAnswer:
        rendered = _aggregate_response(store, viewer, request, dims)
        return PublicAnswer.of(bytes(rendered.body), rendered.media_type or JSON, PUBLIC_CACHING)

    # The public's answer is kept while no write or policy change happened, with a
    # strong ETag (issue #10); crossbeat.api.public_answers serves it again.
    kept = http.app.state.public_cache.read(store, viewer, question(http.scope), compute)
    answer: PublicAnswer = kept
    return answer.response(if_none_match)


def _aggregate_response(
    store: Store, viewer: Viewer, request: ReadRequest, dims: tuple[str, ...]
) -> JSONResponse:
    """Count, audit and render an aggregate."""
    result = aggregate(store, viewer, request, by=dims)
    out = AggregateOut(
        by=list(result.by),
        cells=[CellOut(key=list(k), count=v) for k, v in sorted(result.cells.items())],
        rows=result.rows,
        columns=result.columns,
        total=result.total,
        threshold=result.threshold,
        suppressed=result.suppressed,
        complete=result.complete,
        noisy=list(result.noisy),
        decisions=_decisions(viewer, result.decisions),
    )
    return _render(out, viewer)


# -- rendering -------------------------------------------------------------------------------
def _record_model(viewer: Viewer) -> type[IncidentPublic]:
    return IncidentPublic if viewer.kind is ViewerKind.PUBLIC else IncidentShared


def _record(model: type[IncidentPublic], record: Mapping[str, Any]) -> IncidentPublic:
    """Validate a record with the caller's model; undeclared fields are dropped."""
    return model.model_validate(record)


def _decisions(viewer: Viewer, decisions: tuple[Decision, ...]) -> list[DecisionOut] | None:
    """Return the decisions for agency callers; the public does not get them."""
    if viewer.kind is ViewerKind.PUBLIC:
        return None
    return [DecisionOut.model_validate(d.to_dict()) for d in decisions]


def _feature(record: IncidentPublic) -> FeatureOut:
    props = record.model_dump(mode="json")
    lat, lon = props.pop("lat", None), props.pop("lon", None)
    geometry = None
    if lat is not None and lon is not None:
        geometry = {"type": "Point", "coordinates": [lon, lat]}
    return FeatureOut(id=record.id, geometry=geometry, properties=props)


def _personal(personal: PersonalData) -> PersonalOut:
    return PersonalOut(
        full_address=personal.full_address,
        narrative=personal.narrative,
        persons=[
            PersonOut(
                role=PersonRole(p.role).value,
                name=p.name,
                age=p.age,
                sex=p.sex,
                attributes=dict(p.attributes or {}),
            )
            for p in personal.persons
        ],
    )


def _render(body: BaseModel, viewer: Viewer, media_type: str = "application/json") -> JSONResponse:
    """Serialise a response; the public's has no ``decisions``."""
    exclude = {"decisions"} if viewer.kind is ViewerKind.PUBLIC else None
    return JSONResponse(body.model_dump(mode="json", exclude=exclude), media_type=media_type)
