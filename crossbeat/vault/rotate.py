"""Key rotation: new data keys, re-encrypted rows, retired old keys; and key status.

Rotating an agency's data key makes a new active key and marks the old one
``rotating``; rows are then re-encrypted in batches, each batch in its own
transaction. Every row names its key, so the progress is the data itself: a rotation
killed at any moment is finished by running it again (it resumes instead of starting
another). When no row uses the old key any more it is retired and its key material
erased. Legacy rows of the ``plain`` codec are encrypted by the same pass.

Re-wrapping moves the data keys from an old KEK to the configured one; the rows do
not change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select, update

from crossbeat.store.schema import incident_personal
from crossbeat.vault.cipher import PLAIN_CODEC
from crossbeat.vault.errors import VaultError
from crossbeat.vault.keys import Vault, require_vault, unwrap_key, wrap_key
from crossbeat.vault.personal import decode_personal, seal_fields
from crossbeat.vault.tables import agency_keys

if TYPE_CHECKING:
    from crossbeat.store.base import Store

BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class RotationProgress:
    """Where a rotation stands after a committed batch."""

    agency_id: str
    done: int
    total: int
    batches: int


@dataclass
class RotationResult:
    """What a rotation of one agency's data key did."""

    agency_id: str
    new_key_id: str
    new_version: int
    #: False when an interrupted rotation was resumed rather than a new one started.
    started: bool
    reencrypted: int = 0
    batches: int = 0
    retired: list[str] = field(default_factory=list)


def _pending(agency_id: str, old_ids: list[str]) -> ColumnElement[bool]:
    p = incident_personal.c
    return and_(
        p.agency_id == agency_id,
        or_(p.key_id.is_(None), p.key_id.in_(old_ids), p.codec == PLAIN_CODEC),
    )


def _start(store: Store, conn: Connection, vault: Vault, agency_id: str) -> tuple[list[str], bool]:
    """Begin (or find the unfinished) rotation; return the old key ids and if it is new."""
    rows = conn.execute(
        select(agency_keys).where(agency_keys.c.agency_id == agency_id).with_for_update()
    ).all()
    rotating = [r.key_id for r in rows if r.status == "rotating"]
    if rotating:
        return rotating, False
    active = [r.key_id for r in rows if r.status == "active"]
    if active:
        conn.execute(
            update(agency_keys).where(agency_keys.c.key_id.in_(active)).values(status="rotating")
        )
    if vault.create_key(store, conn, agency_id) is None:
        raise VaultError(
            f"another process started a rotation of agency {agency_id}'s key a moment ago: "
            "run the command again to join it"
        )
    return active, True


def _batch(store: Store, vault: Vault, agency_id: str, old_ids: list[str], size: int) -> int:
    """Re-encrypt up to ``size`` pending rows in one transaction; return how many."""
    with store.begin() as conn:
        if store.dialect == "sqlite":
            # Legacy plain rows: overwrite freed cells instead of leaving the old bytes
            # in the file (per-connection setting).
            conn.exec_driver_sql("PRAGMA secure_delete=ON")
        key = vault.active_key(store, conn, agency_id)
        rows = conn.execute(
            select(incident_personal)
            .where(_pending(agency_id, old_ids))
            .order_by(incident_personal.c.incident_id)
            .limit(size)
            .with_for_update()
        ).all()
        for row in rows:
            personal = decode_personal(vault, conn, row)
            conn.execute(
                update(incident_personal)
                .where(incident_personal.c.incident_id == row.incident_id)
                .values(**seal_fields(key, row.incident_id, agency_id, personal))
            )
    return len(rows)


def _retire(store: Store, vault: Vault, agency_id: str, old_ids: list[str]) -> bool:
    """Retire the old keys if no row uses them any more; return whether it did."""
    with store.begin() as conn:
        # Writers hold the key they seal with for share until they commit, so once
        # these locks are ours no uncommitted row can still be using the old keys.
        conn.execute(
            select(agency_keys.c.key_id).where(agency_keys.c.key_id.in_(old_ids)).with_for_update()
        ).all()
        left = conn.execute(
            select(func.count()).select_from(incident_personal).where(_pending(agency_id, old_ids))
        ).scalar_one()
        if left:
            return False
        if old_ids:
            conn.execute(
                update(agency_keys)
                .where(agency_keys.c.key_id.in_(old_ids))
                .values(status="retired", retired_at=store.now(), wrapped_key=None)
            )
    for key_id in old_ids:
        vault.forget(key_id)
    return True


