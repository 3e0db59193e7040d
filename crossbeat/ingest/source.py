"""What every source reader shares: raw records, file-level errors, encodings.

A reader turns an agency's export into a stream of :class:`RawRecord` objects, one at
a time, so memory does not grow with the file. Problems are sorted by reach:

* file-level problems (missing, empty, not the declared format, the profile's
  columns absent from the header, unknown encoding) raise :class:`SourceError`
  before any record is read, with a message that names the next step;
* record-level problems (undecodable bytes, a wrong number of fields, an invalid JSON
  line, a file that ends inside a record) travel with the record in
  ``RawRecord.problems`` so the pipeline quarantines it: never dropped, never fatal.

Undecodable bytes are caught without losing the rest of the record: decoding uses an
error handler that keeps each bad byte as a marker, and the reader reports the bytes
with the column they were in, then replaces them with U+FFFD.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from charset_normalizer import from_bytes
from rapidfuzz import process, utils

from crossbeat.ingest.profile import SourceSpec

#: How many bytes encoding detection and format sniffing look at.
SNIFF_BYTES = 64 * 1024
#: Longest physical line (characters) a reader holds in memory at once.
MAX_LINE_CHARS = 8 * 1024 * 1024
#: JSON sources have no header: their columns are the keys of this many first records.
PEEK_RECORDS = 50

_ESCAPE = "crossbeat.escape"  # undecodable byte b -> lone surrogate U+DC00 + b
_MARK = "crossbeat.mark"  # undecodable byte -> U+FDD0 (a noncharacter), for JSON
MARK = "\ufdd0"
_ESCAPED = re.compile("[\udc00-\udcff]+")

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook?): export the sheet as CSV"),
    (b"\xd0\xcf\x11\xe0", "an Office document (an .xls workbook?): export the sheet as CSV"),
    (b"\x1f\x8b", "gzip-compressed: decompress it first (gunzip)"),
    (b"%PDF", "a PDF document, not a data export"),
    (b"SQLite format 3\x00", "a SQLite database, not a data export"),
)


def _escape_handler(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    return "".join(chr(0xDC00 + b) for b in bad), exc.end


def _mark_handler(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return MARK * (exc.end - exc.start), exc.end


codecs.register_error(_ESCAPE, _escape_handler)
codecs.register_error(_MARK, _mark_handler)


class SourceError(ValueError):
    """A file-level problem: the file cannot be read as the profile says."""


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as read, before any interpretation.

    ``row_number`` counts data records from 1 (CSV: the first row after the header;
    JSON: the first object or feature). ``fields`` holds text exactly as read (JSON
    scalars rendered to text, nested JSON as JSON text, JSON null as ``None``).
    ``problems`` are record-level read problems: the pipeline quarantines the record.
    ``offset`` is how many bytes of the file have been consumed (for progress bars;
    accurate to the read buffer). ``occurrence`` is set only on a quarantined record
    being retried whose id is a hash: its occurrence number within its file, as
    counted when the file was read.
    """

    row_number: int
    fields: dict[str, str | None]
    geometry: dict | None = None
    problems: tuple[str, ...] = ()
    offset: int = 0
    occurrence: int | None = None


def display_encoding(encoding: str) -> str:
    """Return the user-facing name of a codec (``utf-8-sig`` is just ``utf-8``)."""
    name = codecs.lookup(encoding).name
    return "utf-8" if name == "utf-8-sig" else name


def resolve_encoding(declared: str, head: bytes, path: Path) -> tuple[str, bool]:
    """Return the codec to decode a file with, and whether it was detected.

    Parameters
    ----------
    declared
        ``source.encoding``: a Python codec name, or ``auto``.
    head
        The first bytes of the file.
    path
        The file, for messages.

    Returns
    -------
    tuple
        ``(codec, detected)``. UTF-8 is returned as ``utf-8-sig`` so a byte-order mark
        is skipped either way.

    Raises
    ------
    SourceError
        For an unknown codec, a byte-order mark contradicting the declared encoding,
        or a file whose encoding cannot be detected.
    """
    bom = next((enc for mark, enc in _BOMS if head.startswith(mark)), None)
    if declared.lower() != "auto":
        try:
            name = codecs.lookup(declared).name
        except LookupError as exc:
            raise SourceError(
                f"unknown encoding {declared!r} in source.encoding: use a Python codec name "
                "such as 'utf-8', 'cp1252' or 'latin-1', or 'auto' to detect it"
            ) from exc
        if bom and not name.startswith("utf-8" if bom == "utf-8-sig" else bom):
            raise SourceError(
                f"{path.name} starts with a {display_encoding(bom)} byte-order mark but "
                f"source.encoding is {declared!r}: set source.encoding = "
                f'"{display_encoding(bom)}" (or "auto")'
            )
        return ("utf-8-sig" if name == "utf-8" else name), False
    if bom:
        return bom, True
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < SNIFF_BYTES)
        return "utf-8-sig", True
    except UnicodeDecodeError:
        pass
    matches = from_bytes(head)
    best = matches.best()
    if best is None:
        raise SourceError(
            f"cannot detect the text encoding of {path.name} (binary file?): "
            "set source.encoding to the file's encoding, e.g. 'cp1252'"
        )
    # Windows-1252 is by far the most common non-UTF-8 export encoding; on short or
    # mostly-ASCII samples the detector cannot tell it from cp1250/cp850, so prefer it
    # whenever it reads the sample (almost) as cleanly as the best guess.
    for match in matches:
        if "cp1252" in match.could_be_from_charset and match.chaos <= best.chaos + 0.01:
            return "cp1252", True
    return codecs.lookup(best.encoding).name, True


