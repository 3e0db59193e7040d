"""Key rotation: new data keys, re-encrypted rows, retired old keys; and key status.

Rotating an owner's data key (an agency's, or the platform's) makes a new active key
and marks the old one ``rotating``; every row sealed under the old key, in every
sealed table (:data:`crossbeat.vault.sealed.SEALED`: personal data, quarantined
rows, TOTP seeds), is then re-encrypted in batches, each batch in its own
transaction. Every row names its key, so the progress is the data itself: a rotation
killed at any moment is finished by running it again (it resumes instead of starting
another). When no row uses the old key any more it is retired and its key material
erased. Legacy rows of the ``plain`` codec are encrypted by the same pass.

The fingerprint key (HMAC of record hashes) is never rotated: see
:mod:`crossbeat.vault.fingerprint`.

Re-wrapping moves every data key, agencies' and platform's alike, from an old KEK
to the configured one; the rows do not change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select, update

from crossbeat.audit.changes import Principal, record_change
from crossbeat.audit.events import Action
from crossbeat.vault.cipher import PLAIN_CODEC
from crossbeat.vault.errors import VaultError
from crossbeat.vault.keys import Vault, key_owner, key_table, require_vault, unwrap_key, wrap_key
from crossbeat.vault.sealed import SEALED
from crossbeat.vault.tables import FINGERPRINT, PLATFORM, agency_keys, platform_keys

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
    """What a rotation of one owner's data key did."""

    agency_id: str
    new_key_id: str
    new_version: int
    #: False when an interrupted rotation was resumed rather than a new one started.
    started: bool
    reencrypted: int = 0
    batches: int = 0
    retired: list[str] = field(default_factory=list)


def _count_pending(conn: Connection, owner: str, old_ids: list[str]) -> int:
    return sum(
        conn.execute(
            select(func.count()).select_from(t.table).where(t.pending(owner, old_ids))
        ).scalar_one()
        for t in SEALED
    )


def _start(store: Store, conn: Connection, vault: Vault, owner: str) -> tuple[list[str], bool]:
    """Begin (or find the unfinished) rotation; return the old key ids and if it is new."""
    table, owner_col = key_table(owner)
    rows = conn.execute(select(table).where(owner_col == owner).with_for_update()).all()
    rotating = [r.key_id for r in rows if r.status == "rotating"]
    if rotating:
        return rotating, False
    active = [r.key_id for r in rows if r.status == "active"]
    if active:
        conn.execute(update(table).where(table.c.key_id.in_(active)).values(status="rotating"))
    if vault.create_key(store, conn, owner) is None:
        raise VaultError(
            f"another process started a rotation of {owner}'s key a moment ago: "
            "run the command again to join it"
        )
    return active, True


def _batch(store: Store, vault: Vault, owner: str, old_ids: list[str], size: int) -> int:
    """Re-encrypt up to ``size`` pending rows in one transaction; return how many."""
    done = 0
    with store.begin() as conn:
        if store.dialect == "sqlite":
            # Legacy plain rows: overwrite freed cells instead of leaving the old bytes
            # in the file (per-connection setting).
            conn.exec_driver_sql("PRAGMA secure_delete=ON")
        key = vault.active_key(store, conn, owner)
        for sealed in SEALED:
            if done >= size:
                break
            rows = conn.execute(
                select(sealed.table)
                .where(sealed.pending(owner, old_ids))
                .order_by(sealed.row_column)
                .limit(size - done)
                .with_for_update()
            ).all()
            for row in rows:
                conn.execute(
                    update(sealed.table)
                    .where(sealed.row_column == row._mapping[sealed.row_column.name])
                    .values(**sealed.reseal(vault, conn, key, row))
                )
            done += len(rows)
    return done


