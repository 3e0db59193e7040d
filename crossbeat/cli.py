"""The ``crossbeat`` command line: thin wrappers over library functions.

Each command parses its arguments, calls one library function and turns domain
errors into :class:`click.ClickException` messages that name the next step.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from datetime import datetime
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


def json_option(help: str = "Print JSON.") -> Any:
    """Return the shared ``--json`` flag (parameter ``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def agency_option(help: str, *, required: bool = False, dest: str = "agency_id") -> Any:
    """Return the shared ``--agency ID`` option (parameter ``agency_id``)."""
    return click.option("--agency", dest, required=required, help=help)


def parse_iso_time(text: str) -> datetime:
    """Return the time an ISO 8601 text names, as written (``Z`` is read as UTC).

    Raises :class:`ValueError` for text that is not an ISO 8601 date or time.
    """
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class IsoTime(click.ParamType):
    """An ISO 8601 date or time; without an offset it is UTC (``Z`` is accepted)."""

    name = "ISO-TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Return an aware :class:`datetime`, or fail naming the option."""
        from datetime import UTC, datetime

        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        try:
            parsed = parse_iso_time(str(value))
        except ValueError:
            self.fail(
                f"{value!r} is not an ISO 8601 date or time (e.g. 2026-01-31 or 2026-01-31T08:00)",
                param,
                ctx,
            )
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


ISO_TIME = IsoTime()


def time_option(name: str, help: str) -> Any:
    """Return an option taking an ISO 8601 date or time (UTC without an offset)."""
    return click.option(name, type=ISO_TIME, help=f"{help} (ISO 8601, UTC if no offset).")


def echo_json(data: Any) -> None:
    """Print one JSON document to stdout."""
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def open_store_or_fail(db_url: str, *, upgrade: bool = True) -> Any:
    """Open the store with the configured KEK, turning store and key errors into a click error.

    The KEK comes from ``CROSSBEAT_KEK`` or ``CROSSBEAT_KEK_FILE``. For a SQLite file
    with neither, a development key file ``<db>.kek`` is created (and announced once);
    any other database without a KEK is an error naming the settings.
    """
    from crossbeat.store import StoreError, open_store

    _require_db_url(db_url)
    try:
        # Opened (created, migrated) before the KEK is resolved: a SQLite database's
        # development key file is created beside it, in a folder that must exist.
        store = open_store(db_url, upgrade=upgrade)
        kek = configured_kek(store.url)
        if kek is None:  # pragma: no cover - only when the SQLite folder vanished meanwhile
            raise click.ClickException(f"no key-encryption key for {store.safe_url}")
        return open_store(db_url, upgrade=False, kek=kek)
    except StoreError as exc:
        raise click.ClickException(_store_error(exc, "--db (or CROSSBEAT_DB)")) from exc


def _require_db_url(db_url: str, option: str = "--db (or CROSSBEAT_DB)") -> None:
    """Refuse a ``--db`` value without a scheme, which would open a SQLite file of that name."""
    if "://" in db_url:
        return
    shown = "" if "@" in db_url else f" {db_url!r}"  # user:password@host without a scheme
    raise click.ClickException(
        f"{option}{shown} is not a database URL: give sqlite:///path/to/file.db "
        "(a SQLite file) or postgresql://user@host/dbname"
    )


def _require_agency(store: Any, agency_id: str | None) -> None:
    """Fail with a one-line error naming the next step when ``agency_id`` is not registered."""
    from crossbeat.agencies import get_agency

    if agency_id is not None and get_agency(store, agency_id) is None:
        raise click.ClickException(
            f"unknown agency {agency_id!r}: check the id with `crossbeat agency list`"
        )


def configured_kek(db_url: str, *, required: bool = True) -> Any:
    """Return the KEK of ``CROSSBEAT_KEK`` / ``CROSSBEAT_KEK_FILE`` or the development key file.

    Announces (on stderr) a development key file created just now; with
    ``required``, a database other than a SQLite file without a KEK is an error.
    """
    import os

    from crossbeat.vault.errors import KeyConfigError
    from crossbeat.vault.kek import KEK_FILE_SETTING, KEK_SETTING, resolve_kek

    try:
        found = resolve_kek(
            db_url,
            kek=os.environ.get(KEK_SETTING),
            kek_file=os.environ.get(KEK_FILE_SETTING),
            required=required,
        )
    except KeyConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if found.created:
        click.echo(
            f"Created the development key file {found.created} that encrypts the personal "
            f"data in this database; keep it with the database and never share it. Outside "
            f"development set {KEK_SETTING} or {KEK_FILE_SETTING} instead.",
            err=True,
        )
    return found.kek


class _RootGroup(click.Group):
    """The root group: a store or key error from any command ends as one line, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            from crossbeat.store import StoreError

            if isinstance(exc, StoreError):  # includes the vault's key and decryption errors
                raise click.ClickException(str(exc)) from exc
            raise


@click.group(cls=_RootGroup)
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
@click.option(
    "--timezone",
    help="IANA time zone (default: UTC for a new agency; an update keeps the agency's).",
)
@click.option(
    "--boundary",
    type=click.Path(exists=True, dir_okay=False),
    help="GeoJSON, Shapefile or GeoPackage with the jurisdiction polygon(s).",
)
@click.option(
    "--where",
    multiple=True,
    metavar="PROPERTY=VALUE",
    help="Only boundary features whose property equals the value (repeatable).",
)
@click.option(
    "--name-field",
    help="Boundary feature property that names each polygon (default: guessed, e.g. name).",
)
def agency_add(
    db_url: str,
    agency_id: str,
    name: str,
    ori: str | None,
    timezone: str | None,
    boundary: str | None,
    where: tuple[str, ...],
    name_field: str | None,
) -> None:
    """Register (or update) an agency, optionally with its jurisdiction boundary."""
    from crossbeat.agencies import AgencyError, get_agency, load_boundaries, register_agency
    from crossbeat.model import Agency

    store = open_store_or_fail(db_url)
    filters = dict(_split_pair(w) for w in where)
    if timezone is None:
        existing = get_agency(store, agency_id)
        timezone = existing.timezone if existing else "UTC"
    try:
        register_agency(store, Agency(id=agency_id, name=name, ori=ori, timezone=timezone))
        n = (
            load_boundaries(store, agency_id, boundary, where=filters, name_property=name_field)
            if boundary
            else 0
        )
    except AgencyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"agency {agency_id} registered" + (f" with {n} jurisdiction polygon(s)" if n else "")
    )


@agency.command("list")
@db_option
@json_option()
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


@agency.command("remove")
@db_option
@click.argument("agency_id")
@click.option(
    "--yes",
    "confirmed",
    is_flag=True,
    help="Confirm without being asked to type the agency id (for scripts).",
)
@json_option("Print what was deleted as JSON.")
def agency_remove(db_url: str, agency_id: str, confirmed: bool, as_json: bool) -> None:
    """Remove an agency registered by mistake, with everything it holds.

    Deletes its incidents (with their versions, offences, jurisdiction tags and
    personal data), quarantine, ingest batches, jurisdictions, keys, users, tokens and
    sharing agreements, in one transaction recorded in the audit log with the counts.
    Asks to type the agency id unless --yes is given.
    """
    from crossbeat.agencies import AgencyError
    from crossbeat.agency_removal import remove_agency

    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    if confirmed:
        typed = agency_id
    elif not _interactive():
        raise click.ClickException(
            f"removing agency {agency_id!r} deletes everything it holds: confirm with --yes "
            "(no terminal to ask on); nothing was removed"
        )
    else:
        typed = click.prompt(
            f"This deletes agency {agency_id!r} and every record it holds. Type its id to confirm",
            default="",
            show_default=False,
        )
    try:
        summary = remove_agency(store, agency_id, confirm=typed.strip())
    except AgencyError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        echo_json(summary.as_dict())
        return
    counts = ", ".join(f"{n} {t}" for t, n in sorted(summary.deleted.items()))
    click.echo(f"agency {agency_id} removed: deleted {counts}")
    for where, n in sorted(summary.detached.items()):
        click.echo(f"  {where}: {n} reference(s) to removed rows set to NULL")


def _interactive() -> bool:
    """Return whether a person can be asked at a terminal."""
    return sys.stdin.isatty()


# --- area layers ------------------------------------------------------------------------
@cli.group()
def area() -> None:
    """Area layers below the agency: precincts, districts, beats, neighbourhoods, wards."""


@area.command("add")
@db_option
@click.argument("agency_id")
@click.argument("layer")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--name-field",
    help="Feature property that names each area (default: guessed, e.g. name or NAME).",
)
@click.option(
    "--where",
    multiple=True,
    metavar="PROPERTY=VALUE",
    help="Only features whose property equals the value (repeatable).",
)
@click.option(
    "--kind",
    default="other",
    show_default=True,
    help="precinct, district, beat, sector, neighbourhood, ward, borough, zone or other.",
)
@click.option("--replace", is_flag=True, help="Replace the agency's layer of that name.")
@json_option()
def area_add(
    db_url: str,
    agency_id: str,
    layer: str,
    file: str,
    name_field: str | None,
    where: tuple[str, ...],
    kind: str,
    replace: bool,
    as_json: bool,
) -> None:
    """Register an area LAYER of an agency from a GeoJSON, Shapefile or GeoPackage FILE.

    Every stored incident is tagged with the areas containing it (and every later
    ingest tags new ones). Reads then filter and group by the layer (area:LAYER),
    and agreements can generalise to it (--precision area:LAYER).
    """
    from crossbeat.areas import AreaError, add_layer

    store = open_store_or_fail(db_url)
    filters = dict(_split_pair(w) for w in where)
    try:
        change = add_layer(
            store,
            agency_id,
            layer,
            file,
            name_field=name_field,
            where=filters,
            kind=kind,
            replace=replace,
        )
    except AreaError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        echo_json(change.to_dict())
        return
    click.echo(
        f"area layer {agency_id}/{layer} {change.change}: {change.areas} area(s) named by "
        f"{change.name_field!r} from {change.features} feature(s); "
        f"{change.tagged} incident(s) lie in one"
    )


@area.command("list")
@db_option
@agency_option("Only this agency's layers.")
@json_option()
def area_list(db_url: str, agency_id: str | None, as_json: bool) -> None:
    """List the registered area layers."""
    from crossbeat.areas import list_layers

    layers = list_layers(open_store_or_fail(db_url), agency_id)
    if as_json:
        echo_json([layer.to_dict() for layer in layers])
        return
    if not layers:
        click.echo("no area layers (crossbeat area add AGENCY LAYER FILE)")
    for layer in layers:
        click.echo(f"{layer.key:<32} {layer.kind:<14} {len(layer.areas):>5} area(s)")


@area.command("show")
@db_option
@click.argument("agency_id")
@click.argument("layer")
@json_option()
def area_show(db_url: str, agency_id: str, layer: str, as_json: bool) -> None:
    """Show an area layer and the names of its areas."""
    from crossbeat.areas import AreaError, get_layer

    try:
        found = get_layer(open_store_or_fail(db_url), agency_id, layer)
    except AreaError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        echo_json(found.to_dict())
        return
    click.echo(f"{found.key} ({found.kind}): {len(found.areas)} area(s)")
    click.echo(f"  from {found.source_file}, named by {found.name_field or '-'}")
    click.echo(f"  updated {found.updated_at.isoformat(timespec='seconds')}")
    for name in found.areas:
        click.echo(f"  {name}")


@area.command("remove")
@db_option
@click.argument("agency_id")
@click.argument("layer")
def area_remove(db_url: str, agency_id: str, layer: str) -> None:
    """Remove an area layer and every incident's tags of it."""
    from crossbeat.areas import AreaError, remove_layer

    try:
        change = remove_layer(open_store_or_fail(db_url), agency_id, layer)
    except AreaError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"area layer {agency_id}/{layer} removed: {change.previous_areas} area(s), "
        f"tags of {change.previous_tagged} incident(s)"
    )


