"""Walking the CLI's click groups as click itself does (tests of every command)."""

from __future__ import annotations

import click


def subcommands(group: click.Group) -> list[tuple[str, click.Command]]:
    """Return a group's subcommands by name, sorted, through click's own lookup.

    ``group.commands`` holds only the commands built so far; a group that builds
    commands on demand (``crossbeat analyse``) lists them in ``list_commands`` and
    builds them in ``get_command``.
    """
    ctx = click.Context(group)
    found = []
    for name in sorted(group.list_commands(ctx)):
        command = group.get_command(ctx, name)
        assert command is not None, name
        found.append((name, command))
    return found
