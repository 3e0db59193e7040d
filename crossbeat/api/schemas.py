"""Request and response bodies of the web API.

Inputs (``...In``) are separate from outputs, and incident records have two output
models: :class:`IncidentShared` (every field an agreement can share, for signed-in
users and API tokens) and :class:`IncidentPublic` (only the fields the public can
ever receive, :data:`crossbeat.sharing.scope.PUBLIC_FIELDS`). Both ignore any field
they do not declare, and both omit fields the sharing policy did not return, so a
field never reaches a client through a model that does not list it (issue #3).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from crossbeat.api.inputs import TextIn


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- errors --------------------------------------------------------------------------------
class ErrorOut(_Out):
    """The body of every error response."""

    ok: Literal[False] = False
    error: str = Field(description="One sentence naming the problem and the next step.")
    errors: list[str] = Field(description="Every problem found.")
    status: int = Field(description="The HTTP status code.")


#: ``responses=`` entry documenting the error shape for the usual statuses.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in (
        (400, "Bad request: every problem is listed"),
        (401, "Not signed in, or the session or token is no longer valid"),
        (403, "Not allowed (roles, agreements, CSRF token)"),
        (404, "Unknown, or not visible to the caller"),
    )
}


#: ``openapi_extra`` of the operations anyone may call without signing in (the public
#: release, sign-in, health). Every other operation must refuse anonymous callers and
#: callers of another agency: ``tests/test_api_walk.py`` walks the OpenAPI document and
#: checks both, so a new route is either marked here or refuses them.
PUBLIC: dict[str, Any] = {"x-crossbeat-public": True}
#: OpenAPI marker of an operation for signed-in callers (users or API tokens) that acts
#: only on the caller's own agency or on its policy-filtered view of every agency's data
#: (an analysis, a forecast): the public is refused, and another agency's caller gets
#: what its agreements grant, no more (``tests/test_api_walk.py``).
FILTERED: dict[str, Any] = {"x-crossbeat-filtered": True}

#: Answers any operation may give, whatever its route (added by :func:`openapi_document`).
SERVICE_ERRORS: dict[str, str] = {
    "413": "The request is too large",
    "429": "Too many requests from this address: wait Retry-After seconds",
    "503": "The database is not reachable now: try again after Retry-After seconds",
}


def _error_response(description: str, *, retry: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
    }
    if retry:
        out["headers"] = {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
        }
    return out


# -- authentication ------------------------------------------------------------------------
class LoginIn(BaseModel):
    """The password step of signing in."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=1024)


class MfaIn(TextIn):
    """The one-time-code step of signing in."""

    model_config = ConfigDict(extra="forbid")

    ticket: str = Field(min_length=1, max_length=256, description="From POST /auth/login.")
    code: str = Field(min_length=1, max_length=16, description="The authenticator app's code.")


class MfaChallengeOut(_Out):
    """The password was right: send the ticket with the one-time code before it expires."""

    ok: Literal[True] = True
    mfa_ticket: str
    expires_at: datetime


class UserOut(_Out):
    """A signed-in user as shown to themselves (no secrets, no account internals)."""

    username: str
    agency: str
    display_name: str | None
    roles: list[str]


class SessionOut(_Out):
    """When the session ends: ``idle_expires_at`` moves with every request."""

    expires_at: datetime
    idle_expires_at: datetime


class SignedInOut(_Out):
    """A signed-in user, with the CSRF token to send in ``X-CSRF-Token``."""

    ok: Literal[True] = True
    user: UserOut
    session: SessionOut
    csrf_token: str


class LogoutOut(_Out):
    """The result of signing out."""

    ok: Literal[True] = True
    ended: bool = Field(description="False if the session had already ended.")


# -- incidents -----------------------------------------------------------------------------
class _Record(_Out):
    """A record model that serialises only the fields the sharing policy returned.

    A field the policy withheld is absent from the output, not ``null``: null means
    "shown, and unknown".
    """

    # No return annotation: pydantic would document the annotation instead of the fields.
    @model_serializer(mode="wrap")
    def _only_given(self, handler: SerializerFunctionWrapHandler):
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if k in self.model_fields_set}


class OffenceOut(_Record):
    """One offence of an incident."""

    nibrs_code: str | None = None
    offence_name: str | None = None
    crime_against: str | None = None
    ucr_part1: str | None = None
    call_category: str | None = None
    local_code: str | None = None


class IncidentPublic(_Record):
    """An incident as the public may receive it: generalised, never exact or personal."""

    id: str
    agency_id: str
    nibrs_code: str | None = None
    offence_name: str | None = None
    crime_against: str | None = None
    ucr_part1: str | None = None
    offences: list[OffenceOut] | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    time_precision: str | None = None
    lat: float | None = None
    lon: float | None = None
    location_precision: str | None = None
    h3_7: str | None = None
    h3_9: str | None = None
    jurisdictions: list[str] | None = None
    areas: dict[str, list[str]] | None = Field(
        default=None,
        description="The incident's areas by layer (AGENCY/LAYER), where the precision "
        "shows them: every layer at exact precision, one layer at area:LAYER.",
    )


