"""Run the CLI with ``python -m crossbeat``."""

from crossbeat.cli import cli

cli()
