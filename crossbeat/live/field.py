"""Incidents reported and updated from the field (phones), as safely as an ingest (issue #10).

A field report is a JSON object (:data:`FIELDS`) that goes through exactly the path of
an ingested row: the ingest's :class:`~crossbeat.ingest.normalise.Normaliser` with a
built-in source profile (:func:`field_profile`: ISO times, WGS84 coordinates from the
device, NIBRS offence codes through the ``code-nibrs`` crosswalk, the narrative set
apart as personal data and scanned for sensitivity), then
:func:`~crossbeat.ingest.items.derive` and :func:`~crossbeat.ingest.writes.write_chunk`
(versions, personal data sealed, live event), and one ``change`` audit event in the
same transaction.

Mobile links are flaky, so both calls are safe to retry:

* :func:`create_report` takes an idempotency key: the first request with a key creates
  the incident and stores the response; a retry with the same key and body gets that
  response again and creates nothing; another body with the same key is refused
  (:class:`IdempotencyConflict`).
* :func:`update_report` takes the version the client last saw (``If-Match``): the
  incident's row is locked, and an update based on an older version is refused with the
  current state (:class:`VersionConflict`), so no update is ever lost.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from crossbeat.agencies import jurisdiction_index
from crossbeat.audit.changes import record_change
from crossbeat.audit.events import Action
from crossbeat.ingest.items import Item, derive
from crossbeat.ingest.normalise import Normaliser, Rejected, Updated
from crossbeat.ingest.profile import Profile, parse_profile
from crossbeat.ingest.source import RawRecord
from crossbeat.ingest.writes import stored_state, write_chunk
from crossbeat.live.tables import field_reports, idempotency_keys
from crossbeat.model import incident_id
from crossbeat.sharing.flags import refresh as refresh_flags
from crossbeat.store import Store
from crossbeat.store.schema import agencies, crosswalk_sources, ingest_batches
from crossbeat.taxonomy.crosswalk import available_crosswalks
from crossbeat.vault.keys import require_vault
from crossbeat.vault.quarantine import open_raw, seal_raw

#: The fields of a field report and what they hold.
FIELDS: dict[str, str] = {
    "offence": "NIBRS offence code (e.g. 13A, 23H); this or local_offence is required",
    "local_offence": "the agency's own offence code, classified through its crosswalk "
    "(offence_scheme) exactly as its ingest classifies it; an unmapped code is stored "
    "unmapped with a warning",
    "offence_scheme": "the crosswalk scheme of local_offence (e.g. police-uk): a shipped "
    "one or one the agency's ingest registered",
    "occurred_from": "ISO 8601 time with offset, required",
    "occurred_to": "ISO 8601 time with offset",
    "lat": "latitude from the device (WGS84), required",
    "lon": "longitude from the device (WGS84), required",
    "location_type": "NIBRS location type code (e.g. 13 street)",
    "address": "hundred-block or street address",
    "status": "case status",
    "disposition": "disposition",
    "narrative": "free text (personal data: sealed, scanned for sensitivity)",
}
REQUIRED = ("occurred_from", "lat", "lon")

_PROFILE = """
name = "field-report"
description = "Incidents reported from the field (POST /api/v1/incidents)"
{crosswalks}narrative = "narrative"
status = "status"
disposition = "disposition"

[source]
format = "json"
timezone = "{timezone}"

[id]
columns = ["report_id"]

[occurred_from]
column = "occurred_from"
formats = ["iso"]

[occurred_to]
column = "occurred_to"
formats = ["iso"]

[location]
x = "lon"
y = "lat"
crs = "EPSG:4326"
address = "address"
location_type = "location_type"

[[offences]]
scheme = "{scheme}"
code = "{code}"
"""


class FieldReportError(ValueError):
    """The report is not valid; ``reasons`` says every problem (answered with 422)."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class IdempotencyConflict(ValueError):
    """The idempotency key was used before for another request."""