def _split_pair(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise click.BadParameter(f"expected PROPERTY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


# --- ingest -----------------------------------------------------------------------------
ACCEPT_TIMEZONE_HELP = (
    "Accept a profile time zone that differs from the agency's registered one, on purpose "
    "(otherwise refused: every local time would be stored shifted)."
)


@cli.command()
@db_option
@agency_option("Id of the agency that owns the data (omit for a multi-agency profile).")
@click.option(
    "--profile",
    "profile_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Source profile (TOML) describing the export.",
)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@json_option("Print one JSON object with the counts.")
@click.option(
    "--chunk-size",
    default=20_000,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Rows per transaction (an interrupted run resumes after the last one).",
)
@click.option("--accept-timezone", is_flag=True, help=ACCEPT_TIMEZONE_HELP)
def ingest(
    db_url: str,
    agency_id: str | None,
    profile_path: str,
    files: tuple[str, ...],
    as_json: bool,
    chunk_size: int,
    accept_timezone: bool,
) -> None:
    """Ingest an agency's export files through a source profile.

    Every source row is accounted for: rows = new + updated + unchanged + withdrawn +
    expunged + quarantined. Re-running the same command changes nothing; re-running it
    after an interrupted run completes the job. The agency must be registered
    (`crossbeat agency add`), and the profile must have no unsettled TODO.
    """
    from pathlib import Path

    from crossbeat.agencies import AgencyError
    from crossbeat.ingest.pipeline import IngestError, ingest_files
    from crossbeat.ingest.profile import ProfileError, load_profile, require_settled
    from crossbeat.sharing.flags import refresh_flags

    try:
        profile = load_profile(profile_path)
        require_settled(profile, profile_path)
    except ProfileError as exc:
        raise click.ClickException(str(exc)) from exc
    missing = [f for f in files if not Path(f).is_file()]
    if missing:  # before the store is opened: a typo in a path writes nothing
        raise click.ClickException(
            f"file not found: {', '.join(missing)}: check the path (nothing was ingested)"
        )
    store = open_store_or_fail(db_url)
    try:
        summary = ingest_files(
            store,
            agency_id,
            profile,
            files,
            progress=not as_json,
            chunk_size=chunk_size,
            accept_timezone=accept_timezone,
        )
    except (IngestError, AgencyError) as exc:
        # A file the profile cannot read: point at `profile check` unless the message does.
        message = str(exc)
        if exc.__cause__ is not None and "profile check" not in message:
            bad = getattr(exc, "path", None) or files[0]
            message += f"; check the profile with: crossbeat profile check {profile_path} {bad}"
        raise click.ClickException(message) from exc
    agency_id = summary.agency_id
    # Derive the served sensitivity flags now, so that the first reader does not wait.
    refresh_flags(store, [agency_id] if agency_id else None)
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
@agency_option("Agency that owns the records.", required=True)
@click.argument("source_ids", nargs=-1, required=True)
@click.option("--reason", required=True, help="Why (kept in the record's history).")
@click.option("--expunge", is_flag=True, help="Delete with history; keep only a tombstone.")
def withdraw(
    db_url: str, agency_id: str, source_ids: tuple[str, ...], reason: str, expunge: bool
) -> None:
    """Withdraw (or expunge) records by their source ids; no read returns them after.

    The source ids are the agency's own record ids (`crossbeat incidents list --agency A`
    shows them). Exits with status 1 when none of them is a stored record.
    """
    from crossbeat.ingest.writes import withdraw_records

    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    try:
        res = withdraw_records(store, agency_id, source_ids, expunge_records=expunge, reason=reason)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    verb = "expunged" if expunge else "withdrawn"
    click.echo(f"{len(res.changed)} {verb}, {len(res.already)} already, {len(res.unknown)} unknown")
    if res.unknown:
        more = f" and {len(res.unknown) - 20} more" if len(res.unknown) > 20 else ""
        click.echo("unknown source ids: " + ", ".join(res.unknown[:20]) + more)
    if res.unknown and not res.changed and not res.already:
        raise click.ClickException(
            f"none of the {len(res.unknown)} source id(s) is a record of {agency_id}: nothing "
            f"was {verb}; find the source ids with `crossbeat incidents list --agency {agency_id}`"
        )


# --- incidents (an agency's own records, through the policy) -----------------------------
@cli.group()
def incidents() -> None:
    """List and show an agency's stored incidents, as its analysts see them (audited)."""


@incidents.command("list")
@db_option
@agency_option("Agency whose incidents to list.", required=True)
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1, 10_000), help="Rows shown."
)
@click.option("--after", help="Continue after this incident id (printed at the end of a page).")
@time_option("--since", "Occurred from this date or time")
@time_option("--until", "Occurred before this date or time")
@click.option(
    "--offence", "offences", multiple=True, help="Only these offences: NIBRS codes or categories."
)
@json_option()
def incidents_list(
    db_url: str,
    agency_id: str,
    limit: int,
    after: str | None,
    since: datetime | None,
    until: datetime | None,
    offences: tuple[str, ...],
    as_json: bool,
) -> None:
    """List AGENCY's live incidents in id order, one per line, with their source ids.

    The read goes through the sharing policy as an analyst of the agency and is recorded
    in its audit log (actor: system). Columns: source id, occurred (UTC), NIBRS code,
    local offence code, status, block address.
    """
    from crossbeat.sharing.own import list_own_incidents
    from crossbeat.sharing.request import RequestError

    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    try:
        page = list_own_incidents(
            store,
            agency_id,
            limit=limit,
            after=after,
            since=since,
            until=until,
            offences=frozenset(offences) or None,
        )
    except RequestError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        echo_json({"records": page.records, "next_after": page.next_after})
        return
    for r in page.records:
        when = r["occurred_from"].isoformat() if r.get("occurred_from") else "-"
        cells = (r.get("nibrs_code"), r.get("offence_local_code"), r.get("status"))
        click.echo(
            "\t".join([str(r.get("source_id")), when, *(c or "-" for c in cells)])
            + f"\t{r.get('block_address') or '-'}"
        )
    if not page.records:
        click.echo(f"no live incidents of {agency_id} match")
    if page.next_after:
        click.echo(f"more: --after {page.next_after}", err=True)


@cli.command("export")
@db_option
@agency_option("Export what this agency's analysts may see (its own and shared incidents).")
@click.option("--public", "as_public", is_flag=True, help="Export what the public may see.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "geojson", "gpkg"]),
    default="csv",
    show_default=True,
    help="File format.",
)
@click.option(
    "--output", "-o", required=True, type=click.Path(dir_okay=False), help="File to write."
)
@time_option("--since", "Occurred from this date or time")
@time_option("--until", "Occurred before this date or time")
@click.option("--offence", "offences", multiple=True, help="NIBRS codes or categories.")
@click.option("--code", "codes", multiple=True, help="Local or NIBRS offence codes.")
@click.option("--status", "statuses", multiple=True, help="Statuses (any case).")
@click.option("--jurisdiction", "jurisdictions", multiple=True, help="Jurisdiction agency ids.")
@click.option("--area", "areas", multiple=True, help="Areas as LAYER:NAME.")
@click.option("--bbox", help="min_lon,min_lat,max_lon,max_lat (WGS84).")
@click.option("--polygon", help="A polygon: GeoJSON or WKT text, or @FILE to read it from.")
def export_command(
    db_url: str,
    agency_id: str | None,
    as_public: bool,
    fmt: str,
    output: str,
    since: datetime | None,
    until: datetime | None,
    offences: tuple[str, ...],
    codes: tuple[str, ...],
    statuses: tuple[str, ...],
    jurisdictions: tuple[str, ...],
    areas: tuple[str, ...],
    bbox: str | None,
    polygon: str | None,
) -> None:
    """Export incidents to a CSV, GeoJSON or GeoPackage file, through the sharing policy.

    The read is audited as an export in each owner agency's log (actor: system). The
    file holds only the columns granted, and no metadata.
    """
    from pathlib import Path

    from crossbeat.exports import export_incidents
    from crossbeat.sharing.own import operator_viewer
    from crossbeat.sharing.request import ReadRequest, RequestError, Viewer

    if as_public == (agency_id is not None):
        raise click.ClickException("give --agency AGENCY or --public (one of them)")
    if polygon is not None and polygon.startswith("@"):
        polygon = Path(polygon[1:]).read_text(encoding="utf-8")
    store = open_store_or_fail(db_url)
    if agency_id is not None:
        _require_agency(store, agency_id)
    viewer = Viewer.public() if agency_id is None else operator_viewer(agency_id)
    try:
        request = ReadRequest(
            bbox=tuple(bbox.split(",")) if bbox else None,  # type: ignore[arg-type]
            since=since,
            until=until,
            offences=frozenset(offences) or None,
            codes=frozenset(codes) or None,
            statuses=frozenset(statuses) or None,
            jurisdictions=frozenset(jurisdictions) or None,
            areas=frozenset(areas) or None,  # type: ignore[arg-type]
            polygon=polygon,
        )
        export = export_incidents(store, viewer, request, fmt)
    except RequestError as exc:
        raise click.ClickException(str(exc)) from exc
    Path(output).write_bytes(export.data)
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(export.counts.items())) or "none"
    click.echo(f"{sum(export.counts.values())} incidents ({counts}) written to {output}")
    if export.next_after:
        click.echo("more incidents matched than one file holds: narrow the filters", err=True)


@incidents.command("show")
@db_option
@agency_option("Agency the incident belongs to.", required=True)
@click.argument("ident", metavar="ID")
@json_option()
def incidents_show(db_url: str, agency_id: str, ident: str, as_json: bool) -> None:
    """Show one of AGENCY's incidents by its source id (or incident id), audited.

    Exits with status 1 when the agency has no live incident with that id.
    """
    from crossbeat.sharing.own import show_own_incident

    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    record = show_own_incident(store, agency_id, ident)
    if record is None:
        raise click.ClickException(
            f"{agency_id} has no live incident {ident!r}: list them with "
            f"`crossbeat incidents list --agency {agency_id}`"
        )
    if as_json:
        echo_json(record)
        return
    for key, value in record.items():
        shown = value.isoformat() if hasattr(value, "isoformat") else value
        if isinstance(shown, list | dict):
            shown = json.dumps(shown, default=str, ensure_ascii=False)
        click.echo(f"{key}: {'' if shown is None else shown}")


# --- profile ----------------------------------------------------------------------------
@cli.group()
def profile() -> None:
    """Source profiles: how an agency's export maps onto the incident model."""


#: Width of rich output written off a terminal (wide enough that no id or value wraps).
OFF_TERMINAL_WIDTH = 200


@profile.command("check")
@click.argument("profile_path", metavar="PROFILE", type=click.Path(dir_okay=False))
@click.argument("file", type=click.Path(dir_okay=False))
@agency_option("Agency the rows belong to (default: the profile's).")
@click.option(
    "--db",
    "db_url",
    metavar="URL",
    help="Check points against the agencies' jurisdiction boundaries registered in this "
    "database, as the ingest does (only read; not taken from CROSSBEAT_DB).",
)
@click.option("--limit", default=10, show_default=True, type=click.IntRange(0), help="Rows shown.")
@click.option("--no-scan", is_flag=True, help="Read only the first rows, not the whole file.")
@json_option("Print the report as JSON.")
def profile_check(
    profile_path: str,
    file: str,
    agency_id: str | None,
    db_url: str | None,
    limit: int,
    no_scan: bool,
    as_json: bool,
) -> None:
    """Show the first rows of FILE as PROFILE would store them, with every problem.

    Exits with status 1 when the profile does not match the file.
    """
    from rich.console import Console

    from crossbeat.ingest.check import check_profile
    from crossbeat.ingest.check_render import render_report
    from crossbeat.ingest.profile import ProfileError, load_profile

    try:
        prof = load_profile(profile_path)
    except ProfileError as exc:
        raise click.ClickException(str(exc)) from exc
    if prof.agency_column and agency_id:
        raise click.ClickException(
            f"profile {prof.name!r} routes each row to its agency by column "
            f"{prof.agency_column!r}: check it without --agency"
        )
    store = _open_existing_store(db_url) if db_url else None
    report = check_profile(
        prof, file, agency_id=agency_id, limit=limit, scan=not no_scan, store=store
    )
    if as_json:
        echo_json(report.as_dict())
    else:
        # Off a terminal (a pipe, a file, a log) rich would wrap at 80 columns and split
        # ids and values over lines; there nothing limits the width, so do not wrap.
        width = None if sys.stdout.isatty() else OFF_TERMINAL_WIDTH
        render_report(report, Console(highlight=False, width=width))
    if not report.matches:
        sys.exit(1)


