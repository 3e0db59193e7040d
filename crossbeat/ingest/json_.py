"""Read JSON sources one record at a time: JSON lines, JSON arrays and GeoJSON.

JSON arrays and GeoJSON FeatureCollections are parsed incrementally with ijson, so a
multi-gigabyte export costs the memory of one record. The file is first decoded with
the declared encoding (bytes that do not decode become U+FDD0 marks, reported per
column) and re-encoded as UTF-8 for the parser. JSON has no header, so a reader's
``columns`` are the keys of the first :data:`PEEK_RECORDS` records; nested objects are
kept as JSON text and dotted column names (``location.latitude``) reach into them.
"""

from __future__ import annotations

import codecs
import io
import json
from collections import deque
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import ijson

from crossbeat.geo.crs import CRSError, parse_crs
from crossbeat.ingest.profile import SourceSpec
from crossbeat.ingest.source import (
    _ESCAPE,
    _MARK,
    MAX_LINE_CHARS,
    PEEK_RECORDS,
    SNIFF_BYTES,
    RawRecord,
    SourceError,
    SourceReader,
    clean_escaped,
    replace_escapes,
    sniff,
    undecodable_problem,
)


def _plain(value: Any) -> Any:
    """Return ``value`` with Decimals turned into floats (geometry, nested JSON text)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _plain(value)
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def render(value: Any) -> str | None:
    """Render a JSON value as text: scalars as written, nested values as JSON text.

    Examples
    --------
    >>> render(Decimal("45.514900")), render(True), render(None), render({"a": [1]})
    ('45.514900', 'true', None, '{"a":[1]}')
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return str(value)
    return json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def _error_text(exc: Exception) -> str:
    """Return the first line of a parser error (yajl appends a snippet of the file)."""
    arg = exc.args[0] if exc.args else exc
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


class _Utf8Stream:
    """A binary stream that decodes with ``encoding`` and re-encodes as UTF-8."""

    def __init__(self, binary: BinaryIO, encoding: str) -> None:
        self._binary = binary
        self._decoder = codecs.getincrementaldecoder(encoding)(errors=_MARK)

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        while True:
            chunk = self._binary.read(size if size > 0 else 64 * 1024)
            text = self._decoder.decode(chunk, final=not chunk)
            if text or not chunk:
                return text.encode("utf-8")


class _JsonBase(SourceReader):
    """Shared peeking and column discovery of the JSON readers."""

    nested = True

    def __init__(
        self, path: Path, spec: SourceSpec, binary: BinaryIO, encoding: str, detected: bool
    ) -> None:
        super().__init__(path, spec, binary, encoding, detected)
        head = binary.read(SNIFF_BYTES)
        binary.seek(0)
        self._start = sniff(head, path, encoding)
        self._check_start(self._start)
        self._source = self._produce()
        self._peeked: deque[RawRecord] = deque()
        try:
            for record in self._source:
                self._peeked.append(record)
                if len(self._peeked) >= PEEK_RECORDS:
                    break
            if not self._peeked:
                self._check_empty()
        except BaseException:
            self.close()
            raise
        seen: dict[str, None] = {}
        for record in self._peeked:
            if not record.problems:
                seen.update(dict.fromkeys(record.fields))
        self.columns = list(seen)

    def _check_start(self, start: str) -> None:
        raise NotImplementedError

    def _check_empty(self) -> None:
        """Called when there are no records: raise if the document is not the format."""

    def _produce(self) -> Iterator[RawRecord]:
        raise NotImplementedError

    def _records(self) -> Iterator[RawRecord]:
        while self._peeked:
            yield self._peeked.popleft()
        yield from self._source

    def _column_hint(self) -> str:
        return (
            f" (JSON has no header: the columns are the keys of the first {PEEK_RECORDS} records.)"
        )

    def _fields(self, obj: dict[str, Any]) -> tuple[dict[str, str | None], list[str]]:
        try:
            fields = {str(k): render(v) for k, v in obj.items()}
        except RecursionError:
            return {}, ["the record is nested too deeply to read"]
        fields, problems = clean_escaped(fields, self.encoding, self.encoding_detected)
        return fields, problems


