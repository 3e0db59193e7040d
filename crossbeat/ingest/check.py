"""Check a source profile against a file before ingesting it.

:func:`check_profile` answers "does this profile read this file the way I think?":
the header against the profile's columns, the first rows exactly as they would be
stored (or every reason they would be quarantined), and, over the whole file, how
many rows would be stored, withdrawn or quarantined and why, which offence codes the
crosswalk does not map, and which source ids repeat. Nothing is written anywhere.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from crossbeat.clock import Clock
from crossbeat.ingest.normalise import Normalised, Normaliser, Rejected, Updated
from crossbeat.ingest.profile import Profile, ProfileError
from crossbeat.ingest.readers import SourceError, open_source
from crossbeat.ingest.source import display_encoding

#: How many distinct source ids the duplicate check remembers (8 bytes each).
MAX_TRACKED_IDS = 2_000_000
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True, slots=True)
class CheckRow:
    """One of the first rows: the flat stored fields, or the reasons it is refused."""

    row_number: int
    stored: dict[str, Any] | None
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass
class CheckReport:
    """What :func:`check_profile` found.

    ``matches`` is False when the file cannot be read as the profile says: a file
    error, columns the profile needs that the file lacks, or every row refused.
    """

    profile: str
    path: str
    agency_id: str
    format: str
    encoding: str | None = None
    columns: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    unused_columns: list[str] = field(default_factory=list)
    error: str | None = None
    rows: list[CheckRow] = field(default_factory=list)
    scanned: bool = False
    total: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    unmapped: Counter[str] = field(default_factory=Counter)
    duplicates_complete: bool = True

    @property
    def matches(self) -> bool:
        """Whether the profile reads the file (no file error, no missing columns...)."""
        if self.error or self.missing_columns:
            return False
        return not (self.total and self.rejected == self.total)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "profile": self.profile,
            "path": self.path,
            "agency": self.agency_id,
            "format": self.format,
            "encoding": self.encoding,
            "matches": self.matches,
            "error": self.error,
            "columns": self.columns,
            "missing_columns": self.missing_columns,
            "unused_columns": self.unused_columns,
            "rows": [
                {
                    "row_number": r.row_number,
                    "stored": r.stored,
                    "reasons": list(r.reasons),
                    "warnings": list(r.warnings),
                }
                for r in self.rows
            ],
            "scanned": self.scanned,
            "total": self.total,
            "actions": dict(self.actions),
            "rejected": self.rejected,
            "reasons": dict(self.reasons.most_common()),
            "warnings": dict(self.warnings.most_common()),
            "unmapped": dict(self.unmapped.most_common()),
            "duplicates_complete": self.duplicates_complete,
        }


def kind_of(message: str) -> str:
    """Return a message with its values masked, to count messages of one kind.

    Examples
    --------
    >>> kind_of("occurred_from: column 'Month': '2020-13' is not a valid date")
    'occurred_from: column …: … is not a valid date'
    """
    return _NUMBER.sub("N", _QUOTED.sub("…", message))


def stored_fields(result: Normalised | Updated) -> dict[str, Any]:
    """Return the fields a normalised record would be stored with, flattened for display."""
    if isinstance(result, Updated):
        u = result.update
        return {
            "action": "update",
            "source_id": u.source_id,
            "as_of": u.as_of.isoformat(),
            "time_precision": u.time_precision.value,
            "status": u.status,
            "disposition": u.disposition,
            "raw_hash": u.provenance.raw_hash if u.provenance else None,
        }
    inc = result.incident
    loc = inc.location
    persons = ", ".join(
        p.role.value + (f" ({p.age})" if p.age is not None else "") for p in inc.personal.persons
    )
    return {
        "action": result.action,
        "source_id": inc.source_id,
        "occurred_from": inc.occurred_from.isoformat() if inc.occurred_from else None,
        "occurred_to": inc.occurred_to.isoformat() if inc.occurred_to else None,
        "time_precision": inc.time_precision.value,
        "reported_at": inc.reported_at.isoformat() if inc.reported_at else None,
        "offences": [
            f"{o.local_code} -> {o.nibrs_code or o.crime_against or '?'} ({o.match or 'unmapped'})"
            for o in inc.offences
        ],
        "lat": loc.lat,
        "lon": loc.lon,
        "location_precision": loc.precision.value,
        "block_address": loc.block_address,
        "location_type": loc.location_type,
        "location_type_local": loc.location_type_local,
        "status": inc.status,
        "disposition": inc.disposition,
        "sensitivity": sorted(s.value for s in inc.sensitivity),
        "attributes": inc.attributes,
        "private_full_address": inc.personal.full_address,
        "private_narrative": inc.personal.narrative,
        "private_persons": persons or None,
        "raw_hash": inc.provenance.raw_hash if inc.provenance else None,
    }


def check_profile(
    profile: Profile,
    path: str | Path,
    *,
    agency_id: str,
    limit: int = 10,
    scan: bool = True,
    clock: Clock | None = None,
) -> CheckReport:
    """Check how a profile reads a file, without storing anything.

    Parameters
    ----------
    profile
        The validated profile.
    path
        The export file.
    agency_id
        The agency the rows would belong to.
    limit
        How many first rows to show as they would be stored.
    scan
        Also read the whole file and count outcomes, reasons and unmapped codes.
    clock
        Decides what "in the future" means (default: the system clock).

    Returns
    -------
    CheckReport
        Everything found; ``report.matches`` says whether the profile fits the file.
    """
    report = CheckReport(profile.name, str(path), agency_id, profile.source.format)
    try:
        reader = open_source(path, profile.source)
    except SourceError as exc:
        report.error = str(exc)
        return report
    with reader:
        report.encoding = display_encoding(reader.encoding)
        report.columns = list(reader.columns)
        needed = profile.referenced_columns()
        report.missing_columns = sorted(c for c in needed if not reader.has_column(c))
        tops = {c.split(".", 1)[0] if reader.nested else c for c in needed}
        report.unused_columns = [c for c in reader.columns if c not in tops and c not in needed]
        try:
            normaliser = Normaliser(profile, agency_id, source_file=str(path), clock=clock)
        except ProfileError as exc:
            report.error = str(exc)
            return report
        _scan(report, reader, normaliser, profile, limit, scan)
    return report


def _scan(
    report: CheckReport,
    reader: Any,
    normaliser: Normaliser,
    profile: Profile,
    limit: int,
    scan: bool,
) -> None:
    first_rows: dict[bytes, int] = {}
    agencies = {k.strip().casefold() for k in profile.agency_map}
    for rec in reader:
        if not scan and rec.row_number > limit:
            break
        report.total += 1
        result = normaliser.normalise(rec)
        if isinstance(result, Normalised):
            why = _agency_problem(profile, agencies, rec.fields) or _duplicate(
                report, first_rows, result.incident.source_id, rec.row_number
            )
            if why:
                result = Rejected(rec.row_number, dict(rec.fields), (why,))
        if isinstance(result, Rejected):
            report.rejected += 1
            report.reasons.update({kind_of(r) for r in result.reasons})
            row = CheckRow(rec.row_number, None, result.reasons)
        elif isinstance(result, Updated):
            report.actions["update"] += 1
            report.warnings.update({kind_of(w) for w in result.warnings})
            row = CheckRow(rec.row_number, stored_fields(result), (), result.warnings)
        else:
            report.actions[result.action] += 1
            report.warnings.update({kind_of(w) for w in result.warnings})
            for o in result.incident.offences:
                if not o.mapped:
                    report.unmapped[f"{o.scheme}: {o.local_code}"] += 1
            row = CheckRow(rec.row_number, stored_fields(result), (), result.warnings)
        if len(report.rows) < limit:
            report.rows.append(row)
    report.scanned = scan


def _agency_problem(profile: Profile, agencies: set[str], fields: dict) -> str | None:
    """Mirror the pipeline's routing of multi-agency feeds."""
    if not profile.agency_column:
        return None
    value = (fields.get(profile.agency_column) or "").strip()
    if value.casefold() in agencies:
        return None
    return (
        f"agency: column {profile.agency_column!r} value {value!r} is not in the profile's "
        "agency_map"
    )


