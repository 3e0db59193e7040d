"""Field reports: incidents created and updated from phones (issue #10).

``POST /incidents`` (with ``Idempotency-Key``) and ``PATCH /incidents/{id}`` (with
``If-Match``) call :mod:`crossbeat.live.field`; the answer is the record as the caller
reads it through the sharing policy, with its version as the ``ETag``. An officer's
session (with the CSRF token) or an ingest API token of the agency may report.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Request
from fastapi.responses import JSONResponse

from crossbeat.api.deps import (
    CSRF_HEADER,
    SAFE_METHODS,
    CsrfDep,
    StoreDep,
    _bearer,
    audit_denied,
    client_ip,
)
from crossbeat.api.errors import SESSION_COOKIE, ApiError, error_body
from crossbeat.api.routes.incidents import _record, _record_model
from crossbeat.api.schemas import ERRORS, FILTERED
from crossbeat.auth.csrf import check_csrf
from crossbeat.auth.errors import AuthenticationError, PermissionDenied
from crossbeat.auth.roles import Role
from crossbeat.auth.sessions import validate_session
from crossbeat.auth.tokens import TokenPurpose, authenticate_token
from crossbeat.live.field import (
    FIELDS,
    FieldReportError,
    IdempotencyConflict,
    Reporter,
    UnknownReport,
    VersionConflict,
    create_report,
    has_report,
    remember_response,
    update_report,
)
from crossbeat.sharing.reads import read_incidents
from crossbeat.sharing.request import CallsFilter, ReadRequest, Viewer

router = APIRouter(tags=["field reports"])

#: Roles whose users may report from the field.
REPORTING_ROLES = frozenset({Role.OFFICER, Role.SUPERVISOR})


class Field:
    """Who is reporting: the reporter (for the audit log) and the viewer (for the answer)."""

    def __init__(self, reporter: Reporter, viewer: Viewer) -> None:
        self.reporter = reporter
        self.viewer = viewer


def get_field_caller(
    request: Request, store: StoreDep, roles: frozenset[Role] = REPORTING_ROLES
) -> Field:
    """Return the reporting officer or ingest token; refuse everyone else (audited).

    Raises
    ------
    AuthenticationError
        401: no credentials, or invalid ones.
    PermissionDenied
        403: a user without the officer or supervisor role, or a missing CSRF token.
    """
    from crossbeat.api.deps import Caller

    ip = client_ip(request)
    secret = _bearer(request)
    if secret is not None:
        token = authenticate_token(store, secret, purpose=TokenPurpose.INGEST)
        viewer = Viewer.token(token.id, token.agency_id, source_ip=ip)
        return Field(Reporter(token.id, token.agency_id), viewer)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is None:
        audit_denied(store, request, Caller(Viewer.public(source_ip=ip)), "not signed in",
                     resource_type="incident")  # fmt: skip
        raise AuthenticationError("not signed in: sign in as an officer, or send an ingest token")
    session = validate_session(store, cookie)
    viewer = Viewer.user(session.user_id, session.agency_id, session.roles, source_ip=ip)
    caller = Caller(viewer, session=session, session_token=cookie)
    if not roles & set(session.roles):
        reason = f"this needs one of the roles {', '.join(sorted(roles))}"
        audit_denied(store, request, caller, reason, resource_type="incident")
        raise PermissionDenied(reason)
    if request.method not in SAFE_METHODS:
        check_csrf(cookie, request.headers.get(CSRF_HEADER))
    return Field(Reporter(session.user_id, session.agency_id), viewer)


def _reporter(request: Request, store: StoreDep) -> Field:
    return get_field_caller(request, store)


FieldDep = Annotated[Field, Depends(_reporter)]
ReportBody = Annotated[
    dict[str, Any],
    Body(description="The report: " + "; ".join(f"{k}: {v}" for k, v in FIELDS.items())),
]


def _answer(
    store: Any,
    field: Field,
    incident: str,
    version: int,
    status: int,
    warnings: tuple[str, ...] = (),
) -> JSONResponse:
    """Return the record as the caller reads it (audited read), with its ETag.

    ``warnings`` (a local offence code not in the agency's crosswalk, stored unmapped as
    the ingest stores it) are sent when there are any.
    """
    request = ReadRequest(ids=frozenset({incident}), calls=CallsFilter.INCLUDE)
    records = read_incidents(store, field.viewer, request).records
    record = _record(_record_model(field.viewer), records[0]).model_dump(mode="json")
    body: dict[str, Any] = {"record": record, "version": version}
    if warnings:
        body["warnings"] = list(warnings)
    return JSONResponse(body, status_code=status, headers={"ETag": f'"{version}"'})


@router.post(
    "/incidents",
    status_code=201,
    openapi_extra=FILTERED,
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Report an incident from the field (idempotent with Idempotency-Key)",
)
def post_incident(
    store: StoreDep,
    field: FieldDep,
    body: ReportBody,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=200, description="Retry with the same key: one incident, one answer."),
    ] = None,
) -> JSONResponse:
    """Create an incident of your agency, validated like an ingested row.

    A retry with the same ``Idempotency-Key`` and body returns the first answer and
    creates nothing; the same key with another body is refused with 422.
    """
    agency = field.reporter.agency_id
    try:
        done = create_report(store, agency, body, by=field.reporter, key=idempotency_key)
    except FieldReportError as exc:
        raise ApiError(422, "the report is not valid", exc.reasons) from None
    except IdempotencyConflict as exc:
        raise ApiError(422, str(exc)) from None
    if done.replayed and done.response is not None:
        return JSONResponse(
            done.response, status_code=201, headers={"ETag": f'"{done.response["version"]}"'}
        )
    answer = _answer(store, field, done.incident_id, done.version, 201, done.warnings)
    if idempotency_key is not None and not done.replayed:
        remember_response(store, agency, idempotency_key, 201, _json(answer))
    return answer


@router.patch(
    "/incidents/{incident_id}",
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Update a field report, if it is still at the version you saw (If-Match)",
)
def patch_incident(
    store: StoreDep,
    field: FieldDep,
    incident_id: str,
    body: ReportBody,
    if_match: Annotated[
        str | None, Header(max_length=40, description='The version you saw: "3".')
    ] = None,
) -> JSONResponse:
    """Merge changes into a field report of your agency; 409 with the current state if it
    changed since the version in ``If-Match``; 428 without ``If-Match``."""
    if not has_report(store, field.reporter.agency_id, incident_id):
        raise ApiError(404, f"no field report {incident_id!r} of your agency")
    if if_match is None:
        raise ApiError(428, 'send If-Match: "<version>" with the version you last read')
    try:
        version = int(if_match.strip().removeprefix("W/").strip('"'))
    except ValueError:
        raise ApiError(400, f'If-Match: {if_match!r} is not a version such as "3"') from None
    try:
        done = update_report(
            store, field.reporter.agency_id, incident_id, body, if_match=version, by=field.reporter
        )
    except UnknownReport as exc:
        raise ApiError(404, str(exc)) from None
    except FieldReportError as exc:
        raise ApiError(422, "the update is not valid", exc.reasons) from None
    except VersionConflict as exc:
        current = _json(_answer(store, field, incident_id, exc.current, 409))
        body_ = {**error_body(409, str(exc) + ": merge with the current state and retry"),
                 "current": current}  # fmt: skip
        return JSONResponse(body_, status_code=409, headers={"ETag": f'"{exc.current}"'})
    return _answer(store, field, done.incident_id, done.version, 200, done.warnings)


def _json(response: JSONResponse) -> dict[str, Any]:
    import json

    value: dict[str, Any] = json.loads(bytes(response.body))
    return value
