"""The ingest pipeline: read → normalise → crosswalk → validate → upsert.

Files are streamed in chunks; each chunk is written in one transaction together with
the ingest batch's counters and checkpoint (``rows_done``). A run killed at any
moment therefore leaves the store consistent, and running the same command again
resumes the unfinished batch after its last committed chunk: nothing is lost and
nothing is duplicated. Re-ingesting a file that was fully ingested starts a new
batch and reports every row as unchanged.

A chunk is normalised and written in parts of at most
:data:`~crossbeat.ingest.parallel.PART_ROWS` rows, so memory stays flat however large
the chunk; on a machine with several cores, large files are normalised by a worker
process while this one writes (:mod:`crossbeat.ingest.parallel`).
"""

from __future__ import annotations

import gc
import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from crossbeat.agencies import jurisdiction_index
from crossbeat.audit.changes import Principal
from crossbeat.geo.areas import AreaIndex
from crossbeat.geo.jurisdictions import JurisdictionIndex
from crossbeat.ingest.audited import ChunkTally, previous_profile_hash, record_chunk
from crossbeat.ingest.columnar import ColumnarNormaliser
from crossbeat.ingest.items import Item
from crossbeat.ingest.normalise import Normalised, Normaliser, Rejected, Updated, raw_hash
from crossbeat.ingest.parallel import Part, WorkerParts, parts, use_worker
from crossbeat.ingest.preflight import store_problems
from crossbeat.ingest.profile import Profile, require_settled
from crossbeat.ingest.readers import RawRecord, SourceError, file_sha256, open_source
from crossbeat.ingest.reingest import column_parts
from crossbeat.ingest.unchanged import (
    Candidate,
    StoredRef,
    UnchangedProbe,
    context_key,
    eligible,
    source_key,
)
from crossbeat.ingest.withhold import withheld_values, withhold_personal
from crossbeat.ingest.writes import Counts, write_chunk
from crossbeat.model import incident_id
from crossbeat.store import Store
from crossbeat.store.schema import crosswalk_sources, ingest_batches
from crossbeat.store.spatial import drop_secondary, ensure_secondary, has_incidents

#: Rows per transaction: large enough to amortise commits (each SQLite commit writes
#: every index page it touched, and new records land all over the randomly keyed
#: indexes), small enough that a killed run loses little work. Memory does not
#: depend on it: a chunk is written in parts.
CHUNK_SIZE = 20_000


#: Garbage-collector thresholds during an ingest (Python's defaults: 700, 10, 10).
GC_THRESHOLDS = (50_000, 20, 100)


class IngestError(RuntimeError):
    """A file could not be ingested at all; the message names the next step.

    ``path`` is the file it is about, when it is about one.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


@dataclass
class FileSummary:
    """What happened to one file."""

    path: str
    batch_id: str
    file_hash: str
    resumed_after_row: int
    counts: Counts

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "path": self.path,
            "batch_id": self.batch_id,
            "file_hash": self.file_hash,
            "resumed_after_row": self.resumed_after_row,
            **self.counts.as_dict(),
        }


@dataclass
class IngestSummary:
    """What happened to every row of every file of one ingest run.

    ``rows = new + updated + unchanged + withdrawn + expunged + quarantined``;
    ``unmapped`` counts stored records carrying a local offence code the crosswalk
    does not map (they are stored and flagged, not quarantined).
    """

    agency_id: str | None
    profile: str
    files: list[FileSummary] = field(default_factory=list)

    @property
    def totals(self) -> Counts:
        """Return the counters summed over all files."""
        total = Counts()
        for f in self.files:
            total.add(f.counts)
        return total

    @property
    def rows(self) -> int:
        """Source rows read, over all files."""
        return self.totals.rows

    @property
    def new(self) -> int:
        """Records stored for the first time, over all files."""
        return self.totals.new

    @property
    def updated(self) -> int:
        """Records stored as a new version, over all files."""
        return self.totals.updated

    @property
    def unchanged(self) -> int:
        """Records identical to the stored version, over all files."""
        return self.totals.unchanged

    @property
    def withdrawn(self) -> int:
        """Records the source withdrew, over all files."""
        return self.totals.withdrawn

    @property
    def expunged(self) -> int:
        """Records the source expunged (or already expunged), over all files."""
        return self.totals.expunged

    @property
    def quarantined(self) -> int:
        """Rows held in quarantine, over all files."""
        return self.totals.quarantined

    @property
    def unmapped(self) -> int:
        """Stored records with an unmapped local offence code, over all files."""
        return self.totals.unmapped

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: the totals, then one entry per file."""
        return {
            "agency": self.agency_id,
            "profile": self.profile,
            **self.totals.as_dict(),
            "files": [f.as_dict() for f in self.files],
        }


