"""Open an agency export as a stream of raw records.

:func:`open_source` is the one entry point: it checks the file (present, not empty,
the declared format, the encoding, the profile's columns in the header) and returns a
:class:`SourceReader` for its format. The readers live in ``csv_.py`` and ``json_.py``;
the shared types in ``source.py``.

Examples
--------
>>> from crossbeat.ingest.profile import SourceSpec
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
>>> _ = path.write_text("id,when\\n1,2020-01\\n")
>>> with open_source(path, SourceSpec(format="csv"), required_columns=["id"]) as reader:
...     [(r.row_number, r.fields) for r in reader]
[(1, {'id': '1', 'when': '2020-01'})]
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from crossbeat.ingest.csv_ import CsvReader
from crossbeat.ingest.json_ import GeoJsonReader, JsonLinesReader, JsonReader
from crossbeat.ingest.profile import SourceSpec
from crossbeat.ingest.source import (
    SNIFF_BYTES,
    RawRecord,
    SourceError,
    SourceReader,
    file_sha256,
    resolve_encoding,
)

__all__ = ["RawRecord", "SourceError", "SourceReader", "file_sha256", "open_source"]

_READERS: dict[str, type[SourceReader]] = {
    "csv": CsvReader,
    "jsonl": JsonLinesReader,
    "json": JsonReader,
    "geojson": GeoJsonReader,
}


def open_source(
    path: str | Path, spec: SourceSpec, *, required_columns: Collection[str] = ()
) -> SourceReader:
    """Open a source file for streaming as ``spec`` describes.

    Parameters
    ----------
    path
        The export file.
    spec
        The profile's ``[source]`` section (format, encoding, delimiter, ...).
    required_columns
        Columns the profile reads; any absent from the file is a :class:`SourceError`.

    Returns
    -------
    SourceReader
        A context manager; iterate it once for :class:`RawRecord` objects. A header-only
        file yields no records.

    Raises
    ------
    SourceError
        When the file is missing, empty, not the declared format or encoding, or lacks
        required columns. The message names the next step.
    """
    p = Path(path)
    if not p.exists():
        raise SourceError(f"file not found: {p}")
    if not p.is_file():
        raise SourceError(f"not a file: {p}")
    try:
        binary = open(p, "rb")  # the reader owns and closes it
    except OSError as exc:
        raise SourceError(f"cannot open {p}: {exc.strerror}") from exc
    try:
        head = binary.read(SNIFF_BYTES)
        binary.seek(0)
        if not head:
            raise SourceError(
                f"{p.name} is empty (0 bytes): the export failed or the wrong file was given"
            )
        encoding, detected = resolve_encoding(spec.encoding, head, p)
        reader = _READERS[spec.format](p, spec, binary, encoding, detected)
    except BaseException:
        binary.close()
        raise
    try:
        reader.check_columns(required_columns)
    except BaseException:
        reader.close()
        raise
    return reader
