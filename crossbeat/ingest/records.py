"""Turning model incidents into stored rows, and stored rows into snapshots.

Kept apart from the pipeline so that every writer (file ingest, quarantine retry,
later the field-report API) stores an incident the same way. It lives in ingest,
not in the store, because it hashes with the fingerprint key and seals personal
data (:mod:`crossbeat.vault`): the store never imports the vault.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crossbeat.model import Incident, Sensitivity, new_public_id
from crossbeat.vault.fingerprint import Fingerprinter
from crossbeat.vault.personal import encode_personal_rows

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from crossbeat.store.base import Store


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted(str(v) for v in value)
    return value


def record_hash(incident: Incident, fingerprint: Fingerprinter) -> str:
    """Return the keyed hash (HMAC-SHA256) of an incident's normalised content.

    Provenance (file, row) and derived fields (H3 cells, jurisdictions) are left out,
    so the same record re-exported in another file, or re-tagged after a boundary
    change, is recognised as unchanged; personal data is included, so a changed
    narrative makes a new version. The hash is keyed with the deployment's
    fingerprint key, so a database dump does not allow testing guessed names
    against it.

    This runs once per ingested row, so it serialises the fields directly instead
    of going through ``dataclasses.asdict``.

    Parameters
    ----------
    incident
        The normalised incident.
    fingerprint
        From :func:`crossbeat.vault.fingerprint.fingerprinter`, fetched once per chunk.

    Returns
    -------
    str
        64 hex digits.
    """
    loc = incident.location
    p = incident.personal
    content = [
        incident.agency_id,
        incident.source_id,
        [
            [o.local_code, o.local_description, o.scheme, o.crosswalk_version, o.nibrs_code]
            + [o.crime_against, o.ucr_part1, o.match]
            # Only when set, so that the hashes of offences stored before call
            # categories existed stay the same (a re-ingest finds them unchanged).
            + ([o.call_category] if o.call_category else [])
            for o in incident.offences
        ],
        _iso(incident.occurred_from),
        _iso(incident.occurred_to),
        incident.time_precision,
        [loc.lat, loc.lon, loc.precision, loc.block_address, loc.location_type],
        loc.location_type_local,
        _iso(incident.reported_at),
        incident.status,
        incident.disposition,
        sorted(incident.sensitivity),
        _canonical(incident.attributes) if incident.attributes else None,
        p.full_address,
        p.narrative,
        [[q.role, q.name, q.age, q.sex, _canonical(q.attributes)] for q in p.persons],
    ]
    text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    return fingerprint.hexdigest(text.encode("utf-8"))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def incident_row(
    incident: Incident,
    *,
    version: int,
    digest: str,
    batch_id: str,
    now: datetime,
    fingerprint: Fingerprinter,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """Return the ``incidents`` row for an incident.

    The raw row's SHA-256 (``Provenance.raw_hash``) covers personal columns, so it is
    stored keyed: the HMAC of it under the fingerprint key.
    """
    first = incident.offences[0] if incident.offences else None
    loc = incident.location
    prov = incident.provenance
    sens = incident.sensitivity
    return {
        "id": incident.id,
        # Drawn for every row built; an update never writes it (ingest.writes), so an
        # incident keeps the public id of its first version.
        "public_id": new_public_id(),
        "agency_id": incident.agency_id,
        "source_id": incident.source_id,
        "version": version,
        "record_hash": digest,
        "offence_local_code": first.local_code if first else None,
        "nibrs_code": first.nibrs_code if first else None,
        "crime_against": str(first.crime_against) if first and first.crime_against else None,
        "ucr_part1": first.ucr_part1 if first else None,
        "unmapped": incident.unmapped,
        "call_category": incident.call_category,
        "occurred_from": incident.occurred_from,
        "occurred_to": incident.occurred_to,
        "time_precision": str(incident.time_precision),
        "reported_at": incident.reported_at,
        "status": incident.status,
        "disposition": incident.disposition,
        "lat": loc.lat,
        "lon": loc.lon,
        "location_precision": str(loc.precision),
        "block_address": loc.block_address,
        "location_type": loc.location_type,
        "location_type_local": loc.location_type_local,
        "h3_7": incident.h3.get(7),
        "h3_9": incident.h3.get(9),
        "h3_11": incident.h3.get(11),
        "sens_sexual": Sensitivity.SEXUAL_OFFENCE in sens,
        "sens_domestic": Sensitivity.DOMESTIC_VIOLENCE in sens,
        "sens_juvenile": Sensitivity.JUVENILE in sens,
        "sens_victim_identifying": Sensitivity.VICTIM_IDENTIFYING in sens,
        "sens_informant": Sensitivity.INFORMANT in sens,
        "attributes": _canonical(incident.attributes) or None,
        # Derived by the reads before any reader sees the record (a changed record's
        # flags too): crossbeat.sharing.flags.
        "sens_served": None,
        "sens_rules": None,
        "withdrawn_at": None,
        "batch_id": batch_id,
        "source_file": prov.source_file if prov else "",
        "row_number": prov.row_number if prov else 0,
        "raw_hash": fingerprint.hexdigest(prov.raw_hash.encode("ascii")) if prov else "",
        "created_at": created_at or now,
        "updated_at": now,
    }


def offence_rows(incident: Incident) -> list[dict[str, Any]]:
    """Return the ``incident_offences`` rows for an incident."""
    return [
        {
            "incident_id": incident.id,
            "seq": i,
            "local_code": o.local_code,
            "local_description": o.local_description,
            "scheme": o.scheme,
            "crosswalk_version": o.crosswalk_version,
            "nibrs_code": o.nibrs_code,
            "crime_against": str(o.crime_against) if o.crime_against else None,
            "ucr_part1": o.ucr_part1,
            "match": o.match,
            "call_category": o.call_category,
        }
        for i, o in enumerate(incident.offences)
    ]


def personal_rows(
    store: Store, conn: Connection, incidents: Iterable[Incident], now: datetime
) -> list[dict[str, Any]]:
    """Return the ``incident_personal`` rows of the incidents that carry personal data.

    Every field is encrypted through the store's vault (AES-256-GCM under the owning
    agency's data key, :mod:`crossbeat.vault`); personal data is never written in
    the clear. Raises :class:`crossbeat.vault.errors.KeyConfigError` when the store
    was opened without a KEK.
    """
    return encode_personal_rows(store, conn, incidents, now=now)


_NOT_SNAPSHOT = frozenset({"source_digest", "offences_json", "jurisdiction_ids"})


def snapshot(row: dict[str, Any], offences: list[dict[str, Any]]) -> dict[str, Any]:
    """Return a JSON-ready snapshot of a stored incident row and its offences."""
    # The source digest is how the row was found unchanged, not content (and bytes);
    # the child columns are the offences and jurisdictions again (crossbeat.store.children).
    kept = {k: v for k, v in row.items() if k not in _NOT_SNAPSHOT}
    return {"incident": _canonical(kept), "offences": _canonical(offences)}
