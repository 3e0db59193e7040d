"""Print a :class:`~crossbeat.ingest.check.CheckReport` as readable tables.

Values from the file are printed as plain text, never read as rich markup (a reason
may hold ``[x, y]``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from crossbeat.ingest.check import MAX_TRACKED_IDS, CheckReport, CheckRow
from crossbeat.ingest.points import MAX_DISTANCE_OUTSIDE_M


def render_report(report: CheckReport, console: Console) -> None:
    """Print a check report as readable tables.

    Parameters
    ----------
    report
        The result of :func:`~crossbeat.ingest.check.check_profile`.
    console
        Where to print (a :class:`rich.console.Console`).
    """
    verdict = "[green]matches[/]" if report.matches else "[bold red]does NOT match[/]"
    if report.agency_column:
        agency = f"agencies routed by column {report.agency_column!r}"
    else:
        agency = f"agency {report.agency_id}" if report.agency_id else "no agency given"
    console.print(
        f"Profile [bold]{report.profile}[/] {verdict} [bold]{escape(report.path)}[/] "
        f"({report.format}, encoding {report.encoding or '?'}, {escape(agency)})"
    )
    boundary = _boundary_note(report)
    if boundary:
        console.print(f"[dim]{escape(boundary)}[/]", highlight=False)
    if report.error:
        console.print(f"[bold red]Error:[/] {escape(report.error)}", highlight=False)
    if report.missing_columns:
        console.print(
            "[bold red]Columns the profile needs but the file lacks:[/] "
            + escape(", ".join(report.missing_columns)),
            highlight=False,
        )
        console.print("File columns: " + escape(", ".join(report.columns)), highlight=False)
    if report.unused_columns:
        console.print(
            "[dim]File columns the profile does not use: "
            + escape(", ".join(report.unused_columns)),
            highlight=False,
        )
    if report.rows:
        console.print(_rows_table(report.rows))
    if report.scanned:
        _render_scan(report, console)
    _render_refusals(report, console)


def _render_refusals(report: CheckReport, console: Console) -> None:
    """Print why the ingest would refuse the profile: open TODOs, store problems."""
    if report.todos:
        console.print(
            "[bold red]Unsettled TODO(s) in the profile: the ingest refuses it until each "
            "is settled[/] (set the value it asks for, then delete the word TODO):",
            highlight=False,
        )
        for line in report.todos:
            console.print(Text(f"  {line}"), highlight=False)
    for refusal in report.refusals:
        console.print(Text("The ingest would refuse: ", style="bold red") + Text(refusal))


def _boundary_note(report: CheckReport) -> str | None:
    """Say whether points were checked against jurisdiction boundaries, as the ingest does."""
    if not report.reads_points or report.error:
        return None
    if not report.boundaries_checked:
        if report.agency_id is None and not report.agency_column:
            return (
                "Points were not checked against a boundary: no agency given "
                "(--agency ID, with --db URL)."
            )
        whose = (
            "agencies' jurisdiction boundaries"
            if report.agency_column
            else "agency's jurisdiction boundary"
        )
        return (
            f"Points were not checked against the {whose} (the ingest quarantines swapped "
            f"points and points more than {MAX_DISTANCE_OUTSIDE_M / 1000:.0f} km outside): "
            "--db URL checks them."
        )
    missing = report.agencies_without_boundary
    if missing:
        return (
            f"No jurisdiction boundary registered for {', '.join(missing)}: points were checked "
            "for range only, as the ingest will (add one with crossbeat agency add ID "
            "--boundary FILE)."
        )
    if report.agency_column:
        return "Points were checked against each agency's registered jurisdiction boundary."
    return f"Points were checked against agency {report.agency_id}'s jurisdiction boundary."


def _location_text(s: dict[str, Any]) -> str:
    if s["lat"] is None:
        point = "no point"
    else:
        point = f"{s['lat']}, {s['lon']} ({s['location_precision']})"
    lines = [point, s["block_address"] or ""]
    nibrs, local = s["location_type"], s["location_type_local"]
    if nibrs and local:
        lines.append(f"type {nibrs} ({local})")
    elif nibrs or local:
        lines.append(f"type {nibrs}" if nibrs else f"type ({local}): not mapped")
    return "\n".join(line for line in lines if line)


def _lines(*groups: Iterable[str], warnings: Iterable[str] = (), style: str = "") -> Text:
    """Return lines as rich text, never read as markup (values may hold ``[...]``)."""
    text = Text(style=style)
    lines = [(line, "") for group in groups for line in group]
    lines += [(w, "yellow") for w in warnings]
    for i, (line, line_style) in enumerate(lines):
        text.append(("\n" if i else "") + line, style=line_style)
    return text


def _rows_table(rows: list[CheckRow]) -> Table:
    table = Table(title="First rows as they would be stored", show_lines=True)
    for name in ("row", "id / action", "occurred", "offences", "location", "other"):
        table.add_column(name, overflow="fold")
    for row in rows:
        if row.stored is None:
            table.add_row(
                str(row.row_number),
                Text("quarantined", style="red"),
                _lines(row.reasons, style="red"),
                "",
                "",
                "",
            )
            continue
        s = row.stored
        if s["action"] == "update":
            table.add_row(
                str(row.row_number),
                _lines([str(s["source_id"]), "update"]),
                f"as of {s['as_of']}\n({s['time_precision']})",
                "",
                "",
                _lines(
                    [f"{k}: {s[k]}" for k in ("status", "disposition") if s[k]],
                    warnings=row.warnings,
                ),
            )
            continue
        occurred = (
            f"{s['occurred_from']}\n"
            + (f"-> {s['occurred_to']}\n" if s["occurred_to"] else "")
            + f"({s['time_precision']})"
        )
        other = [f"sensitivity: {', '.join(s['sensitivity']) or '-'}"]
        other += [f"{k}: {s[k]}" for k in ("status", "disposition") if s[k]]
        other += [f"{k}: {v}" for k, v in s["attributes"].items()]
        table.add_row(
            str(row.row_number),
            _lines([str(s["source_id"]), s["action"]]),
            occurred,
            _lines(s["offences"]),
            _lines([_location_text(s)]),
            _lines(other, warnings=row.warnings),
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
            table.add_row(str(count), Text(text))
        if len(counter) > 15:
            table.add_row("...", f"{len(counter) - 15} more (see --json)")
        console.print(table)
    if not report.duplicates_complete:
        console.print(f"[dim]Duplicate ids checked for the first {MAX_TRACKED_IDS} ids only.")