def ingest_files(
    store: Store,
    agency_id: str | None,
    profile: Profile,
    paths: Sequence[str | Path],
    *,
    progress: bool = False,
    chunk_size: int = CHUNK_SIZE,
    parallel: bool | None = None,
    by: Principal | None = None,
    accept_timezone: bool = False,
    skip_unchanged: bool | None = None,
    columnar: bool = True,
    defer_indexes: bool | None = None,
) -> IngestSummary:
    """Ingest agency export files through a source profile.

    Parameters
    ----------
    store
        The open store.
    agency_id
        The agency that owns the records (default: the profile's ``agency``); it must
        be registered (:func:`crossbeat.agencies.register_agency`): the ingest never
        registers one. None for a multi-agency feed whose profile routes each row to
        its agency by a column (``agency_column``/``agency_map``; every agency of the
        map must be registered).
    profile
        The validated source profile (:func:`crossbeat.ingest.profile.load_profile`).
    paths
        Export files, ingested in order.
    progress
        Show a progress bar on stderr when it is a terminal.
    chunk_size
        Rows per transaction; an interrupted run resumes after the last one committed.
    parallel
        Normalise rows in a worker process while this one writes: ``None`` does so
        for files of at least :data:`~crossbeat.ingest.parallel.PARALLEL_MIN_BYTES`
        on a machine with several cores.
    by
        Who runs the ingest: a signed-in user, or None for the local operator. Every
        committed chunk is written to the audit log with it
        (:mod:`crossbeat.ingest.audited`).
    accept_timezone
        Accept a profile time zone that differs from the agency's registered one
        (otherwise refused: :func:`crossbeat.ingest.preflight.store_problems`).
    skip_unchanged
        Count rows whose source digest matches their stored record as unchanged
        without normalising them (:mod:`crossbeat.ingest.unchanged`; the result is the
        same either way). ``None`` does so when the feed has been ingested before
        under the same profile (a re-ingest): the file is then read in this process,
        not by a worker.
    columnar
        Normalise the common rows column by column (:mod:`crossbeat.ingest.columnar`);
        False normalises every row one by one (the reference path, the same result).
    defer_indexes
        Drop the incident tables' secondary indexes for the run and build them when
        it ends (:func:`crossbeat.store.spatial.drop_secondary`). ``None`` does so for
        a large first load: an empty store and files of at least
        :data:`DEFER_INDEX_MIN_BYTES` together.
        Either way, indexes a killed run left missing are built before anything is
        written.

    Returns
    -------
    IngestSummary
        Per-file and total counts of what happened to every row.

    Raises
    ------
    IngestError
        When an agency is not registered, the profile's time zone differs from the
        agency's (without ``accept_timezone``), or a file cannot be read as the profile
        describes; nothing is written then. Every file is opened
        first, so a missing file, a wrong format or missing columns stop the run before
        anything is written; a problem found later in a file stops the run at that file
        (nothing of it is stored; files before it stay ingested).
    ProfileError
        When the profile has an unsettled ``TODO`` comment (nothing is written).
    """
    require_settled(profile)
    if profile.agency_column:
        if agency_id is not None:
            raise IngestError(
                f"profile {profile.name!r} routes each row to its agency by column "
                f"{profile.agency_column!r}: run it without --agency"
            )
    else:
        agency_id = agency_id or profile.agency
        if agency_id is None:
            raise IngestError(
                f"say which agency owns the data: --agency ID (profile {profile.name!r})"
            )
        if profile.agency and profile.agency != agency_id:
            raise IngestError(
                f"profile {profile.name!r} is for agency {profile.agency!r}, not {agency_id!r}: "
                f"use --agency {profile.agency} or a profile for {agency_id}"
            )
    problems = store_problems(store, profile, agency_id, accept_timezone=accept_timezone)
    if problems:
        raise IngestError("; ".join(problems) + " (nothing was stored)")
    _check_files(profile, paths)
    _register_crosswalks(store, profile)
    summary = IngestSummary(agency_id=agency_id, profile=profile.name)
    index = jurisdiction_index(store)
    with _fewer_collections(), _indexes_deferred(store, paths, defer_indexes):
        for path in paths:
            summary.files.append(
                _ingest_file(
                    store,
                    agency_id,
                    profile,
                    Path(path),
                    index,
                    progress,
                    chunk_size,
                    parallel,
                    by,
                    skip_unchanged,
                    columnar,
                )
            )
    return summary


