"""Re-ingest of a plain CSV file read as columns: unchanged rows cost no objects (issue #9).

When a feed is ingested again (:mod:`crossbeat.ingest.unchanged`), most rows are stored
unchanged. :func:`column_parts` gives the same parts as
:func:`crossbeat.ingest.parallel.parts` with a probe, but reads the file's plain blocks
as columns (:mod:`crossbeat.ingest.csv_blocks`) and works on each part's columns:

* the source ids are cleaned from the id columns as columns (Arrow, for columns of
  ASCII values; value by value otherwise) and the part's stored records are read in
  one query joining them, by position, with the unique (agency, source id) index, as
  plain tuples (no UUID, row object or dictionary per row);
* the skip rule (first row of its id, not stored earlier in the transaction, not
  stored from another row of the same file, stored with a digest) is applied as
  arrays; the canonical JSON of each remaining row is built by one pyarrow call over
  the part's columns, then hashed in one tight loop
  (:func:`crossbeat.ingest.unchanged.keyed_digests`), giving the very digest the full
  path stores, and compared with the stored digests as one array equality;
* the rows found unchanged leave as one :class:`~crossbeat.ingest.unchanged.Skipped`
  per part (row numbers, ids, the unmapped count and the crosswalk labels of their
  distinct offence values), not as one record and one item each;
* every other row becomes a :class:`~crossbeat.ingest.source.RawRecord` and takes the
  full path, in file order.

From the first block that is not plain to the end of the file the streaming reader
reads the rows (:meth:`crossbeat.ingest.csv_.CsvReader.resume`) and
:func:`~crossbeat.ingest.parallel.parts` carries on, in the same transaction. The
property test in ``tests/test_ingest_unchanged.py`` compares the stores this and the
full path give.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from crossbeat.ingest.csv_ import CsvReader
from crossbeat.ingest.csv_blocks import Block, Rest, blocks, plain_start
from crossbeat.ingest.items import derive
from crossbeat.ingest.parallel import PART_ROWS, Part, parts
from crossbeat.ingest.source import RawRecord, SourceReader
from crossbeat.ingest.unchanged import Skipped, UnchangedProbe, keyed_digests

if TYPE_CHECKING:
    from crossbeat.ingest.pipeline import RowRouter
    from crossbeat.vault.fingerprint import Fingerprinter


#: Rows of a part read as columns: a skipped row holds no object, so a part can be
#: larger than :data:`~crossbeat.ingest.parallel.PART_ROWS` and take one lookup (and
#: one round of the writer's queries) for more rows.
COLUMN_PART_ROWS = 5 * PART_ROWS


def column_parts(
    reader: SourceReader,
    router: RowRouter,
    file_hash: str,
    done: int,
    chunk_size: int,
    probe: UnchangedProbe,
) -> Generator[Part, None, None]:
    """Yield the parts of a re-ingest after row ``done``, plain blocks read as columns.

    The same rows, transactions and results as ``parts(reader, router, file_hash,
    done, chunk_size, probe)``, which it is for a file that does not qualify (not a
    plain UTF-8 CSV ending with a line break, or a feed routing rows to agencies by a
    column). A part ends at a block's end as well as every :data:`COLUMN_PART_ROWS`
    rows; transactions end where
    :func:`~crossbeat.ingest.parallel.parts` ends them.
    """
    columns = _Columns.of(reader, router)
    start = (
        plain_start(reader.path, reader.encoding, reader.spec.delimiter, len(reader.columns))
        if columns is not None and isinstance(reader, CsvReader)
        else None
    )
    if columns is None or start is None or not isinstance(reader, CsvReader):
        yield from parts(reader, router, file_hash, done, chunk_size, probe)
        return
    size = min(chunk_size, COLUMN_PART_ROWS)
    in_transaction = 0
    last_row = done
    for block in blocks(reader.path, reader.spec.delimiter, len(reader.columns), start):
        if isinstance(block, Rest):
            with reader.resume(block.offset, block.rows_before) as rest:
                yield from parts(
                    rest,
                    router,
                    file_hash,
                    done,
                    chunk_size,
                    probe,
                    in_transaction=in_transaction,
                    last_row=last_row,
                )
            return
        begin = max(0, done - block.first_row + 1)
        while begin < block.rows:
            n = min(size, chunk_size - in_transaction, block.rows - begin)
            segment = block.slice(begin, begin + n)
            begin += n
            in_transaction += n
            last_row = segment.first_row + n - 1
            commit = in_transaction >= chunk_size
            yield columns.part(segment, file_hash, probe, last_row, commit)
            if commit:
                in_transaction = 0
    yield Part([], last_row, reader.size, commit=True)


class _Columns:
    """What a part needs of the file's columns: ids, canonical JSON, offence values."""

    def __init__(self, reader: SourceReader, router: RowRouter, agency_id: str) -> None:
        self.router = router
        self.agency_id = agency_id
        self.names = list(reader.columns)
        index = {name: i for i, name in enumerate(self.names)}
        normaliser = router.normaliser(agency_id)
        self.normaliser = normaliser
        spec = normaliser.profile.id
        self.prefix = spec.prefix
        nulls = sorted(normaliser.null_markers)
        self._nulls = pa.array(nulls, type=pa.string()) if nulls else None
        self.id_columns = [index[c] for c in spec.columns]
        self.context = router.context(agency_id)
        offence = sorted(
            {c for o in normaliser.profile.offences for c in (o.code, o.description) if c}
        )
        self.offence_names = [c for c in offence if c in index]
        self.offence_columns = [index[c] for c in self.offence_names]
        # The canonical JSON of a record's fields (sort_keys, no ASCII escapes) with
        # values that need no escaping, which a plain block guarantees.
        order = sorted(range(len(self.names)), key=lambda i: self.names[i])
        pieces: list[tuple[str, int]] = []
        for k, i in enumerate(order):
            key = json.dumps(self.names[i], ensure_ascii=False)
            pieces.append((("{" if k == 0 else '",') + key + ':"', i))
        self._pieces = pieces
        self._labels: dict[tuple[str, ...], tuple[str, ...]] = {}

    @classmethod
    def of(cls, reader: SourceReader, router: RowRouter) -> _Columns | None:
        """Return the helper for a file whose rows all belong to one agency, else None."""
        if router.profile.agency_column or router.agency_id is None:
            return None
        profile = router.normaliser(router.agency_id).profile
        if not profile.id.columns or any(c not in reader.columns for c in profile.id.columns):
            return None
        return cls(reader, router, router.agency_id)

    def source_ids(self, segment: Block) -> list[str | None]:
        """Return each row's source id as :meth:`Normaliser.source_id` builds it (None: blank)."""
        cleaned = [self._cleaned(segment.columns[i]) for i in self.id_columns]
        prefix = pa.scalar(self.prefix, pa.string())
        if len(cleaned) == 1:
            ids = pc.binary_join_element_wise(prefix, cleaned[0], "")
        else:
            blank = pc.is_null(cleaned[0])
            for v in cleaned[1:]:
                blank = pc.and_(blank, pc.is_null(v))
            joined = pc.binary_join_element_wise(
                *[pc.fill_null(v, "") for v in cleaned], pa.scalar("|", pa.string())
            )
            ids = pc.if_else(
                blank,
                pa.scalar(None, pa.string()),
                pc.binary_join_element_wise(prefix, joined, ""),
            )
        return ids.to_pylist()

    def _cleaned(self, column: pa.StringArray) -> pa.StringArray:
        """Return a column's values as :meth:`Normaliser.clean` gives them, as a column.

        A plain block's values hold no control character, so a value of ASCII letters
        has no whitespace but spaces: they are trimmed and compared with the null
        markers by Arrow (``casefold`` is ``lower`` on ASCII). A column with any other
        character is cleaned value by value.
        """
        if not pc.all(pc.string_is_ascii(column)).as_py():
            clean = self.normaliser.clean
            return pa.array([clean(v) for v in column.to_pylist()], type=pa.string())
        trimmed = pc.utf8_trim(column, " ")
        blank = pc.equal(trimmed, "")
        if self._nulls is not None:
            blank = pc.or_(blank, pc.is_in(pc.ascii_lower(trimmed), value_set=self._nulls))
        kept = trimmed if self.normaliser.strips else column
        return pc.if_else(blank, pa.scalar(None, pa.string()), kept)

    def payloads(self, segment: Block, positions: list[int]) -> list[bytes]:
        """Return the canonical JSON of the rows at ``positions`` (``raw_hash``'s input)."""
        columns = _taken(segment, positions)
        args: list[pa.Array | pa.Scalar] = []
        for text, i in self._pieces:
            args.append(pa.scalar(text, pa.string()))
            args.append(columns[i])
        args.append(pa.scalar('"}', pa.string()))
        joined = pc.binary_join_element_wise(*args, "")
        return joined.cast(pa.binary()).to_pylist()

    def labels(self, segment: Block, positions: list[int]) -> frozenset[str]:
        """Return the crosswalk labels of the rows at ``positions`` (once per distinct values)."""
        if not positions or not self.offence_columns:
            return frozenset()
        columns = _taken(segment, positions)
        names = self.offence_names
        distinct = (
            pa.table([columns[i] for i in self.offence_columns], names=names)
            .group_by(names, use_threads=False)
            .aggregate([])
        )
        values = [distinct.column(name).to_pylist() for name in names]
        out: set[str] = set()
        for key in zip(*values, strict=True):
            found = self._labels.get(key)
            if found is None:
                rec = RawRecord(0, dict(zip(names, key, strict=True)))
                found = self._labels[key] = self.normaliser.crosswalk_labels(rec)
            out.update(found)
        return frozenset(out)

    def part(
        self, segment: Block, file_hash: str, probe: UnchangedProbe, last_row: int, commit: bool
    ) -> Part:
        """Return the part of a block's rows: the unchanged ones skipped, the rest normalised."""
        rows = range(segment.first_row, segment.first_row + segment.rows)

        def digests(fingerprint: Fingerprinter, positions: list[int]) -> list[bytes]:
            payloads = self.payloads(segment, positions) if positions else []
            return keyed_digests(fingerprint, self.context, payloads)

        found = probe.skippable_sources(
            file_hash, self.agency_id, rows, self.source_ids(segment), digests
        )
        if len(found.positions) == segment.rows:
            rest: list[int] = []
        else:
            skipped_at = set(found.positions)
            rest = [i for i in range(segment.rows) if i not in skipped_at]
        items = []
        if rest:
            take = pa.array(rest, type=pa.int64())
            values = [c.take(take).to_pylist() for c in segment.columns]
            ends = segment.ends
            names = self.names
            recs = [
                RawRecord(rows[i], dict(zip(names, row, strict=True)), None, (), int(ends[i]))
                for i, row in zip(rest, zip(*values, strict=True), strict=True)
            ]
            items = derive(self.router.batch(recs, file_hash), self.router.index)
        skipped = None
        if found.positions:
            first = segment.first_row
            skipped = Skipped(
                file_hash,
                self.agency_id,
                [first + i for i in found.positions],
                found.ids,
                found.unmapped,
                self.labels(segment, found.positions),
            )
        return Part(items, last_row, int(segment.ends[-1]), commit=commit, skipped=skipped)


def _taken(segment: Block, positions: list[int]) -> list[pa.Array]:
    """Return the segment's columns at ``positions`` (ascending): all of them, untaken."""
    if len(positions) == segment.rows:
        return list(segment.columns)
    take = pa.array(positions, type=pa.int64())
    return [c.take(take) for c in segment.columns]
