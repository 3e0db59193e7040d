"""The source digests table: what a re-ingest reads to skip unchanged rows (issue #9).

``source_digests`` (migration 0027c) mirrors, per (agency, source id), the incident
stored with a source digest (:mod:`crossbeat.ingest.unchanged`): its id, digest, row
number, unmapped flag and the batch that wrote it. The write path keeps it in step in
the same transaction as the incident rows (:func:`mirror_new`, :func:`mirror_changed`,
:func:`refresh`, :func:`forget`), so it holds exactly the incidents whose
``source_digest`` is set, with the values their rows have.

A re-ingest's part reads it with :func:`stored_sources`: on SQLite one range of the
table's primary key between the part's smallest and largest source id (feeds number
their records, so a part's ids are close together), matched with the part's ids by
Arrow; where the range holds many more records than the part (ids spread over the
agency's records), each id is looked up instead. No read of the wide incident rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, and_, delete, select, text

from crossbeat.ingest.unchanged import DIGEST_BYTES
from crossbeat.store import Store
from crossbeat.store.schema import incidents, ingest_batches, source_digests

#: The columns of a mirror row, as the incident row names them.
_FROM_INCIDENT = (
    ("agency_id", "agency_id"),
    ("source_id", "source_id"),
    ("incident_id", "id"),
    ("digest", "source_digest"),
    ("row_number", "row_number"),
    ("unmapped", "unmapped"),
    ("batch_id", "batch_id"),
)
#: A range read returns at most this many records per id of the part (and a few more)
#: before the part's ids are looked up one by one instead.
RANGE_SLACK = 2


def _mirror_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return the mirror rows of incident rows stored with a source digest."""
    return [
        {name: r[col] for name, col in _FROM_INCIDENT}
        for r in rows
        if r.get("source_digest") is not None
    ]