#: Bytes of files from which a load into an empty store builds its secondary indexes
#: after the load (issue #9: 1.7 times the write rate at 100,000 rows, more above).
DEFER_INDEX_MIN_BYTES = 4 << 20


@contextmanager
def _indexes_deferred(
    store: Store, paths: Sequence[str | Path], defer: bool | None
) -> Iterator[None]:
    """Run the ingest with the secondary indexes dropped when ``defer`` says so.

    Missing indexes (a killed deferred run's) are built first unless this run defers
    them too; deferred ones are built when the run ends, whether it ends well or not.
    """
    with store.begin() as conn:
        if defer is None:
            size = sum(Path(p).stat().st_size for p in paths)
            defer = not has_incidents(conn) and size >= DEFER_INDEX_MIN_BYTES
        if defer:
            drop_secondary(conn)
        else:
            ensure_secondary(conn)
    if not defer:
        yield
        return
    try:
        yield
    finally:
        with store.begin() as conn:
            ensure_secondary(conn)


def _register_crosswalks(store: Store, profile: Profile) -> None:
    """Record the profile's crosswalk folder for each of its offence schemes.

    The reads re-derive the sensitivity flags they serve when a crosswalk file changes
    (:mod:`crossbeat.sharing.flags`); they find an agency's crosswalk where the ingest
    did. Shipped crosswalks need no entry.
    """
    if not profile.crosswalks:
        return
    folder = str((Path(profile.base_dir) / profile.crosswalks).resolve())
    t = crosswalk_sources.c
    with store.begin() as conn:
        for scheme in sorted({o.scheme for o in profile.offences}):
            if not (Path(folder) / f"{scheme}.toml").is_file():
                continue
            found = conn.execute(select(t.folder).where(t.scheme == scheme)).scalar()
            values = {"folder": folder, "updated_at": store.now()}
            if found is None:
                conn.execute(crosswalk_sources.insert().values(scheme=scheme, **values))
            elif found != folder:
                conn.execute(crosswalk_sources.update().where(t.scheme == scheme).values(**values))


def _check_files(profile: Profile, paths: Sequence[str | Path]) -> None:
    """Refuse the run before anything is written when a file is missing or unreadable.

    Opening a source reads only its header (or first records): a missing file, the
    wrong format or columns the profile needs but the file lacks stop the run here,
    before an agency is registered. Later problems still stop at their file.
    """
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise IngestError(f"file not found: {p}")
        try:
            with open_source(p, profile.source, required_columns=profile.referenced_columns()):
                pass
        except SourceError as exc:
            raise IngestError(f"{p}: {exc}", path=str(p)) from exc