class IncidentShared(IncidentPublic):
    """An incident as an agency user or API token may receive it (fields per agreement)."""

    call_category: str | None = Field(
        default=None, description="The call-for-service category of a CAD call (not a crime)."
    )
    offence_local_code: str | None = None
    reported_at: datetime | None = None
    status: str | None = None
    disposition: str | None = None
    block_address: str | None = None
    location_type: str | None = None
    h3_11: str | None = None
    sensitivity: list[str] | None = None
    attributes: dict[str, Any] | None = None


class PersonOut(_Out):
    """A person involved in an incident (personal data)."""

    role: str
    name: str | None = None
    age: int | None = None
    sex: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class PersonalOut(_Out):
    """An incident's personal data, returned only with a stated purpose."""

    full_address: str | None = None
    narrative: str | None = None
    persons: list[PersonOut] = Field(default_factory=list)


class DecisionOut(_Out):
    """Whether the caller gets an owner agency's records, and why."""

    allow: bool
    owner: str
    agreement_id: str | None
    reasons: list[str]


class IncidentListOut(_Out):
    """A page of incidents (``decisions`` only for signed-in users and API tokens)."""

    ok: Literal[True] = True
    records: list[IncidentShared | IncidentPublic]
    next_after: str | None = Field(description="Pass as ``after`` for the next page.")
    decisions: list[DecisionOut] | None = None


class FeatureOut(_Out):
    """One incident as a GeoJSON Feature (no geometry at area or jurisdiction precision)."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any] | None
    properties: dict[str, Any]


class FeatureCollectionOut(_Out):
    """A page of incidents as a GeoJSON FeatureCollection (``?f=geojson``)."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[FeatureOut]
    next_after: str | None


class IncidentDetailOut(_Out):
    """One incident, with its personal data when a purpose was stated and it is allowed."""

    ok: Literal[True] = True
    record: IncidentShared | IncidentPublic
    personal: PersonalOut | None = Field(
        description="Null unless a purpose (legal basis) was stated and the caller may see it."
    )
    decisions: list[DecisionOut] | None = None


class VersionOut(_Out):
    """An earlier version of an incident, as you may see it (null: not shown to you)."""

    version: int
    record: IncidentShared | None
    changed: list[str] = Field(description="Fields shown that differ in the next version.")
    superseded_at: datetime | None = Field(
        None, description="When it was replaced (the owner's own readers only)."
    )


class DuplicateOut(_Out):
    """An incident of another agency linked as the same event by the duplicates analysis."""

    id: str
    agency_id: str
    probability: float
    reasons: Any


class HistoryOut(_Out):
    """An incident's earlier versions (oldest first) and its linked duplicates you may see."""

    ok: Literal[True] = True
    record: IncidentShared
    versions: list[VersionOut]
    duplicates: list[DuplicateOut]
    decisions: list[DecisionOut]


class CellOut(_Out):
    """One cell of an aggregate table; ``count`` is null when suppressed."""

    key: list[str]
    count: int | None


class AggregateOut(_Out):
    """Counts by up to two dimensions; null counts are suppressed (too few to publish)."""

    ok: Literal[True] = True
    by: list[str]
    cells: list[CellOut]
    rows: dict[str, int | None]
    columns: dict[str, int | None]
    total: int | None
    threshold: int | None
    suppressed: int
    #: False when a count was hidden, dropped or noised: the total and margins are then
    #: sums of the published cells only.
    complete: bool
    #: Owners whose counts carry differential-privacy noise.
    noisy: list[str]
    decisions: list[DecisionOut] | None = None


# -- agreements ----------------------------------------------------------------------------
class AgreementIn(TextIn):
    """A new sharing agreement (see docs/sharing.md for each knob)."""

    model_config = ConfigDict(extra="forbid")

    owner: str | None = Field(
        None, min_length=1, max_length=64, description="Owner agency (default: the caller's)."
    )
    grantee: str = Field(max_length=80, description="AGENCY_ID, group:GROUP_ID or public.")
    offences: list[str] | None = None
    fields: list[str] | None = None
    precision: str | None = None
    time_resolution: str | None = None
    delay: str | None = Field(None, description="Publication delay such as 24h or 7d.")
    purposes: list[str] | None = None
    include_sensitive: list[str] = Field(default_factory=list)
    reference: str = Field("", description="The decision it rests on (MoU, minute).")
    purpose_note: str = ""
    valid_from: datetime | None = None
    valid_to: datetime | None = None


class DraftPreviewIn(AgreementIn):
    """A draft agreement to preview (never stored), and how to preview it."""

    replaces: str | None = Field(
        None, max_length=64, description="The id of an agreement the draft would replace."
    )
    purpose: str | None = Field(None, max_length=40, description="The grantee's purpose.")
    sample: int = Field(10, ge=0, le=100, description="How many sample records.")


