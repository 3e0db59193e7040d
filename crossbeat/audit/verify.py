"""Full verification of the audit log, streamed in pages (issue #3).

:func:`verify` recomputes every entry hash and the chain, checks that sequence numbers
start at 1 without gaps and that times never go back (beyond a tolerance), that the
owner index matches the hashed owner lists, that the chain tip matches the last event,
and that every stored tree head (and every trusted head kept elsewhere) is a signed
prefix of the recomputed Merkle tree. Every problem is reported with its event's
sequence number; nothing stops at the first one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, select

from crossbeat.audit.events import GENESIS_HASH, format_time
from crossbeat.audit.heads import TreeHead, head_from_row
from crossbeat.audit.keys import AnyKey, VerifyKey, public_keys
from crossbeat.audit.log import (
    PAGE_SIZE,
    event_from_row,
    event_row,
    iter_rows,
    owners_by_seq,
    tolerant,
)
from crossbeat.audit.merkle import Frontier
from crossbeat.audit.tables import audit_event_owners, audit_head, audit_tree_heads

if TYPE_CHECKING:
    from crossbeat.store import Store

#: How far an event's time may lie before an earlier event's (clock skew between servers).
DEFAULT_TOLERANCE = timedelta(seconds=60)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the log.

    Attributes
    ----------
    kind
        A stable machine-readable name (``hash_mismatch``, ``chain_broken``,
        ``seq_gap``, ``head_mismatch``, ...).
    message
        What is wrong, in words.
    seq
        The event's sequence number, when the problem is about one event.
    head_id
        The tree head's number, when the problem is about a stored head.
    """

    kind: str
    message: str
    seq: int | None = None
    head_id: int | None = None

    def __str__(self) -> str:
        """Return the problem as one line."""
        where = f"event {self.seq}: " if self.seq is not None else ""
        if self.head_id is not None:
            where = f"tree head #{self.head_id}: "
        return f"{where}{self.message} [{self.kind}]"