@profile.command("draft")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "tsv", "jsonl", "json", "geojson"]),
    help="The file's format (default: detected from its content).",
)
@click.option(
    "--out", type=click.Path(dir_okay=False), help="Write the profile here (default: print it)."
)
@click.option("--name", help="Profile name (default: from the file name).")
@agency_option("Agency id the feed belongs to.")
@click.option("--timezone", help="IANA time zone of the file's local times, if you know it.")
@click.option(
    "--sample",
    "sample_rows",
    default=2000,
    show_default=True,
    type=click.IntRange(1),
    help="How many first records to inspect.",
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def profile_draft(
    file: str,
    fmt: str | None,
    out: str | None,
    name: str | None,
    agency_id: str | None,
    timezone: str | None,
    sample_rows: int,
    force: bool,
) -> None:
    """Draft a source profile for FILE, an export no profile describes yet.

    The draft has a comment on every guess and TODO comments where it could not decide;
    `profile check` and `ingest` refuse it until every TODO is settled (the value set,
    the word TODO deleted). The guesses and TODOs are also listed on stderr.
    """
    from pathlib import Path

    from crossbeat.ingest.draft import DraftError, draft_profile

    if out and Path(out).exists() and not force:
        raise click.ClickException(f"{out} exists: give another --out, or --force to overwrite it")
    try:
        draft = draft_profile(
            file,
            format=fmt,
            name=name,
            agency=agency_id,
            timezone=timezone,
            sample_rows=sample_rows,
        )
    except DraftError as exc:
        raise click.ClickException(str(exc)) from exc
    if out:
        Path(out).write_text(draft.text, encoding="utf-8")
    else:
        click.echo(draft.text, nl=False)
    guesses = sum(f.kind == "guess" for f in draft.findings)
    click.echo(
        f"Drafted from the first {draft.sampled} records ({draft.format}, {draft.encoding}): "
        f"{guesses} guesses, each explained in a comment.",
        err=True,
    )
    for f in draft.findings:
        if f.kind != "guess":
            where = f" [{f.key}]" if f.key else ""
            click.echo(f"{'TODO' if f.kind == 'todo' else 'note'}{where}: {f.message}", err=True)
    target = out or "PROFILE.toml"
    click.echo(
        f"{'Wrote ' + out + '. ' if out else ''}Settle the {len(draft.todos)} TODO(s), then run: "
        f"crossbeat profile check {target} {file}",
        err=True,
    )


def _open_existing_store(db_url: str) -> Any:
    """Open a store only to read it: never create a SQLite file, never migrate, no KEK."""
    from crossbeat.store import StoreError, open_store

    _require_db_url(db_url, "--db")
    try:
        return open_store(db_url, create=False)
    except StoreError as exc:
        raise click.ClickException(_store_error(exc, "--db")) from exc


def _store_error(exc: Exception, option: str) -> str:
    """Return a store error's message, naming ``option`` when the URL is the problem."""
    from sqlalchemy.exc import DatabaseError

    if isinstance(exc.__cause__, DatabaseError):
        return f"{exc}; check {option}"
    return str(exc)


# --- taxonomy ---------------------------------------------------------------------------
@cli.group()
def taxonomy() -> None:
    """Offence taxonomy: NIBRS codes, crosswalks and how much of the data they map."""


@taxonomy.command("coverage")
@db_option
@agency_option("Only this agency's offences.")
@json_option()
def taxonomy_coverage(db_url: str, agency_id: str | None, as_json: bool) -> None:
    """Count mapped offences and list unmapped local codes, most frequent first."""
    from crossbeat.sharing.coverage import read_coverage

    store = open_store_or_fail(db_url)
    report = read_coverage(store, agency_id)
    if as_json:
        echo_json(report.to_dict())
        return
    if not report.schemes:
        from crossbeat.agencies import get_agency

        unknown = agency_id is not None and get_agency(store, agency_id) is None
        click.echo(
            "no offences stored"
            + (f" for agency {agency_id}" if agency_id else "")
            + (
                f" (no agency {agency_id!r} is registered: see `crossbeat agency list`)"
                if unknown
                else ""
            )
        )
        return
    for s in report.schemes:
        click.echo(
            f"{s.agency_id} / {s.scheme or '(no scheme)'}: {s.total} offences, "
            f"{s.mapped} mapped ({s.mapped_percent}), {s.unmapped} unmapped"
        )
        for u in s.unmapped_codes:
            desc = f" ({u.description})" if u.description and u.description != u.local_code else ""
            tip = f"   suggest {u.suggestion.target} {u.suggestion.name}" if u.suggestion else ""
            click.echo(f"  {u.count:>8}  {u.local_code}{desc}{tip}")
    if report.unmapped:
        click.echo(
            "Map these codes in the scheme's crosswalk file (see docs/taxonomy.md), check it "
            "with `crossbeat taxonomy check FILE`, then re-ingest."
        )


@taxonomy.command("crosswalks")
@click.option(
    "--dir",
    "dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Agency crosswalk folder, searched before the shipped ones (repeatable).",
)
@click.option(
    "--db",
    "db_url",
    envvar="CROSSBEAT_DB",
    metavar="URL",
    help="Also list the schemes the offences stored in this existing database use, with "
    "their counts (only read; also CROSSBEAT_DB).",
)
@json_option()
def taxonomy_crosswalks(dirs: tuple[str, ...], db_url: str | None, as_json: bool) -> None:
    """List the offence schemes with their crosswalk version and number of rules.

    With --db (or CROSSBEAT_DB) the schemes of the stored offences are listed too, and a
    scheme whose crosswalk file is in none of the searched folders says so (give its
    folder with --dir, e.g. --dir demo-data/crosswalks for the demo).
    """
    from pathlib import Path

    from crossbeat.taxonomy import TaxonomyError, available_crosswalks, load_crosswalk

    folders = [Path(d) for d in dirs]
    used = _stored_schemes(db_url) if db_url else {}
    rows: list[dict[str, Any]] = []
    for scheme, path in available_crosswalks(folders).items():
        try:
            cw = load_crosswalk(scheme, folders)
        except TaxonomyError as exc:
            raise click.ClickException(str(exc)) from exc
        rows.append(
            {"scheme": scheme, "version": cw.version, "rules": len(cw), "key": cw.key}
            | {"description": cw.description, "path": str(path)}
            | ({"stored_offences": used.pop(scheme)} if scheme in used else {})
        )
    for scheme, n in sorted(used.items()):
        rows.append(
            {"scheme": scheme, "version": None, "rules": None, "key": None}
            | {"description": None, "path": None, "stored_offences": n}
        )
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        stored = f"  [{r['stored_offences']} stored offences]" if "stored_offences" in r else ""
        if r["path"] is None:
            click.echo(
                f"{r['scheme']:<22} {'?':<12} {'?':>4} rules  crosswalk file not in the searched "
                f"folders (give its folder with --dir){stored}"
            )
            continue
        click.echo(
            f"{r['scheme']:<22} {r['version']:<12} {r['rules']:>4} rules  {r['description']}"
            + stored
        )


def _stored_schemes(db_url: str) -> dict[str, int]:
    """Return the offence schemes of an existing database with their offence counts."""
    from crossbeat.sharing.coverage import read_coverage

    store = _open_existing_store(db_url)
    counts: dict[str, int] = {}
    for s in read_coverage(store, None, with_suggestions=False).schemes:
        if s.scheme:
            counts[s.scheme] = counts.get(s.scheme, 0) + s.total
    return counts


@taxonomy.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def taxonomy_check(files: tuple[str, ...]) -> None:
    """Validate crosswalk files; exit non-zero when any has a problem."""
    from pathlib import Path

    from crossbeat.taxonomy import validate_crosswalk_file

    bad = 0
    for name in files:
        problems = validate_crosswalk_file(Path(name))
        click.echo(f"{name}: " + ("ok" if not problems else f"{len(problems)} problem(s)"))
        for p in problems:
            click.echo(f"  - {p}")
        bad += bool(problems)
    if bad:
        raise click.ClickException(f"{bad} of {len(files)} crosswalk file(s) have problems")


@taxonomy.command("sensitivity-accuracy")
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, exists=True),
    help="A labelled narrative CSV (default: the shipped set; columns in docs/taxonomy.md).",
)
@click.option(
    "--split",
    type=click.Choice(["each", "all", "tune", "holdout"]),
    default="each",
    show_default=True,
    help="Rows to measure: the held-out (evaluation) and tune (training) rows each on "
    "their own, all rows together, or one split.",
)
@click.option("--errors", is_flag=True, help="List every miss, false alarm and extra flag.")
@json_option()
def taxonomy_sensitivity_accuracy(
    path: str | None, split: str, errors: bool, as_json: bool
) -> None:
    """Measure free-text sensitivity detection on labelled narratives.

    Prints recall per flag, the share of sensitive narratives given any flag (kept from
    the public), the false-positive rate on ordinary narratives and the time per row,
    for the held-out evaluation rows and the training rows separately, and the recall
    of each held-out batch.
    """
    from crossbeat.taxonomy import TaxonomyError
    from crossbeat.taxonomy.sensitivity_accuracy import (
        holdout_batches,
        load_labelled,
        measure,
        measure_splits,
        render,
    )

    try:
        rows = load_labelled(path)
        reports = measure_splits(rows) if split == "each" else [measure(rows, split)]
    except TaxonomyError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        data = {r.split: r.as_dict() for r in reports}
        echo_json(reports[0].as_dict() if len(reports) == 1 else data)
        return
    for report in reports:
        for line in render(report, errors=errors):
            click.echo(line)
        if report.split == "holdout":
            for batch, sens, caught, ordinary, flagged in holdout_batches(rows):
                click.echo(
                    f"  held-out batch {batch}: recall {caught}/{sens}, "
                    f"false positives {flagged}/{ordinary}"
                )


@taxonomy.command("sensitivity")
@click.argument("text")
@click.option(
    "--person-crime", is_flag=True, help="The text belongs to an offence against a person."
)
def taxonomy_sensitivity(text: str, person_crime: bool) -> None:
    """Show the sensitivity flags a narrative gets, and why."""
    from crossbeat.taxonomy import keyword_sensitivity, narrative_sensitivity
    from crossbeat.taxonomy.narrative import explain
    from crossbeat.taxonomy.narrative_model import model, model_score

    flags = narrative_sensitivity(text, person_crime=person_crime)
    click.echo("flags: " + (", ".join(sorted(flags)) or "none"))
    findings = explain(text, person_crime=person_crime)
    for finding in findings:
        click.echo(f"  {finding.flag.value}: {finding.reason}")
    lexical = {f.flag for f in findings}
    score = model_score(text)
    if score is None:
        click.echo("  narrative model: not read (fewer than 5 words)")
    else:
        verdict = "sensitive" if score >= model().threshold else "ordinary"
        click.echo(f"  narrative model: {score:.2f} ({verdict}, threshold {model().threshold:.2f})")
    by_rules = keyword_sensitivity(text, person_crime=person_crime)
    for flag in sorted(flags - lexical):
        source = "a pattern of sensitive_keywords.toml" if by_rules else "the narrative model"
        click.echo(f"  {flag.value}: {source}")


@taxonomy.command("suggest")
@click.argument("code")
@click.argument("description", required=False)
@click.option("--scheme", help="The scheme the code belongs to (its patterns count more).")
@click.option(
    "--limit", default=5, show_default=True, type=click.IntRange(1, 50), help="Suggestions shown."
)
@json_option()
def taxonomy_suggest(
    code: str, description: str | None, scheme: str | None, limit: int, as_json: bool
) -> None:
    """Propose NIBRS codes or call categories for a local code (nothing is changed).

    A CAD call type that is not an offence gets a call-for-service category
    (``call:alarm``): write ``call = "alarm"`` in the crosswalk entry.
    """
    from dataclasses import asdict

    from crossbeat.taxonomy import suggest

    found = suggest(code, description, scheme=scheme, limit=limit)
    if as_json:
        echo_json([asdict(s) | {"target": s.target} for s in found])
        return
    if not found:
        click.echo("no suggestion; look the offence up in the NIBRS table (docs/taxonomy.md)")
    width = max((len(s.target) for s in found), default=5)
    for s in found:
        click.echo(f"{s.target:<{width}} {s.score:>5.1f}  {s.name}  ({s.reason})")


@taxonomy.command("suggest-accuracy")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False),
    help="A labelled CSV (code,description,expected); default: the shipped list.",
)
@click.option("--misses", is_flag=True, help="Also list every call type whose top pick is wrong.")
@json_option()
def taxonomy_suggest_accuracy(path: str | None, misses: bool, as_json: bool) -> None:
    """Print how often `taxonomy suggest` is right on labelled CAD/RMS call types.

    Top-1: the best suggestion is the labelled NIBRS code or call category; top-3: it is
    among the first three. Shown for the tuning part, the held-out part (never used to
    tune the vocabulary), the whole list, and the held-out call types that are not
    written exactly as a term the suggester lists ("unlisted": the strictest figure).
    """
    from pathlib import Path

    from crossbeat.taxonomy import TaxonomyError
    from crossbeat.taxonomy.accuracy import (
        labelled_call_types,
        measure,
        measure_split,
        not_listed,
    )

    try:
        items = labelled_call_types(Path(path) if path else None)
    except TaxonomyError as exc:
        raise click.ClickException(str(exc)) from exc
    # The strictest figure: held-out call types not written exactly as a listed term.
    unlisted = measure(not_listed(i for i in items if i.held_out), "unlisted")
    parts = (*measure_split(items), unlisted)
    if as_json:
        echo_json(
            [
                {"part": a.part, "total": a.total, "top1": a.top1, "top3": a.top3}
                | {"top1_rate": round(a.top1_rate, 4), "top3_rate": round(a.top3_rate, 4)}
                | (
                    {
                        "misses": [
                            [m.item.code, m.item.expected, list(m.suggested)] for m in a.misses
                        ]
                    }
                    if misses
                    else {}
                )
                for a in parts
            ]
        )
        return
    click.echo(f"{'part':<9} {'call types':>10} {'top-1':>14} {'top-3':>14}")
    for a in parts:
        click.echo(
            f"{a.part:<9} {a.total:>10} {a.top1:>5} ({a.top1_rate:6.1%}) "
            f"{a.top3:>5} ({a.top3_rate:6.1%})"
        )
    if misses:
        for a in parts[:2]:
            for m in a.misses:
                text = " ".join(t for t in (m.item.code, m.item.description) if t)
                got = ", ".join(m.suggested) or "nothing"
                click.echo(f"  [{a.part}] {text}: expected {m.item.expected}, got {got}")


# --- quarantine -------------------------------------------------------------------------
@cli.group()
def bulletin() -> None:
    """Send, list and acknowledge interagency bulletins (BOLO, series, officer safety)."""


def _local(agency_id: str) -> Any:
    """Return the local operator acting for an agency (recorded as ``system``)."""
    from crossbeat.live.field import Reporter

    return Reporter("system", agency_id)


@bulletin.command("send")
@db_option
@agency_option("The sending agency.", required=True)
@click.option(
    "--kind",
    type=click.Choice(["bolo", "series", "officer_safety"]),
    required=True,
    help="Be-on-the-lookout, series warning or officer-safety notice.",
)
@click.option("--title", required=True, help="One line.")
@click.option("--body", default="", help="The text.")
@click.option("--to", "recipients", multiple=True, required=True,
              help="A partner agency id or group:NAME (repeatable).")  # fmt: skip
@click.option("--lat", type=float, help="Anchor point latitude (with --lon).")
@click.option("--lon", type=float, help="Anchor point longitude (with --lat).")
@click.option("--incident", "incidents", multiple=True,
              help="A referenced incident id, as the agency sees it (repeatable).")  # fmt: skip
@json_option()
def bulletin_send(
    db_url: str, agency_id: str, kind: str, title: str, body: str, recipients: tuple[str, ...],
    lat: float | None, lon: float | None, incidents: tuple[str, ...], as_json: bool,
) -> None:  # fmt: skip
    """Send a bulletin to partner agencies or groups (audited; on their live streams)."""
    from crossbeat.live.bulletins import BulletinError, create_bulletin
    from crossbeat.sharing.request import Viewer

    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    if (lat is None) != (lon is None):
        raise click.ClickException("give both --lat and --lon, or neither")
    anchor: dict[str, Any] = (
        {"type": "point", "lat": lat, "lon": lon} if lat is not None else {"type": "incidents"}
    )
    viewer = Viewer.user("system", agency_id, ["analyst"])
    try:
        made = create_bulletin(
            store, viewer, _local(agency_id), kind=kind, title=title, body=body,
            anchor=anchor, recipients=list(recipients), incident_ids=list(incidents),
        )  # fmt: skip
    except BulletinError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        echo_json(made.to_dict())
    else:
        to = ", ".join(r.agency_id for r in made.recipients)
        click.echo(f"bulletin {made.id} sent to {to}")


@bulletin.command("list")
@db_option
@agency_option("The agency whose bulletins to list.", required=True)
@click.option("--unacknowledged", is_flag=True, help="Only those it has not acknowledged.")
@json_option()
def bulletin_list(db_url: str, agency_id: str, unacknowledged: bool, as_json: bool) -> None:
    """List the bulletins an agency sent or received, newest first."""
    from crossbeat.live.bulletins import list_bulletins

    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    found = list_bulletins(store, agency_id, unacknowledged=unacknowledged)
    if as_json:
        echo_json([b.to_dict() for b in found])
        return
    for b in found:
        flag = " UNACKNOWLEDGED" if b.unacknowledged else ""
        click.echo(
            f"{b.id}  {b.created_at:%Y-%m-%d %H:%M}  {b.agency_id}  {b.kind}  {b.title}{flag}"
        )
    if not found:
        click.echo("no bulletins")


@bulletin.command("ack")
@db_option
@agency_option("The acknowledging (recipient) agency.", required=True)
@click.argument("bulletin_id")
def bulletin_ack(db_url: str, agency_id: str, bulletin_id: str) -> None:
    """Acknowledge a bulletin addressed to an agency (audited)."""
    from crossbeat.live.bulletins import UnknownBulletin, acknowledge

    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    try:
        acknowledge(store, _local(agency_id), bulletin_id)
    except UnknownBulletin as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"bulletin {bulletin_id} acknowledged for {agency_id}")