def _retire(
    store: Store,
    vault: Vault,
    owner: str,
    old_ids: list[str],
    *,
    audit: tuple[Principal | None, list[str], dict[str, Any]] | None = None,
) -> bool:
    """Retire the old keys if no row uses them any more; return whether it did.

    ``audit`` is (by, owners, details) of the ``key_rotation`` event appended in the
    transaction that retires the keys.
    """
    table, _ = key_table(owner)
    with store.begin() as conn:
        # Writers hold the key they seal with for share until they commit, so once
        # these locks are ours no uncommitted row can still be using the old keys.
        conn.execute(
            select(table.c.key_id).where(table.c.key_id.in_(old_ids)).with_for_update()
        ).all()
        if _count_pending(conn, owner, old_ids):
            return False
        if old_ids:
            conn.execute(
                update(table)
                .where(table.c.key_id.in_(old_ids))
                .values(status="retired", retired_at=store.now(), wrapped_key=None)
            )
        if audit is not None:
            by, owners, details = audit
            record_change(
                store,
                conn,
                Action.KEY_ROTATION,
                by,
                resource_type="data_key",
                owners=owners,
                record_count=int(details.get("rows_reencrypted", 0)),
                details=details,
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
    by: Principal | None = None,
) -> RotationResult:
    """Rotate an agency's (or the platform's) data key, or finish an interrupted rotation.

    Parameters
    ----------
    store
        A store opened with the KEK.
    agency_id
        The agency whose data key to rotate, or :data:`~crossbeat.vault.tables.PLATFORM`
        for the platform key (quarantined rows of unknown agency, TOTP seeds).
    batch_size
        Rows re-encrypted per transaction.
    progress
        Called after every committed batch.
    by
        Who rotates: a signed-in user, or None for the local operator. The start of a
        rotation (with the new key) and its end (the rows re-encrypted by this call,
        the keys retired) are each a ``key_rotation`` event owned by the agency
        (no owner for the platform key), in the transaction that makes the change.

    Returns
    -------
    RotationResult
        The new key, how many rows were re-encrypted and which keys were retired.

    Raises
    ------
    VaultError
        For the fingerprint key, which is never rotated, or an unknown scope.
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, not {batch_size}")
    if agency_id == FINGERPRINT:
        raise VaultError(
            f"the fingerprint key ({FINGERPRINT}) is never rotated: record hashes are keyed "
            "with it, so a new key would make every record look changed at the next ingest. "
            "Changing the KEK re-wraps it (`crossbeat keys rewrap`)"
        )
    key_table(agency_id)  # refuses an unknown scope before anything is written
    vault = require_vault(store)
    owners = [] if agency_id.startswith("@") else [agency_id]
    with store.begin() as conn:
        old_ids, started = _start(store, conn, vault, agency_id)
        key = vault.active_key(store, conn, agency_id)
        if started:
            record_change(
                store,
                conn,
                Action.KEY_ROTATION,
                by,
                resource_type="data_key",
                owners=owners,
                details={
                    "operation": "rotation_started",
                    "owner": agency_id,
                    "new_key_id": key.key_id,
                    "new_version": key.version,
                    "old_key_ids": old_ids,
                },
            )
    with store.connect() as conn:
        total = _count_pending(conn, agency_id, old_ids)
    result = RotationResult(agency_id, key.key_id, key.version, started)
    while True:
        n = _batch(store, vault, agency_id, old_ids, batch_size)
        if n:
            result.reencrypted += n
            result.batches += 1
            if progress is not None:
                progress(RotationProgress(agency_id, result.reencrypted, total, result.batches))
            continue
        done = {
            "operation": "rotation_done",
            "owner": agency_id,
            "new_key_id": key.key_id,
            "new_version": key.version,
            "retired_key_ids": old_ids,
            "rows_reencrypted": result.reencrypted,
            "resumed": not started,
        }
        if _retire(store, vault, agency_id, old_ids, audit=(by, owners, done)):
            break
    result.retired = old_ids
    if store.dialect == "sqlite":
        with store.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return result


def key_owners(store: Store) -> list[str]:
    """Return the owners whose data keys can be rotated: agencies, then the platform.

    An agency is listed when it has data keys or sealed rows; the platform when it
    has a data key or owns sealed rows (quarantined rows of unknown agency, TOTP
    seeds). The fingerprint key is never listed: it is never rotated.
    """
    owners: set[str] = set()
    with store.connect() as conn:
        owners.update(conn.execute(select(agency_keys.c.agency_id).distinct()).scalars())
        scopes = conn.execute(select(platform_keys.c.scope).distinct()).scalars()
        owners.update(s for s in scopes if s == PLATFORM)
        for sealed in SEALED:
            if sealed.owner_column is None:
                if conn.execute(select(sealed.key_column).limit(1)).first() is not None:
                    owners.add(PLATFORM)
                continue
            found = conn.execute(select(sealed.owner_column).distinct()).scalars()
            owners.update(a if a is not None else PLATFORM for a in found)
    return sorted(owners, key=lambda o: (o.startswith("@"), o))


def rewrap_keys(store: Store, vault: Vault | None = None, *, by: Principal | None = None) -> int:
    """Re-wrap every live key, agencies' and platform's, under the configured KEK.

    Run after changing the KEK; the fingerprint key is covered too.

    Parameters
    ----------
    store
        A store opened with the new KEK.
    vault
        A vault holding the new KEK and the old KEK(s) among ``old_keks``; defaults
        to the store's.
    by
        Who re-wraps: a signed-in user, or None for the local operator. A re-wrap that
        changed keys is one ``key_rotation`` event (operation ``rewrap``) owned by the
        agencies whose keys were re-wrapped, with the key ids and the new KEK's id, in
        the same transaction.

    Returns
    -------
    int
        The number of data keys re-wrapped (0 when all already use the KEK, so it is
        safe to run again).
    """
    vault = vault or require_vault(store)
    n = 0
    rewrapped: list[tuple[str, str]] = []
    with store.begin() as conn:
        for table in (agency_keys, platform_keys):
            rows = conn.execute(
                select(table)
                .where((table.c.status != "retired") & (table.c.kek_id != vault.kek.id))
                .with_for_update()
            ).all()
            for row in rows:
                old = vault.kek_for(row.kek_id, key_id=row.key_id, owner=key_owner(row))
                key = unwrap_key(old, row)
                conn.execute(
                    update(table)
                    .where(table.c.key_id == row.key_id)
                    .values(wrapped_key=wrap_key(vault.kek, key), kek_id=vault.kek.id)
                )
                n += 1
                rewrapped.append((key_owner(row), row.key_id))
        if rewrapped:
            record_change(
                store,
                conn,
                Action.KEY_ROTATION,
                by,
                resource_type="data_key",
                owners=[o for o, _ in rewrapped if not o.startswith("@")],
                details={
                    "operation": "rewrap",
                    "kek_id": vault.kek.id,
                    "keys": [{"owner": o, "key_id": k} for o, k in rewrapped],
                },
            )
    return n


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One data key and how many sealed rows (in every sealed table) use it."""

    key_id: str
    version: int
    status: str
    kek_id: str
    created_at: datetime
    retired_at: datetime | None
    rows: int


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """The data keys of one owner (an agency or a platform scope) and its rows per key."""

    #: An agency id, ``@platform`` or ``@fingerprint``.
    owner: str
    active_key_id: str | None
    keys: tuple[KeyInfo, ...]
    #: Legacy rows still stored with the ``plain`` codec (encrypt them by rotating).
    plain_rows: int

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "owner": self.owner,
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