def _duplicate(
    report: CheckReport, first_rows: dict[bytes, int], source_id: str, row: int
) -> str | None:
    """Mirror the pipeline: a repeated id in one file is quarantined, the first kept."""
    key = hashlib.blake2b(source_id.encode(), digest_size=8).digest()
    first = first_rows.get(key)
    if first is not None:
        return (
            f"id: duplicate source id {source_id!r}: the same id is already at row {first} "
            "of this file; the first occurrence would be kept"
        )
    if len(first_rows) < MAX_TRACKED_IDS:
        first_rows[key] = row
    else:
        report.duplicates_complete = False
    return None


def render_report(report: CheckReport, console: Console) -> None:
    """Print a check report as readable tables.

    Parameters
    ----------
    report
        The result of :func:`check_profile`.
    console
        Where to print (a :class:`rich.console.Console`).
    """
    verdict = "[green]matches[/]" if report.matches else "[bold red]does NOT match[/]"
    console.print(
        f"Profile [bold]{report.profile}[/] {verdict} [bold]{report.path}[/] "
        f"({report.format}, encoding {report.encoding or '?'}, agency {report.agency_id})"
    )
    if report.error:
        console.print(f"[bold red]Error:[/] {report.error}", markup=True, highlight=False)
    if report.missing_columns:
        console.print(
            "[bold red]Columns the profile needs but the file lacks:[/] "
            + ", ".join(report.missing_columns),
            highlight=False,
        )
        console.print("File columns: " + ", ".join(report.columns), highlight=False)
    if report.unused_columns:
        console.print(
            "[dim]File columns the profile does not use: " + ", ".join(report.unused_columns),
            highlight=False,
        )
    if report.rows:
        console.print(_rows_table(report.rows))
    if report.scanned:
        _render_scan(report, console)


