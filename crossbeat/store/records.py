"""Rows the store derives from stored incidents alone (no keys, no personal data).

The rows that need the vault (record fingerprints, sealed personal data) are built
in :mod:`crossbeat.ingest.records`: the store never imports the vault.
"""

from __future__ import annotations

from typing import Any


def jurisdiction_rows(
    incident_id: str, owner: str, agencies_here: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Return ``incident_jurisdictions`` rows: polygon containers plus the reporter.

    The reporting agency is always tagged (basis ``reporter`` when none of its
    polygons contains the point, e.g. a force with no boundary loaded).
    """
    rows = [{"incident_id": incident_id, "agency_id": a, "basis": "polygon"} for a in agencies_here]
    if owner not in agencies_here:
        rows.append({"incident_id": incident_id, "agency_id": owner, "basis": "reporter"})
    return rows