def _ingest_file(
    store: Store,
    agency_id: str | None,
    profile: Profile,
    path: Path,
    index: JurisdictionIndex,
    progress: bool,
    chunk_size: int,
    parallel: bool | None,
    by: Principal | None = None,
    skip_unchanged: bool | None = None,
    columnar: bool = True,
) -> FileSummary:
    try:
        reader_cm = open_source(path, profile.source, required_columns=profile.referenced_columns())
        reader = reader_cm.__enter__()
    except SourceError as exc:
        raise IngestError(f"{path}: {exc}", path=str(path)) from exc
    try:
        file_hash = file_sha256(path)
        audit_source = {
            "file": path.name,
            "file_hash": file_hash,
            "previous_profile_hash": previous_profile_hash(store, agency_id, profile),
        }
        batch_id, done = _start_batch(store, agency_id, profile, path, file_hash)
        router = RowRouter(store, profile, agency_id, str(path), index, columnar=columnar)
        if skip_unchanged is None:
            skip_unchanged = _fed_before(store, agency_id, profile, batch_id)
        probe = UnchangedProbe(store) if skip_unchanged and eligible(profile) else None
        if parallel is None:
            parallel = probe is None and use_worker(path)
        source: AbstractContextManager[Iterable[Part]] = (
            WorkerParts(path, router, file_hash, done, chunk_size)
            if parallel
            else closing(
                parts(reader, router, file_hash, done, chunk_size)
                if probe is None
                else column_parts(reader, router, file_hash, done, chunk_size, probe)
            )
        )
        try:
            with source as stream, _progress_bar(progress, path, reader.size) as advance:
                _write_parts(
                    store,
                    stream,
                    batch_id,
                    profile,
                    index.areas,
                    advance,
                    by,
                    audit_source,
                    probe=probe if not parallel else None,
                )
        finally:
            router.close()
        _finish_batch(store, batch_id)
        totals = _batch_counts(store, batch_id)
        return FileSummary(str(path), batch_id, file_hash, done, totals)
    except SourceError as exc:
        raise IngestError(f"{path}: {exc}", path=str(path)) from exc
    finally:
        reader_cm.__exit__(None, None, None)