class VersionConflict(ValueError):
    """The incident changed since the version the client sent; ``current`` is its state."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the incident is at version {current}, not the one you sent")
        self.current = current


class UnknownReport(LookupError):
    """No field report of this agency has this id."""


@dataclass(frozen=True, slots=True)
class Reporter:
    """Who reports: an officer (user id) or an agency's ingest token (token id)."""

    user_id: str
    agency_id: str


@dataclass(frozen=True, slots=True)
class ReportResult:
    """What a create or update did: the incident's id and version; ``replayed`` when an
    idempotent retry returned the stored response (``response``) and changed nothing."""

    incident_id: str
    version: int
    replayed: bool = False
    response: dict[str, Any] | None = None
    #: Offence warnings: a local code not in the crosswalk (stored unmapped).
    warnings: tuple[str, ...] = ()


def field_profile(timezone: str, scheme: str | None = None, folder: str | None = None) -> Profile:
    """Return the built-in source profile of field reports for an agency's time zone.

    With ``scheme``, the offence is ``local_offence`` in that crosswalk scheme (found in
    ``folder``, the agency's crosswalk folder, or among the shipped ones); without, it
    is ``offence``, a NIBRS code.
    """
    text = _PROFILE.format(
        timezone=timezone,
        scheme=scheme or "code-nibrs",
        code="local_offence" if scheme else "offence",
        crosswalks=f"crosswalks = {json.dumps(folder)}\n" if folder else "",
    )
    return parse_profile(text, source="<field-report>")


def _scheme(conn: Connection, fields: Mapping[str, str | None]) -> tuple[str | None, str | None]:
    """Return the report's local offence scheme and its crosswalk folder (None, None: NIBRS).

    Raises
    ------
    FieldReportError
        The scheme is neither shipped nor registered by an ingest.
    """
    scheme = fields.get("offence_scheme")
    if fields.get("local_offence") is None:
        return None, None
    assert scheme is not None  # checked by _clean
    folder = conn.execute(
        select(crosswalk_sources.c.folder).where(crosswalk_sources.c.scheme == scheme)
    ).scalar()
    known = available_crosswalks([Path(folder)] if folder else [])
    if scheme not in known:
        raise FieldReportError(
            [
                f"offence_scheme: no crosswalk {scheme!r} (shipped or registered by an ingest; "
                f"known: {', '.join(sorted(known))})"
            ]  # fmt: skip
        )
    return scheme, folder