def rotate_agency_key(
    store: Store,
    agency_id: str,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[RotationProgress], None] | None = None,
) -> RotationResult:
    """Rotate an agency's data key, or finish an interrupted rotation.

    Parameters
    ----------
    store
        A store opened with the KEK.
    agency_id
        The agency whose data key to rotate.
    batch_size
        Rows re-encrypted per transaction.
    progress
        Called after every committed batch.

    Returns
    -------
    RotationResult
        The new key, how many rows were re-encrypted and which keys were retired.
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, not {batch_size}")
    vault = require_vault(store)
    with store.begin() as conn:
        old_ids, started = _start(store, conn, vault, agency_id)
        key = vault.active_key(store, conn, agency_id)
    with store.connect() as conn:
        total = conn.execute(
            select(func.count()).select_from(incident_personal).where(_pending(agency_id, old_ids))
        ).scalar_one()
    result = RotationResult(agency_id, key.key_id, key.version, started)
    while True:
        n = _batch(store, vault, agency_id, old_ids, batch_size)
        if n:
            result.reencrypted += n
            result.batches += 1
            if progress is not None:
                progress(RotationProgress(agency_id, result.reencrypted, total, result.batches))
            continue
        if _retire(store, vault, agency_id, old_ids):
            break
    result.retired = old_ids
    if store.dialect == "sqlite":
        with store.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return result


def agencies_with_personal_data(store: Store) -> list[str]:
    """Return the agencies that have data keys or personal rows."""
    with store.connect() as conn:
        keyed = set(conn.execute(select(agency_keys.c.agency_id).distinct()).scalars())
        rows = set(conn.execute(select(incident_personal.c.agency_id).distinct()).scalars())
    return sorted(keyed | rows)


def rewrap_keys(store: Store, vault: Vault | None = None) -> int:
    """Re-wrap every live data key under the configured KEK (after changing the KEK).

    Parameters
    ----------
    store
        A store opened with the new KEK.
    vault
        A vault holding the new KEK and the old KEK(s) among ``old_keks``; defaults
        to the store's.

    Returns
    -------
    int
        The number of data keys re-wrapped (0 when all already use the KEK, so it is
        safe to run again).
    """
    vault = vault or require_vault(store)
    n = 0
    with store.begin() as conn:
        rows = conn.execute(
            select(agency_keys)
            .where((agency_keys.c.status != "retired") & (agency_keys.c.kek_id != vault.kek.id))
            .with_for_update()
        ).all()
        for row in rows:
            old = vault.kek_for(row.kek_id, key_id=row.key_id, agency_id=row.agency_id)
            key = unwrap_key(old, row)
            conn.execute(
                update(agency_keys)
                .where(agency_keys.c.key_id == row.key_id)
                .values(wrapped_key=wrap_key(vault.kek, key), kek_id=vault.kek.id)
            )
            n += 1
    return n


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One data key of an agency and how many personal rows it seals."""

    key_id: str
    version: int
    status: str
    kek_id: str
    created_at: datetime
    retired_at: datetime | None
    rows: int


@dataclass(frozen=True, slots=True)
class AgencyKeyStatus:
    """An agency's data keys and its rows per key."""

    agency_id: str
    active_key_id: str | None
    keys: tuple[KeyInfo, ...]
    #: Legacy rows still stored with the ``plain`` codec (encrypt them by rotating).
    plain_rows: int

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "agency_id": self.agency_id,
            "active_key_id": self.active_key_id,
            "plain_rows": self.plain_rows,
            "keys": [
                {
                    "key_id": k.key_id,
                    "version": k.version,
                    "status": k.status,
                    "kek_id": k.kek_id,
                    "created_at": k.created_at.isoformat(),
                    "retired_at": k.retired_at.isoformat() if k.retired_at else None,
                    "rows": k.rows,
                }
                for k in self.keys
            ],
        }


def key_status(store: Store) -> list[AgencyKeyStatus]:
    """Return every agency's data keys (active one first) with their row counts."""
    p = incident_personal.c
    with store.connect() as conn:
        keys = conn.execute(
            select(agency_keys).order_by(agency_keys.c.agency_id, agency_keys.c.version.desc())
        ).all()
        counts = conn.execute(
            select(p.agency_id, p.key_id, p.codec, func.count()).group_by(
                p.agency_id, p.key_id, p.codec
            )
        ).all()
    per_key: dict[str | None, int] = {}
    plain: dict[str, int] = {}
    for agency, key_id, codec, n in counts:
        if codec == PLAIN_CODEC:
            plain[agency] = plain.get(agency, 0) + n
        else:
            per_key[key_id] = per_key.get(key_id, 0) + n
    by_agency: dict[str, list[KeyInfo]] = {}
    for k in keys:
        by_agency.setdefault(k.agency_id, []).append(
            KeyInfo(
                k.key_id,
                k.version,
                k.status,
                k.kek_id,
                k.created_at,
                k.retired_at,
                per_key.get(k.key_id, 0),
            )
        )
    return [
        AgencyKeyStatus(
            agency_id=agency,
            active_key_id=next(
                (k.key_id for k in by_agency.get(agency, []) if k.status == "active"), None
            ),
            keys=tuple(by_agency.get(agency, [])),
            plain_rows=plain.get(agency, 0),
        )
        for agency in sorted(set(by_agency) | set(plain))
    ]
