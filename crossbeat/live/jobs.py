"""Uploads ingested in the background, with progress, summary and resume (issue #10).

An agency posts an export file with its source profile (or the name of a profile it
sent before), or a machine feed posts records with its API token: :func:`submit_job`
keeps the file and the profile in a folder of their own and records a ``queued`` job
in ``ingest_jobs``. A :class:`JobRunner` (one per server process) ingests queued jobs
one at a time with :func:`crossbeat.ingest.pipeline.ingest_files` — the CLI's pipeline,
audited per committed chunk. Progress is the ingest batch's checkpoint
(``rows_done``), so it is true whatever process runs the job.

A job survives a server restart: it is in the database, its file on disk, and the
ingest is crash-safe (each chunk commits with its checkpoint). A runner starting up
takes back the ``running`` jobs whose heartbeat stopped (their server died) and
resumes them after their last committed chunk.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select, update

from crossbeat.audit.changes import record_change
from crossbeat.audit.events import Action
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import ProfileError, load_profile, parse_profile
from crossbeat.live.tables import ingest_jobs
from crossbeat.store import Store
from crossbeat.store.schema import ingest_batches

log = logging.getLogger(__name__)

#: A running job whose heartbeat is older than this belongs to a server that died.
STALE = timedelta(seconds=60)
HEARTBEAT = 10.0


class JobError(ValueError):
    """The upload cannot become a job (bad profile, unknown profile name...)."""


@dataclass(frozen=True)
class Job:
    """An upload's ingest job, as its agency sees it."""

    id: str
    agency_id: str
    profile: str
    status: str
    file_size: int
    rows_done: int
    summary: dict[str, Any] | None
    error: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data."""
        return {
            "id": self.id,
            "agency_id": self.agency_id,
            "profile": self.profile,
            "status": self.status,
            "file_size": self.file_size,
            "rows_done": self.rows_done,
            "summary": self.summary,
            "error": self.error,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Submitter:
    """Who uploads: a user or an ingest token (its id), of an agency."""

    user_id: str
    agency_id: str


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _profile_text(store: Store, agency_id: str, profile: str | bytes) -> str:
    """Return the TOML of an uploaded profile, or of the agency's last one of this name."""
    if isinstance(profile, bytes):
        return profile.decode("utf-8")
    t = ingest_jobs.c
    with store.connect() as conn:
        text = conn.execute(
            select(t.profile_text)
            .where((t.agency_id == agency_id) & (t.profile_name == profile))
            .order_by(t.created_at.desc())
            .limit(1)
        ).scalar()
    if text is None:
        raise JobError(
            f"no profile {profile!r} of {agency_id} is known here: upload the profile file "
            "once (multipart part 'profile'), then name it"
        )
    return str(text)


def stored_profile(store: Store, agency_id: str, name: str) -> str:
    """Return the TOML of the agency's last uploaded profile named ``name``.

    Raises
    ------
    JobError
        When the agency never uploaded a profile of that name.
    """
    return _profile_text(store, agency_id, name)


def submit_job(
    store: Store,
    folder: Path,
    by: Submitter,
    *,
    profile: str | bytes,
    data: BinaryIO | None = None,
    filename: str = "upload",
    records: Sequence[Mapping[str, Any]] | None = None,
) -> Job:
    """Keep an upload and queue its ingest; return the job.

    Parameters
    ----------
    folder
        Where uploads are kept (each job in a folder of its own).
    by
        The uploading user or token; the job's agency is theirs.
    profile
        The profile's TOML (bytes), or the name of a profile the agency uploaded before.
    data, filename
        The export file (a stream) and its name; or
    records
        Records posted by a machine feed (written as a JSON array; the profile must
        read ``json``).

    Raises
    ------
    JobError
        An invalid or unknown profile, a profile of another agency, no data.
    """
    text = _profile_text(store, by.agency_id, profile)
    try:
        parsed = parse_profile(text, source="<upload>")
    except ProfileError as exc:
        raise JobError(f"profile: {exc}") from None
    if parsed.agency not in (None, by.agency_id) or parsed.agency_column:
        raise JobError(f"profile {parsed.name!r} is not for agency {by.agency_id!r}")
    if records is not None and parsed.source.format != "json":
        raise JobError(
            f"profile {parsed.name!r} reads {parsed.source.format}: posted records need "
            "a json profile"
        )
    job_id = str(uuid.uuid4())
    where = folder / job_id
    where.mkdir(parents=True)
    (where / "profile.toml").write_text(text, encoding="utf-8")
    path = where / (_SAFE.sub("_", Path(filename).name)[:100] or "upload")
    if records is not None:
        path = where / "records.json"
        path.write_text(json.dumps(list(records), default=str), encoding="utf-8")
    elif data is not None:
        with path.open("wb") as out:
            while chunk := data.read(1 << 20):
                out.write(chunk)
    else:
        raise JobError("send a file (multipart part 'file') or records")
    now = store.now()
    with store.begin() as conn:
        conn.execute(
            ingest_jobs.insert().values(
                id=job_id, agency_id=by.agency_id, profile_name=parsed.name, profile_text=text,
                file_path=str(path), file_size=path.stat().st_size, status="queued",
                created_by=by.user_id, created_at=now, updated_at=now,
            )
        )  # fmt: skip
        record_change(
            store, conn, Action.CHANGE, by, resource_type="ingest_job", owners=[by.agency_id],
            details={"operation": "upload", "job": job_id, "profile": parsed.name,
                     "file": path.name, "bytes": path.stat().st_size},
        )  # fmt: skip
    return get_job(store, by.agency_id, job_id)