def mirror_new(store: Store, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add the mirror rows of newly inserted incident rows (those with a source digest)."""
    store.bulk_insert(conn, source_digests, _mirror_rows(rows))


def mirror_changed(store: Store, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Replace the mirror rows of updated incident rows (removed where the digest is None).

    Each row needs ``agency_id``, ``source_id``, ``id``, ``source_digest``,
    ``row_number``, ``unmapped`` and ``batch_id`` as the incident row now holds them.
    """
    if not rows:
        return
    forget(conn, [(r["agency_id"], r["source_id"]) for r in rows])
    store.bulk_insert(conn, source_digests, _mirror_rows(rows))


def refresh(store: Store, conn: Connection, ids: Sequence[str]) -> None:
    """Copy the incidents ``ids`` as stored now into the mirror (after a partial update)."""
    if not ids:
        return
    cols = [incidents.c[col] for _, col in _FROM_INCIDENT]
    found = conn.execute(select(*cols).where(store.one_of(incidents.c.id, sorted(set(ids)))))
    mirror_changed(store, conn, [dict(r) for r in found.mappings()])


def forget(conn: Connection, keys: Sequence[tuple[str, str]]) -> None:
    """Remove the mirror rows of these (agency, source id) keys (expunged or rewritten)."""
    by_agency: dict[str, list[str]] = {}
    for agency, source_id in keys:
        by_agency.setdefault(agency, []).append(source_id)
    t = source_digests
    for agency, source_ids in by_agency.items():
        for k in range(0, len(source_ids), 500):
            conn.execute(
                delete(t).where(
                    and_(t.c.agency_id == agency, t.c.source_id.in_(source_ids[k : k + 500]))
                )
            )


@dataclass(frozen=True, slots=True)
class StoredSources:
    """The stored records of a part's source ids, as columns (one entry per match).

    ``positions`` are the positions in the part of the rows whose source id is stored
    (ascending; a source id repeated in the part matches at each of its positions),
    each with its record's ``ids``, its 16-byte digest (``digests``: all of them, one
    after the other), ``row_numbers``, ``unmapped`` and whether the batch that wrote it
    read the same file (``same_file``); ``distinct`` when no record is matched twice.
    A record stored with a digest of another size (none is written so) is left out:
    its row takes the full path.
    """

    positions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ids: list[str] = field(default_factory=list)
    digests: bytes = b""
    row_numbers: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    unmapped: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    same_file: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    #: Whether each record is matched once (the part's ids are distinct).
    distinct: bool = False

    def __len__(self) -> int:
        return len(self.positions)


_SELECTED = "source_id, incident_id, digest, row_number, unmapped, batch_id"
_RANGE = text(
    f"SELECT {_SELECTED} FROM source_digests WHERE agency_id = :agency_id"
    " AND source_id >= :low AND source_id <= :high LIMIT :cap"
)
_SQLITE_EACH = text(
    f"SELECT {_SELECTED} FROM source_digests WHERE agency_id = :agency_id"
    " AND source_id IN (SELECT value FROM json_each(:source_ids))"
)
_POSTGRES_EACH = text(
    f"SELECT {_SELECTED} FROM source_digests WHERE agency_id = :agency_id"
    " AND source_id = ANY(:source_ids)"
)
#: A part whose ids ascend (by bytes): the range of the key between its first and last
#: id, in key order, as one row of concatenated columns (no Python object per record).
#: Its ids joined by the unit separator, which a plain block's values never hold, equal
#: to the part's ids so joined when the range holds exactly the part's ids in its order.
_SEQUENCE = text(
    "SELECT count(*), group_concat(source_id, char(31)),"
    " CAST(group_concat(digest, '') AS BLOB), group_concat(incident_id, ''),"
    " group_concat(row_number, ','), group_concat(unmapped + 2 * (batch_id IN"
    " (SELECT b.id FROM ingest_batches AS b WHERE b.file_hash = :file_hash)), '')"
    " FROM (SELECT * FROM source_digests WHERE agency_id = :agency_id"
    " AND source_id >= :low AND source_id <= :high ORDER BY source_id LIMIT :cap)"
)
#: Characters of an incident id (a UUID's text).
_ID_CHARS = 36


def stored_sources(
    store: Store,
    conn: Connection,
    agency_id: str,
    source_ids: pa.Array | Sequence[str | None],
    file_hash: str,
) -> StoredSources:
    """Return the stored records of an agency among a part's source ids, by position.

    Parameters
    ----------
    store, conn
        The store and the writer's connection (its open transaction).
    agency_id
        The agency whose records are looked up.
    source_ids
        Each row's source id (None: the row has none and matches nothing).
    file_hash
        The file being ingested: ``same_file`` tells whether the batch that wrote a
        record read it.
    """
    ids = source_ids if isinstance(source_ids, pa.Array) else pa.array(source_ids, pa.string())
    if ids.null_count == len(ids):
        return StoredSources()
    if store.dialect == "sqlite":
        found = _in_sequence(conn, agency_id, ids, file_hash)
        if found is not None:
            return found
    rows = _read(store, conn, agency_id, ids)
    if not rows:
        return StoredSources()
    found_ids, incident_ids, digests, row_numbers, unmapped, batches = zip(*rows, strict=True)
    where = pc.index_in(ids, value_set=pa.array(found_ids, pa.string()))
    at = np.asarray(where.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    sized = np.fromiter((len(d) == DIGEST_BYTES for d in digests), bool, len(digests))
    at[at >= 0] = np.where(sized[at[at >= 0]], at[at >= 0], -1)
    positions = np.flatnonzero(at >= 0)
    if not len(positions):
        return StoredSources()
    take = at[positions]
    by_file = select(ingest_batches.c.id).where(ingest_batches.c.file_hash == file_hash)
    same_batches = set(conn.execute(by_file).scalars())
    picks = take.tolist()
    same = (
        np.fromiter((batches[k] in same_batches for k in picks), bool, len(picks))
        if same_batches
        else np.zeros(len(picks), bool)
    )
    return StoredSources(
        positions,
        [incident_ids[k] for k in picks],
        b"".join([bytes(digests[k]) for k in picks]),
        np.asarray(row_numbers, dtype=np.int64)[take],
        np.asarray(unmapped, dtype=bool)[take],
        same,
    )


def _in_sequence(
    conn: Connection, agency_id: str, ids: pa.Array, file_hash: str
) -> StoredSources | None:
    """Return the part's records when they are exactly its ids' range of the key, else None.

    For a part of distinct ids in ascending byte order (an export sorted by its case
    numbers, re-ingested): one aggregate read of the key's range, checked to hold the
    part's ids and nothing else, in the same order. None when the part does not
    qualify or the range holds other ids (some new, some not stored): the caller
    matches them one by one.
    """
    n = len(ids)
    if ids.null_count or (n > 1 and not pc.all(pc.greater(ids[1:], ids[:-1])).as_py()):
        return None
    if pc.any(pc.match_substring(ids, "\x1f")).as_py():
        return None
    params = {
        "agency_id": agency_id,
        "low": ids[0].as_py(),
        "high": ids[n - 1].as_py(),
        "cap": n + 1,
        "file_hash": file_hash,
    }
    row: Any = conn.execute(_SEQUENCE, params).cursor.fetchone()
    count, joined, digests, incident_ids, row_numbers, flags = row
    # The digests concatenated as bytes (a blob's bytes are kept by group_concat): any
    # other length, and a row takes the full path.
    if count != n or incident_ids is None or len(incident_ids) != _ID_CHARS * n:
        return None
    if len(digests) != DIGEST_BYTES * n:
        return None
    part = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, n], pa.int32()), ids), "\x1f")
    if part[0].as_py() != joined:
        return None
    # Each record's unmapped flag plus twice whether its batch read this file.
    codes = np.frombuffer(flags.encode("ascii"), np.uint8) - ord("0")
    same = codes >= 2
    return StoredSources(
        np.arange(n, dtype=np.int64),
        [incident_ids[k : k + _ID_CHARS] for k in range(0, _ID_CHARS * n, _ID_CHARS)],
        bytes(digests),
        np.array(row_numbers.split(","), dtype=np.int64) if same.any() else np.zeros(n, np.int64),
        (codes & 1).astype(bool),
        same,
        distinct=True,
    )


def _read(store: Store, conn: Connection, agency_id: str, ids: pa.Array) -> list[Any]:
    """Return the mirror rows of the part's ids (and, read by range, some others)."""
    if store.dialect == "postgresql":
        present = pc.drop_null(ids).to_pylist()
        params: dict[str, Any] = {"agency_id": agency_id, "source_ids": present}
        return list(conn.execute(_POSTGRES_EACH, params).cursor.fetchall())
    bounds = pc.min_max(ids)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    cap = RANGE_SLACK * len(ids) + 64
    params = {"agency_id": agency_id, "low": low, "high": high, "cap": cap}
    rows = conn.execute(_RANGE, params).cursor.fetchall()
    if len(rows) < cap:
        return list(rows)
    present = pc.drop_null(ids).to_pylist()
    params = {"agency_id": agency_id, "source_ids": json.dumps(present, ensure_ascii=False)}
    return list(conn.execute(_SQLITE_EACH, params).cursor.fetchall())
