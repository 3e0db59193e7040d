"""Re-ingesting unchanged rows as a hash comparison (issue #9).

A nightly export repeats most of yesterday's rows. Each stored incident keeps a
*source digest* (``incidents.source_digest``): 16 bytes of the keyed hash of

* the source row (the SHA-256 of its canonical JSON, ``Provenance.raw_hash``), and
* the *context* that turned it into the stored record: the code version, the source
  profile's content hash, the agency and its extent (a point far outside it is
  refused), each crosswalk's scheme, version and file content, and the keyword and
  lexicon rules (:func:`crossbeat.taxonomy.sensitivity.rules_fingerprint`).

Normalising is a pure function of those (its one check against the clock, a date in
the future, can only turn a refusal into an acceptance as time passes, and a refused
row has no stored digest), so a row whose digest equals the stored one would normalise
to the stored record: the ingest counts it unchanged without
normalising, hashing or encrypting it (:meth:`UnchangedProbe.skippable`). Every other
outcome is kept as the full path decides it: a repeated id (in the file, or at another
row of the same file already stored) is still a duplicate, a row whose digest differs
or is missing (a record written by a field report, or stored before migration 0022)
takes the full path, which also fills the digest in.

The digest is a BLAKE2b-128 of the row's SHA-256, keyed with a key derived from the
deployment's fingerprint key and the context (:func:`keyed_digest`): two C calls per
row (two hashes), which a re-ingest of a column of rows runs in one loop (:func:`keyed_digests`).
Digests stored by the first definition (an HMAC of a second SHA-256) match no row:
the first re-ingest after the upgrade takes the full path once and rewrites them, as
a new code version does anyway (the version is part of the context).

Only feeds whose ids come from columns qualify: a hash id counts occurrences within
the file, and an update feed applies dated changes (:func:`eligible`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import Connection

from crossbeat import __version__
from crossbeat.ingest.profile import Profile
from crossbeat.taxonomy.sensitivity import rules_fingerprint
from crossbeat.vault.fingerprint import Fingerprinter, fingerprinter

if TYPE_CHECKING:
    from crossbeat.ingest.normalise import Normaliser
    from crossbeat.store import Store

#: Bytes of the keyed hash stored per incident: 128 bits leave no practical chance
#: of two different rows colliding.
DIGEST_BYTES = 16
#: What the key of a context's source digests is derived for (version 2: a keyed
#: BLAKE2b of the row's SHA-256; version 1 was an HMAC of a second SHA-256).
DIGEST_LABEL = b"crossbeat source digest v2\x00"


def eligible(profile: Profile) -> bool:
    """Return whether a profile's rows may be skipped as unchanged by their digest."""
    return profile.kind == "incidents" and profile.id.fallback != "hash"


def context_key(normaliser: Normaliser) -> str:
    """Return the SHA-256 (hex) of everything besides the row that shapes its record.

    Parameters
    ----------
    normaliser
        The agency's normaliser for the file (its profile, agency, extent, crosswalks).
    """
    n = normaliser
    crosswalks = []
    for spec, cw in n._crosswalks:
        content = _file_sha256(cw.path) if cw.path is not None else None
        crosswalks.append([spec.scheme, cw.scheme, cw.version, content])
    parts = [
        __version__,
        n.profile.content_hash,
        n.agency_id,
        list(n.extent) if n.extent is not None else None,
        crosswalks,
        rules_fingerprint(),
    ]
    text = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def source_key(context: str, raw_sha256: str) -> str:
    """Return the unkeyed source key of a row: its context and its raw hash (the writer keys it)."""
    return f"{context}:{raw_sha256}"


def keyed_digest(fingerprint: Fingerprinter, key: str | None) -> bytes | None:
    """Return the stored form of a source key: its 16-byte keyed digest (None: no key)."""
    if key is None:
        return None
    context, _, raw_sha256 = key.partition(":")
    return hashlib.blake2b(
        bytes.fromhex(raw_sha256), key=_digest_key(fingerprint, context), digest_size=DIGEST_BYTES
    ).digest()