@cli.group()
def quarantine() -> None:
    """Inspect and re-process rows that could not be stored."""


@quarantine.command("list")
@db_option
@agency_option("Only this agency.")
@click.option(
    "--status",
    type=click.Choice(["open", "resolved", "dismissed", "all"]),
    default="open",
    show_default=True,
    help="Only entries in this state.",
)
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(1),
    help="At most this many rows (the output says when there are more).",
)
@click.option("--all", "show_all", is_flag=True, help="Every matching row, however many.")
@json_option()
def quarantine_list(
    db_url: str, agency_id: str | None, status: str, limit: int, show_all: bool, as_json: bool
) -> None:
    """List quarantined rows with their row numbers and every reason (the read is audited).

    Shows the first --limit rows (50) and says how many more there are; --all shows all.
    """
    from crossbeat.ingest.quarantine import count_quarantine
    from crossbeat.sharing.quarantine import read_quarantine

    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    entries = read_quarantine(
        store,
        agency_id=agency_id,
        status=None if status == "all" else status,
        limit=None if show_all else limit,
    )
    counts = count_quarantine(store, agency_id=agency_id)
    matching = sum(counts.values()) if status == "all" else counts.get(status, 0)
    if as_json:
        echo_json(
            {
                "counts": counts,
                "entries": [e.as_dict() for e in entries],
                "more": max(0, matching - len(entries)),
            }
        )
        return
    for e in entries:
        click.echo(f"#{e.id} {e.agency_id} {e.source_file}:{e.row_number} [{e.status}]")
        for r in e.reasons:
            click.echo(f"    - {r}")
    click.echo(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "quarantine is empty")
    if matching > len(entries):
        click.echo(
            f"shown: the first {len(entries)} of {matching} {status} entries; see more with "
            f"--limit {matching} or --all"
        )


@quarantine.command("retry")
@db_option
@agency_option("Only this agency's rows.")
@click.option(
    "--profile",
    "profile_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The fixed profile.",
)
@click.option("--id", "ids", multiple=True, type=int, help="Only these entries (repeatable).")
@json_option()
@click.option("--accept-timezone", is_flag=True, help=ACCEPT_TIMEZONE_HELP)
def quarantine_retry(
    db_url: str,
    agency_id: str | None,
    profile_path: str,
    ids: tuple[int, ...],
    as_json: bool,
    accept_timezone: bool,
) -> None:
    """Re-process open quarantined rows after a profile or crosswalk fix."""
    from crossbeat.ingest.profile import ProfileError, load_profile
    from crossbeat.ingest.quarantine import retry_quarantine

    try:
        profile = load_profile(profile_path)
    except ProfileError as exc:
        raise click.ClickException(str(exc)) from exc
    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    try:
        res = retry_quarantine(
            store,
            profile,
            agency_id=agency_id,
            ids=list(ids) or None,
            accept_timezone=accept_timezone,
        )
    except ProfileError as exc:
        raise click.ClickException(str(exc)) from exc
    except ValueError as exc:
        hint = "" if "nothing was retried" in str(exc) else ": use --agency ID"
        raise click.ClickException(f"{exc}{hint}") from exc
    if as_json:
        echo_json(res.as_dict())
        return
    click.echo(
        f"retried {res.retried}: {res.stored.new} new, {res.stored.updated} updated, "
        f"{res.stored.unchanged} unchanged, {res.still_quarantined} still quarantined"
    )
    for name, n in sorted(res.other_profiles.items()):
        click.echo(f"left {n} open row(s) of feed {name!r}: retry them with that feed's profile")


@quarantine.command("dismiss")
@db_option
@agency_option("Agency whose rows to dismiss.", required=True)
@click.option("--id", "ids", multiple=True, type=int, required=True, help="Entry id (repeatable).")
@click.option("--reason", required=True, help="Why the rows will not be stored.")
def quarantine_dismiss(db_url: str, agency_id: str, ids: tuple[int, ...], reason: str) -> None:
    """Dismiss quarantined rows (they are kept, marked dismissed, never deleted)."""
    from crossbeat.ingest.quarantine import dismiss_quarantine

    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    try:
        n = dismiss_quarantine(store, agency_id, ids, reason=reason)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{n} dismissed")


# --- demo and serve ---------------------------------------------------------------------
def _serve_options(f: Any) -> Any:
    """Add ``--host`` and ``--port`` (defaults from the settings registry)."""
    f = click.option(
        "--port",
        type=click.IntRange(1, 65535),
        help="TCP port to listen on (default 8000, or CROSSBEAT_PORT).",
    )(f)
    return click.option(
        "--host", help="Interface to listen on (default 127.0.0.1, or CROSSBEAT_HOST)."
    )(f)


def _run_server(settings: Any, workers: int = 1) -> None:
    """Serve the app for ``settings`` with uvicorn, failing clearly if the port is taken.

    With ``workers`` > 1, uvicorn runs that many processes, each building the app from
    the settings passed through the environment (``app_from_environment``).
    """
    import errno
    import socket

    import uvicorn

    from crossbeat.api.app import create_app
    from crossbeat.audit import AuditKeyError
    from crossbeat.settings import settings_environment
    from crossbeat.store import StoreError

    # Bind the port as the server will (with SO_REUSEADDR, like uvicorn), so the check
    # neither depends on what a connect happens to reach nor trips on TIME_WAIT.
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.host, settings.port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(
                    f"port {settings.port} on {settings.host} is already in use: stop the "
                    f"other server or pass --port {settings.port + 1} (or set CROSSBEAT_PORT; "
                    f"with make: make demo PORT={settings.port + 1})"
                ) from exc
            raise click.ClickException(
                f"cannot listen on {settings.host}:{settings.port} ({exc.strerror}): pass "
                "--host 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"
            ) from exc
    try:
        app = create_app(settings, freeze_gc=True)
    except (StoreError, AuditKeyError) as exc:
        raise click.ClickException(str(exc)) from exc
    if workers <= 1:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
        return
    # The database was opened (and migrated) once above; each worker opens its own.
    app.state.store.dispose()
    if settings.rate_limit_storage == "memory://":
        # One limit for all workers, not one each (issue #10): count in the database.
        settings = dataclasses.replace(settings, rate_limit_storage="database://")
    os.environ.update(settings_environment(settings))
    uvicorn.run(
        "crossbeat.api.app:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level="info",
    )


@cli.command()
@click.option("--dir", "demo_dir", help="Folder for the demo database and files (demo-data).")
@click.option("--seed", type=int, help="Random seed of the generated region (default 7).")
@click.option(
    "--size",
    type=click.FloatRange(0.01, 5.0),
    default=1.0,
    show_default=True,
    help="Scale of the incident counts (1.0 is about 10,000 incidents).",
)
@click.option("--rebuild", is_flag=True, help="Regenerate and reload an existing demo.")
@click.option(
    "--end-date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Last day of the year of incidents (default: yesterday in the demo's time zone, "
    "so that the last 30 days hold data); the same seed, size and date give the same data.",
)
@click.option("--serve/--no-serve", default=True, help="Start the web server afterwards.")
@click.option(
    "--accounts",
    "show_accounts",
    is_flag=True,
    help="Print the demo accounts with their current sign-in codes, and exit.",
)
@_serve_options
def demo(
    demo_dir: str | None,
    seed: int | None,
    size: float,
    rebuild: bool,
    end_date: datetime | None,
    serve: bool,
    show_accounts: bool,
    host: str | None,
    port: int | None,
) -> None:
    """Build the demo region (three agencies, one year of incidents) and serve it."""
    from pathlib import Path

    from crossbeat.demo.build import (
        build_demo,
        demo_audit_key,
        demo_db_url,
        demo_default_end,
        demo_is_built,
        demo_last_day,
        remove_demo,
    )
    from crossbeat.settings import load_settings

    settings = load_settings(demo_dir=demo_dir, demo_seed=seed, host=host, port=port)
    out_dir = Path(settings.demo_dir)
    url = demo_db_url(out_dir)
    if show_accounts:
        _print_demo_accounts(out_dir)
        return
    if rebuild:
        remove_demo(out_dir)
    if demo_is_built(out_dir):
        last = demo_last_day(out_dir)
        ends = f"; its incidents end on {last}" if last else ""
        click.echo(f"Using the demo database {url}{ends} (--rebuild to generate it again).")
    else:
        end = end_date.date() if end_date else demo_default_end()
        click.echo(
            f"Generating the demo region (seed {settings.demo_seed}, incidents up to {end}) "
            f"into {out_dir}/ ..."
        )
        summary = build_demo(
            url,
            out_dir,
            seed=settings.demo_seed,
            size=size,
            progress=True,
            kek=configured_kek(url, required=False),
            end=end,
        )
        click.echo(f"{'agency':<14}{'rows':>7}{'new':>7}{'quarantined':>13}{'unmapped':>10}")
        for agency_id, s in summary.ingests.items():
            click.echo(f"{agency_id:<14}{s.rows:>7}{s.new:>7}{s.quarantined:>13}{s.unmapped:>10}")
        click.echo(f"Ground truth of what was planted: {summary.files.manifest}")
        _print_demo_accounts(out_dir)
    base = f"http://{settings.host}:{settings.port}"
    if not serve:
        # Nothing listens at that address now: say how to start it rather than print a
        # URL that does not answer.
        click.echo(
            f"Not serving (--no-serve). Start the server with: crossbeat serve --db {url} "
            f"--port {settings.port}   (then the API docs are at {base}/docs)"
        )
        return
    click.echo(f"API docs: {base}/docs   health: {base}/health   home: {base}/")
    if serve:
        # The demo server signs audit checkpoints with a demo key unless one is configured.
        audit_key = settings.audit_key_file or str(demo_audit_key(out_dir))
        _run_server(
            load_settings(
                database_url=url,
                host=settings.host,
                port=settings.port,
                audit_key_file=audit_key,
            )
        )


def _print_demo_accounts(out_dir: Any) -> None:
    """Print the demo accounts (demo only: one published password)."""
    from crossbeat.clock import SystemClock
    from crossbeat.demo.accounts import DEMO_PASSWORD, demo_code, load_demo_accounts

    accounts = load_demo_accounts(out_dir)
    if not accounts:
        raise click.ClickException(f"no demo accounts in {out_dir}: run `crossbeat demo --rebuild`")
    now = SystemClock().now()
    click.echo(f"Demo accounts (DEMO ONLY) - password for all: {DEMO_PASSWORD}")
    click.echo(f"{'username':<28}{'agency':<14}{'role':<16}code now")
    for a in accounts:
        click.echo(
            f"{a.username:<28}{a.agency_id:<14}{a.role:<16}{demo_code(out_dir, a.username, now)}"
        )
    click.echo("Current codes again: crossbeat demo --accounts (each code is accepted once)")


@cli.command()
@db_option
@_serve_options
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes (use PostgreSQL for more than one; SQLite serializes writes).",
)
def serve(db_url: str, host: str | None, port: int | None, workers: int) -> None:
    """Serve the web API over a database."""
    from crossbeat.settings import load_settings

    _require_db_url(db_url)
    _run_server(load_settings(database_url=db_url, host=host, port=port), workers=workers)


# --- accounts and authentication (governance) ------------------------------------------
@cli.group()
def user() -> None:
    """Manage user accounts: create, roles, passwords, unlock, disable and enable."""


@cli.group()
def token() -> None:
    """Manage API tokens for machine feeds (one agency and purpose each)."""


def _auth(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call an auth library function, audited, turning its errors into click errors.

    Account and token changes made from the command line are written to the audit
    log like those made through the API (actor: the local operator).
    """
    import inspect

    from crossbeat.audit import auth_sink
    from crossbeat.auth.errors import AuthError

    if args and "events" in inspect.signature(fn).parameters and "events" not in kwargs:
        kwargs["events"] = auth_sink(args[0])
    try:
        return fn(*args, **kwargs)
    except AuthError as exc:
        raise click.ClickException(str(exc)) from exc


def _read_password(from_stdin: bool) -> str:
    """Read a password from stdin's first line, or prompt for it on a terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import warnings

    try:
        with warnings.catch_warnings():  # off a terminal getpass warns that input may echo
            warnings.simplefilter("ignore")
            return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    except click.Abort:  # end of input: no terminal, nothing piped in
        raise click.UsageError(
            "no password was given (no terminal to ask on?): give --password-stdin and pipe "
            "the password in, e.g. printf '%s\\n' \"$PASSWORD\" | crossbeat user add ... "
            "--password-stdin"
        ) from None


def _show_enrolment(enrolment: Any, as_json: bool) -> None:
    data = {
        **enrolment.user.as_dict(),
        "totp_secret": enrolment.totp_secret,
        "otpauth_uri": enrolment.provisioning_uri,
    }
    if as_json:
        echo_json(data)
        return
    click.echo(f"user {data['username']} of agency {data['agency']}: {', '.join(data['roles'])}")
    click.echo(f"TOTP secret: {enrolment.totp_secret}")
    click.echo(f"otpauth URI: {enrolment.provisioning_uri}")
    click.echo("Add it to an authenticator app now: it is not shown again.", err=True)


def _show_user(found: Any, as_json: bool) -> None:
    data = found.as_dict()
    if as_json:
        echo_json(data)
    else:
        state = data["status"] + (" (locked)" if data["locked"] else "")
        click.echo(f"{data['username']} [{data['agency']}] {', '.join(data['roles'])}: {state}")


ROLE_HELP = (
    "Role (repeatable): officer, analyst, supervisor, agency_admin, auditor, platform_admin."
)
PASSWORD_STDIN_HELP = (
    "Read the password from the first line of stdin instead of prompting (for scripts and "
    "any run without a terminal)."
)


@user.command("add")
@db_option
@click.argument("agency_id", metavar="AGENCY")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, help=ROLE_HELP)
@click.option("--display-name", help="Name to show instead of the username.")
@click.option("--password-stdin", is_flag=True, help=PASSWORD_STDIN_HELP)
@json_option()
def user_add(
    db_url: str,
    agency_id: str,
    username: str,
    roles: tuple[str, ...],
    display_name: str | None,
    password_stdin: bool,
    as_json: bool,
) -> None:
    """Create a user; prints the TOTP secret and otpauth:// URI once."""
    from crossbeat.auth.accounts import create_user

    password = _read_password(password_stdin)
    store = open_store_or_fail(db_url)
    enrolment = _auth(
        create_user, store, agency_id, username, password, roles, display_name=display_name
    )
    _show_enrolment(enrolment, as_json)