class RowRouter:
    """Picks each row's agency and normaliser (one per agency: ids and extents differ)."""

    def __init__(
        self,
        store: Store,
        profile: Profile,
        agency_id: str | None,
        source_file: str,
        index: JurisdictionIndex,
        *,
        columnar: bool = True,
    ) -> None:
        self.store = store
        self.use_columnar = columnar
        self.profile = profile
        self.agency_id = agency_id
        self.source_file = source_file
        self.index = index
        self._normalisers: dict[str, Normaliser] = {}
        self._columnar: dict[str, ColumnarNormaliser] = {}
        self._map = {k.strip().casefold(): v for k, v in profile.agency_map.items()}
        self._keep_digests = eligible(profile)
        self._contexts: dict[str, str] = {}

    def agency_of(self, rec: RawRecord) -> tuple[str | None, str | None]:
        """Return (agency id, None) or (None, the reason it cannot be determined)."""
        column = self.profile.agency_column
        if column is None:
            return self.agency_id, None
        value = (rec.fields.get(column) or "").strip()
        agency = self._map.get(value.casefold())
        if agency is None:
            return None, (
                f"column {column!r}: agency value {value!r} is not in the profile's agency_map; "
                "add it there and retry"
            )
        return agency, None

    def normaliser(self, agency: str) -> Normaliser:
        """Return the normaliser for an agency, created on first use."""
        n = self._normalisers.get(agency)
        if n is None:
            n = Normaliser(
                self.profile.for_agency(agency),
                agency,
                source_file=self.source_file,
                extent=self.index.extent(agency),
                clock=self.store.clock,
            )
            self._normalisers[agency] = n
        return n

    def columnar(self, agency: str) -> ColumnarNormaliser:
        """Return the columnar normaliser for an agency (over its per-row normaliser)."""
        c = self._columnar.get(agency)
        if c is None:
            c = self._columnar[agency] = ColumnarNormaliser(self.normaliser(agency))
        return c

    def batch(self, recs: Sequence[RawRecord], file_hash: str) -> list[Item]:
        """Normalise a part's records into items: the common rows column by column.

        The same items as :meth:`item` for each record (:mod:`crossbeat.ingest.columnar`);
        the exception rows are normalised one by one, in file order.
        """
        if not self.use_columnar:
            return [self.item(rec, file_hash) for rec in recs]
        groups: dict[str, list[int]] = {}
        for i, rec in enumerate(recs):
            if rec.problems:
                continue
            agency, _ = self.agency_of(rec)
            if agency is not None:
                groups.setdefault(agency, []).append(i)
        built: list[Normalised | None] = [None] * len(recs)
        for agency, rows in groups.items():
            found = self.columnar(agency).common([recs[i] for i in rows])
            for i, result in zip(rows, found, strict=True):
                built[i] = result
        return [
            self.item(rec, file_hash)
            if result is None
            else self._kept(rec, file_hash, result.incident.agency_id, result)
            for rec, result in zip(recs, built, strict=True)
        ]

    def context(self, agency: str) -> str:
        """Return the context key of an agency's rows (:func:`.unchanged.context_key`)."""
        key = self._contexts.get(agency)
        if key is None:
            key = self._contexts[agency] = context_key(self.normaliser(agency))
        return key

    def candidate(self, rec: RawRecord) -> tuple[Candidate, str, str] | None:
        """Return a row's id and source key, its source id and agency, when it may be unchanged."""
        if rec.problems:
            return None
        agency, _ = self.agency_of(rec)
        if agency is None:
            return None
        try:
            sid = self.normaliser(agency).source_id(rec)
        except ValueError:
            return None
        key = source_key(self.context(agency), raw_hash(rec))
        return Candidate(rec.row_number, incident_id(agency, sid), key), sid, agency

    def items(self, recs: list[RawRecord], file_hash: str, probe: UnchangedProbe) -> list[Item]:
        """Return the items of a part: rows stored unchanged skipped, the rest normalised."""
        found = [self.candidate(rec) for rec in recs]
        skip = probe.skippable(file_hash, [f[0] for f in found if f is not None])
        rest = [
            rec
            for rec, f in zip(recs, found, strict=True)
            if f is None or rec.row_number not in skip
        ]
        normalised = iter(self.batch(rest, file_hash))
        out: list[Item] = []
        for rec, f in zip(recs, found, strict=True):
            if f is None or rec.row_number not in skip:
                out.append(next(normalised))
                continue
            cand, sid, agency = f
            labels = self.normaliser(agency).crosswalk_labels(rec)
            ref = StoredRef(cand.incident_id, sid, skip[rec.row_number], labels)
            out.append(
                Item(
                    rec.row_number,
                    file_hash,
                    self.source_file,
                    {},
                    agency,
                    action="unchanged",
                    source_key=cand.key,
                    stored=ref,
                )
            )
        return out

    def close(self) -> None:
        """Release per-file state (hash-id counts, which may be held on disk)."""
        for normaliser in self._normalisers.values():
            normaliser.reset()

    def replay(self, rec: RawRecord) -> None:
        """Advance per-file id state for a row already committed by a killed run."""
        agency, _ = self.agency_of(rec)
        if rec.problems or agency is None:
            return
        try:
            self.normaliser(agency).source_id(rec)
        except ValueError:
            pass

    def item(self, rec: RawRecord, file_hash: str) -> Item:
        """Normalise one record into an :class:`Item`.

        The reasons of a rejected record never quote a personal value
        (:mod:`crossbeat.ingest.withhold`): they are stored readable, the raw record
        sealed. The raw record keeps the GeoJSON geometry under ``_geometry``, the
        read problems under ``_problems`` and a hash id's occurrence number under
        ``_occurrence``, so that a quarantine retry reads it as it was read.
        """
        raw: dict[str, Any] = dict(rec.fields)
        if rec.geometry is not None:
            raw["_geometry"] = rec.geometry
        if rec.problems:
            raw["_problems"] = list(rec.problems)
        agency, why = self.agency_of(rec)
        reasons = tuple(rec.problems) + ((why,) if why else ())
        if not reasons and agency is not None:
            normaliser = self.normaliser(agency)
            result = normaliser.normalise(rec)
            if not isinstance(result, Rejected):
                return self._kept(rec, file_hash, agency, result, raw)
            reasons = result.reasons
            if normaliser.last_occurrence is not None:
                # A retry must give the row the hash id it would have had in its file.
                raw["_occurrence"] = normaliser.last_occurrence
        reasons = withhold_personal(reasons, withheld_values(self.profile, rec))
        return Item(rec.row_number, file_hash, self.source_file, raw, agency, reasons=reasons)

    def _kept(
        self,
        rec: RawRecord,
        file_hash: str,
        agency: str,
        result: Normalised | Updated,
        raw: dict[str, Any] | None = None,
    ) -> Item:
        """Return the item of a record normalised into an incident or an update."""
        if raw is None:
            raw = dict(rec.fields)
            if rec.geometry is not None:
                raw["_geometry"] = rec.geometry
        key = None
        if self._keep_digests and isinstance(result, Normalised):
            prov = result.incident.provenance
            if prov is not None:
                key = source_key(self.context(agency), prov.raw_hash)
        return Item(
            rec.row_number,
            file_hash,
            self.source_file,
            raw,
            agency,
            incident=result.incident if isinstance(result, Normalised) else None,
            update=result.update if isinstance(result, Updated) else None,
            action=result.action if isinstance(result, Normalised) else "update",
            source_key=key,
        )