def request_hash(body: Mapping[str, Any]) -> str:
    """Return the hash of a request body that an idempotency key is bound to."""
    text = json.dumps(dict(body), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _clean(body: Mapping[str, Any]) -> dict[str, str | None]:
    unknown = sorted(set(body) - set(FIELDS))
    problems = [f"{k}: unknown field (known: {', '.join(FIELDS)})" for k in unknown]
    problems += [f"{k}: required" for k in REQUIRED if body.get(k) in (None, "")]
    given = [k for k in ("offence", "local_offence") if body.get(k) not in (None, "")]
    if len(given) != 1:
        problems.append(
            "offence: give either offence (a NIBRS code) or local_offence with offence_scheme "
            "(your agency's code)"
        )
    if body.get("local_offence") not in (None, "") and body.get("offence_scheme") in (None, ""):
        problems.append("offence_scheme: required with local_offence (e.g. police-uk)")
    for k, v in body.items():
        if v is not None and not isinstance(v, str | int | float) or isinstance(v, bool):
            problems.append(f"{k}: must be a string or a number")
    if problems:
        raise FieldReportError(problems)
    return {k: None if v is None else str(v) for k, v in body.items()}


def _write(
    store: Store,
    conn: Connection,
    agency_id: str,
    report_id: str,
    fields: dict[str, str | None],
    *,
    by: Reporter,
    operation: str,
) -> tuple[int, tuple[str, ...]]:
    """Normalise and store one report in ``conn``; return the incident's version and the
    offence warnings (an unmapped local code, stored unmapped as the ingest stores it)."""
    zone = conn.execute(select(agencies.c.timezone).where(agencies.c.id == agency_id)).scalar()
    if zone is None:
        raise FieldReportError([f"agency {agency_id!r} is not registered"])
    scheme, folder = _scheme(conn, fields)
    profile = field_profile(zone, scheme, folder)
    index = jurisdiction_index(store)
    iid = incident_id(agency_id, report_id)
    source = f"field-report:{iid}"
    normaliser = Normaliser(
        profile, agency_id, source_file=source, extent=index.extent(agency_id), clock=store.clock
    )
    raw = {**fields, "report_id": report_id}
    result = normaliser.normalise(RawRecord(1, raw))
    if isinstance(result, Rejected | Updated):
        raise FieldReportError(list(getattr(result, "reasons", ("not an incident",))))
    file_hash = hashlib.sha256(source.encode()).hexdigest()
    batch_id = str(uuid.uuid4())
    now = store.now()
    conn.execute(
        insert(ingest_batches).values(
            id=batch_id, agency_id=agency_id, profile_name=profile.name,
            profile_hash=hashlib.sha256(_PROFILE.encode()).hexdigest(), source_file=source,
            file_hash=file_hash, file_size=0, status="complete", started_at=now,
            finished_at=now, rows_done=1,
        )
    )  # fmt: skip
    item = Item(1, file_hash, source, dict(raw), agency_id, incident=result.incident)
    counts = write_chunk(
        store, derive([item], index), batch_id=batch_id, profile_name=profile.name, conn=conn,
        areas=index.areas,
    )  # fmt: skip
    if counts.quarantined:
        raise FieldReportError(["the report could not be stored (duplicate or expunged id)"])
    # Derive the served sensitivity flags now, in the writer's transaction: otherwise
    # the first reader of the new record (every live subscriber at once) would have to,
    # turning reads into writes that queue behind the next report (issue #10).
    refresh_flags(conn, [agency_id])
    key = require_vault(store, "field reports").active_key(store, conn, agency_id)
    sealed = {"file_hash": file_hash, "row_number": 1, **seal_raw(key, file_hash, 1, raw)}
    if operation == "create":
        conn.execute(
            insert(field_reports).values(
                incident_id=iid, agency_id=agency_id, updated_at=now, **sealed
            )
        )
    else:
        conn.execute(
            update(field_reports)
            .where(field_reports.c.incident_id == iid)
            .values(updated_at=now, **sealed)
        )
    state = stored_state(conn, iid)
    assert state is not None  # just written
    version = state.version
    record_change(
        store, conn, Action.CHANGE, by, resource_type="incident", owners=[agency_id],
        record_ids=[iid],
        details={"operation": f"field_report.{operation}", "version": version,
                 "updated": counts.updated, "new": counts.new},
    )  # fmt: skip
    warnings = tuple(w for w in result.warnings if w.startswith("offence:"))
    return int(version), warnings


def create_report(
    store: Store,
    agency_id: str,
    body: Mapping[str, Any],
    *,
    by: Reporter,
    key: str | None = None,
) -> ReportResult:
    """Create an incident of ``agency_id`` from a field report (see :data:`FIELDS`).

    Parameters
    ----------
    store
        The store (opened with a KEK: the raw report is sealed).
    agency_id
        The reporting agency (the caller's).
    body
        The report.
    by
        The officer or token reporting (recorded in the audit log).
    key
        The client's idempotency key: a retry with it returns the first response
        (``replayed``) and creates nothing.

    Raises
    ------
    FieldReportError
        The report is invalid (every reason is given).
    IdempotencyConflict
        ``key`` was used before with another body.
    """
    fields = _clean(body)
    digest = request_hash(body)
    report_id = f"F-{uuid.uuid4()}"
    iid = incident_id(agency_id, report_id)
    if key is not None:
        found = _stored(store, agency_id, key, digest)
        if found is not None:
            return found
    try:
        with store.begin() as conn:
            if key is not None:
                # Inserted first: a concurrent retry with the key waits here, then fails
                # on the primary key and reads this request's response.
                conn.execute(
                    insert(idempotency_keys).values(
                        agency_id=agency_id, key=key, request_hash=digest, incident_id=iid,
                        status=0, response={}, created_at=store.now(),
                    )
                )  # fmt: skip
            version, warnings = _write(
                store, conn, agency_id, report_id, fields, by=by, operation="create"
            )
    except IntegrityError:
        if key is None:
            raise
        found = _stored(store, agency_id, key, digest)
        if found is None:
            raise
        return found
    return ReportResult(iid, version, warnings=warnings)


def remember_response(
    store: Store, agency_id: str, key: str, status: int, response: Mapping[str, Any]
) -> None:
    """Store the response sent for an idempotency key (a retry gets it again)."""
    with store.begin() as conn:
        conn.execute(
            update(idempotency_keys)
            .where((idempotency_keys.c.agency_id == agency_id) & (idempotency_keys.c.key == key))
            .values(status=status, response=dict(response))
        )


def _stored(store: Store, agency_id: str, key: str, digest: str) -> ReportResult | None:
    t = idempotency_keys.c
    with store.connect() as conn:
        row = conn.execute(
            select(idempotency_keys).where((t.agency_id == agency_id) & (t.key == key))
        ).first()
        if row is None:
            return None
        state = stored_state(conn, row.incident_id)
        version = state.version if state is not None else 1
    if row.request_hash != digest:
        raise IdempotencyConflict(
            f"Idempotency-Key {key!r} was used for another request: send a new key for a new report"
        )
    response = dict(row.response) if row.status else None
    return ReportResult(row.incident_id, int(version or 1), replayed=True, response=response)


def has_report(store: Store, agency_id: str, report: str) -> bool:
    """Return whether ``agency_id`` has a field report with the incident id ``report``."""
    t = field_reports.c
    with store.begin() as conn:
        found = conn.execute(
            select(t.incident_id).where((t.incident_id == report) & (t.agency_id == agency_id))
        ).first()
    return found is not None


def update_report(
    store: Store,
    agency_id: str,
    report: str,
    changes: Mapping[str, Any],
    *,
    if_match: int,
    by: Reporter,
) -> ReportResult:
    """Apply changes to a field report, if it is still at version ``if_match``.

    The changes are merged into the stored report (a field set to null is cleared) and
    the result normalised and stored as a new version. The incident's row is locked
    for the check, so of two clients updating from the same version exactly one wins
    and the other gets :class:`VersionConflict` (and can merge and retry).

    Parameters
    ----------
    report
        The incident id (the owner's, as the agency's own users see it).

    Raises
    ------
    UnknownReport
        No field report of ``agency_id`` has this id.
    VersionConflict
        The incident is at another version (its ``current`` one).
    FieldReportError
        The merged report is invalid.
    """
    t = field_reports.c
    with store.begin() as conn:
        # Lock the report's row first (a write): concurrent updaters queue here, and
        # on SQLite the transaction holds the write lock before it reads anything.
        locked = conn.execute(
            update(field_reports)
            .where((t.incident_id == report) & (t.agency_id == agency_id))
            .values(updated_at=t.updated_at)
        ).rowcount
        if not locked:
            raise UnknownReport(f"no field report {report!r} of agency {agency_id!r}")
        row = conn.execute(select(field_reports).where(t.incident_id == report)).one()
        state = stored_state(conn, report)
        if state is None or state.withdrawn:
            raise UnknownReport(f"field report {report!r} was withdrawn")
        if state.version != if_match:
            raise VersionConflict(state.version)
        vault = require_vault(store, "field reports")
        raw = open_raw(vault, conn, _Sealed(report, row))
        merged = {k: v for k, v in raw.items() if k != "report_id"}
        merged.update(changes)
        fields = _clean({k: v for k, v in merged.items() if v is not None})
        version, warnings = _write(
            store, conn, agency_id, state.source_id, fields, by=by, operation="update"
        )
    return ReportResult(report, version, warnings=warnings)


@dataclass(frozen=True)
class _Sealed:
    """A ``field_reports`` row as :func:`crossbeat.vault.quarantine.open_raw` reads it."""

    id: str
    row: Any

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, name)