@user.command("list")
@db_option
@agency_option("Only this agency's users.")
@json_option()
def user_list(db_url: str, agency_id: str | None, as_json: bool) -> None:
    """List users with their roles and status."""
    from crossbeat.auth.accounts import list_users

    found = _auth(list_users, open_store_or_fail(db_url), agency_id=agency_id)
    if as_json:
        echo_json([u.as_dict() for u in found])
        return
    for u in found:
        _show_user(u, False)


@user.command("roles")
@db_option
@click.argument("username")
@click.option("--role", "roles", multiple=True, help=ROLE_HELP + " Without it, show the roles.")
@json_option()
def user_roles(db_url: str, username: str, roles: tuple[str, ...], as_json: bool) -> None:
    """Show a user's roles, or replace them with the --role options given."""
    from crossbeat.auth.accounts import get_user, set_roles

    store = open_store_or_fail(db_url)
    found = _auth(set_roles, store, username, roles) if roles else _auth(get_user, store, username)
    _show_user(found, as_json)


@user.command("password")
@db_option
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help=PASSWORD_STDIN_HELP)
def user_password(db_url: str, username: str, password_stdin: bool) -> None:
    """Set a user's password (ends the user's sessions)."""
    from crossbeat.auth.accounts import get_user, set_password

    store = open_store_or_fail(db_url)
    _auth(get_user, store, username)  # fail before asking for a password
    _auth(set_password, store, username, _read_password(password_stdin))
    click.echo(f"password of {username} changed; the user's sessions have ended")


@user.command("reset-totp")
@db_option
@click.argument("username")
@json_option()
def user_reset_totp(db_url: str, username: str, as_json: bool) -> None:
    """Give a user a new TOTP secret (lost phone); prints it once and ends the sessions."""
    from crossbeat.auth.accounts import reset_totp

    _show_enrolment(_auth(reset_totp, open_store_or_fail(db_url), username), as_json)


@user.command("unlock")
@db_option
@click.argument("username")
def user_unlock(db_url: str, username: str) -> None:
    """Unlock an account locked after failed sign-ins."""
    from crossbeat.auth.accounts import unlock_user

    _show_user(_auth(unlock_user, open_store_or_fail(db_url), username), False)


@user.command("disable")
@db_option
@click.argument("username")
def user_disable(db_url: str, username: str) -> None:
    """Disable an account and end its sessions."""
    from crossbeat.auth.accounts import disable_user

    _show_user(_auth(disable_user, open_store_or_fail(db_url), username), False)


@user.command("enable")
@db_option
@click.argument("username")
def user_enable(db_url: str, username: str) -> None:
    """Enable a disabled account (its 90-day inactivity period restarts)."""
    from crossbeat.auth.accounts import enable_user

    _show_user(_auth(enable_user, open_store_or_fail(db_url), username), False)


@user.command("disable-inactive")
@db_option
@json_option()
def user_disable_inactive(db_url: str, as_json: bool) -> None:
    """Disable every account unused for 90 days (run daily, e.g. from cron)."""
    from crossbeat.auth.accounts import disable_inactive

    disabled = _auth(disable_inactive, open_store_or_fail(db_url))
    if as_json:
        echo_json([u.as_dict() for u in disabled])
    else:
        names = ", ".join(u.username for u in disabled)
        click.echo(f"{len(disabled)} account(s) disabled" + (f": {names}" if names else ""))


@token.command("create")
@db_option
@click.argument("agency_id", metavar="AGENCY")
@click.option("--purpose", required=True, help="ingest (push exports) or read (pull shared data).")
@click.option("--label", help="What the token is for, e.g. 'RMS nightly export'.")
@json_option()
def token_create(
    db_url: str, agency_id: str, purpose: str, label: str | None, as_json: bool
) -> None:
    """Create an API token of AGENCY for one --purpose; prints its secret once.

    --purpose is required: ingest (a machine pushing exports) or read (pulling the data
    the agency may see), e.g. crossbeat token create rivertonpd --purpose ingest.
    """
    from crossbeat.auth.tokens import create_token

    new = _auth(create_token, open_store_or_fail(db_url), agency_id, purpose, label=label)
    if as_json:
        echo_json({**new.token.as_dict(), "secret": new.secret})
    else:
        click.echo(f"token {new.token.id} ({new.token.purpose.value} for {agency_id})")
        click.echo(f"secret: {new.secret}")
        click.echo("Store the secret now: it is not shown again.", err=True)


@token.command("revoke")
@db_option
@click.argument("token_id")
def token_revoke(db_url: str, token_id: str) -> None:
    """Revoke an API token at once."""
    from crossbeat.auth.tokens import revoke_token

    revoked = _auth(revoke_token, open_store_or_fail(db_url), token_id)
    click.echo(f"token {revoked.id} revoked at {revoked.revoked_at.isoformat()}")


@token.command("list")
@db_option
@agency_option("Only this agency's tokens.")
@json_option()
def token_list(db_url: str, agency_id: str | None, as_json: bool) -> None:
    """List API tokens (never their secrets), newest first."""
    from crossbeat.auth.tokens import list_tokens

    found = _auth(list_tokens, open_store_or_fail(db_url), agency_id=agency_id)
    if as_json:
        echo_json([t.as_dict() for t in found])
        return
    for t in found:
        state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
        click.echo(f"{t.id}  {t.agency_id}  {t.purpose.value}  {state}  {t.label or ''}".rstrip())


# --- keys (governance) ------------------------------------------------------------------
@cli.group()
def keys() -> None:
    """Manage the keys that encrypt personal data at rest (see docs/security.md)."""


@keys.command("new-kek")
def keys_new_kek() -> None:
    """Print a fresh random key-encryption key (base64) to put in CROSSBEAT_KEK."""
    from crossbeat.vault.kek import generate_kek

    click.echo(generate_kek())


@keys.command("status")
@db_option
@json_option()
def keys_status(db_url: str, as_json: bool) -> None:
    """Show each agency's and the platform's active data key and the rows each key seals."""
    from crossbeat.vault.rotate import key_status
    from crossbeat.vault.tables import FINGERPRINT, PLATFORM

    owners = key_status(open_store_or_fail(db_url))
    if as_json:
        echo_json([a.as_dict() for a in owners])
        return
    if not owners:
        click.echo("no personal data and no data keys yet")
    notes = {
        PLATFORM: " (quarantined rows of unknown agency, TOTP seeds)",
        FINGERPRINT: " (keys the record hashes; never rotated)",
    }
    for a in owners:
        click.echo(f"{a.owner}{notes.get(a.owner, '')}: active key {a.active_key_id or '-'}")
        for k in a.keys:
            click.echo(f"    v{k.version} {k.key_id} {k.status:<8} kek {k.kek_id} rows {k.rows}")
        if a.plain_rows:
            click.echo(
                f"    {a.plain_rows} legacy unencrypted rows: "
                f"crossbeat keys rotate --agency {a.owner}"
            )


@keys.command("rotate")
@db_option
@click.option("--agency", "agency_ids", multiple=True, help="Agency to rotate (repeatable).")
@click.option(
    "--platform",
    is_flag=True,
    help="The platform key (quarantined rows of unknown agency, TOTP seeds).",
)
@click.option(
    "--all", "all_agencies", is_flag=True, help="Every agency with sealed data, and the platform."
)
@click.option(
    "--batch-size",
    default=500,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Rows re-encrypted per transaction.",
)
def keys_rotate(
    db_url: str, agency_ids: tuple[str, ...], platform: bool, all_agencies: bool, batch_size: int
) -> None:
    """Re-encrypt an agency's sealed data under a new data key and retire the old one.

    Covers personal data and quarantined rows of the agency; ``--platform`` covers
    quarantined rows of unknown agency and TOTP seeds. Also encrypts legacy
    unencrypted rows. Safe to interrupt: running the same command again finishes the
    rotation instead of starting another. The fingerprint key is never rotated.
    """
    from crossbeat.vault.errors import VaultError
    from crossbeat.vault.rotate import key_owners, rotate_agency_key
    from crossbeat.vault.tables import PLATFORM

    if bool(agency_ids or platform) == all_agencies:
        raise click.UsageError("give --agency ID (repeatable), --platform, or --all")
    store = open_store_or_fail(db_url)
    targets = key_owners(store) if all_agencies else list(agency_ids)
    if platform:
        targets.append(PLATFORM)
    for agency_id in targets:
        if agency_id != PLATFORM and not store.agency_exists(agency_id):
            raise click.ClickException(f"unknown agency {agency_id}: see `crossbeat agency list`")
        try:
            res = rotate_agency_key(
                store, agency_id, batch_size=batch_size, progress=_rotation_progress
            )
        except VaultError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(
            f"{agency_id}: rotation {'done' if res.started else 'resumed and done'}; "
            f"{res.reencrypted} rows re-encrypted under key v{res.new_version} "
            f"{res.new_key_id}; retired: {', '.join(res.retired) or 'none'}"
        )


def _rotation_progress(p: Any) -> None:
    click.echo(f"  {p.agency_id}: {p.done}/{p.total} rows re-encrypted (batch {p.batches})")


@keys.command("rewrap")
@db_option
@click.option(
    "--old-kek-file",
    required=True,
    envvar="CROSSBEAT_KEK_OLD_FILE",
    type=click.Path(dir_okay=False),
    help="File holding the previous KEK (base64); also CROSSBEAT_KEK_OLD_FILE.",
)
def keys_rewrap(db_url: str, old_kek_file: str) -> None:
    """Re-wrap every key (agencies', platform, fingerprint) under the configured KEK.

    Run after changing the KEK. Rows are not touched; safe to run again.
    """
    from crossbeat.vault.errors import VaultError
    from crossbeat.vault.kek import read_kek_file
    from crossbeat.vault.keys import Vault, require_vault
    from crossbeat.vault.rotate import rewrap_keys

    store = open_store_or_fail(db_url)
    try:
        vault = Vault(require_vault(store).kek, old_keks=[read_kek_file(old_kek_file)])
        n = rewrap_keys(store, vault)
    except VaultError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{n} key(s) re-wrapped under KEK {vault.kek.id}")


# --- sharing (governance) ---------------------------------------------------------------
@cli.group()
def agreement() -> None:
    """Manage sharing agreements: add, revoke, list, history, and preview what partners see."""


def _sharing(fn: Any, *args: Any, _hint: str = "", **kwargs: Any) -> Any:
    """Call a sharing library function, turning its errors into click errors.

    ``_hint`` is added to a message that says an option is required.
    """
    from crossbeat.auth.errors import AuthError
    from crossbeat.sharing.scope import ScopeError

    try:
        return fn(*args, **kwargs)
    except (ValueError, ScopeError, AuthError) as exc:
        message = str(exc)
        if _hint and "required for" in message:
            message += _hint
        raise click.ClickException(message) from exc


def _csv(values: tuple[str, ...]) -> list[str] | None:
    return list(values) or None


@agreement.command("add")
@db_option
@click.argument("owner")
@click.argument("grantee")
@click.option(
    "--offences",
    multiple=True,
    help="all, person, property, society, part1 or NIBRS codes (comma-separated or repeated); "
    "calls for service only by name: calls, or call:CATEGORY such as call:alarm; "
    "required unless GRANTEE is public.",
)
@click.option(
    "--fields",
    multiple=True,
    help="Allowed fields or groups: all, offence, occurred, location, h3, personal, or names; "
    "required unless GRANTEE is public.",
)
@click.option(
    "--precision",
    help="exact, block, h3:9, h3:8, h3:7, h3:6, area:LAYER (an area layer) or jurisdiction; "
    "required unless GRANTEE is public.",
)
@click.option("--time", "time_resolution", help="Time resolution: exact, hour, day or month.")
@click.option("--delay", help="Publication delay, e.g. 24h or 7d.")
@click.option(
    "--purpose",
    "purposes",
    multiple=True,
    help="analysis, operations, investigation (comma-separated or repeated); required unless "
    "GRANTEE is public.",
)
@click.option(
    "--include-sensitive",
    multiple=True,
    help="Sensitivity flags still shared (never for the public).",
)
@time_option("--valid-from", "Start; default now")
@time_option("--valid-to", "End; default open-ended")
@click.option(
    "--approved-by",
    multiple=True,
    required=True,
    help="Username of an admin of OWNER who approved it (repeat for the second approver "
    "that personal data fields need).",
)
@click.option("--reference", default="", help="The decision it rests on (MoU, minute).")
@click.option("--note", default="", help="Why the data is shared.")
@json_option("Print the agreement as JSON.")
def agreement_add(
    db_url: str,
    owner: str,
    grantee: str,
    offences: tuple[str, ...],
    fields: tuple[str, ...],
    precision: str | None,
    time_resolution: str | None,
    delay: str | None,
    purposes: tuple[str, ...],
    include_sensitive: tuple[str, ...],
    valid_from: datetime | None,
    valid_to: datetime | None,
    approved_by: tuple[str, ...],
    reference: str,
    note: str,
    as_json: bool,
) -> None:
    """Share OWNER's incidents with GRANTEE (an agency id, group:ID or public).

    For an agency or group grantee, --offences, --fields, --precision and --purpose are
    required (nothing is shared by default), e.g.:

    \b
      crossbeat agreement add rivertonpd metrotransit --offences part1
        --fields offence,occurred,location --precision block --purpose analysis
        --approved-by riverton.agency-admin

    For the public they default to the owner's public release policy.

    The agreement applies once admins of OWNER approved it: one, or two different ones
    when personal data fields are shared (the second can approve later with
    `crossbeat agreement approve`).
    """
    from crossbeat.sharing.agreements import create_agreement

    store = open_store_or_fail(db_url)
    given = {"--offences": offences, "--fields": fields, "--precision": precision}
    missing = [name for name, v in {**given, "--purpose": purposes}.items() if not v]
    hint = (
        f" (an agency or group grantee needs {', '.join(missing)}: nothing is shared by "
        "default; e.g. --offences part1 --fields offence,occurred,location --precision block "
        "--purpose analysis)"
    )
    made = _sharing(
        create_agreement,
        store,
        owner,
        grantee,
        offences=_csv(offences),
        fields=_csv(fields),
        precision=precision,
        time_resolution=time_resolution,
        delay=delay,
        purposes=_csv(purposes),
        include_sensitive=include_sensitive,
        approved_by=_csv(approved_by),
        reference=reference,
        purpose_note=note,
        valid_from=valid_from,
        valid_to=valid_to,
        _hint=hint if missing else "",
    )
    if as_json:
        echo_json(made.to_dict())
        return
    click.echo(f"agreement {made.id}: {made.owner} -> {made.grantee} ({made.scope.precision})")
    _echo_approval(made, store.now())