def _write_parts(
    store: Store,
    stream: Iterable[Part],
    batch_id: str,
    profile: Profile,
    areas: AreaIndex | None,
    advance: Any,
    by: Principal | None = None,
    audit_source: dict[str, Any] | None = None,
    probe: UnchangedProbe | None = None,
) -> None:
    """Write parts in order, each with the checkpoint, committing where a part says.

    ``areas`` are the registered area layers that tag every stored incident.

    Each transaction appends its ``ingest`` audit event before it commits
    (:func:`crossbeat.ingest.audited.record_chunk`).

    The parts of one transaction are written as one chunk would be: they share the
    ids already seen, so a repeated id is a duplicate whichever part it is in. On any
    error the open transaction is rolled back: the store stays as it was after the
    last commit, whose checkpoint is where a re-run resumes.

    A ``probe`` (rows skipped as unchanged, :mod:`crossbeat.ingest.unchanged`) is
    bound to the open transaction before each part is read, so that it sees every
    row written before that part.
    """
    with store.connect() as conn, store.bulk_writes(conn):
        transaction = None
        seen: dict[str, int] = {}
        tally = ChunkTally()
        last_row = None

        def audit() -> None:
            record_chunk(
                store,
                conn,
                by,
                batch_id=batch_id,
                profile=profile,
                source=audit_source or {},
                tally=tally,
                through_row=last_row,
            )

        stream_parts = iter(stream)
        written = False
        while True:
            # Without a probe the transaction begins once a part is there, so the
            # store is not held while a worker normalises the next part.
            if transaction is None and probe is not None:
                transaction = conn.begin()
                seen, tally, written = {}, ChunkTally(), False
                probe.bind(conn, seen)
            part = next(stream_parts, None)
            if part is None:
                break
            if transaction is None:
                transaction = conn.begin()
                seen, tally = {}, ChunkTally()
            written = True
            counts = write_chunk(
                store,
                part.items,
                batch_id=batch_id,
                profile_name=profile.name,
                checkpoint=part.last_row,
                conn=conn,
                seen=seen,
                areas=areas,
                skipped=part.skipped,
            )
            tally.add(part.items, counts, part.skipped)
            last_row = part.last_row
            if part.commit:
                audit()
                transaction.commit()
                transaction = None
                advance(part.offset)
        if transaction is not None:
            if written:
                audit()
                transaction.commit()
            else:
                transaction.rollback()  # begun for a part that never came