def _rows_table(rows: list[CheckRow]) -> Table:
    table = Table(title="First rows as they would be stored", show_lines=True)
    for name in ("row", "id / action", "occurred", "offences", "location", "other"):
        table.add_column(name, overflow="fold")
    for row in rows:
        if row.stored is None:
            table.add_row(
                str(row.row_number),
                "[red]quarantined[/]",
                "[red]" + "\n".join(row.reasons) + "[/]",
                "",
                "",
                "",
            )
            continue
        s = row.stored
        if s["action"] == "update":
            other = [f"{k}: {s[k]}" for k in ("status", "disposition") if s[k]]
            other += [f"[yellow]{w}[/]" for w in row.warnings]
            table.add_row(
                str(row.row_number),
                f"{s['source_id']}\nupdate",
                f"as of {s['as_of']}\n({s['time_precision']})",
                "",
                "",
                "\n".join(other),
            )
            continue
        occurred = (
            f"{s['occurred_from']}\n"
            + (f"-> {s['occurred_to']}\n" if s["occurred_to"] else "")
            + f"({s['time_precision']})"
        )
        where = (
            f"{s['lat']}, {s['lon']} ({s['location_precision']})\n{s['block_address'] or ''}"
            f"\ntype {s['location_type'] or '-'} ({s['location_type_local'] or '-'})"
        )
        other = [f"sensitivity: {', '.join(s['sensitivity']) or '-'}"]
        other += [f"{k}: {s[k]}" for k in ("status", "disposition") if s[k]]
        other += [f"{k}: {v}" for k, v in s["attributes"].items()]
        other += [f"[yellow]{w}[/]" for w in row.warnings]
        table.add_row(
            str(row.row_number),
            f"{s['source_id']}\n{s['action']}",
            occurred,
            "\n".join(s["offences"]),
            where,
            "\n".join(other),
        )
    return table


def _render_scan(report: CheckReport, console: Console) -> None:
    actions = ", ".join(f"{n} {a}" for a, n in report.actions.most_common())
    console.print(
        f"Whole file: {report.total} rows; would store: {actions or 'none'}; "
        f"would quarantine: {report.rejected}",
        highlight=False,
    )
    for title, counter in (
        ("Quarantine reasons", report.reasons),
        ("Warnings", report.warnings),
        ("Unmapped offence codes (stored, flagged)", report.unmapped),
    ):
        if not counter:
            continue
        table = Table(title=title)
        table.add_column("rows", justify="right")
        table.add_column("what", overflow="fold")
        for text, count in counter.most_common(15):
            table.add_row(str(count), text)
        if len(counter) > 15:
            table.add_row("...", f"{len(counter) - 15} more (see --json)")
        console.print(table)
    if not report.duplicates_complete:
        console.print(f"[dim]Duplicate ids checked for the first {MAX_TRACKED_IDS} ids only.")