def sniff(head: bytes, path: Path, encoding: str) -> str:
    """Refuse binary files and return the first characters of the text.

    Raises
    ------
    SourceError
        When the file is a known binary format or holds NUL bytes in an 8-bit encoding.
    """
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise SourceError(f"{path.name} is {what}")
    name = codecs.lookup(encoding).name
    if b"\x00" in head and not name.startswith(("utf-16", "utf-32")):
        raise SourceError(
            f"{path.name} contains NUL bytes: it is binary, or UTF-16 without a byte-order "
            'mark (then set source.encoding = "utf-16-le" or "utf-16-be")'
        )
    return head.decode(encoding, errors="replace").lstrip("\ufeff \t\r\n")


def undecodable_problem(
    column: str | None, bad: bytes | None, encoding: str, detected: bool
) -> str:
    """Return the record problem for bytes that do not decode with ``encoding``."""
    where = f"column {column!r} has" if column else "the record has"
    which = f" ({' '.join(f'0x{b:02X}' for b in bad[:8])})" if bad else ""
    if detected:  # source.encoding is already "auto": the detection was wrong
        return (
            f"{where} bytes that are not valid {display_encoding(encoding)} (detected from "
            f"the start of the file){which}: the file changes encoding further on; set "
            'source.encoding to the encoding of the whole file (e.g. "cp1252") instead of '
            '"auto"'
        )
    return (
        f"{where} bytes that are not valid {display_encoding(encoding)}{which}: the file "
        'is in another encoding; set source.encoding to it (e.g. "cp1252") or to "auto"'
    )


def clean_escaped(
    fields: dict[str, str | None], encoding: str, detected: bool
) -> tuple[dict[str, str | None], list[str]]:
    """Replace escaped undecodable bytes in ``fields`` and describe them.

    Returns
    -------
    tuple
        The fields with U+FFFD in place of each bad byte (surrogate escapes or
        U+FDD0 marks), and one problem per affected column.
    """
    problems: list[str] = []
    out: dict[str, str | None] = {}
    for key, value in fields.items():
        if value is not None and has_escapes(value):
            value, bad = replace_escapes(value)
            problems.append(undecodable_problem(key, bad, encoding, detected))
        out[key] = value
    return out, problems


def has_escapes(text: str) -> bool:
    """Return True when ``text`` holds escaped undecodable bytes."""
    return MARK in text or _ESCAPED.search(text) is not None


def replace_escapes(text: str) -> tuple[str, bytes]:
    """Return ``text`` with escapes replaced by U+FFFD, and the escaped bytes."""
    bad = bytes(ord(c) - 0xDC00 for c in "".join(_ESCAPED.findall(text)))
    clean = _ESCAPED.sub(lambda m: "\ufffd" * len(m.group()), text).replace(MARK, "\ufffd")
    return clean, bad


class SourceReader:
    """Base of the format readers: a context manager yielding :class:`RawRecord`.

    Readers are single-pass: iterate once. ``columns`` is the header (CSV) or the
    keys seen in the first records (JSON sources); ``size`` is the file size in bytes.
    """

    format = ""
    #: Whether dotted column names reach into nested JSON objects.
    nested = False

    def __init__(
        self, path: Path, spec: SourceSpec, binary: BinaryIO, encoding: str, detected: bool
    ) -> None:
        self.path = path
        self.spec = spec
        self.size = path.stat().st_size
        self.encoding = encoding
        self.encoding_detected = detected
        self.columns: list[str] = []
        self._binary = binary
        self._iterated = False

    def __enter__(self) -> SourceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._binary.close()

    @property
    def offset(self) -> int:
        """Return how many bytes have been consumed so far."""
        try:
            return self._binary.tell()
        except ValueError:  # closed
            return self.size

    def __iter__(self) -> Iterator[RawRecord]:
        if self._iterated:
            raise RuntimeError("a SourceReader can be iterated only once; open the file again")
        self._iterated = True
        return self._records()

    def _records(self) -> Iterator[RawRecord]:
        raise NotImplementedError

    def has_column(self, column: str) -> bool:
        """Return True when the file holds ``column`` (or its top-level JSON key)."""
        if column in self.columns:
            return True
        return self.nested and "." in column and column.split(".", 1)[0] in self.columns

    def check_columns(self, required: Collection[str]) -> None:
        """Raise :class:`SourceError` naming every required column the file lacks."""
        missing = sorted(c for c in set(required) if not self.has_column(c))
        if not missing:
            return
        hints = []
        for col in missing:
            match = process.extractOne(
                col, self.columns, processor=utils.default_process, score_cutoff=80
            )
            if match:
                hints.append(f"{col!r} -> {match[0]!r}?")
        msg = (
            f"{self.path.name} does not match the profile: column(s) "
            f"{', '.join(repr(c) for c in missing)} are not in the file. "
            f"The file's columns are: {', '.join(repr(c) for c in self.columns) or '(none)'}."
        )
        if hints:
            msg += f" Near matches: {'; '.join(hints)}."
        msg += self._column_hint()
        msg += " Fix the column names in the profile (they are case-sensitive)."
        raise SourceError(msg)

    def _column_hint(self) -> str:
        return ""


def file_sha256(path: str | Path) -> str:
    """Return the hex SHA-256 of a file, read in chunks.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    str
        64 hex digits.
    """
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