def key_status(store: Store) -> list[KeyStatus]:
    """Return every owner's data keys (newest first) with their row counts.

    Agencies come first, by id, then the platform scopes (``@fingerprint``,
    ``@platform``). The rows of
    a key are counted over every sealed table; the fingerprint key seals no rows (it
    keys the record hashes).
    """
    per_key: dict[str | None, int] = {}
    plain: dict[str, int] = {}
    by_owner: dict[str, list[KeyInfo]] = {}
    with store.connect() as conn:
        keys = [
            *conn.execute(select(agency_keys).order_by(agency_keys.c.version.desc())),
            *conn.execute(select(platform_keys).order_by(platform_keys.c.version.desc())),
        ]
        for sealed in SEALED:
            owner_col = sealed.owner_column
            cols = [sealed.key_column, sealed.codec_column]
            group = [*cols, owner_col] if owner_col is not None else cols
            for row in conn.execute(select(*group, func.count()).group_by(*group)):
                key_id, codec, *rest = row
                owner = (rest[0] if owner_col is not None else None) or PLATFORM
                n = rest[-1]
                if codec == PLAIN_CODEC:
                    plain[owner] = plain.get(owner, 0) + n
                else:
                    per_key[key_id] = per_key.get(key_id, 0) + n
    for k in keys:
        by_owner.setdefault(key_owner(k), []).append(
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
    owners = sorted(set(by_owner) | set(plain), key=lambda o: (o.startswith("@"), o))
    return [
        KeyStatus(
            owner=owner,
            active_key_id=next(
                (k.key_id for k in by_owner.get(owner, []) if k.status == "active"), None
            ),
            keys=tuple(by_owner.get(owner, [])),
            plain_rows=plain.get(owner, 0),
        )
        for owner in owners
    ]
