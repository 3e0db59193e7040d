"""The ``crossbeat`` command line: thin wrappers over library functions.

Each command parses its arguments, calls one library function and turns domain
errors into :class:`click.ClickException` messages that name the next step.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from crossbeat import __version__

DB_HELP = "Database URL: sqlite:///path.db (default ./crossbeat.db) or postgresql://user@host/db."


def db_option(f: Any) -> Any:
    """Add the shared ``--db`` option (also read from ``CROSSBEAT_DB``)."""
    return click.option(
        "--db",
        "db_url",
        envvar="CROSSBEAT_DB",
        default="sqlite:///crossbeat.db",
        show_default=True,
        help=DB_HELP,
    )(f)


def echo_json(data: Any) -> None:
    """Print one JSON document to stdout."""
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def open_store_or_fail(db_url: str, *, upgrade: bool = True) -> Any:
    """Open the store, turning store errors into a click error."""
    from crossbeat.store import StoreError, open_store

    try:
        return open_store(db_url, upgrade=upgrade)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
@click.version_option(__version__, prog_name="crossbeat")
def cli() -> None:
    """CrossBeat: collaborative crime mapping for many agencies on one governed map."""


# --- db -----------------------------------------------------------------------------
@cli.group()
def db() -> None:
    """Create and migrate the database."""


@db.command("upgrade")
@db_option
def db_upgrade(db_url: str) -> None:
    """Create the database or bring its schema up to date."""
    store = open_store_or_fail(db_url)
    click.echo(f"{store.safe_url} is at schema revision {store.current_revision()}")


# --- agencies ---------------------------------------------------------------------------
@cli.group()
def agency() -> None:
    """Register agencies and their jurisdiction polygons."""


@agency.command("add")
@db_option
@click.argument("agency_id")
@click.option("--name", required=True, help="Agency name, e.g. 'City of London Police'.")
@click.option("--ori", help="Originating Agency Identifier (ORI), if any.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone.")
@click.option(
    "--boundary",
    type=click.Path(exists=True, dir_okay=False),
    help="GeoJSON file (WGS84) with the jurisdiction polygon(s).",
)
@click.option(
    "--where",
    multiple=True,
    metavar="PROPERTY=VALUE",
    help="Only boundary features whose property equals the value (repeatable).",
)
def agency_add(
    db_url: str,
    agency_id: str,
    name: str,
    ori: str | None,
    timezone: str,
    boundary: str | None,
    where: tuple[str, ...],
) -> None:
    """Register (or update) an agency, optionally with its jurisdiction boundary."""
    from crossbeat.agencies import AgencyError, load_boundaries, register_agency
    from crossbeat.model import Agency

    store = open_store_or_fail(db_url)
    filters = dict(_split_pair(w) for w in where)
    try:
        register_agency(store, Agency(id=agency_id, name=name, ori=ori, timezone=timezone))
        n = load_boundaries(store, agency_id, boundary, where=filters) if boundary else 0
    except AgencyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"agency {agency_id} registered" + (f" with {n} jurisdiction polygon(s)" if n else "")
    )


@agency.command("list")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def agency_list(db_url: str, as_json: bool) -> None:
    """List registered agencies."""
    from dataclasses import asdict

    from crossbeat.agencies import list_agencies

    rows = [asdict(a) for a in list_agencies(open_store_or_fail(db_url))]
    if as_json:
        echo_json(rows)
        return
    for a in rows:
        click.echo(f"{a['id']:<20} {a['name']} ({a['timezone']})")


def _split_pair(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise click.BadParameter(f"expected PROPERTY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


# --- ingest -----------------------------------------------------------------------------
@cli.command()
@db_option
@click.option(
    "--agency",
    "agency_id",
    help="Id of the agency that owns the data (omit for a multi-agency profile).",
)
@click.option(
    "--profile",
    "profile_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Source profile (TOML) describing the export.",
)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the counts.")
@click.option(
    "--chunk-size",
    default=2000,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Rows per transaction (an interrupted run resumes after the last one).",
)
def ingest(
    db_url: str,
    agency_id: str | None,
    profile_path: str,
    files: tuple[str, ...],
    as_json: bool,
    chunk_size: int,
) -> None:
    """Ingest an agency's export files through a source profile.

    Every source row is accounted for: rows = new + updated + unchanged + withdrawn +
    expunged + quarantined. Re-running the same command changes nothing; re-running it
    after an interrupted run completes the job.
    """
    from crossbeat.agencies import AgencyError
    from crossbeat.ingest.pipeline import IngestError, ingest_files
    from crossbeat.ingest.profile import ProfileError, load_profile

    try:
        profile = load_profile(profile_path)
    except ProfileError as exc:
        raise click.ClickException(str(exc)) from exc
    store = open_store_or_fail(db_url)
    try:
        summary = ingest_files(
            store, agency_id, profile, files, progress=not as_json, chunk_size=chunk_size
        )
    except (IngestError, AgencyError) as exc:
        raise click.ClickException(
            f"{exc}\nCheck the profile against the file: "
            f"crossbeat profile check {profile_path} FILE"
        ) from exc
    if as_json:
        echo_json(summary.as_dict())
        return
    t = summary.totals
    for f in summary.files:
        c = f.counts
        resumed = f" (resumed after row {f.resumed_after_row})" if f.resumed_after_row else ""
        click.echo(
            f"{f.path}{resumed}: {c.rows} rows: {c.new} new, {c.updated} updated, "
            f"{c.unchanged} unchanged, {c.withdrawn} withdrawn, {c.expunged} expunged, "
            f"{c.quarantined} quarantined; {c.unmapped} with unmapped offence codes"
        )
    if len(summary.files) > 1:
        click.echo(
            f"total: {t.rows} rows, {t.new} new, {t.updated} updated, {t.quarantined} quarantined"
        )
    if t.quarantined:
        scope = f" --agency {agency_id}" if agency_id else ""
        click.echo(f"See why rows were quarantined: crossbeat quarantine list{scope}")
    if t.unmapped:
        scope = f" --agency {agency_id}" if agency_id else ""
        click.echo(f"See unmapped offence codes: crossbeat taxonomy coverage{scope}")


@cli.command()
@db_option
@click.option("--agency", "agency_id", required=True, help="Agency that owns the records.")
@click.argument("source_ids", nargs=-1, required=True)
@click.option("--reason", required=True, help="Why (kept in the record's history).")
@click.option("--expunge", is_flag=True, help="Delete with history; keep only a tombstone.")
def withdraw(
    db_url: str, agency_id: str, source_ids: tuple[str, ...], reason: str, expunge: bool
) -> None:
    """Withdraw (or expunge) records by their source ids; no read returns them after."""
    from crossbeat.store.writes import withdraw_records

    store = open_store_or_fail(db_url)
    try:
        res = withdraw_records(store, agency_id, source_ids, expunge_records=expunge, reason=reason)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    verb = "expunged" if expunge else "withdrawn"
    click.echo(f"{len(res.changed)} {verb}, {len(res.already)} already, {len(res.unknown)} unknown")
    if res.unknown:
        click.echo("unknown source ids: " + ", ".join(res.unknown[:20]))


# --- profile ----------------------------------------------------------------------------


# --- taxonomy ---------------------------------------------------------------------------


# --- quarantine -------------------------------------------------------------------------
@cli.group()
def quarantine() -> None:
    """Inspect and re-process rows that could not be stored."""


@quarantine.command("list")
@db_option
@click.option("--agency", "agency_id", help="Only this agency.")
@click.option(
    "--status",
    type=click.Choice(["open", "resolved", "dismissed", "all"]),
    default="open",
    show_default=True,
)
@click.option("--limit", default=50, show_default=True, help="At most this many rows.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def quarantine_list(
    db_url: str, agency_id: str | None, status: str, limit: int, as_json: bool
) -> None:
    """List quarantined rows with their row numbers and every reason."""
    from crossbeat.ingest.quarantine import count_quarantine, list_quarantine

    store = open_store_or_fail(db_url)
    entries = list_quarantine(
        store, agency_id=agency_id, status=None if status == "all" else status, limit=limit
    )
    if as_json:
        echo_json(
            {
                "counts": count_quarantine(store, agency_id=agency_id),
                "entries": [e.as_dict() for e in entries],
            }
        )
        return
    for e in entries:
        click.echo(f"#{e.id} {e.agency_id} {e.source_file}:{e.row_number} [{e.status}]")
        for r in e.reasons:
            click.echo(f"    - {r}")
    counts = count_quarantine(store, agency_id=agency_id)
    click.echo(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "quarantine is empty")


@quarantine.command("retry")
@db_option
@click.option("--agency", "agency_id", help="Only this agency's rows.")
@click.option(
    "--profile",
    "profile_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The fixed profile.",
)
@click.option("--id", "ids", multiple=True, type=int, help="Only these entries (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def quarantine_retry(
    db_url: str, agency_id: str | None, profile_path: str, ids: tuple[int, ...], as_json: bool
) -> None:
    """Re-process open quarantined rows after a profile or crosswalk fix."""
    from crossbeat.ingest.profile import ProfileError, load_profile
    from crossbeat.ingest.quarantine import retry_quarantine

    try:
        profile = load_profile(profile_path)
    except ProfileError as exc:
        raise click.ClickException(str(exc)) from exc
    store = open_store_or_fail(db_url)
    try:
        res = retry_quarantine(store, profile, agency_id=agency_id, ids=list(ids) or None)
    except ValueError as exc:
        raise click.ClickException(f"{exc}: use --agency ID") from exc
    if as_json:
        echo_json(res.as_dict())
        return
    click.echo(
        f"retried {res.retried}: {res.stored.new} new, {res.stored.updated} updated, "
        f"{res.stored.unchanged} unchanged, {res.still_quarantined} still quarantined"
    )


@quarantine.command("dismiss")
@db_option
@click.option("--agency", "agency_id", required=True, help="Agency whose rows to dismiss.")
@click.option("--id", "ids", multiple=True, type=int, required=True, help="Entry id (repeatable).")
@click.option("--reason", required=True, help="Why the rows will not be stored.")
def quarantine_dismiss(db_url: str, agency_id: str, ids: tuple[int, ...], reason: str) -> None:
    """Dismiss quarantined rows (they are kept, marked dismissed, never deleted)."""
    from crossbeat.ingest.quarantine import dismiss_quarantine

    try:
        n = dismiss_quarantine(open_store_or_fail(db_url), agency_id, ids, reason=reason)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{n} dismissed")


# --- demo and serve ---------------------------------------------------------------------


# --- accounts and authentication (governance) ------------------------------------------


# --- audit (governance) -----------------------------------------------------------------


def main() -> None:  # pragma: no cover - console entry point alias
    """Run the CLI."""
    cli(prog_name="crossbeat")
    sys.exit(0)