class JsonLinesReader(_JsonBase):
    """Read one JSON object per line (blank lines are skipped)."""

    format = "jsonl"

    def _check_start(self, start: str) -> None:
        if start[:1] == "[":
            raise SourceError(
                f'{self.path.name} is a JSON array, not JSON lines: set source.format = "json"'
            )
        if start and start[:1] != "{":
            raise SourceError(
                f"{self.path.name} is not JSON lines (it does not start with '{{'): "
                "check source.format and source.encoding"
            )

    def close(self) -> None:
        """Close the file."""
        text: io.TextIOWrapper | None = getattr(self, "_text", None)
        if text is not None:
            text.close()
        super().close()

    def _produce(self) -> Iterator[RawRecord]:
        self._text = text = io.TextIOWrapper(self._binary, encoding=self.encoding, errors=_ESCAPE)
        number = 0
        while True:
            line = text.readline(MAX_LINE_CHARS)
            if not line:
                return
            complete = line.endswith("\n")
            overlong = len(line) >= MAX_LINE_CHARS and not complete
            while overlong and line and not line.endswith("\n"):
                line = text.readline(MAX_LINE_CHARS)
            if not overlong and not line.strip():
                continue
            number += 1
            yield self._line_record(number, line, complete, overlong)

    def _line_record(self, number: int, line: str, complete: bool, overlong: bool) -> RawRecord:
        if overlong:
            problem = f"the line is longer than {MAX_LINE_CHARS} characters and was skipped"
            return RawRecord(number, {}, None, (problem,), self.offset)
        problems: list[str] = []
        clean, bad = replace_escapes(line)
        if bad:
            problems.append(undecodable_problem(None, bad, self.encoding, self.encoding_detected))
        try:
            obj = json.loads(clean.strip(), parse_float=Decimal)
        except RecursionError:
            problems.append("the JSON on this line is nested too deeply to read")
            return RawRecord(
                number, {"_raw": clean.rstrip("\r\n")}, None, tuple(problems), self.offset
            )
        except json.JSONDecodeError as exc:
            end = "" if complete else "; the file ends in the middle of this line (truncated?)"
            problems.append(f"invalid JSON: {exc.msg} at character {exc.pos + 1}{end}")
            return RawRecord(
                number, {"_raw": clean.rstrip("\r\n")}, None, tuple(problems), self.offset
            )
        if not isinstance(obj, dict):
            problems.append(f"the line is a JSON {type(obj).__name__}, not an object")
            return RawRecord(
                number, {"_raw": clean.rstrip("\r\n")}, None, tuple(problems), self.offset
            )
        fields, more = self._fields(obj)
        return RawRecord(number, fields, None, tuple(problems + more), self.offset)


class _StreamedJson(_JsonBase):
    """Records found under an ijson prefix of one JSON document."""

    prefix = "item"

    def _produce(self) -> Iterator[RawRecord]:
        stream = _Utf8Stream(self._binary, self.encoding)
        number = 0
        try:
            for item in ijson.items(stream, self.prefix):
                number += 1
                yield self._item(number, item)
        except ijson.JSONError as exc:
            number += 1
            problem = (
                f"the JSON document is broken at about byte {self.offset} of {self.size}: "
                f"{_error_text(exc)}; the file is truncated or not valid JSON "
                f"(the {number - 1} records before this point were read)"
            )
            yield RawRecord(number, {}, None, (problem,), self.offset)

    def _item(self, number: int, item: Any) -> RawRecord:
        if not isinstance(item, dict):
            problem = f"record {number} is a JSON {type(item).__name__}, not an object"
            return RawRecord(number, {"_raw": render(item)}, None, (problem,), self.offset)
        fields, problems = self._fields(item)
        return RawRecord(number, fields, None, tuple(problems), self.offset)

    def _top_level_keys(self) -> tuple[bool, list[str]]:
        """Scan the document again: whether ``prefix`` holds an array, and the top keys."""
        self._binary.seek(0)
        keys: list[str] = []
        found = False
        array_prefix = self.prefix.rsplit(".item", 1)[0] if self.prefix != "item" else ""
        try:
            for prefix, event, value in ijson.parse(_Utf8Stream(self._binary, self.encoding)):
                if prefix == "" and event == "map_key":
                    keys.append(str(value))
                if prefix == array_prefix and event == "start_array":
                    found = True
        except ijson.JSONError as exc:
            raise SourceError(f"{self.path.name} is not valid JSON: {_error_text(exc)}") from exc
        return found, keys