def keyed_digests(
    fingerprint: Fingerprinter, context: str, payloads: Sequence[bytes]
) -> list[bytes]:
    """Return the stored source digest of each row, given its canonical JSON.

    For a column of rows at once: ``keyed_digest(fingerprint, source_key(context,
    sha256_hex(payload)))`` for each payload (the canonical JSON
    :func:`crossbeat.ingest.normalise.raw_hash` hashes).
    """
    keyed = hashlib.blake2b(key=_digest_key(fingerprint, context), digest_size=DIGEST_BYTES)
    sha256 = hashlib.sha256
    out: list[bytes] = []
    append = out.append
    for p in payloads:
        # A copy of the keyed state: no key schedule nor keyword parsing per row.
        h = keyed.copy()
        h.update(sha256(p).digest())
        append(h.digest())
    return out


def _digest_key(fingerprint: Fingerprinter, context: str) -> bytes:
    """Return the key of a context's source digests, derived from the fingerprint key."""
    return fingerprint.subkey(DIGEST_LABEL + context.encode("ascii"))


@dataclass(frozen=True, slots=True)
class Candidate:
    """A source row that may be unchanged: its row, incident id and source key."""

    row_number: int
    incident_id: str
    key: str


@dataclass(frozen=True, slots=True)
class StoredRef:
    """What the write path needs of a row skipped as unchanged.

    ``crosswalks`` are the ``scheme@version`` labels its offences were classified
    with, for the chunk's audit event.
    """

    incident_id: str
    source_id: str
    unmapped: bool
    crosswalks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Skipped:
    """The rows of a part skipped as unchanged without becoming items, as columns.

    The columnar re-ingest (:mod:`crossbeat.ingest.reingest`) hands these to the writer
    instead of one :class:`~crossbeat.ingest.items.Item` per row: their row numbers and
    incident ids (in file order), how many of them are stored unmapped, their agency
    and the ``scheme@version`` labels their offences are classified with.
    """

    file_hash: str
    agency_id: str
    row_numbers: list[int]
    incident_ids: list[str]
    unmapped: int = 0
    crosswalks: frozenset[str] = frozenset()


