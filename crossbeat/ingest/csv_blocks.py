"""Read the plain blocks of a CSV file as columns, the rest with the streaming reader.

Most exports are *plain*: UTF-8, one record per line, no quotes, no escapes, every line
with the header's number of fields. For those lines the streaming reader
(:mod:`crossbeat.ingest.csv_`) finds exactly what splitting each line at the delimiter
finds, so a block of them can be parsed by pyarrow's CSV reader in one call (issue #9).

:func:`blocks` reads a file a few megabytes at a time, cut at the last line break, and
checks each block with numpy (quotes, backslashes, control characters, the number of
delimiters on each line, the line lengths the streaming reader accepts): a plain block
comes back as a :class:`Block` of string columns, with the number of its first record and
the byte offset after each record. At the first block that is not plain — a quoted
value, a short or long record, a blank line, a byte that is not UTF-8 — it returns a
:class:`Rest`: where the streaming reader must take over (:meth:`CsvReader.resume`), so
that every odd record is read, and quarantined with its reason, exactly as before.

A file qualifies as a whole only when it is UTF-8, its header is its first line and it
ends with a line break (the streaming reader judges a last record without one by the
shape of its column's earlier values; :func:`plain_start`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from crossbeat.ingest.csv_ import CsvReader
from crossbeat.ingest.source import MAX_LINE_CHARS, RawRecord, SourceReader

#: Bytes read per block: large enough that numpy and pyarrow run long, small enough to
#: keep memory flat.
BLOCK_BYTES = 4 << 20
_UTF8 = ("utf-8-sig", "utf-8")


@dataclass(frozen=True, slots=True)
class Block:
    """Plain records of a file, as columns.

    ``columns`` are string arrays in the header's order; ``first_row`` is the number of
    the first record (from 1, as :class:`~crossbeat.ingest.source.RawRecord` counts);
    ``ends[i]`` is the byte offset just after record ``first_row + i``.
    """

    first_row: int
    columns: list[pa.StringArray]
    ends: np.ndarray

    @property
    def rows(self) -> int:
        """Return how many records the block holds."""
        return len(self.ends)

    def slice(self, start: int, stop: int) -> Block:
        """Return records ``start`` to ``stop`` (0-based, stop excluded) of the block."""
        return Block(
            self.first_row + start,
            [c.slice(start, stop - start) for c in self.columns],
            self.ends[start:stop],
        )


@dataclass(frozen=True, slots=True)
class Rest:
    """Where the streaming reader takes over: a byte offset and the records before it."""

    offset: int
    rows_before: int


def plain_start(path: Path, encoding: str, delimiter: str, width: int) -> int | None:
    """Return the byte offset after the header when the file may be read in blocks.

    Parameters
    ----------
    path
        The CSV file.
    encoding
        The codec the streaming reader decodes it with.
    delimiter
        ``source.delimiter``.
    width
        The number of columns of the header the streaming reader read.

    Returns
    -------
    int or None
        None when the file is not UTF-8, its first line is not a plain header of
        ``width`` fields, or it does not end with a line break: read it all with the
        streaming reader then.
    """
    if encoding.lower().replace("_", "-") not in _UTF8 or width < 2:
        return None
    if len(delimiter) != 1 or delimiter in '"\\\r\n' or ord(delimiter) > 127:
        return None
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(min(size, 1 << 20))
        fh.seek(max(size - 1, 0))
        if fh.read(1) != b"\n":
            return None
    end = head.find(b"\n")
    if end < 0:
        return None
    line = head[: end + 1]
    text = line[3:] if line.startswith(b"\xef\xbb\xbf") else line
    stripped = text.rstrip(b"\r\n")
    if not _plain(stripped + b"\n", delimiter.encode()) or not stripped.strip():
        return None
    if stripped.count(delimiter.encode()) != width - 1:
        return None
    return end + 1


def _plain(data: bytes, delim: bytes) -> bool:
    """Return whether ``data`` (whole lines) holds no quote, escape or stray control byte."""
    if b'"' in data or b"\\" in data:
        return False
    arr = np.frombuffer(data, dtype=np.uint8)
    control = int(np.count_nonzero(arr < 0x20))
    newlines = data.count(b"\n")
    returns = data.count(b"\r")
    if returns != data.count(b"\r\n"):
        return False  # a lone carriage return ends a record for the csv module
    allowed = newlines + returns + (data.count(delim) if delim[0] < 0x20 else 0)
    return control == allowed


def blocks(
    path: Path,
    delimiter: str,
    width: int,
    start: int,
    *,
    block_bytes: int | None = None,
) -> Iterator[Block | Rest]:
    """Yield the plain blocks of a file from byte ``start``, then where the rest begins.

    Parameters
    ----------
    path
        The CSV file (:func:`plain_start` gave ``start``).
    delimiter
        ``source.delimiter``.
    width
        The number of header columns.
    start
        The byte offset of the first record.
    block_bytes
        Bytes read at a time (default :data:`BLOCK_BYTES`).

    Yields
    ------
    Block or Rest
        Blocks in file order; a :class:`Rest` last when a block is not plain (nothing
        after it is read here).
    """
    step = block_bytes or BLOCK_BYTES
    delim = delimiter.encode()
    names = [f"c{i}" for i in range(width)]
    parse = pacsv.ParseOptions(
        delimiter=delimiter,
        quote_char=False,
        escape_char=False,
        newlines_in_values=False,
        ignore_empty_lines=False,
    )
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        check_utf8=True,
    )
    rows_before = 0
    offset = start
    carry = b""
    with open(path, "rb") as fh:
        fh.seek(start)
        while True:
            chunk = fh.read(step)
            data = carry + chunk
            if not data:
                return
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                if not chunk or len(data) >= MAX_LINE_CHARS:
                    yield Rest(offset, rows_before)
                    return
                carry = data
                continue
            block, carry = data[:cut], data[cut:]
            found = _parse(block, offset, rows_before, delim, width, names, parse, convert)
            if found is None:
                yield Rest(offset, rows_before)
                return
            yield found
            rows_before += found.rows
            offset += cut


def _parse(
    block: bytes,
    offset: int,
    rows_before: int,
    delim: bytes,
    width: int,
    names: list[str],
    parse: pacsv.ParseOptions,
    convert: pacsv.ConvertOptions,
) -> Block | None:
    """Return a block's records as columns, or None when it is not plain."""
    if not _plain(block, delim):
        return None
    arr = np.frombuffer(block, dtype=np.uint8)
    newlines = np.flatnonzero(arr == 10)
    lengths = np.diff(newlines, prepend=-1)
    if int(lengths.max()) >= MAX_LINE_CHARS:
        return None  # the streaming reader skips such a line: let it
    delimiters = np.flatnonzero(arr == delim[0])
    per_line = np.diff(np.searchsorted(delimiters, newlines), prepend=0)
    if not bool(np.all(per_line == width - 1)):
        return None  # a short, long or blank record
    try:
        table = pacsv.read_csv(
            pa.py_buffer(block),
            read_options=pacsv.ReadOptions(
                column_names=names, use_threads=False, block_size=len(block) + 1
            ),
            parse_options=parse,
            convert_options=convert,
        )
    except pa.ArrowInvalid:
        return None  # not UTF-8: the streaming reader says which column
    if table.num_rows != len(newlines):
        return None
    columns = [table.column(i).combine_chunks() for i in range(width)]
    return Block(rows_before + 1, columns, newlines.astype(np.int64) + offset + 1)


def records(reader: SourceReader) -> Iterator[RawRecord]:
    """Yield a reader's records, those of its plain blocks read as columns.

    The same records as iterating ``reader`` (numbers, fields, read problems; offsets
    are exact here, where the streaming reader's are accurate to its read buffer):
    a CSV file that qualifies (:func:`plain_start`) is read block by block, and from
    the first block that is not plain on by the streaming reader. Any other reader,
    or one resumed past the start of its file, is iterated as it is.
    """
    start = None
    if isinstance(reader, CsvReader) and reader.at_start:
        start = plain_start(
            reader.path, reader.encoding, reader.spec.delimiter, len(reader.columns)
        )
    if start is None:
        yield from reader
        return
    assert isinstance(reader, CsvReader)
    names = reader.columns
    for block in blocks(reader.path, reader.spec.delimiter, len(names), start):
        if isinstance(block, Rest):
            with reader.resume(block.offset, block.rows_before) as rest:
                yield from rest
            return
        values = [c.to_pylist() for c in block.columns]
        ends = block.ends.tolist()
        first = block.first_row
        for i, row in enumerate(zip(*values, strict=True)):
            yield RawRecord(first + i, dict(zip(names, row, strict=True)), None, (), ends[i])