@dataclass
class VerifyReport:
    """The result of :func:`verify`.

    Attributes
    ----------
    events
        Number of event rows read.
    tree_size
        Number of events in the recomputed tree.
    root_hash
        Its Merkle root (hex).
    heads_checked
        Stored tree heads compared with the recomputed tree.
    trusted_checked
        Trusted (external) heads compared.
    signatures_checked
        Whether a key was given, so signatures were checked.
    unsigned_events
        Events after the newest stored head (covered by the chain only).
    problems
        Everything found wrong (empty when the log is intact).
    problems_omitted
        Problems beyond ``max_problems`` that were counted but not listed.
    warnings
        Things that are not tampering but limit what was proven.
    """

    events: int = 0
    tree_size: int = 0
    root_hash: str = ""
    heads_checked: int = 0
    trusted_checked: int = 0
    signatures_checked: bool = False
    unsigned_events: int = 0
    problems: list[Problem] = field(default_factory=list)
    problems_omitted: int = 0
    warnings: list[str] = field(default_factory=list)
    max_problems: int = field(default=1000, repr=False)

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not self.problems and not self.problems_omitted

    def add(
        self, kind: str, message: str, *, seq: int | None = None, head: int | None = None
    ) -> None:
        """Record a problem (counted, not listed, beyond ``max_problems``)."""
        if len(self.problems) >= self.max_problems:
            self.problems_omitted += 1
        else:
            self.problems.append(Problem(kind, message, seq, head))

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data."""
        data = dataclasses.asdict(self)
        data.pop("max_problems")
        data["ok"] = self.ok
        return data


class ChainWalker:
    """Checks events one by one in log order and grows the recomputed Merkle tree.

    Parameters
    ----------
    report
        Where problems go.
    tolerance
        Allowed backwards step of ``occurred_at``.
    capture
        Tree sizes whose recomputed root to remember (stored and trusted heads).
    size, frontier, last_hash, last_time
        Where to start: at the beginning of the log by default, or after the newest
        tree head when a checkpoint verifies only the new events.
    """

    def __init__(
        self,
        report: VerifyReport,
        tolerance: timedelta = DEFAULT_TOLERANCE,
        capture: Iterable[int] = (),
        *,
        frontier: Frontier | None = None,
        last_hash: str = GENESIS_HASH,
        last_time: datetime | None = None,
    ) -> None:
        self.report = report
        self.tolerance = tolerance
        self.frontier = frontier or Frontier()
        self.last_hash = last_hash
        self.latest_time = last_time
        self.wanted = set(capture)
        self.last_seq: int | None = None
        self.roots: dict[int, str] = {}
        self.frontiers: dict[int, list[str]] = {}
        self._capture()

    @property
    def size(self) -> int:
        """Number of events walked (including any starting point)."""
        return self.frontier.size

    def _capture(self) -> None:
        if self.frontier.size in self.wanted:
            self.roots[self.frontier.size] = self.frontier.root().hex()
            self.frontiers[self.frontier.size] = self.frontier.to_hex()

    def feed(self, row: Row[Any], owners: set[str]) -> None:
        """Check one stored event row and its owner-index entries."""
        add, seq = self.report.add, row.seq
        self.report.events += 1
        expected = self.frontier.size + 1
        if seq != expected:
            kind = "seq_gap" if isinstance(seq, int) and seq > expected else "seq_order"
            add(kind, f"sequence number {seq} where {expected} was expected", seq=seq)
        if row.prev_hash != self.last_hash:
            add(
                "chain_broken",
                f"prev_hash {str(row.prev_hash)[:16]}… does not match the previous entry "
                f"hash {self.last_hash[:16]}… (an event before it was removed, inserted, "
                "re-ordered or re-hashed)",
                seq=seq,
            )
        leaf = self._check_row(row, owners)
        self.frontier.append(leaf)
        self.last_hash = str(row.entry_hash)
        self.last_seq = seq
        self._capture()

    def _check_row(self, row: Row[Any], owners: set[str]) -> bytes:
        add, seq = self.report.add, row.seq
        try:
            event = event_from_row(row)
            recomputed = event.compute_hash()
        except (ValueError, TypeError) as exc:
            add("malformed", f"the stored event is not valid: {exc}", seq=seq)
            return _as_hash(row.entry_hash)
        if recomputed != row.entry_hash:
            add(
                "hash_mismatch",
                f"entry hash recomputed from the stored fields is {recomputed[:16]}…, "
                f"stored {str(row.entry_hash)[:16]}… (the event was modified)",
                seq=seq,
            )
        raw = row._mapping
        altered = sorted(k for k, v in event_row(event).items() if raw[k] != v)
        if altered:
            add(
                "non_canonical",
                f"stored fields {', '.join(altered)} are not in the form CrossBeat writes",
                seq=seq,
            )
        if owners != set(event.owner_agencies):
            add(
                "owner_index",
                f"the owner index lists {sorted(owners, key=str)} but the event's owners are "
                f"{list(event.owner_agencies)} (owners would not see this access)",
                seq=seq,
            )
        when = event.occurred_at
        if when is not None and self.latest_time is not None:
            if when < self.latest_time - self.tolerance:
                add(
                    "time_reversal",
                    f"occurred_at {format_time(when)} is before an earlier event's "
                    f"{format_time(self.latest_time)}",
                    seq=seq,
                )
        if when is not None and (self.latest_time is None or when > self.latest_time):
            self.latest_time = when
        return bytes.fromhex(recomputed)

    def walk(self, conn: Connection, *, after: int | None, until: int | None, page: int) -> int:
        """Feed every stored row in ``(after, until]`` with its owners; return rows read.

        ``after=None`` starts from the lowest stored number, whatever it is.
        """
        count = 0
        for rows in iter_rows(conn, after=after, until=until, page=page, lenient=True):
            owners = owners_by_seq(conn, after, rows[-1].seq)
            for row in rows:
                self.feed(row, owners.pop(row.seq, set()))
            for seq, agencies in owners.items():  # index entries in the page with no event
                self.report.add(
                    "owner_index",
                    f"owner index entries {sorted(agencies, key=str)} for no event",
                    seq=seq,
                )
            after = rows[-1].seq
            count += len(rows)
        return count


def _as_hash(value: Any) -> bytes:
    try:
        data = bytes.fromhex(str(value))
    except ValueError:
        data = b""
    return data if len(data) == 32 else bytes(32)


def verify(
    store: Store,
    *,
    key: AnyKey | Iterable[AnyKey] | None = None,
    trusted_heads: Sequence[TreeHead] = (),
    heads_file: Path | None = None,
    heads_file_required: bool = True,
    tolerance: timedelta = DEFAULT_TOLERANCE,
    page_size: int = PAGE_SIZE,
    max_problems: int = 1000,
) -> VerifyReport:
    """Verify the whole audit log and return every problem found.

    Parameters
    ----------
    store
        The store holding the log.
    key
        Ed25519 key(s) whose signatures the tree heads must carry (public keys do;
        private keys are reduced to their public half). Without a key the heads' roots
        are still checked but not their signatures, which a warning says.
    trusted_heads
        Tree heads kept outside the database (exported with
        ``crossbeat audit checkpoint --out``): each must be a prefix of the log and
        still be stored, which detects truncation of the newest events.
    heads_file
        The heads file a server appends every signed head to
        (:mod:`crossbeat.audit.witness`): every head in it is a trusted head. When it
        is missing although heads are stored, that is a problem (it was deleted) when
        ``heads_file_required``, else a warning (a default path no server wrote yet);
        when it is missing and no head is stored, a warning (an empty or erased log
        cannot be told apart without a copy kept elsewhere).
    heads_file_required
        Whether a missing ``heads_file`` is a problem (it was configured) or only a
        warning (the default path beside a SQLite database).
    tolerance
        How far an event's time may lie before an earlier event's.
    page_size
        Events read per query (memory is bounded by it).
    max_problems
        Problems listed in full; more are counted.

    Returns
    -------
    VerifyReport
        ``report.ok`` is True only when nothing is wrong.
    """
    keys = public_keys(key)
    report = VerifyReport(signatures_checked=bool(keys), max_problems=max_problems)
    trusted_heads = list(trusted_heads) + _file_heads(
        store, heads_file, report, required=heads_file_required
    )
    with store.connect() as conn:
        heads, _ = _load_heads(conn, report, check=False)
        capture = {h.tree_size for h in heads} | {h.tree_size for h in trusted_heads}
        walker = ChainWalker(report, tolerance, capture)
        tip = _walk_to_tip(conn, walker, page_size)
        _check_tip(conn, report, walker, tip)
        final, frontiers = _load_heads(conn, report, check=True)
    report.tree_size = walker.size
    report.root_hash = walker.frontier.root().hex()
    _check_heads(report, walker, final, keys, captured={h.id for h in heads})
    _check_head_frontiers(report, walker, final, frontiers)
    _check_trusted(report, walker, trusted_heads, final, keys)
    if not keys:
        report.warnings.append(
            "no key given: tree head signatures were not checked (use --key-file)"
        )
    return report


def _file_heads(
    store: Store, path: Path | None, report: VerifyReport, *, required: bool
) -> list[TreeHead]:
    from crossbeat.audit.witness import read_heads_file

    if path is None:
        return []
    if path.exists():
        try:
            return read_heads_file(path)
        except ValueError as exc:
            report.add("heads_file_malformed", str(exc))
            return []
    with store.connect() as conn:
        stored = conn.execute(tolerant(audit_tree_heads).limit(1)).first()
    if stored is not None and required:
        report.add(
            "heads_file_missing",
            f"the audit heads file {path} is missing although tree heads were signed "
            "(it was deleted or moved)",
        )
    elif stored is not None:
        report.warnings.append(
            f"no audit heads file at {path}: the stored heads are checked, but nothing "
            "outside the database vouches for them (start the server, or run `crossbeat "
            "audit checkpoint`, to write it)"
        )
    else:
        report.warnings.append(
            f"no audit heads file at {path} and no tree head stored: nothing proves the "
            "log was not erased (give a head kept elsewhere with --trusted-head)"
        )
    return []


def _load_heads(
    conn: Connection, report: VerifyReport, *, check: bool
) -> tuple[list[TreeHead], dict[Any, Any]]:
    """Read the stored tree heads, reporting (when ``check``) any that are unreadable."""
    heads, frontiers = [], {}
    for row in conn.execute(tolerant(audit_tree_heads).order_by(audit_tree_heads.c.id)):
        try:
            head = head_from_row(row)
        except ValueError as exc:
            if check:
                report.add("head_malformed", f"the stored tree head is unreadable: {exc}")
            continue
        heads.append(head)
        frontiers[head.id] = row.frontier
    return heads, frontiers


def _walk_to_tip(conn: Connection, walker: ChainWalker, page: int) -> Row[Any] | None:
    """Walk every event, then read the chain tip; if the log grew meanwhile, walk on."""
    tip = None
    for _ in range(10):
        read = walker.walk(conn, after=walker.last_seq, until=None, page=page)
        tip = conn.execute(tolerant(audit_head).where(audit_head.c.id == 1)).first()
        grown = tip is not None and isinstance(tip.size, int) and tip.size > (walker.last_seq or 0)
        if not (read and grown):
            break
    return tip


def _check_tip(conn: Connection, report: VerifyReport, walker: ChainWalker, tip: Any) -> None:
    extra = select(audit_event_owners.c.seq)
    if walker.last_seq is not None:
        extra = extra.where(audit_event_owners.c.seq > walker.last_seq)
    for (seq,) in conn.execute(extra):
        report.add("owner_index", "owner index entry for an event that does not exist", seq=seq)
    if tip is None:
        report.add("tip_missing", "the chain tip (audit_head) is missing")
        return
    if tip.size != walker.size:
        report.add(
            "tip_mismatch",
            f"the chain tip says the log has {tip.size} events, {walker.size} were found "
            "(events were deleted from or added to the end)",
        )
    if tip.last_hash != walker.last_hash:
        report.add(
            "tip_mismatch",
            f"the chain tip's last hash {str(tip.last_hash)[:16]}… is not the last event's "
            f"{walker.last_hash[:16]}…",
        )
    if tip.frontier != walker.frontier.to_hex():
        report.add("tip_mismatch", "the chain tip's Merkle frontier does not match the log")


def _check_heads(
    report: VerifyReport,
    walker: ChainWalker,
    heads: list[TreeHead],
    keys: dict[str, VerifyKey],
    captured: set[int],
) -> None:
    previous_size = 0
    for number, head in enumerate(heads, start=1):
        if head.id != number:
            report.add(
                "head_sequence",
                f"tree head numbered {head.id} where {number} was expected "
                "(a head was deleted or inserted)",
                head=head.id,
            )
        if head.tree_size < previous_size:
            report.add(
                "head_sequence",
                f"covers {head.tree_size} events, fewer than the head before it",
                head=head.id,
            )
        previous_size = head.tree_size
        if keys:
            problem = head.signature_problem(keys)
            if problem:
                report.add("head_signature", problem, head=head.id)
        root = walker.roots.get(head.tree_size)
        if root is None and head.id not in captured:
            report.warnings.append(
                f"tree head #{head.id} was written during verification; run verify again "
                "to check it"
            )
            continue
        if head.tree_size > walker.size:
            report.add(
                "head_beyond_log",
                f"covers {head.tree_size} events but the log has {walker.size} "
                "(the newest events were deleted)",
                head=head.id,
            )
        elif root != head.root_hash:
            report.add(
                "head_mismatch",
                f"root of the first {head.tree_size} events is {str(root)[:16]}…, the head "
                f"says {head.root_hash[:16]}… (covered events were changed)",
                head=head.id,
            )
        report.heads_checked += 1
    report.unsigned_events = walker.size - (heads[-1].tree_size if heads else 0)


def _check_head_frontiers(
    report: VerifyReport, walker: ChainWalker, heads: list[TreeHead], frontiers: dict[int, Any]
) -> None:
    # The frontier is not signed (a checkpoint resumes from it only after folding it to
    # the signed root); an altered one is still tampering and is reported.
    for head in heads:
        expected = walker.frontiers.get(head.tree_size)
        if expected is not None and frontiers.get(head.id) != expected:
            report.add(
                "head_frontier",
                "the stored Merkle frontier does not match the log at this size",
                head=head.id,
            )


def _check_trusted(
    report: VerifyReport,
    walker: ChainWalker,
    trusted: Sequence[TreeHead],
    stored: list[TreeHead],
    keys: dict[str, VerifyKey],
) -> None:
    by_id = {h.id: h for h in stored}
    for head in trusted:
        report.trusted_checked += 1
        label = f"trusted head #{head.id} (size {head.tree_size})"
        if keys:
            problem = head.signature_problem(keys)
            if problem:
                report.add("trusted_head_signature", f"{label}: {problem}")
        if head.tree_size > walker.size:
            report.add(
                "trusted_head_beyond_log",
                f"{label} covers more events than the log has ({walker.size}): the newest "
                "events were deleted",
            )
        elif walker.roots.get(head.tree_size) != head.root_hash:
            report.add(
                "trusted_head_mismatch",
                f"{label}: the log's first {head.tree_size} events no longer have its root "
                "(events it covers were changed, removed or re-ordered)",
            )
        if by_id.get(head.id) != head:
            report.add(
                "trusted_head_missing",
                f"{label} is not among the stored tree heads (stored heads were deleted or "
                "rewritten)",
            )
