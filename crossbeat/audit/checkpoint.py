"""Checkpoints: sign the audit log's current tree head (issue #3).

A checkpoint first verifies the events written since the previous head (so a tampered
tail is never blessed with a signature), then signs the new size and root and stores
the head. Run it periodically (``crossbeat audit checkpoint`` from cron, or from the
server) and export heads to storage the database administrators cannot change.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, insert, select

from crossbeat.audit.events import GENESIS_HASH
from crossbeat.audit.heads import TreeHead, head_from_row, sign_head
from crossbeat.audit.keys import SigningKey
from crossbeat.audit.log import PAGE_SIZE, AuditError, lock_tip
from crossbeat.audit.merkle import Frontier
from crossbeat.audit.tables import audit_events, audit_head, audit_tree_heads
from crossbeat.audit.verify import ChainWalker, Problem, VerifyReport

if TYPE_CHECKING:
    from crossbeat.store import Store


class AuditIntegrityError(AuditError):
    """The log failed verification, so it was not signed.

    Attributes
    ----------
    problems
        What was found wrong.
    """

    def __init__(self, message: str, problems: list[Problem]) -> None:
        super().__init__(message)
        self.problems = problems


def checkpoint(store: Store, key: SigningKey, *, conn: Connection | None = None) -> TreeHead:
    """Verify the events since the last tree head, then sign and store a new head.

    Parameters
    ----------
    store
        The store holding the log.
    key
        The Ed25519 signing key (from configuration; see :mod:`crossbeat.audit.keys`).
    conn
        An open transaction to use (default: a new one).

    Returns
    -------
    TreeHead
        The new head, covering every event appended so far.

    Raises
    ------
    AuditIntegrityError
        The events since the last head (or the last head itself) do not verify.
    """
    if conn is None:
        with store.begin() as own:
            return _checkpoint(store, own, key)
    return _checkpoint(store, conn, key)


def checkpoint_if_due(
    store: Store,
    key: SigningKey,
    *,
    max_events: int = 1000,
    max_age: timedelta = timedelta(hours=1),
) -> TreeHead | None:
    """Sign a new tree head when enough events or enough time have passed.

    Call it after appends or from a timer; it is cheap when nothing is due.

    Parameters
    ----------
    store
        The store holding the log.
    key
        The Ed25519 signing key.
    max_events
        Sign once this many events are not yet covered by a head.
    max_age
        Sign when the newest head is older than this and events were added since.

    Returns
    -------
    TreeHead or None
        The new head, or None when none was due.
    """
    with store.connect() as conn:
        size = conn.execute(select(audit_head.c.size).where(audit_head.c.id == 1)).scalar()
        last = conn.execute(
            select(audit_tree_heads.c.tree_size, audit_tree_heads.c.signed_at)
            .order_by(audit_tree_heads.c.id.desc())
            .limit(1)
        ).first()
    if size is None:
        raise AuditError("the audit log has no chain tip: run `crossbeat audit verify`")
    covered = last.tree_size if last else 0
    if size <= covered:
        return None
    old = last is None or store.now() - last.signed_at >= max_age
    if size - covered >= max_events or old:
        return checkpoint(store, key)
    return None


def _checkpoint(store: Store, conn: Connection, key: SigningKey) -> TreeHead:
    tip = lock_tip(conn)  # no appends and no other checkpoint until we commit
    report = VerifyReport()
    walker = _resume(conn, report)
    walker.walk(conn, after=walker.size, until=tip.size, page=PAGE_SIZE)
    beyond = conn.execute(
        select(func.count()).select_from(audit_events).where(audit_events.c.seq > tip.size)
    ).scalar_one()
    if walker.size != tip.size or beyond:
        report.add("tip_mismatch", f"the chain tip says {tip.size} events, the log differs")
    elif tip.last_hash != walker.last_hash or tip.frontier != walker.frontier.to_hex():
        report.add("tip_mismatch", "the chain tip does not match the last event")
    if not report.ok:
        listed = "; ".join(str(p) for p in report.problems[:5])
        raise AuditIntegrityError(
            f"the audit log does not verify, so it was not signed: {listed}. "
            "Run `crossbeat audit verify` for the full list.",
            report.problems,
        )
    last = conn.execute(
        select(audit_tree_heads.c.id).order_by(audit_tree_heads.c.id.desc()).limit(1)
    ).scalar()
    head = sign_head(
        key,
        head_id=(last or 0) + 1,
        tree_size=walker.size,
        root_hash=walker.frontier.root().hex(),
        signed_at=store.now(),
    )
    conn.execute(
        insert(audit_tree_heads).values(
            id=head.id,
            tree_size=head.tree_size,
            root_hash=head.root_hash,
            signed_at=head.signed_at,
            algorithm=head.algorithm,
            key_id=head.key_id,
            signature=head.signature,
            frontier=walker.frontier.to_hex(),
        )
    )
    return head


def _resume(conn: Connection, report: VerifyReport) -> ChainWalker:
    """Return a walker positioned after the newest tree head (or at the start)."""
    row = conn.execute(
        select(audit_tree_heads).order_by(audit_tree_heads.c.id.desc()).limit(1)
    ).first()
    if row is None or row.tree_size == 0:
        return ChainWalker(report)
    head = head_from_row(row)
    try:
        frontier = Frontier.from_hex(head.tree_size, row.frontier)
    except (TypeError, ValueError) as exc:
        raise AuditIntegrityError(
            f"tree head #{head.id} is damaged ({exc}); run `crossbeat audit verify`", []
        ) from exc
    if frontier.root().hex() != head.root_hash:
        raise AuditIntegrityError(
            f"tree head #{head.id}'s stored frontier does not give its root; run "
            "`crossbeat audit verify`",
            [],
        )
    last = conn.execute(
        select(audit_events.c.entry_hash, audit_events.c.occurred_at).where(
            audit_events.c.seq == head.tree_size
        )
    ).first()
    if last is None:
        raise AuditIntegrityError(
            f"event {head.tree_size}, the last one under tree head #{head.id}, is missing; "
            "run `crossbeat audit verify`",
            [],
        )
    return ChainWalker(
        report,
        frontier=frontier,
        last_hash=last.entry_hash or GENESIS_HASH,
        last_time=last.occurred_at,
    )