def _fed_before(store: Store, agency_id: str | None, profile: Profile, batch_id: str) -> bool:
    """Return whether this feed completed a batch under this very profile before."""
    t = ingest_batches.c
    agency = t.agency_id.is_(None) if agency_id is None else t.agency_id == agency_id
    with store.connect() as conn:
        found = conn.execute(
            select(t.id)
            .where(
                agency
                & (t.profile_hash == profile.content_hash)
                & (t.status == "complete")
                & (t.id != batch_id)
            )
            .limit(1)
        ).first()
    return found is not None


def _start_batch(
    store: Store, agency_id: str | None, profile: Profile, path: Path, file_hash: str
) -> tuple[str, int]:
    """Resume the unfinished batch of this file and profile, or start a new one."""
    t = ingest_batches.c
    with store.begin() as conn:
        row = conn.execute(
            select(t.id, t.rows_done)
            .where(
                (t.agency_id.is_(None) if agency_id is None else t.agency_id == agency_id)
                & (t.file_hash == file_hash)
                & (t.profile_hash == profile.content_hash)
                & (t.status == "running")
            )
            .order_by(t.started_at.desc())
            .limit(1)
        ).first()
        if row is not None:
            return row.id, row.rows_done
        batch_id = str(uuid.uuid4())
        conn.execute(
            ingest_batches.insert().values(
                id=batch_id,
                agency_id=agency_id,
                profile_name=profile.name,
                profile_hash=profile.content_hash,
                source_file=str(path),
                file_hash=file_hash,
                file_size=path.stat().st_size,
                status="running",
                started_at=store.now(),
                rows_done=0,
            )
        )
    return batch_id, 0


def _finish_batch(store: Store, batch_id: str) -> None:
    with store.begin() as conn:
        conn.execute(
            update(ingest_batches)
            .where(ingest_batches.c.id == batch_id)
            .values(status="complete", finished_at=store.now())
        )


def _batch_counts(store: Store, batch_id: str) -> Counts:
    """Read a batch's counters (they include rows committed before a resume)."""
    t = ingest_batches.c
    with store.connect() as conn:
        r = conn.execute(select(ingest_batches).where(t.id == batch_id)).mappings().one()
    return Counts(**{k: r[k] for k in Counts().as_dict()})


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector less often during the ingest, then as before.

    An ingest keeps a few thousand rows' worth of objects alive at any time and makes
    few reference cycles; at the default thresholds the collector scans those live
    objects again and again (a fifth of the run time on the benchmark). Cycles are
    still collected, only less often. A forked worker inherits the setting.
    """
    before = gc.get_threshold()
    if not gc.isenabled() or before[0] == 0:
        yield
        return
    gc.set_threshold(*(max(a, b) for a, b in zip(before, GC_THRESHOLDS, strict=False)))
    try:
        yield
    finally:
        gc.set_threshold(*before)


@contextmanager
def _progress_bar(enabled: bool, path: Path, size: int) -> Iterator[Any]:
    if not (enabled and sys.stderr.isatty()):
        yield lambda _pos: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(path.name, total=size or None)
        yield lambda pos: bar.update(task, completed=pos)
