"""Read delimited text (CSV, TSV, semicolon-separated) one record at a time.

The file is decoded as a stream and fed line by line to :mod:`csv` (``strict=True``,
so stray and unterminated quotes are reported rather than guessed). The reader keeps
the physical lines of the record being read, which lets it report undecodable bytes
per column and keep the raw text of a record the csv module could not parse.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from crossbeat.ingest.profile import SourceSpec
from crossbeat.ingest.source import (
    _ESCAPE,
    MAX_LINE_CHARS,
    SNIFF_BYTES,
    RawRecord,
    SourceError,
    SourceReader,
    clean_escaped,
    has_escapes,
    replace_escapes,
    sniff,
    undecodable_problem,
)

_OTHER_DELIMITERS = (",", ";", "\t", "|")
#: Distinct values of the last column remembered to recognise a complete last value.
LAST_COLUMN_VALUES = 1000
_NUMBER = re.compile(r"^[+-]?\d+(?:\.(\d+))?$")


class LastColumn:
    """The shape of the last column's values, to judge a final record without a line break.

    A file cut in the middle of its last record usually still parses: the cut lands in
    the last field (a latitude losing digits), which is the only one that can be short
    without the record losing a field. Such a record ends the file without a line break
    — but so does the last record of many complete files. The values of the same column
    in the records before it tell the two apart (:meth:`complete`).
    """

    def __init__(self) -> None:
        self.rows = 0
        self.blanks = 0
        self.lengths: set[int] = set()
        #: Decimal places of the numeric values; None once a value is not a number.
        self.decimals: set[int] | None = set()
        self.values: set[str] | None = set()

    def add(self, value: str) -> None:
        """Learn one value of the column, from a record that ended with a line break."""
        self.rows += 1
        value = value.strip()
        if not value:
            self.blanks += 1
            return
        if len(self.lengths) <= 2:
            self.lengths.add(len(value))
        if self.decimals is not None:
            m = _NUMBER.match(value)
            if m is None:
                self.decimals = None
            elif len(self.decimals) <= 2:
                self.decimals.add(len(m.group(1) or ""))
        if self.values is not None:
            self.values.add(value)
            if len(self.values) > LAST_COLUMN_VALUES:
                self.values = None

    def complete(self, value: str, quoted: bool) -> bool:
        """Return whether a final value without a line break is complete, as far as can be told.

        It is when it ends with the closing quote of a quoted value; or when it has the
        column's shape: the one length every earlier value has, the one number of
        decimal places every earlier number has, one of the column's (at most
        :data:`LAST_COLUMN_VALUES`) earlier values that is not the beginning of another,
        or blank in a column blank on at least half the earlier records. Anything else
        might be cut, and is quarantined.
        """
        if quoted:
            return True
        value = value.strip()
        if not self.rows:
            return False
        if not value:
            return self.blanks * 2 >= self.rows
        if self.rows - self.blanks < 2:
            return False
        if len(self.lengths) == 1 and len(value) in self.lengths:
            return True
        if self.decimals and len(self.decimals) == 1:
            m = _NUMBER.match(value)
            (places,) = self.decimals
            if places and m is not None and len(m.group(1) or "") == places:
                return True
        if self.values is not None and value in self.values:
            return not any(v != value and v.startswith(value) for v in self.values)
        return False


class _Lines:
    """Feed decoded lines to :mod:`csv`, remembering those of the current record."""

    def __init__(self, text: io.TextIOBase) -> None:
        self._text = text
        self.current: list[str] = []
        self.overlong = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._text.readline(MAX_LINE_CHARS)
        if not line:
            raise StopIteration
        if len(line) >= MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            # Skip the rest of an absurdly long line instead of holding it in memory.
            self.overlong += 1
            while line and not line.endswith(("\n", "\r")):
                line = self._text.readline(MAX_LINE_CHARS)
            line = "\n"
        self.current.append(line)
        return line

    def take(self) -> tuple[str, int]:
        """Return the text of the lines read since the last call, and overlong lines."""
        text, over = "".join(self.current), self.overlong
        self.current, self.overlong = [], 0
        return text, over


class CsvReader(SourceReader):
    """Read a delimited text file with a header row."""

    format = "csv"

    def __init__(
        self, path: Path, spec: SourceSpec, binary: BinaryIO, encoding: str, detected: bool
    ) -> None:
        super().__init__(path, spec, binary, encoding, detected)
        head = binary.read(SNIFF_BYTES)
        binary.seek(0)
        start = sniff(head, path, encoding)
        if start[:1] in ("{", "["):
            raise SourceError(
                f"{path.name} looks like JSON, not CSV: set source.format to "
                '"json", "jsonl" or "geojson"'
            )
        self._rows_before = 0
        self._resumed = False
        self._text = io.TextIOWrapper(binary, encoding=encoding, errors=_ESCAPE, newline="")
        self._lines = _Lines(self._text)
        self._csv = csv.reader(self._lines, delimiter=spec.delimiter, strict=True)
        self.columns = self._read_header()

    @property
    def at_start(self) -> bool:
        """Return whether the reader reads its file from the first record on."""
        return not self._resumed and not self._iterated

    def resume(self, offset: int, rows_before: int) -> CsvReader:
        """Return a reader of this file's records from byte ``offset`` on.

        ``offset`` must be the start of a record, after ``rows_before`` records (the
        columnar reader, :mod:`crossbeat.ingest.csv_blocks`, hands over there); the
        records are numbered and judged as this reader would from the start.
        """
        binary = open(self.path, "rb")  # the new reader owns and closes it
        try:
            other = CsvReader(self.path, self.spec, binary, self.encoding, self.encoding_detected)
            other._text.detach()
            binary.seek(offset)
            # Past the start of the file a U+FEFF is a character, not a byte-order mark.
            encoding = "utf-8" if self.encoding == "utf-8-sig" else self.encoding
            other._text = io.TextIOWrapper(binary, encoding=encoding, errors=_ESCAPE, newline="")
            other._lines = _Lines(other._text)
            other._csv = csv.reader(other._lines, delimiter=self.spec.delimiter, strict=True)
            other.columns = list(self.columns)
            other._rows_before = rows_before
            other._resumed = True
        except BaseException:
            binary.close()
            raise
        return other

    def close(self) -> None:
        """Close the file."""
        self._text.close()

    def _read_header(self) -> list[str]:
        try:
            row: list[str] = []
            while not any(c.strip() for c in row):
                row = next(self._csv)
        except StopIteration:
            raise SourceError(
                f"{self.path.name} has no header row (it holds only blank lines): "
                "export the file again with column names in the first row"
            ) from None
        except csv.Error as exc:
            raise SourceError(f"cannot read the header row of {self.path.name}: {exc}") from exc
        text, _ = self._lines.take()
        if has_escapes(text):
            _, bad = replace_escapes(text)
            raise SourceError(
                f"cannot read the header of {self.path.name}: "
                + undecodable_problem(None, bad, self.encoding, self.encoding_detected)
            )
        names: list[str] = []
        seen: dict[str, int] = {}
        for i, raw in enumerate(row, start=1):
            name = raw.strip().lstrip("\ufeff").strip() or f"column_{i}"
            if name in seen:
                seen[name] += 1
                name = f"{name} ({seen[name]})"
            seen.setdefault(name, 1)
            names.append(name)
        return names

    def _column_hint(self) -> str:
        if len(self.columns) == 1:
            found = [d for d in _OTHER_DELIMITERS if d in self.columns[0]]
            if found:
                return (
                    f" The header is one column containing {found[0]!r}: the file is probably "
                    f"{found[0]!r}-separated; set source.delimiter = {found[0]!r}."
                )
        return ""

    def _records(self) -> Iterator[RawRecord]:
        width = len(self.columns)
        number = self._rows_before
        last = LastColumn()
        while True:
            try:
                row = next(self._csv)
            except StopIteration:
                return
            except csv.Error as exc:
                text, _ = self._lines.take()
                number += 1
                yield self._unparsable(number, text, exc)
                continue
            text, overlong = self._lines.take()
            if not overlong and not any(c.strip() for c in row) and len(row) <= 1:
                continue  # a blank line is not a record
            number += 1
            record = self._record(number, row, text, overlong, width)
            if len(row) == width:
                if text.endswith(("\n", "\r")):
                    last.add(row[-1])
                elif not last.complete(row[-1], text.rstrip(" \t").endswith('"')):
                    record = self._maybe_cut(record, row[-1])
            yield record

    def _record(
        self, number: int, row: list[str], text: str, overlong: int, width: int
    ) -> RawRecord:
        fields: dict[str, str | None] = dict(zip(self.columns, row, strict=False))
        problems: list[str] = []
        if overlong:
            problems.append(
                f"a line is longer than {MAX_LINE_CHARS} characters and was skipped: "
                "the file is damaged or not line-based"
            )
        if len(row) < width:
            for name in self.columns[len(row) :]:
                fields[name] = None
            ends = (
                ""
                if text.endswith(("\n", "\r"))
                else ("; the file ends in the middle of this record (truncated file?)")
            )
            problems.append(
                f"the record has {len(row)} fields but the header has {width}: "
                f"it is truncated or a delimiter is missing{ends}"
            )
        elif len(row) > width:
            for i, value in enumerate(row[width:], start=1):
                fields[f"_extra_{i}"] = value
            problems.append(
                f"the record has {len(row)} fields but the header has {width}: an unquoted "
                f"{self.spec.delimiter!r} inside a value? (extra values kept as _extra_N)"
            )
        if has_escapes(text):
            fields, bad = clean_escaped(fields, self.encoding, self.encoding_detected)
            problems.extend(bad)
        return RawRecord(number, fields, None, tuple(problems), self.offset)

    def _maybe_cut(self, record: RawRecord, value: str) -> RawRecord:
        """Quarantine a final record that ends without a line break and may have been cut."""
        column = self.columns[-1]
        problem = (
            f"the file ends without a line break inside this record, and its last value "
            f"(column {column!r}: {value.strip()!r}) does not have the shape of that column's "
            "earlier values: it may be truncated (the file cut in its last field). Check "
            "the end of the file; if the record is complete, add a line break at the end "
            "and ingest the file again"
        )
        return RawRecord(
            record.row_number,
            record.fields,
            record.geometry,
            (*record.problems, problem),
            record.offset,
        )

    def _unparsable(self, number: int, text: str, exc: csv.Error) -> RawRecord:
        message = str(exc)
        if "unexpected end of data" in message:
            why = "the file ends inside a quoted value: it is truncated or a quote is unbalanced"
        elif "field larger than field limit" in message:
            why = (
                "a value is longer than the csv field limit: probably an unterminated quote "
                "swallowed the following lines"
            )
        else:
            why = f"{message}: a stray quote inside an unquoted value?"
        problems = [f"cannot parse the record: {why}"]
        clean, bad = replace_escapes(text)
        if bad:
            problems.append(undecodable_problem(None, bad, self.encoding, self.encoding_detected))
        return RawRecord(number, {"_raw": clean}, None, tuple(problems), self.offset)