def _echo_approval(made: Any, now: Any) -> None:
    if made.status(now) == "awaiting_approval":
        click.echo(
            f"awaiting approval: {len(made.approvals)} of {made.required_approvals} admins of "
            f"{made.owner} approved; another approves with: crossbeat agreement approve "
            f"{made.id} --by USERNAME"
        )


@agreement.command("approve")
@db_option
@click.argument("agreement_id")
@click.option(
    "--by", "approver", required=True, help="Username of the approving admin of the owner."
)
def agreement_approve(db_url: str, agreement_id: str, approver: str) -> None:
    """Record the approval of an agreement by an admin of its owner agency."""
    from crossbeat.sharing.agreements import approve_agreement

    store = open_store_or_fail(db_url)
    done = _sharing(approve_agreement, store, agreement_id, approver=approver)
    names = ", ".join(a.username for a in done.approvals)
    click.echo(f"agreement {done.id} approved by {names}: {done.status(store.now())}")
    _echo_approval(done, store.now())


@agreement.command("revoke")
@db_option
@click.argument("agreement_id")
@click.option("--reason", required=True, help="Why the agreement ends (kept in its history).")
def agreement_revoke(db_url: str, agreement_id: str, reason: str) -> None:
    """Revoke an agreement at once (also for open live streams)."""
    from crossbeat.sharing.agreements import revoke_agreement

    done = _sharing(revoke_agreement, open_store_or_fail(db_url), agreement_id, reason=reason)
    click.echo(f"agreement {done.id} revoked at {done.revoked_at.isoformat()}")


@agreement.command("list")
@db_option
@click.option("--owner", help="Only agreements of this owner agency.")
@click.option("--grantee", help="Only agreements with this grantee (agency, group:ID, public).")
@click.option(
    "--status",
    type=click.Choice(["active", "awaiting_approval", "pending", "expired", "revoked"]),
    help="Only agreements in this state.",
)
@json_option()
def agreement_list(
    db_url: str, owner: str | None, grantee: str | None, status: str | None, as_json: bool
) -> None:
    """List sharing agreements, oldest first."""
    from crossbeat.sharing.agreements import list_agreements

    store = open_store_or_fail(db_url)
    found = _sharing(list_agreements, store, owner=owner, grantee=grantee, status=status)
    if as_json:
        echo_json([a.to_dict() for a in found])
        return
    now = store.now()
    for a in found:
        offences = ",".join(sorted(a.scope.offences or {"all"}))
        click.echo(
            f"{a.id}  {a.status(now):<17} {a.owner} -> {a.grantee}  {offences}  {a.scope.precision}"
        )


@agreement.command("history")
@db_option
@click.argument("agreement_id")
def agreement_history_cmd(db_url: str, agreement_id: str) -> None:
    """Print every stored version of an agreement as JSON."""
    from crossbeat.sharing.agreements import agreement_history

    echo_json(agreement_history(open_store_or_fail(db_url), agreement_id))


@agreement.command("preview")
@db_option
@click.argument("owner")
@click.argument("grantee")
@click.option("--purpose", help="The grantee's purpose (default analysis).")
@click.option(
    "--sample", default=5, show_default=True, type=click.IntRange(0), help="Sample records to show."
)
@json_option()
def agreement_preview(
    db_url: str, owner: str, grantee: str, purpose: str | None, sample: int, as_json: bool
) -> None:
    """Show what GRANTEE (an agency, group:ID or public) sees of OWNER's data now."""
    from crossbeat.sharing.preview import preview

    found = _sharing(
        preview, open_store_or_fail(db_url), owner, grantee, purpose=purpose, sample=sample
    )
    if as_json:
        echo_json(found.to_dict())
        return
    click.echo(f"{grantee} sees {found.visible} of {owner}'s {found.total} live records")
    for d in found.decisions:
        click.echo(f"  {'allowed' if d.allow else 'denied'}:")
        for reason in d.reasons:
            click.echo(f"    - {reason}")
    for reason, n in found.hidden.items():
        click.echo(f"  hidden {n:>6}  {reason}")
    if found.sample and found.sample_kind != "records":
        click.echo("  sample: synthetic stand-ins (made-up values, in the shape the grantee gets)")
    for record in found.sample:
        click.echo("  sample  " + json.dumps(record, default=str, ensure_ascii=False))


@cli.group()
def group() -> None:
    """Manage named groups of agencies (task forces) that agreements can share with."""


@group.command("add")
@db_option
@click.argument("group_id")
@click.option("--name", required=True, help="Human-readable name of the group.")
@click.option("--member", "members", multiple=True, help="Member agency id (repeatable).")
@click.option("--description", help="What the group is for.")
def group_add(
    db_url: str, group_id: str, name: str, members: tuple[str, ...], description: str | None
) -> None:
    """Create a group of agencies."""
    from crossbeat.sharing.groups import create_group

    made = _sharing(
        create_group,
        open_store_or_fail(db_url),
        group_id,
        name,
        members=members,
        description=description,
    )
    click.echo(f"group {made.id}: {', '.join(made.members) or 'no members yet'}")


@group.command("members")
@db_option
@click.argument("group_id")
@click.option("--add", "add", multiple=True, help="Agency to add (repeatable).")
@click.option("--remove", "remove", multiple=True, help="Agency to remove (repeatable).")
def group_members(
    db_url: str, group_id: str, add: tuple[str, ...], remove: tuple[str, ...]
) -> None:
    """Add or remove member agencies of a group (effective at once)."""
    from crossbeat.sharing.groups import set_members

    done = _sharing(set_members, open_store_or_fail(db_url), group_id, add=add, remove=remove)
    click.echo(f"group {done.id}: {', '.join(done.members) or 'no members'}")


@group.command("list")
@db_option
@json_option()
def group_list(db_url: str, as_json: bool) -> None:
    """List groups and their members."""
    from crossbeat.sharing.groups import list_groups

    found = list_groups(open_store_or_fail(db_url))
    if as_json:
        echo_json([g.to_dict() for g in found])
        return
    for g in found:
        click.echo(f"{g.id:<24} {g.name}: {', '.join(g.members)}")


@cli.group("public-policy")
def public_policy() -> None:
    """Show or tighten an agency's public release policy (it can only get stricter)."""


@public_policy.command("show")
@db_option
@click.argument("agency_id")
def public_policy_show(db_url: str, agency_id: str) -> None:
    """Print an agency's effective public release policy as JSON."""
    from crossbeat.sharing.overrides import get_public_policy

    echo_json(get_public_policy(open_store_or_fail(db_url), agency_id).to_settings())


@public_policy.command("tighten")
@db_option
@click.argument("agency_id")
@click.option("--precision", help="Coarser precision, e.g. h3:8, h3:7, area:LAYER or jurisdiction.")
@click.option("--time", "time_resolution", help="Coarser time resolution: day or month.")
@click.option("--delay", help="Longer delay, e.g. 14d.")
@click.option("--threshold", type=int, help="Higher smallest published count.")
@click.option("--fields", multiple=True, help="Keep only these public fields.")
@click.option(
    "--suppress", multiple=True, help="Also never publish these offences (codes, categories)."
)
@click.option("--aggregates-only", is_flag=True, help="Publish counts only, no individual records.")
@click.option(
    "--noise-epsilon",
    type=float,
    help="Publish counts with differential privacy (OpenDP): the ε each release spends "
    "(implies counts only; smaller is stricter).",
)
@click.option(
    "--noise-budget",
    type=float,
    help="The ε all noisy releases may spend per calendar month (default 10 x epsilon).",
)
def public_policy_tighten(
    db_url: str,
    agency_id: str,
    precision: str | None,
    time_resolution: str | None,
    delay: str | None,
    threshold: int | None,
    fields: tuple[str, ...],
    suppress: tuple[str, ...],
    aggregates_only: bool,
    noise_epsilon: float | None,
    noise_budget: float | None,
) -> None:
    """Make AGENCY_ID's public release stricter; loosening is refused."""
    from crossbeat.sharing.overrides import tighten_public_policy

    settings = {
        "precision": precision,
        "time_resolution": time_resolution,
        "delay": delay,
        "threshold": threshold,
        "fields": list(fields) or None,
        "suppress_offences": list(suppress) or None,
        "records": False if aggregates_only else None,
        "noise_epsilon": noise_epsilon,
        "noise_budget": noise_budget,
    }
    knobs = {k: v for k, v in settings.items() if v is not None}
    done = _sharing(tighten_public_policy, open_store_or_fail(db_url), agency_id, knobs)
    echo_json(done.to_settings())


# --- audit (governance) -----------------------------------------------------------------
KEY_FILE_HELP = "Ed25519 key file (PEM); also CROSSBEAT_AUDIT_KEY_FILE."


@cli.group()
def audit() -> None:
    """Verify, read and checkpoint the tamper-evident audit log."""


def _audit_keys(paths: tuple[str, ...], *, signing: bool) -> list[Any]:
    from pathlib import Path

    from crossbeat.audit import AuditKeyError, load_signing_key, load_verify_key

    load = load_signing_key if signing else load_verify_key
    try:
        return [load(Path(p)) for p in paths]
    except AuditKeyError as exc:
        raise click.ClickException(str(exc)) from exc


@audit.command("verify")
@db_option
@click.option(
    "--key-file",
    "key_files",
    multiple=True,
    envvar="CROSSBEAT_AUDIT_KEY_FILE",
    help="Public (or private) key whose signatures the tree heads must carry; repeat for "
    "rotated keys. " + KEY_FILE_HELP,
)
@click.option(
    "--trusted-head",
    "trusted_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A tree head exported with `audit checkpoint --out`; repeatable.",
)
@click.option(
    "--heads-file",
    envvar="CROSSBEAT_AUDIT_HEADS_FILE",
    type=click.Path(dir_okay=False),
    help="The heads file the server appends every signed head to (default for SQLite: "
    "<db>.audit-heads.jsonl); each head in it must still hold.",
)
@json_option("Print the report as JSON.")
def audit_verify(
    db_url: str,
    key_files: tuple[str, ...],
    trusted_files: tuple[str, ...],
    heads_file: str | None,
    as_json: bool,
) -> None:
    """Check the whole audit log; exit 1 and list every problem if it was tampered with.

    Without --key-file, a SQLite database's server key (<db>.audit-key) is used when it
    exists. A heads file that was named (--heads-file, CROSSBEAT_AUDIT_HEADS_FILE) must
    exist; the default one beside a SQLite database only warns when missing.
    """
    from pathlib import Path

    from crossbeat.audit import read_head, verify
    from crossbeat.audit.witness import default_key_path, heads_path

    default_key = default_key_path(db_url)
    if not key_files and default_key is not None and default_key.exists():
        key_files = (str(default_key),)
    keys = _audit_keys(key_files, signing=False)
    try:
        trusted = [read_head(Path(p)) for p in trusted_files]
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    report = verify(
        open_store_or_fail(db_url, upgrade=False),
        key=keys,
        trusted_heads=trusted,
        heads_file=heads_path(db_url, heads_file),
        heads_file_required=bool(heads_file),
    )
    if as_json:
        echo_json(report.to_dict())
    else:
        for problem in report.problems:
            click.echo(f"PROBLEM {problem}")
        if report.problems_omitted:
            click.echo(f"... and {report.problems_omitted} more problems")
        for warning in report.warnings:
            click.echo(f"warning: {warning}", err=True)
        verdict = "intact" if report.ok else f"TAMPERED ({len(report.problems)} problems)"
        click.echo(
            f"audit log {verdict}: {report.tree_size} events, root {report.root_hash}, "
            f"{report.heads_checked} tree heads and {report.trusted_checked} trusted heads "
            "checked"
        )
    sys.exit(0 if report.ok else 1)