class JsonReader(_StreamedJson):
    """Read a JSON array of objects, or the array under ``source.records_key``."""

    format = "json"

    def _check_start(self, start: str) -> None:
        key = self.spec.records_key
        if start[:1] == "[":
            if key:
                raise SourceError(
                    f"{self.path.name} is a top-level JSON array but source.records_key is "
                    f"{key!r}: remove records_key"
                )
            self.prefix = "item"
        elif start[:1] == "{":
            if not key:
                raise SourceError(
                    f"{self.path.name} is a JSON object, not an array: set source.records_key "
                    'to the key holding the records (or source.format = "jsonl" for one object '
                    'per line, "geojson" for a FeatureCollection)'
                )
            self.prefix = f"{key}.item"
        else:
            raise SourceError(
                f"{self.path.name} is not JSON (it starts with neither '[' nor '{{'): "
                "check source.format and source.encoding"
            )

    def _check_empty(self) -> None:
        if self.prefix == "item":
            return
        found, keys = self._top_level_keys()
        self._binary.seek(0)
        if not found:
            raise SourceError(
                f"{self.path.name} has no array under {self.spec.records_key!r}: the top-level "
                f"keys are {', '.join(repr(k) for k in keys) or '(none)'}; set "
                "source.records_key to the one holding the records"
            )


class GeoJsonReader(_StreamedJson):
    """Read the features of a GeoJSON FeatureCollection.

    ``fields`` are the feature's properties, plus ``@id`` for a feature ``id``;
    ``geometry`` is the GeoJSON geometry with plain floats.
    """

    format = "geojson"
    prefix = "features.item"

    def _check_start(self, start: str) -> None:
        if start[:1] != "{":
            raise SourceError(
                f"{self.path.name} is not GeoJSON (a FeatureCollection object starts with "
                "'{'): check source.format"
            )
        self._check_crs()

    def _check_crs(self) -> None:
        """Refuse a file whose (pre-2016 GeoJSON) ``crs`` member contradicts the profile.

        Only the part of the document before ``features`` is read.
        """
        name = None
        try:
            for prefix, event, value in ijson.parse(_Utf8Stream(self._binary, self.encoding)):
                if prefix == "features" and event == "start_array":
                    break
                if prefix == "crs.properties.name" and event == "string":
                    name = value
                    break
        except ijson.JSONError:
            pass  # reported with the records
        finally:
            self._binary.seek(0)
        if name is None:
            return
        try:
            declared = parse_crs(name)
        except CRSError:
            return
        if not declared.equals(parse_crs(self.spec.crs), ignore_axis_order=True):
            raise SourceError(
                f"{self.path.name} declares its coordinates in {name!r} but the profile says "
                f"source.crs = {self.spec.crs!r}: set source.crs to the file's CRS"
            )

    def _check_empty(self) -> None:
        found, keys = self._top_level_keys()
        self._binary.seek(0)
        if not found:
            raise SourceError(
                f"{self.path.name} is not a GeoJSON FeatureCollection: it has no 'features' "
                f"array (top-level keys: {', '.join(repr(k) for k in keys) or '(none)'})"
            )

    def _item(self, number: int, item: Any) -> RawRecord:
        if not isinstance(item, dict):
            problem = f"feature {number} is a JSON {type(item).__name__}, not an object"
            return RawRecord(number, {"_raw": render(item)}, None, (problem,), self.offset)
        props = item.get("properties")
        problems: list[str] = []
        if props is None:
            props = {}
        elif not isinstance(props, dict):
            problems.append(f"feature {number}'s properties are not an object")
            props = {"_raw": props}
        if item.get("id") is not None:
            props = {**props, "@id": item["id"]}
        fields, more = self._fields(props)
        geometry = item.get("geometry")
        if geometry is not None and not isinstance(geometry, dict):
            problems.append(f"feature {number}'s geometry is not an object")
            geometry = None
        return RawRecord(
            number,
            fields,
            _plain(geometry) if geometry is not None else None,
            tuple(problems + more),
            self.offset,
        )
