"""Draft a source profile for an export nobody has described yet.

:func:`draft_profile` inspects an agency export and writes a *draft* profile: the
format and encoding from the content, then, from a sample read through the pipeline's
own readers (so columns are named exactly as the ingest will see them), the id column,
the date columns and their formats, the coordinates and their CRS, the offence column
and the crosswalk that maps most of its values, the address, location type, status,
disposition, narrative and person columns. Every guess carries a comment saying why;
what the draft cannot decide is left as a ``TODO`` comment, never silently wrong (a
projected CRS it cannot identify leaves x/y commented out, a missing time zone is
written as UTC with a TODO). The draft is valid: ``crossbeat profile check`` reads the
file with it (and refuses it, as the ingest does, until every TODO is settled), and
:func:`draft_profile` runs that check on the sampled rows itself.

The guessers live in :mod:`~crossbeat.ingest.draft.columns`,
:mod:`~crossbeat.ingest.draft.dates`, :mod:`~crossbeat.ingest.draft.location` and
:mod:`~crossbeat.ingest.draft.offences`; :mod:`~crossbeat.ingest.draft.plan` lays out
the profile and :mod:`~crossbeat.ingest.draft.render` writes it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import ijson

from crossbeat.clock import Clock, SystemClock
from crossbeat.geo.crs import CRSError, parse_crs
from crossbeat.ingest.check import check_profile, kind_of
from crossbeat.ingest.draft.columns import NULLS, Column, DraftError, Sample
from crossbeat.ingest.draft.plan import plan_sections
from crossbeat.ingest.draft.render import Section, render
from crossbeat.ingest.json_ import _Utf8Stream
from crossbeat.ingest.json_ import render as render_json
from crossbeat.ingest.profile import Profile, ProfileError, SourceSpec, parse_profile
from crossbeat.ingest.readers import SourceError, open_source
from crossbeat.ingest.source import SNIFF_BYTES, display_encoding, resolve_encoding, sniff

__all__ = ["Draft", "DraftError", "Finding", "detect_layout", "draft_profile", "read_sample"]

#: The formats ``--format`` accepts (``tsv`` is CSV with a tab delimiter).
FORMATS = ("csv", "tsv", "jsonl", "json", "geojson")
#: How many sampled rows the draft checks itself against with ``profile check``.
CHECK_ROWS = 1000
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_AGENCY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class Finding:
    """One thing the draft guessed, could not decide (``todo``) or noticed (``note``)."""

    kind: Literal["guess", "todo", "note"]
    #: The profile key it concerns (``occurred_from``, ``location.crs`` ...).
    key: str
    message: str


@dataclass
class Layout:
    """How the file is laid out, as far as the bytes tell."""

    format: str
    encoding: str
    delimiter: str = ","
    records_key: str | None = None
    crs: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Draft:
    """A drafted profile: its TOML text, what was guessed, and how it reads the sample."""

    text: str
    profile: Profile
    findings: list[Finding]
    format: str
    encoding: str
    #: Records sampled to draft from.
    sampled: int
    #: Of the first rows, how many ``profile check`` would store and how many it refuses.
    checked: int = 0
    stored: int = 0

    @property
    def todos(self) -> list[Finding]:
        """Return the findings a person must settle before ingesting."""
        return [f for f in self.findings if f.kind == "todo"]


def draft_profile(
    path: str | Path,
    *,
    format: str | None = None,
    name: str | None = None,
    agency: str | None = None,
    timezone: str | None = None,
    sample_rows: int = 2000,
    clock: Clock | None = None,
) -> Draft:
    """Draft a source profile for an export, from its content.

    Parameters
    ----------
    path
        The agency's export file.
    format
        ``csv``, ``tsv``, ``jsonl``, ``json`` or ``geojson``; default: detected.
    name
        The profile name (default: from the file name).
    agency
        The agency id the feed belongs to, written as ``agency``.
    timezone
        The IANA zone of local times in the file, when the user knows it.
    sample_rows
        How many first records to inspect.
    clock
        What "now" is when judging dates plausible (default: the system clock).

    Returns
    -------
    Draft
        The TOML text (valid: it parses with :func:`~crossbeat.ingest.profile.parse_profile`),
        the parsed profile, the findings, and how many of the first rows it would store.

    Raises
    ------
    DraftError
        For bad arguments and files that cannot be drafted from: missing, empty, binary,
        not a known format, without records. The message is one line naming the next step.
    """
    p = Path(path)
    name = _check_arguments(p, name, agency, timezone, format, sample_rows)
    layout = detect_layout(p, format)
    spec = SourceSpec(
        format=layout.format,  # type: ignore[arg-type]
        encoding=layout.encoding,
        delimiter=layout.delimiter,
        records_key=layout.records_key,
        crs=layout.crs or "EPSG:4326",
    )
    sample, top_columns = read_sample(p, spec, sample_rows)
    now = (clock or SystemClock()).now()
    sections, preamble, notes = plan_sections(
        sample,
        layout_notes=layout.notes,
        source=spec,
        top_columns=top_columns,
        file_name=p.name,
        name=name,
        agency=agency,
        timezone=timezone,
        now=now,
    )
    text = render(sections, preamble)
    try:
        profile = parse_profile(text, source=f"draft for {p.name}")
    except ProfileError as exc:  # pragma: no cover - a bug in the drafting code
        raise RuntimeError(f"the drafted profile is invalid: {exc}") from exc
    findings = _findings(sections) + [Finding("note", "", n) for n in notes]
    draft = Draft(text, profile, findings, layout.format, layout.encoding, len(sample.rows))
    _self_check(draft, p, agency, sample_rows, clock)
    return draft


def _check_arguments(
    path: Path,
    name: str | None,
    agency: str | None,
    timezone: str | None,
    fmt: str | None,
    sample_rows: int,
) -> str:
    if fmt is not None and fmt not in FORMATS:
        raise DraftError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if agency is not None and not _AGENCY.match(agency):
        raise DraftError(
            f"invalid agency id {agency!r}: use 1-64 lower-case letters, digits, '-' or '_'"
        )
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise DraftError(
                f"unknown time zone {timezone!r}: give an IANA zone such as "
                "'America/Los_Angeles' or 'Europe/London'"
            ) from None
    if sample_rows < 1:
        raise DraftError("sample_rows must be at least 1")
    if name is None:
        name = re.sub(r"[^a-z0-9_.-]+", "-", path.stem.lower()).strip("-._") or "draft"
        name = name if _NAME.match(name) else f"draft-{name}"
    if not _NAME.match(name):
        raise DraftError(
            f"invalid profile name {name!r}: use lower-case letters, digits and _ . - "
            "(starting with a letter or digit)"
        )
    return name


# -- the file's layout -------------------------------------------------------------------
def detect_layout(path: Path, fmt: str | None = None) -> Layout:
    """Return the format, encoding and format details of a file, from its content.

    Raises
    ------
    DraftError
        When the file is missing, empty, binary or not a format CrossBeat reads.
    """
    if not path.exists():
        raise DraftError(f"file not found: {path}: give the path of the agency's export file")
    if not path.is_file():
        raise DraftError(f"not a file: {path}: give the export file itself, not a folder")
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if not head:
        raise DraftError(
            f"{path.name} is empty (0 bytes): the export failed or the wrong file was given; "
            "export it again"
        )
    try:
        sniff(head, path, "latin-1")  # refuses ZIP, Excel, PDF ... and NUL bytes
        encoding, _ = resolve_encoding("auto", head, path)
        text = sniff(head, path, encoding)
    except SourceError as exc:
        message = str(exc)
        if "encoding" in message:
            message = (
                f"cannot tell the text encoding of {path.name}: it is not a text export "
                "(binary file?); export the data as CSV or JSON"
            )
        raise DraftError(message) from exc
    if not text.strip():
        raise DraftError(f"{path.name} holds only blank space: export it again with its data")
    shown = display_encoding(encoding)
    layout = Layout("csv", shown)
    layout.notes.append(f"encoding {shown} detected from the first bytes")
    if fmt in ("json", "jsonl", "geojson") or (fmt is None and text[:1] in "{["):
        _json_layout(path, encoding, text, fmt, layout)
    else:
        layout.delimiter = "\t" if fmt == "tsv" else _delimiter(text, len(head) < SNIFF_BYTES)
    return layout


def _delimiter(text: str, complete: bool) -> str:
    """Return the delimiter that splits the first lines into the most, equal fields."""
    lines = text.splitlines(keepends=True)[:200]
    if not complete and len(lines) > 1:
        lines = lines[:-1]  # the last line of a 64 KiB head may be cut short
    best, best_score = ",", (0.0, 0)
    for delimiter in _DELIMITERS:
        try:
            widths = [len(r) for r in csv.reader(io.StringIO("".join(lines)), delimiter=delimiter)]
        except csv.Error:
            continue
        widths = [w for w in widths if w > 0]
        if not widths or widths[0] < 2:
            continue
        same = sum(w == widths[0] for w in widths) / len(widths)
        score = (round(same, 2), widths[0])
        if same >= 0.9 and score > best_score:
            best, best_score = delimiter, score
    return best


def _json_layout(path: Path, encoding: str, text: str, fmt: str | None, layout: Layout) -> None:
    first, _, rest = text.partition("\n")
    try:
        obj: Any = json.loads(first)
    except ValueError:
        obj = None
    if fmt == "jsonl" or (fmt is None and isinstance(obj, dict) and rest.lstrip()[:1] == "{"):
        layout.format = "jsonl"
        return
    if text[:1] == "[" and fmt in (None, "json"):
        layout.format = "json"
        return
    found, crs, is_collection = _scan_json(path, encoding)
    if fmt == "geojson" or is_collection or (fmt is None and found == "features"):
        layout.format = "geojson"
        layout.crs = _declared_crs(crs, path, layout)
        return
    if found is None:
        if fmt is None and isinstance(obj, dict):
            layout.format = "jsonl"  # one object: a JSON lines file of one record
            return
        raise DraftError(
            f"{path.name} is a JSON object without an array of records: CrossBeat reads "
            "JSON lines, an array of objects, an object holding one, or a GeoJSON "
            "FeatureCollection; export the records in one of those"
        )
    layout.format = "json"
    layout.records_key = found or None
    if found:
        layout.notes.append(f"the records are the array under {found!r}")


def _scan_json(path: Path, encoding: str) -> tuple[str | None, str | None, bool]:
    """Return the key of the first array of objects, the declared CRS, and whether it is
    a FeatureCollection."""
    found: str | None = None
    crs: str | None = None
    collection = False
    with open(path, "rb") as fh:
        try:
            for count, (prefix, event, value) in enumerate(ijson.parse(_Utf8Stream(fh, encoding))):
                if prefix == "type" and value == "FeatureCollection":
                    collection = True
                elif prefix == "crs.properties.name" and isinstance(value, str):
                    crs = value
                elif event == "start_map" and (prefix == "item" or prefix.endswith(".item")):
                    found = prefix[:-5] if prefix != "item" else ""
                    break
                if count > 1_000_000:
                    break
        except ijson.JSONError as exc:
            raise DraftError(
                f"{path.name} is not valid JSON ({exc.__class__.__name__}): check that the "
                "export finished, or export it again"
            ) from exc
    return found, crs, collection


def _declared_crs(name: str | None, path: Path, layout: Layout) -> str | None:
    if name is None:
        return None
    try:
        code = parse_crs(name).to_epsg()
    except CRSError:
        layout.notes.append(f"TODO: {path.name} declares the CRS {name!r}, which is not known")
        return None
    if code is None:
        return None
    layout.notes.append(f"the file declares its CRS: {name!r}")
    return f"EPSG:{code}"


# -- the sample ------------------------------------------------------------------------
def read_sample(path: Path, spec: SourceSpec, rows: int) -> tuple[Sample, list[str]]:
    """Read the first records through the pipeline's reader, flattening nested JSON.

    Returns
    -------
    tuple
        The :class:`Sample` and the reader's own (top-level) column names.
    """
    try:
        reader = open_source(path, spec)
    except SourceError as exc:
        raise DraftError(str(exc)) from exc
    values: dict[str, list[str]] = {}
    blank: dict[str, int] = {}
    sample_rows: list[dict[str, str]] = []
    geometries: list[dict] = []
    problems = 0
    with reader:
        top = list(reader.columns)
        for name in top:
            values.setdefault(name, [])
        for rec in reader:
            if rec.row_number > rows:
                break
            if rec.problems:
                problems += 1
                continue
            fields = dict(_flatten(rec.fields)) if reader.nested else rec.fields
            row = _clean(fields)
            for name in row:
                values.setdefault(name, [])
            sample_rows.append(row)
            if rec.geometry is not None:
                geometries.append(rec.geometry)
    if not sample_rows:
        raise DraftError(
            f"{path.name} has no readable records"
            + (f" ({problems} records have read problems)" if problems else "")
            + ": draft from an export that holds data"
        )
    for name in values:
        col = [row[name] for row in sample_rows if name in row]
        values[name] = col
        blank[name] = len(sample_rows) - len(col)
    columns = {n: Column(n, v, blank[n]) for n, v in values.items() if not _is_nested(n, values)}
    return Sample(columns, sample_rows, geometries, problems), top


def _is_nested(name: str, values: dict[str, list[str]]) -> bool:
    """Whether ``name`` is a nested object whose parts are columns of their own."""
    return not values[name] and any(n.startswith(name + ".") for n in values)


def _clean(fields: dict[str, str | None]) -> dict[str, str]:
    row = {}
    for name, value in fields.items():
        text = (value or "").strip()
        if text.casefold() not in NULLS:
            row[name] = text
    return row


def _flatten(fields: dict[str, str | None]) -> Iterator[tuple[str, str | None]]:
    for name, value in fields.items():
        if value and value[:1] in "{[":
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict | list):
                yield from _walk(name, parsed, 0)
                continue
        yield name, value


def _walk(prefix: str, value: Any, depth: int) -> Iterator[tuple[str, str | None]]:
    if isinstance(value, dict) and depth < 4:
        for key, inner in value.items():
            yield from _walk(f"{prefix}.{key}", inner, depth + 1)
    elif isinstance(value, list) and 0 < len(value) <= 4 and depth < 4:
        for i, inner in enumerate(value):
            yield from _walk(f"{prefix}.{i}", inner, depth + 1)
    else:
        yield prefix, render_json(value)


# -- findings and the self-check -------------------------------------------------------------
def _findings(sections: list[Section]) -> list[Finding]:
    found = []
    for section in sections:
        where = section.header.strip("[]")
        texts = [(where, n) for n in section.notes]
        texts += [
            (".".join(p for p in (where, e.key or "") if p), e.comment) for e in section.entries
        ]
        for key, text in texts:
            if text.startswith("TODO"):
                found.append(Finding("todo", key, text.removeprefix("TODO: ")))
            elif text.startswith("guess"):
                found.append(Finding("guess", key, text.removeprefix("guess: ")))
    return found


def _self_check(
    draft: Draft, path: Path, agency: str | None, sample_rows: int, clock: Clock | None
) -> None:
    limit = min(sample_rows, CHECK_ROWS)
    report = check_profile(
        draft.profile, path, agency_id=agency or "draft", limit=limit, scan=False, clock=clock
    )
    if report.error:  # pragma: no cover - the sample was read with the same reader
        draft.findings.append(Finding("todo", "", f"profile check: {report.error}"))
        return
    draft.checked = report.total
    draft.stored = report.total - report.rejected
    message = f"profile check on the first {report.total} rows: {draft.stored} would be stored"
    if report.rejected:
        reasons = "; ".join(f"{n} x {r}" for r, n in report.reasons.most_common(3))
        message += f", {report.rejected} quarantined ({reasons})"
    kind: Literal["note", "todo"] = "todo" if report.rejected > report.total / 10 else "note"
    draft.findings.append(Finding(kind, "", message))
    for warning, n in report.warnings.most_common(2):
        draft.findings.append(Finding("note", "", f"{n} rows warn: {kind_of(warning)}"))