@audit.command("log")
@db_option
@agency_option("Owner agency: every access to its data, by anyone.", dest="agency")
@click.option(
    "--actor", help="Only events by this actor (username, user id, token id, public, system)."
)
@click.option("--action", help="Only events of this action (read, export, login, ...).")
@click.option("--record", "record_id", help="Only events that touched this record id.")
@time_option("--since", "From this date or time, inclusive")
@time_option("--until", "Up to this date or time, exclusive")
@click.option(
    "--limit", default=100, show_default=True, type=click.IntRange(1), help="Events shown."
)
@click.option(
    "--offset",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="Skip this many events (paging).",
)
@json_option("Print the events as JSON.")
def audit_log(
    db_url: str,
    agency: str | None,
    actor: str | None,
    action: str | None,
    record_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """List audit events, newest first: by owner agency (--agency) or by actor (--actor)."""
    from crossbeat.audit import events_by_actor, events_for_owner, public_reads

    if agency is None and actor is None:
        raise click.UsageError("give --agency (owner's access log) or --actor")
    filters: dict[str, Any] = {
        "since": since,
        "until": until,
        "action": action,
        "record_id": record_id,
        "limit": limit,
        "offset": offset,
    }
    store = open_store_or_fail(db_url, upgrade=False)
    public_reads.flush(store, store.now())  # closed windows of public reads, as events
    from crossbeat.auth.names import actor_names, user_id_for

    if actor is not None:
        actor = user_id_for(store, actor)  # events record users by id
    try:
        if agency is not None:
            events = events_for_owner(store, agency, actor=actor, **filters)
        else:
            events = events_by_actor(store, actor, **filters)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    names = actor_names(store, (e.actor for e in events))
    if as_json:
        echo_json([{**e.to_dict(), "actor_name": names.get(e.actor)} for e in events])
        return
    if not events:
        from crossbeat.agencies import get_agency

        unknown = agency is not None and get_agency(store, agency) is None
        click.echo(
            "no audit events match"
            + (
                f" (no agency {agency!r} is registered: see `crossbeat agency list`)"
                if unknown
                else ""
            )
        )
    for e in events:
        where = f" from {e.source_ip}" if e.source_ip else ""
        name = names.get(e.actor, e.actor)
        who = f"{name}@{e.actor_agency}" if e.actor_agency else name
        owners = ",".join(e.owner_agencies) or "-"
        purpose = f" purpose={e.purpose!r}" if e.purpose else ""
        click.echo(
            f"{e.seq}\t{e.to_dict()['occurred_at']}\t{who}{where}\t{e.action.value}\t"
            f"{e.outcome.value}\towners={owners}\trecords={e.record_count}{purpose}"
        )


@audit.command("checkpoint")
@db_option
@click.option(
    "--key-file",
    envvar="CROSSBEAT_AUDIT_KEY_FILE",
    help="Private Ed25519 signing key (default for SQLite: the server's <db>.audit-key). "
    + KEY_FILE_HELP,
)
@click.option(
    "--heads-file",
    envvar="CROSSBEAT_AUDIT_HEADS_FILE",
    type=click.Path(dir_okay=False),
    help="Append the head to this file, as the server does (default for SQLite: "
    "<db>.audit-heads.jsonl).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Also write the signed tree head to this file; keep it outside the database.",
)
def audit_checkpoint(
    db_url: str, key_file: str | None, heads_file: str | None, out: str | None
) -> None:
    """Verify the newest events, then sign and store a tree head covering the whole log."""
    from pathlib import Path

    from crossbeat.audit import AuditIntegrityError, AuditKeyError, checkpoint, write_head
    from crossbeat.audit.witness import export_new_heads, heads_path, server_signing_key

    try:
        key, _ = server_signing_key(db_url, key_file)
    except AuditKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    store = open_store_or_fail(db_url, upgrade=False)
    try:
        head = checkpoint(store, key)
    except AuditIntegrityError as exc:
        raise click.ClickException(str(exc)) from exc
    witness = heads_path(db_url, heads_file)
    if witness is not None:
        export_new_heads(store, witness)
    elif not out:
        click.echo(
            "warning: the head is kept in the database only; set CROSSBEAT_AUDIT_HEADS_FILE "
            "(or --heads-file, --out) so that deleting heads and events together is detected",
            err=True,
        )
    if out:
        write_head(head, Path(out))
    click.echo(f"tree head #{head.id}: {head.tree_size} events, root {head.root_hash}")


@audit.command("keygen")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the private key (the public key goes to OUT.pub).",
)
def audit_keygen(out: str) -> None:
    """Create an Ed25519 key pair for signing audit tree heads."""
    from pathlib import Path

    from crossbeat.audit import AuditKeyError, generate_signing_key, write_signing_key
    from crossbeat.audit.keys import key_id

    key = generate_signing_key()
    try:
        public = write_signing_key(key, Path(out))
    except AuditKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(
            f"cannot write {out}: {exc.strerror}; create the folder first or choose another --out"
        ) from exc
    click.echo(f"wrote {out} (private, keep secret) and {public}; key id {key_id(key)}")


# --- analyse (cross-jurisdiction analytics, issue #11) -----------------------------------
#: The named analyses (:data:`crossbeat.analytics.named.ANALYSES`), one command each.
ANALYSIS_NAMES = (
    "kde", "hotspots", "emerging", "trends", "compstat", "nearrepeat", "series", "duplicates",
)  # fmt: skip


class _AnalysesGroup(click.Group):
    """``analyse``: the command of a named analysis is built when it is first asked for.

    Its help lists the analysis's parameters, read from the analysis function, and
    importing the analyses (numpy, scipy, the sharing module) costs a second or more:
    every other command of the CLI would pay it at start-up if they were built at import.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *ANALYSIS_NAMES})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in ANALYSIS_NAMES and cmd_name not in self.commands:
            _analysis_command(cmd_name)
        return super().get_command(ctx, cmd_name)


@cli.group(cls=_AnalysesGroup)
def analyse() -> None:
    """Run an analysis on the incidents an agency's analysts may see (audited reads)."""


def _analysis_request(
    since: datetime | None,
    until: datetime | None,
    offences: tuple[str, ...],
    owners: tuple[str, ...] = (),
) -> Any:
    from crossbeat.sharing.request import ReadRequest, RequestError

    try:
        return ReadRequest(
            since=since,
            until=until,
            offences=frozenset(offences) or None,
            agencies=frozenset(owners) or None,
        )
    except RequestError as exc:
        raise click.ClickException(str(exc)) from exc