class RevokeIn(TextIn):
    """Why an agreement is revoked."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class ApprovalOut(_Out):
    """An admin of the owner agency who approved an agreement."""

    user_id: str
    username: str
    agency_id: str
    approved_at: datetime


class AgreementOut(_Out):
    """A stored sharing agreement."""

    id: str
    owner: str
    grantee: str
    grantee_kind: str
    offences: list[str] | None
    fields: list[str]
    precision: str
    time_resolution: str
    delay: str
    purposes: list[str]
    include_sensitive: list[str]
    purpose_note: str
    valid_from: datetime
    valid_to: datetime | None
    reference: str
    approved_by: list[str] = Field(description="Usernames of the owner's approving admins.")
    approvals: list[ApprovalOut]
    required_approvals: int = Field(description="2 when personal data fields are shared.")
    created_at: datetime | None
    created_by: str | None
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None
    version: int
    status: str = Field(description="active, awaiting_approval, pending, expired or revoked, now.")


class AgreementListOut(_Out):
    """Agreements, oldest first."""

    ok: Literal[True] = True
    agreements: list[AgreementOut]


class PreviewOut(_Out):
    """What a grantee sees of an owner's data now, and why the rest is hidden."""

    ok: Literal[True] = True
    owner: str
    grantee: str
    purpose: str
    decisions: list[DecisionOut]
    total: int
    visible: int
    hidden: dict[str, int]
    sample: list[IncidentShared | IncidentPublic]
    #: ``records``: real records as the grantee sees them (only for an officer, analyst
    #: or supervisor of the owner); ``stand-ins``: synthetic records of the same shape.
    sample_kind: Literal["records", "stand-ins"]


class DraftPreviewOut(_Out):
    """A draft agreement's preview, or every problem that keeps it from being saved.

    A draft being edited is often incomplete: its problems are the answer (200), not
    an error of the request, so that the editor can show them as the admin types.
    """

    ok: Literal[True] = True
    valid: bool
    problems: list[str] = Field(description="Why the draft could not be saved as it is.")
    preview: PreviewOut | None = Field(description="What the grantee would see; null if invalid.")


# -- audit ---------------------------------------------------------------------------------
class AuditEventOut(_Out):
    """One audited action that touched the agency's data."""

    seq: int
    occurred_at: datetime
    actor: str
    #: The user's username or ``token <label>`` (None for system, public, unknown ids).
    actor_name: str | None = None
    actor_agency: str | None
    source_ip: str | None
    action: str
    outcome: str
    purpose: str | None
    resource_type: str | None
    owner_agencies: list[str]
    record_ids: list[str]
    record_count: int
    details: dict[str, Any]
    entry_hash: str


class AuditListOut(_Out):
    """A page of the access log of one agency, newest first."""

    ok: Literal[True] = True
    agency: str
    events: list[AuditEventOut]
    limit: int
    offset: int


# -- OpenAPI -----------------------------------------------------------------------------------
#: Models returned by routes that render their own response (documented by reference).
EXTRA_MODELS: tuple[type[BaseModel], ...] = (IncidentPublic, FeatureCollectionOut)


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """Return the application's OpenAPI document, as the API really answers.

    FastAPI documents request validation failures as 422 with its own body; this API
    answers them with 400 and :class:`ErrorOut`. Models that routes render themselves
    (the public incident, GeoJSON) are added to the components.

    Parameters
    ----------
    app
        The application.

    Returns
    -------
    dict
        The OpenAPI document (cached on the application).
    """
    if app.openapi_schema is not None:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            if "HTTPValidationError" in str(responses.get("422", "")):
                responses.pop("422")  # FastAPI's own; a route's documented 422 stays
            # Any operation may meet a database outage (crossbeat.api.outage) or the
            # request limits (crossbeat.api.limits).
            for code, text in SERVICE_ERRORS.items():
                responses.setdefault(code, _error_response(text, retry=code in ("429", "503")))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for model in EXTRA_MODELS:
        found = model.model_json_schema(
            mode="serialization", ref_template="#/components/schemas/{model}"
        )
        schemas.update(found.pop("$defs", {}))
        schemas[model.__name__] = found
    app.openapi_schema = doc
    return doc


# -- places (address lookup) ----------------------------------------------------------------
class PlaceOut(_Out):
    """A point an address was matched to (from agencies' address points, not incidents)."""

    label: str = Field(description="The address as stored, with its locality.")
    lat: float
    lon: float
    match: Literal["address", "interpolated", "nearest", "street"] = Field(
        description="address: the stored point of that number; interpolated: between the "
        "street's nearest numbers; nearest: the closest stored number (the one asked is "
        "beyond the street's range); street: the street's middle (no number asked)."
    )
    agency_id: str = Field(description="The agency whose address points answered.")


class PlacesOut(_Out):
    """The places an address matched, best first."""

    query: str
    places: list[PlaceOut]
    addresses_loaded: bool = Field(
        description="False when no agency has loaded address points: nothing can match."
    )