def get_job(store: Store, agency_id: str, job_id: str) -> Job:
    """Return one of an agency's jobs with its progress.

    Raises
    ------
    LookupError
        No such job of this agency.
    """
    found = list_jobs(store, agency_id, job_id=job_id)
    if not found:
        raise LookupError(f"no job {job_id!r} of agency {agency_id!r}")
    return found[0]


def list_jobs(store: Store, agency_id: str, *, job_id: str | None = None) -> list[Job]:
    """Return an agency's jobs, newest first, each with its progress (rows committed)."""
    t = ingest_jobs.c
    q = select(ingest_jobs).where(t.agency_id == agency_id).order_by(t.created_at.desc())
    if job_id is not None:
        q = q.where(t.id == job_id)
    with store.connect() as conn:
        rows = conn.execute(q.limit(200)).all()
        out = []
        for r in rows:
            b = ingest_batches.c
            done = conn.execute(
                select(b.rows_done)
                .where((b.source_file == r.file_path) & (b.agency_id == agency_id))
                .order_by(b.started_at.desc())
                .limit(1)
            ).scalar()
            out.append(
                Job(
                    r.id, r.agency_id, r.profile_name, r.status, r.file_size, int(done or 0),
                    r.summary, r.error, r.created_by, r.created_at, r.updated_at,
                )
            )  # fmt: skip
    return out


class JobRunner:
    """Ingest queued jobs one at a time in a background thread (one per server process).

    Parameters
    ----------
    store
        The store.
    poll
        Seconds between looks for queued jobs.
    """

    def __init__(self, store: Store, *, poll: float = 1.0) -> None:
        self.store = store
        self.poll = poll
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Take back the jobs of servers that died, then start working."""
        self._thread = threading.Thread(target=self._loop, name="crossbeat-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop looking for jobs (a job under way finishes, or resumes at the next start)."""
        self._stop.set()
        self._wake.set()

    def nudge(self) -> None:
        """Look for queued jobs now (a job was just submitted)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                requeue_stale(self.store)
                while not self._stop.is_set() and run_next(self.store):
                    pass
            except Exception:
                log.exception("upload jobs: the runner failed; trying again")
            self._wake.wait(self.poll)
            self._wake.clear()


def requeue_stale(store: Store) -> int:
    """Queue again the running jobs whose server stopped beating; return how many."""
    t = ingest_jobs.c
    with store.begin() as conn:
        return int(
            conn.execute(
                update(ingest_jobs)
                .where((t.status == "running") & (t.updated_at < store.now() - STALE))
                .values(status="queued")
            ).rowcount
        )


def run_next(store: Store) -> bool:
    """Claim the oldest queued job and ingest it; return whether there was one.

    The claim is one conditional update, so two processes never run the same job. A
    job that was interrupted resumes after its last committed chunk.
    """
    t = ingest_jobs.c
    with store.begin() as conn:
        row = conn.execute(
            select(ingest_jobs).where(t.status == "queued").order_by(t.created_at).limit(1)
        ).first()
        if row is None:
            return False
        claimed = conn.execute(
            update(ingest_jobs)
            .where((t.id == row.id) & (t.status == "queued"))
            .values(status="running", updated_at=store.now())
        ).rowcount
    if not claimed:
        return True
    beat = threading.Event()

    def heartbeat() -> None:
        while not beat.wait(HEARTBEAT):
            with store.begin() as conn:
                conn.execute(
                    update(ingest_jobs).where(t.id == row.id).values(updated_at=store.now())
                )

    threading.Thread(target=heartbeat, daemon=True).start()
    status, summary, error = "complete", None, None
    try:
        profile = load_profile(Path(row.file_path).parent / "profile.toml")
        by = Submitter(row.created_by, row.agency_id)
        done = ingest_files(store, row.agency_id, profile, [row.file_path], by=by, parallel=False)
        summary = done.as_dict()
    except Exception as exc:  # the job records why it failed; the runner goes on
        status, error = "failed", str(exc)
    finally:
        beat.set()
    with store.begin() as conn:
        conn.execute(
            update(ingest_jobs)
            .where(t.id == row.id)
            .values(status=status, summary=summary, error=error, updated_at=store.now())
        )
    return True
