"""Every command has help text, and the README's commands and documents exist."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from crossbeat.cli import cli
from tests.cli_support import subcommands

ROOT = Path(__file__).resolve().parents[1]


def _commands(group: click.Group, prefix: str = "crossbeat") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, cmd in subcommands(group):
        path = f"{prefix} {name}"
        found.append((path, cmd))
        if isinstance(cmd, click.Group):
            found.extend(_commands(cmd, path))
    return found


@pytest.mark.parametrize("path,cmd", _commands(cli), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_has_help(path: str, cmd: click.Command) -> None:
    assert (cmd.help or "").strip(), f"{path} has no help text"
    for param in cmd.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert (param.help or "").strip(), f"{path} {param.opts[0]} has no help text"


def test_readme_commands_and_links() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "\ndemo:" in makefile and "\ntest:" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for doc in ("docs/architecture.md", "docs/profiles.md", "docs/taxonomy.md"):
        assert doc in readme and (ROOT / doc).is_file(), doc


def test_every_top_level_command_is_in_the_readme_or_docs() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8") + "".join(
        p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md")
    )
    missing = [name for name in cli.commands if f"crossbeat {name}" not in text]
    assert not missing, f"undocumented commands: {missing}"
