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


# --- ingest -----------------------------------------------------------------------------


# --- profile ----------------------------------------------------------------------------


# --- taxonomy ---------------------------------------------------------------------------


# --- quarantine -------------------------------------------------------------------------


# --- demo and serve ---------------------------------------------------------------------


# --- accounts and authentication (governance) ------------------------------------------


# --- audit (governance) -----------------------------------------------------------------


def main() -> None:  # pragma: no cover - console entry point alias
    """Run the CLI."""
    cli(prog_name="crossbeat")
    sys.exit(0)
