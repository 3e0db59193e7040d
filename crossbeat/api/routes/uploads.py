"""Uploads and their ingest jobs (issue #10): ``POST /uploads``, ``GET /jobs``.

An agency user (with the CSRF token) or an ingest API token posts an export file and
its profile as multipart form data, or (a machine feed) JSON ``{"profile": NAME,
"records": [...]}``; the answer is 202 with the job, ingested in the background by
the server's :class:`crossbeat.live.jobs.JobRunner`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from crossbeat.api.deps import CsrfDep, StoreDep
from crossbeat.api.errors import ApiError
from crossbeat.api.routes.field import get_field_caller
from crossbeat.api.schemas import ERRORS, FILTERED
from crossbeat.auth.roles import Role
from crossbeat.live.jobs import JobError, Submitter, get_job, list_jobs, submit_job

router = APIRouter(tags=["uploads"])

#: Largest upload accepted, in bytes.
MAX_UPLOAD = 512 * 1024 * 1024

_FORM = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "profile"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "profile": {
                            "type": "string",
                            "description": "The profile TOML (a file), or the name of one "
                            "your agency uploaded before.",
                        },
                    },
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["profile", "records"],
                    "properties": {
                        "profile": {"type": "string"},
                        "records": {"type": "array", "items": {"type": "object"}},
                    },
                }
            },
        }
    }
}


#: Roles whose users may upload and follow jobs (ingest tokens may too).
UPLOAD_ROLES = frozenset({Role.OFFICER, Role.SUPERVISOR, Role.AGENCY_ADMIN, Role.ANALYST})


def get_uploader(request: Request, store: StoreDep) -> Submitter:
    """Return who uploads: an agency user's session or an ingest token (refusals audited)."""
    field = get_field_caller(request, store, UPLOAD_ROLES)
    return Submitter(field.reporter.user_id, field.reporter.agency_id)


@router.post(
    "/uploads",
    status_code=202,
    responses=ERRORS,
    openapi_extra={**_FORM, **FILTERED},
    dependencies=[CsrfDep],
    summary="Upload an export (or post records) for ingest; follow the job",
)
async def post_upload(request: Request, store: StoreDep) -> JSONResponse:
    """Queue an ingest job for an export file and its profile; 202 with the job."""
    from starlette.concurrency import run_in_threadpool

    by = await run_in_threadpool(_uploader, request, store)
    folder = request.app.state.upload_dir
    kind = request.headers.get("content-type", "")
    try:
        if kind.startswith("application/json"):
            body: Any = await request.json()
            if not isinstance(body, dict) or not isinstance(body.get("records"), list):
                raise ApiError(400, 'send {"profile": NAME, "records": [...]}')
            job = await run_in_threadpool(
                lambda: submit_job(store, folder, by, profile=str(body.get("profile")),
                                   records=body["records"])
            )  # fmt: skip
        else:
            async with request.form(max_part_size=MAX_UPLOAD) as form:  # closes the files
                upload, profile = form.get("file"), form.get("profile")
                if upload is None or isinstance(upload, str) or profile is None:
                    raise ApiError(400, "send multipart parts 'file' (the export) and 'profile'")
                text = profile if isinstance(profile, str) else await profile.read()
                job = await run_in_threadpool(
                    lambda: submit_job(store, folder, by, profile=text, data=upload.file,
                                       filename=upload.filename or "upload")
                )  # fmt: skip
    except JobError as exc:
        raise ApiError(422, str(exc)) from None
    request.app.state.job_runner.nudge()
    return JSONResponse(job.to_dict(), status_code=202)


def _uploader(request: Request, store: Any) -> Submitter:
    return get_uploader(request, store)


@router.get("/jobs", responses=ERRORS, summary="List your agency's upload jobs")
def get_jobs(store: StoreDep, by: Annotated[Submitter, Depends(get_uploader)]) -> JSONResponse:
    """Return your agency's jobs, newest first, with progress and summary."""
    return JSONResponse({"jobs": [j.to_dict() for j in list_jobs(store, by.agency_id)]})


@router.get("/jobs/{job_id}", responses=ERRORS, summary="Follow one upload job")
def get_one_job(
    store: StoreDep, by: Annotated[Submitter, Depends(get_uploader)], job_id: str
) -> JSONResponse:
    """Return the job's status, rows committed so far and, when done, the summary."""
    try:
        return JSONResponse(get_job(store, by.agency_id, job_id).to_dict())
    except LookupError as exc:
        raise ApiError(404, str(exc)) from None