@dataclass
class UnchangedProbe:
    """Finds the rows of a part that are stored unchanged, in the writer's transaction.

    The writer binds it to its connection and to the ids it has stored in the open
    transaction (:meth:`bind`) before it asks for the next part, so the probe sees
    every row written before, committed or not.
    """

    store: Store
    conn: Connection | None = None
    seen: dict[str, int] = field(default_factory=dict)
    _fingerprint: Fingerprinter | None = None

    def bind(self, conn: Connection, seen: dict[str, int]) -> None:
        """Probe in this connection's transaction, with the ids stored in it so far."""
        self.conn = conn
        self.seen = seen

    def skippable(self, file_hash: str, candidates: Sequence[Candidate]) -> dict[int, bool]:
        """Return the rows to count unchanged, each with whether it is stored unmapped.

        A candidate qualifies when its incident is stored with the same source digest,
        its id was not stored earlier in the transaction nor seen earlier among the
        candidates, and the stored record does not come from another row of this same
        file (which would make this row a duplicate).
        """
        if not candidates or self.conn is None:
            return {}
        conn = self.conn
        if self._fingerprint is None:
            self._fingerprint = fingerprinter(self.store, conn)
        # The write path's read of what is stored (it alone may read incidents so).
        from crossbeat.ingest.writes import stored_digests

        stored = stored_digests(self.store, conn, [c.incident_id for c in candidates])
        out: dict[int, bool] = {}
        earlier: set[str] = set()
        fp = self._fingerprint
        seen = self.seen
        for c in candidates:
            iid = c.incident_id
            first = iid not in earlier and iid not in seen
            earlier.add(iid)
            old = stored.get(iid)
            if not first or old is None:
                continue
            _, digest, row_number, unmapped, stored_file = old
            if digest is None or (stored_file == file_hash and row_number != c.row_number):
                continue
            if bytes(digest) == keyed_digest(fp, c.key):
                out[c.row_number] = bool(unmapped)
        return out

    def skippable_sources(
        self,
        file_hash: str,
        agency_id: str,
        row_numbers: Sequence[int],
        source_ids: Sequence[str | None],
        digests: Callable[[Fingerprinter, list[int]], list[bytes]],
    ) -> SkippableRows:
        """Return the rows of a part to count unchanged, found by source id.

        The rule of :meth:`skippable`, for a part of one agency given as columns: each
        row's source id (None: the row has none and takes the full path), and
        ``digests``, which returns the keyed source digests (under the fingerprinter
        it is given) of the rows at the positions it is given (only rows whose record
        is stored with a digest are hashed).

        The part's records are read in one query, the rule is applied to them as
        arrays and the digests are compared as one array equality: no Python work per
        row but the hashing.
        """
        if self.conn is None:
            return SkippableRows()
        conn = self.conn
        if self._fingerprint is None:
            self._fingerprint = fingerprinter(self.store, conn)
        from crossbeat.ingest.writes import stored_sources

        found = stored_sources(self.store, conn, agency_id, source_ids, file_hash)
        n = len(found.positions)
        if not n:
            return SkippableRows()
        positions = np.array(found.positions, dtype=np.int64)
        ids = found.ids
        # Stored with a digest of this definition's size (a NULL size is nan).
        ok = np.array(found.sizes, dtype=float) == DIGEST_BYTES
        # A record the same file stored from another row: this row is a duplicate.
        same = np.array(found.same_file, dtype=bool)
        if same.any():
            rows = np.asarray(row_numbers, dtype=np.int64)[positions]
            ok &= ~same | (np.array(found.row_numbers, dtype=np.int64) == rows)
        # Only the first row of a source id in the part (a repeated one is a duplicate;
        # its matches share the record's id), and not a record stored earlier in the
        # transaction.
        if len(set(ids)) != n:
            earlier: set[str] = set()
            first = np.ones(n, bool)
            for k, iid in enumerate(ids):
                if iid in earlier:
                    first[k] = False
                earlier.add(iid)
            ok &= first
        seen = self.seen
        if seen and not seen.keys().isdisjoint(ids):
            ok &= np.fromiter((iid not in seen for iid in ids), bool, n)
        pending = np.flatnonzero(ok)
        if not len(pending):
            return SkippableRows()
        everything = len(pending) == n
        computed = digests(
            self._fingerprint, list(found.positions) if everything else positions[pending].tolist()
        )
        stored_digests = found.digests
        if everything:
            stored = b"".join(stored_digests)  # type: ignore[arg-type]
        else:
            stored = b"".join([stored_digests[k] for k in pending.tolist()])  # type: ignore[misc]
        equal = (
            np.frombuffer(b"".join(computed), np.uint8).reshape(-1, DIGEST_BYTES)
            == np.frombuffer(stored, np.uint8).reshape(-1, DIGEST_BYTES)
        ).all(axis=1)
        keep = pending[equal]
        unmapped = int(np.array(found.unmapped, dtype=bool)[keep].sum())
        if len(keep) == n:
            return SkippableRows(list(found.positions), list(ids), unmapped)
        return SkippableRows(positions[keep].tolist(), [ids[k] for k in keep.tolist()], unmapped)


@dataclass(frozen=True, slots=True)
class SkippableRows:
    """The rows of a part found stored unchanged (:meth:`UnchangedProbe.skippable_sources`).

    Their ``positions`` in the part (ascending), their records' incident ``ids`` and
    how many of those are stored ``unmapped``.
    """

    positions: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    unmapped: int = 0