def _param(values: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep:
            raise click.BadParameter(
                f"{item!r}: write NAME=VALUE, e.g. cell_m=250", param_hint="-p"
            )
        for kind in (int, float):
            try:
                out[key] = kind(raw)
                break
            except ValueError:
                continue
        else:
            out[key] = raw
    return out


def _analysis_command(name: str) -> None:
    from crossbeat.analytics.named import ANALYSES, parameters

    takes = ", ".join(sorted(parameters(name)))

    @analyse.command(name, help=f"Run {name} as AGENCY's analysts see the region; print JSON.\n\n"
                     f"Parameters (-p NAME=VALUE): {takes}.")  # fmt: skip
    @db_option
    @agency_option("Analyse as an analyst of this agency.", required=True)
    @time_option("--since", "Occurred from this date or time")
    @time_option("--until", "Occurred before this date or time")
    @click.option(
        "--offence", "offences", multiple=True, help="Only these offences (codes or categories)."
    )
    @click.option(
        "--owner", "owners", multiple=True,
        help="Only incidents of these owner agencies (repeatable; default: every agency "
        "that shares with AGENCY, and AGENCY itself).",
    )  # fmt: skip
    @click.option("-p", "params", multiple=True, help="Analysis parameter NAME=VALUE (repeatable).")
    @click.option("--geojson", is_flag=True, help="Print GeoJSON instead of JSON (maps).")
    @click.option(
        "--png", type=click.Path(dir_okay=False), help="Also write a picture to this file."
    )
    def command(db_url: str, agency_id: str, since: datetime | None, until: datetime | None,
                offences: tuple[str, ...], owners: tuple[str, ...], params: tuple[str, ...],
                geojson: bool, png: str | None) -> None:  # fmt: skip
        from crossbeat.analysis.errors import AnalysisError
        from crossbeat.analytics.named import render_named, run_named
        from crossbeat.sharing.own import operator_viewer

        store = open_store_or_fail(db_url)
        _require_agency(store, agency_id)
        request = _analysis_request(since, until, offences, owners)
        try:
            outcome = run_named(name, store, operator_viewer(agency_id), request, _param(params))
            if png:
                from pathlib import Path

                Path(png).write_bytes(render_named(name, outcome, "png"))  # type: ignore[arg-type]
            echo_json(render_named(name, outcome, "geojson" if geojson else "json"))
        except AnalysisError as exc:
            raise click.ClickException(str(exc)) from exc

    del command, ANALYSES


@analyse.command("similar")
@db_option
@agency_option("Analyse as an analyst of this agency.", required=True)
@click.argument("incident_id")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100), help="Rows.")
def analyse_similar(db_url: str, agency_id: str, incident_id: str, limit: int) -> None:
    """List the incidents most like INCIDENT_ID (same offence, near in space, time and MO)."""
    from crossbeat.analysis.errors import AnalysisError
    from crossbeat.analytics import render, run
    from crossbeat.sharing.own import operator_viewer

    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    try:
        outcome = run.similar(store, operator_viewer(agency_id), incident_id, limit=limit)
    except (AnalysisError, LookupError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from exc
    echo_json(render.similar_json(outcome))


@analyse.command("link-duplicates")
@db_option
@agency_option("Search the incidents this agency's analysts may see.", required=True)
@click.option(
    "--threshold",
    default=0.9,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Minimum match probability.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of splink's u sampling.")
def analyse_link_duplicates(db_url: str, agency_id: str, threshold: float, seed: int) -> None:
    """Link cross-agency duplicates: never deleted, counted once by analyses (audited)."""
    from crossbeat.analysis.errors import AnalysisError
    from crossbeat.analytics.links import link
    from crossbeat.sharing.own import operator_viewer

    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    try:
        s = link(store, operator_viewer(agency_id), threshold=threshold, seed=seed)
    except AnalysisError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{s.found} probable duplicate pairs: {s.linked} linked, {s.already} already linked")


# --- forecasting and patrol planning (issue #13) ---------------------------------------
@cli.group()
def forecast() -> None:
    """Forecast hot spots with their backtested accuracy; NIJ challenge submissions."""


def _forecast_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from crossbeat.forecast.nij import NijRuleError
    from crossbeat.forecast.service import ForecastError

    try:
        return fn(*args, **kwargs)
    except (ForecastError, NijRuleError) as exc:
        raise click.ClickException(str(exc)) from exc


def _show_card(card: Any, as_json: bool) -> None:
    data = card.to_dict()
    if as_json:
        echo_json(data)
        return
    click.echo(
        f"model card {data['id']}: {data['model']} for {data['category']}, "
        f"{data['window_from']} to {data['window_to']}"
    )
    snap = data["data_snapshot"]
    click.echo(
        f"trained on {snap['records']} incidents ({data['training_from']} to {data['training_to']})"
    )
    if "related" in snap:
        cats = ", ".join(f"{c} {n}" for c, n in snap["related"]["categories"].items())
        click.echo(f"borrowing from {snap['related']['records']} incidents ({cats})")
    params = data["params"]
    if isinstance(params, dict) and params.get("chosen"):
        # A model chosen among members on earlier windows: which one, on how many.
        click.echo(
            f"chosen: {params['chosen']} (most hits over the {params['windows_scored']} "
            "windows before the forecast)"
        )
    g = data["grid"]
    kind = g.get("kind", "square")
    what = {
        "square": f"squares of {g.get('size_m')} m",
        "h3": f"H3 hexagons of resolution {g.get('resolution')}",
        "area": f"the areas of layer {g.get('layer')}",
    }
    click.echo(f"cells: {what.get(kind, kind)} ({g.get('cells')} cells)")
    click.echo(
        f"backtest over the {data['backtest']['windows']} windows before it (mean per window):"
    )
    for model, scores in data["backtest"]["models"].items():

        def fig(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.2f}"

        figures = "  ".join(
            f"{float(f) * 100:g}% area: PAI {fig(s['pai'])} PEI {fig(s['pei'])} "
            f"hit rate {fig(s['hit_rate'])}"
            for f, s in scores.items()
            if f != "calibration"
        )
        click.echo(f"  {model:<10} {figures}")
    conc = data["accountability"]["concentration"]
    click.echo(
        f"flagged cells: {len(data['forecast']['cells'])} in "
        f"{conc['neighbourhoods']} neighbourhoods "
        f"(largest share {conc['largest_share']:.0%})"
    )
    lift = data["accountability"]["feedback"]["lift_in_previously_flagged"]
    if lift is not None:
        click.echo(
            f"feedback monitor: recent incidents in previously flagged cells at {lift:.1f}x "
            "their area share"
        )


@forecast.command("run")
@db_option
@agency_option("Agency whose analysts' view of the data is used.", required=True)
@click.option(
    "--category",
    required=True,
    help="NIBRS code to forecast (e.g. 220 burglary), or several joined by commas forecast "
    "together (e.g. 120,13A,13B).",
)
@time_option("--start", "Start of the forecast window")
@click.option(
    "--days",
    "window_days",
    default=7.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Window length in days (a shift: 0.333).",
)
@click.option(
    "--model",
    default="ensemble-decayed",
    show_default=True,
    type=click.Choice(
        [
            "naive",
            "retrospective",
            "prospective",
            "kde",
            "decayed",
            "shrunk",
            "sepp",
            "gbm",
            "ensemble",
            "ensemble-decayed",
            "counts-selected",
            "borrowed",
        ]
    ),
    help="Forecasting model (borrowed also reads the agency's other forecastable categories).",
)
@click.option(
    "--cell",
    "cell_m",
    default=150.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Cell side in metres.",
)
@click.option(
    "--fraction",
    default=0.01,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Share of the area to flag.",
)
@click.option(
    "--cells",
    default="square",
    show_default=True,
    help="Cell kind: square (of --cell metres), h3:RESOLUTION (5-11, 9 is about 0.1 km²) "
    "or area:LAYER (one of the agency's area layers).",
)
@click.option(
    "--allow", "allowed", multiple=True, help="The agency's forecastable categories (opt-in list)."
)
@json_option()
def forecast_run(
    db_url: str, agency_id: str, category: str, start: datetime | None, window_days: float,
    model: str,
    cell_m: float, fraction: float, cells: str, allowed: tuple[str, ...], as_json: bool,
) -> None:  # fmt: skip
    """Forecast CATEGORY for AGENCY, backtest it on the windows before, store its model card."""
    from crossbeat.forecast.service import run_forecast
    from crossbeat.sharing.own import operator_viewer

    if start is None:
        raise click.UsageError("give --start, e.g. --start 2026-06-01")
    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    card = _forecast_call(
        run_forecast,
        store,
        operator_viewer(agency_id),
        category=category,
        start=start,
        window_days=window_days,
        model=model,
        cell_m=cell_m,
        fraction=fraction,
        cells=cells,
        allowed=frozenset(allowed) if allowed else None,
    )
    _show_card(card, as_json)


@forecast.command("list")
@db_option
@agency_option("Agency whose model cards to list.", required=True)
@json_option()
def forecast_list(db_url: str, agency_id: str, as_json: bool) -> None:
    """List AGENCY's model cards, newest first."""
    from crossbeat.forecast.service import list_model_cards

    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    cards = list_model_cards(store, agency_id)
    if as_json:
        echo_json([c.to_dict() for c in cards])
        return
    for c in cards:
        click.echo(
            f"{c.id}  {c.model:<10} {c.category:<5} {c.window_from.isoformat()}  by {c.created_by}"
        )


@forecast.command("show")
@db_option
@agency_option("Agency that owns the model card.", required=True)
@click.argument("card_id")
@json_option()
def forecast_show(db_url: str, agency_id: str, card_id: str, as_json: bool) -> None:
    """Show one model card: model, parameters, data, backtest and accountability."""
    from crossbeat.forecast.service import get_model_card

    store = open_store_or_fail(db_url)
    _show_card(_forecast_call(get_model_card, store, card_id, agency_id), as_json)


@forecast.command("nij")
@db_option
@agency_option("Agency whose analysts' view of the data is used.", required=True)
@click.option(
    "--category",
    required=True,
    help="NIBRS code to forecast, or several joined by commas (e.g. 120,13A,13B for street crime).",
)
@time_option("--start", "Forecast date (monthly windows start on the 1st)")
@click.option(
    "--window",
    type=click.Choice(["1w", "2w", "1m", "2m", "3m"]),
    default="1w",
    show_default=True,
    help="NIJ window.",
)
@click.option(
    "--cell-ft",
    default=600.0,
    show_default=True,
    type=float,
    help="Square cell side in feet (250-600).",
)
@click.option(
    "--area-sq-mi",
    default=0.25,
    show_default=True,
    type=float,
    help="Flagged area in sq mi (0.25-0.75).",
)
@click.option(
    "--model",
    default="ensemble-decayed",
    show_default=True,
    help="Forecasting model (default: the one chosen on validation windows, docs/forecasting.md).",
)
@click.option(
    "--search",
    "search_windows",
    default=0,
    show_default=True,
    type=click.IntRange(0, 52),
    help="Choose the cell size (250-600 ft) and flagged area (0.25-0.75 sq mi) by a "
    "backtest on this many windows just before --start (0: use --cell-ft and --area-sq-mi).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for flagged.geojson and grid.csv.",
)
def forecast_nij(
    db_url: str, agency_id: str, category: str, start: datetime | None, window: str, cell_ft: float,
    area_sq_mi: float, model: str, search_windows: int, out: str,
) -> None:  # fmt: skip
    """Write an NIJ-rule submission (flagged.geojson, grid.csv) for AGENCY's CATEGORY."""
    from pathlib import Path

    import numpy as np

    from crossbeat.forecast import nij
    from crossbeat.forecast.backtest import consecutive
    from crossbeat.forecast.grid import grid_for
    from crossbeat.forecast.history import days, history_from_arrays
    from crossbeat.forecast.service import (
        check_forecastable,
        jurisdiction_area,
        model_factory,
        model_names,
    )
    from crossbeat.sharing.arrays import analysis_arrays
    from crossbeat.sharing.own import operator_viewer
    from crossbeat.sharing.request import ReadRequest

    if start is None:
        raise click.UsageError("give --start, e.g. --start 2026-06-01")
    if model not in model_names():
        raise click.UsageError(f"--model: use one of {', '.join(model_names())}")
    codes = _forecast_call(check_forecastable, category)
    category = ",".join(codes)
    _forecast_call(nij.check_cell, cell_ft * 0.3048)
    _forecast_call(nij.check_flagged, area_sq_mi * nij.SQ_MI)
    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    viewer = operator_viewer(agency_id)
    arrays = analysis_arrays(store, viewer, ReadRequest(offences=frozenset(codes), until=start))
    h = history_from_arrays(arrays)
    if not len(h):
        raise click.ClickException(f"no visible incidents of {category} before {start.date()}")
    make, _ = model_factory(
        store, viewer, model, category=category, history=h, until=start, purpose=None
    )
    s = float(days(np.array([start.replace(tzinfo=None)], dtype="datetime64[us]"))[0])
    area = jurisdiction_area(store, agency_id)
    if search_windows:
        # Validation windows of the same length, all before the forecast date.
        length = _forecast_call(nij.window_end, s, window) - s
        found = _forecast_call(
            nij.search,
            h,
            make,
            consecutive(s - search_windows * length, length, search_windows),
            area=area,
        )
        for ft, sq_mi, pai in found.table:
            click.echo(f"search: {ft:g} ft cells, {sq_mi:g} sq mi flagged: mean PAI {pai:.2f}")
        cell_ft, area_sq_mi = found.cell_ft, found.area_sq_mi
        click.echo(f"chosen: {cell_ft:g} ft cells, {area_sq_mi:g} sq mi")
    grid = grid_for(h, cell_ft * 0.3048, area=area)
    f = _forecast_call(nij.nij_forecast, make(), h, grid, s, window, area_sq_mi * nij.SQ_MI)
    gj, csv_path = nij.write_submission(f, Path(out), area=area)
    click.echo(
        f"flagged {f.flagged.size} cells, {f.flagged_area / nij.SQ_MI:.3f} sq mi: "
        f"wrote {gj} and {csv_path}"
    )


@cli.group()
def patrol() -> None:
    """Plan shared patrols over a forecast's hot spots and log dosage (issue #13)."""


@patrol.command("plan")
@db_option
@agency_option("Agency whose units patrol.", required=True)
@click.option(
    "--card", "card_id", required=True, help="Model card id (from `crossbeat forecast run`)."
)
@click.option(
    "--units", default=2, show_default=True, type=click.IntRange(1, 500), help="Units on shift."
)
@time_option("--shift-start", "Start of the shift")
@click.option(
    "--shift-hours",
    default=8.0,
    show_default=True,
    type=click.FloatRange(0.5, 24),
    help="Shift length.",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed: the same seed gives the same plan.",
)
@click.option(
    "--osm",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="The agency's OpenStreetMap extract (.osm or .pbf): route on its roads "
    "(straight lines without it).",
)
@json_option()
def patrol_plan(
    db_url: str, agency_id: str, card_id: str, units: int, shift_start: datetime | None,
    shift_hours: float,
    seed: int, osm: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Allocate AGENCY's units over a model card's hot spots and route them (stored, audited)."""
    from crossbeat.forecast.patrol import PatrolRules
    from crossbeat.forecast.plans import save_patrol_plan

    if shift_start is None:
        raise click.UsageError("give --shift-start, e.g. --shift-start 2026-06-01T08:00")
    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    plan = _forecast_call(
        save_patrol_plan,
        store,
        agency_id,
        card_id,
        units=units,
        shift_start=shift_start,
        seed=seed,
        rules=PatrolRules(shift_minutes=shift_hours * 60),
        osm=osm,
    )
    if as_json:
        echo_json(plan)
        return
    click.echo(
        f"patrol plan {plan['id']} from model card {card_id} ({plan['model']}), seed {seed}, "
        f"routes: {plan['routing']}"
    )
    for unit, beat in plan["assignment"].items():
        stays = [v for v in plan["visits"] if v["unit"] == unit]
        click.echo(
            f"  {unit}: {len(beat)} boxes, {len(stays)} stays of 10-16 min, cycle "
            + " > ".join(str(plan["boxes"][str(c)]["h3_9"]) for c in beat)
        )
    if plan["claimed_by_partners"]:
        click.echo(
            f"  {len(plan['claimed_by_partners'])} boxes already in partner agencies' plans: "
            "not assigned"
        )


@patrol.command("roads")
@db_option
@agency_option("Agency whose road network it is.", required=True)
@click.argument("osm", type=click.Path(exists=True, dir_okay=False))
def patrol_roads(db_url: str, agency_id: str, osm: str) -> None:
    """Store AGENCY's road network from its OpenStreetMap extract OSM (.osm or .pbf).

    Replaces the agency's earlier network. Patrol plans (CLI and API) then route on it:
    with pgRouting on PostgreSQL, in Python on SQLite.
    """
    from crossbeat.forecast.networks import store_road_network
    from crossbeat.forecast.roads import RoadNetworkError

    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    try:
        got = store_road_network(store, agency_id, osm, by="cli")
    except RoadNetworkError as e:
        raise click.ClickException(f"road network: {e}") from e
    click.echo(
        f"road network of {agency_id} stored from {got['source']}: {got['nodes']} nodes, "
        f"{got['edges']} directed segments"
    )


@patrol.command("dosage")
@db_option
@agency_option("Agency of the unit.", required=True)
@click.option("--plan", "plan_id", help="Patrol plan id.")
@click.option("--cell", required=True, type=int, help="Box id (from the plan).")
@click.option("--unit", required=True, help="Unit id.")
@time_option("--at", "When the stay began")
@click.option("--minutes", required=True, type=float, help="Minutes spent in the box.")
def patrol_dosage(
    db_url: str,
    agency_id: str,
    plan_id: str | None,
    cell: int,
    unit: str,
    at: datetime | None,
    minutes: float,
) -> None:
    """Log time a unit spent in a box (audited)."""
    from crossbeat.forecast.plans import log_dosage

    if at is None:
        raise click.UsageError("give --at, the time the stay began")
    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    new = _forecast_call(
        log_dosage,
        store,
        agency_id,
        plan_id=plan_id,
        cell=cell,
        unit=unit,
        started_at=at,
        minutes=minutes,
    )
    click.echo(f"logged {minutes:g} minutes in box {cell} by {unit} (log {new})")


@patrol.command("positions")
@db_option
@agency_option("Agency whose units posted the positions.", required=True)
@click.option("--plan", "plan_id", required=True, help="Patrol plan id.")
@click.option(
    "--max-gap",
    "max_gap",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0, 60, min_open=True),
    help="Longest silence (minutes) between two positions still counted as time in a box.",
)
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
def patrol_positions(
    db_url: str, agency_id: str, plan_id: str, max_gap: float, csv_file: str
) -> None:
    """Derive dosage from unit positions in CSV_FILE (columns unit, at, lon, lat).

    Each unbroken run of a unit's positions in one of the plan's boxes is logged as a stay
    (audited); the positions themselves are not stored.
    """
    import csv

    from crossbeat.forecast.plans import Position, dosage_from_positions

    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    positions = []
    with open(csv_file, newline="", encoding="utf-8") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=2):
            try:
                positions.append(
                    Position(
                        row["unit"],
                        parse_iso_time(row["at"]),
                        float(row["lon"]),
                        float(row["lat"]),
                    )
                )
            except (KeyError, TypeError, ValueError) as e:
                raise click.ClickException(
                    f"{csv_file} line {n}: need unit, at (ISO time with a zone), lon, lat ({e})"
                ) from e
    stays = _forecast_call(
        dosage_from_positions, store, agency_id, plan_id, positions, max_gap_minutes=max_gap,
        by="cli",
    )  # fmt: skip
    for s in stays:
        click.echo(f"{s['unit']} in box {s['cell']} from {s['start']}: {s['minutes']:.1f} min")
    click.echo(f"logged {len(stays)} stays, {sum(s['minutes'] for s in stays):.1f} minutes")


@patrol.command("evaluate")
@db_option
@agency_option("Agency whose plan to evaluate.", required=True)
@click.option("--plan", "plan_id", required=True, help="Patrol plan id.")
@click.option(
    "--threshold",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0, 1440, min_open=True),
    help="Minutes in a box that make it dosed.",
)
@json_option()
def patrol_evaluate(
    db_url: str, agency_id: str, plan_id: str, threshold: float, as_json: bool
) -> None:
    """Evaluate a plan's logged dosage against outcomes (rate ratio, exact test; method shown)."""
    from crossbeat.forecast.plans import evaluate_dosage
    from crossbeat.sharing.own import operator_viewer

    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    out = _forecast_call(
        evaluate_dosage, store, operator_viewer(agency_id), plan_id, threshold=threshold
    )
    if as_json:
        echo_json(out)
        return
    r = out["result"]

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3g}"

    click.echo(
        f"plan {plan_id} (model card {out['model_card_id']}, {out['category']}, "
        f"{out['window_from']} to {out['window_to']})"
    )
    click.echo(
        f"  dosed boxes (>= {threshold:g} min): {r['dosed_boxes']}, observed "
        f"{r['dosed_observed']:g} / expected {r['dosed_expected']:.2f}"
    )
    click.echo(
        f"  undosed boxes: {r['undosed_boxes']}, observed {r['undosed_observed']:g} / "
        f"expected {r['undosed_expected']:.2f}"
    )
    click.echo(
        f"  rate ratio {fmt(r['rate_ratio'])} (95% CI {fmt(r['ci_low'])}-{fmt(r['ci_high'])}), "
        f"p = {fmt(r['p_value'])}"
    )
    click.echo(f"  method: {out['method']}")


# --- gazetteer (address points for the public map's address lookup, issue #12) -------------
@cli.group()
def gazetteer() -> None:
    """Address points of each agency, for looking addresses up on the public map."""


@gazetteer.command("load")
@db_option
@agency_option("Agency whose address points these are.", required=True)
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def gazetteer_load(db_url: str, agency_id: str, path: str) -> None:
    """Store AGENCY's address points from PATH, replacing its earlier ones (audited).

    PATH is an OpenAddresses CSV (LON, LAT, NUMBER, STREET, CITY, POSTCODE) or GeoJSON
    file, or a CSV with longitude, latitude, number, street and city columns named in
    common ways (or one address column), in WGS84. Rows without coordinates or a street
    are left out and counted.
    """
    from crossbeat.gazetteer import GazetteerError, store_addresses

    store = open_store_or_fail(db_url)
    _require_agency(store, agency_id)
    try:
        got = store_addresses(store, agency_id, path, by="cli")
    except GazetteerError as exc:
        raise click.ClickException(str(exc)) from exc
    left = ", ".join(f"{n} {why}" for why, n in sorted(got["skipped"].items()))
    click.echo(
        f"address points of {agency_id} stored from {got['source']}: {got['addresses']} "
        f"addresses on {got['streets']} streets" + (f"; left out: {left}" if left else "")
    )


@gazetteer.command("list")
@db_option
def gazetteer_list(db_url: str) -> None:
    """List each agency's loaded address file (JSON)."""
    from crossbeat.gazetteer import list_gazetteers

    echo_json(list_gazetteers(open_store_or_fail(db_url)))


@gazetteer.command("lookup")
@db_option
@click.option(
    "--limit", default=5, show_default=True, type=click.IntRange(1, 20), help="At most this many."
)
@click.argument("address")
def gazetteer_lookup(db_url: str, limit: int, address: str) -> None:
    """Print the places ADDRESS matches, best first (JSON), as GET /api/v1/places does."""
    from crossbeat.gazetteer import geocode

    echo_json([p.as_dict() for p in geocode(open_store_or_fail(db_url), address, limit=limit)])


def main() -> None:  # pragma: no cover - console entry point alias
    """Run the CLI."""
    cli(prog_name="crossbeat")
    sys.exit(0)
