"""The shared command-line options (``--json``, ``--agency``, ``--db``, ISO times) are one."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from crossbeat.cli import ISO_TIME, cli
from tests.cli_support import subcommands

CLI = Path(__file__).resolve().parents[1] / "crossbeat" / "cli.py"


def _commands(group: click.Group, prefix: str = "crossbeat") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, cmd in subcommands(group):
        if isinstance(cmd, click.Group):
            found.extend(_commands(cmd, f"{prefix} {name}"))
        else:
            found.append((f"{prefix} {name}", cmd))
    return found


def test_each_shared_option_is_declared_once() -> None:
    source = CLI.read_text(encoding="utf-8")
    assert source.count('"--json"') == 1
    assert source.count('"--agency", "agency_id"') == 0  # all through agency_option
    assert len(re.findall(r"datetime\.fromisoformat", source)) == 1


@pytest.mark.parametrize("path,cmd", _commands(cli), ids=lambda v: v if isinstance(v, str) else "")
def test_shared_options_behave_the_same_everywhere(path: str, cmd: click.Command) -> None:
    for param in cmd.params:
        if not isinstance(param, click.Option):
            continue
        if "--json" in param.opts:
            assert param.is_flag and param.name == "as_json", path
        if "--db" in param.opts and path != "crossbeat profile check":
            assert param.envvar == "CROSSBEAT_DB", path
        if param.opts[0] in ("--since", "--until", "--valid-from", "--valid-to"):
            assert param.type is ISO_TIME, f"{path} {param.opts[0]}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31", datetime(2026, 1, 31, tzinfo=UTC)),
        ("2026-01-31T08:00", datetime(2026, 1, 31, 8, tzinfo=UTC)),
        ("2026-01-31T08:00Z", datetime(2026, 1, 31, 8, tzinfo=UTC)),
        ("2026-01-31T08:00-08:00", datetime(2026, 1, 31, 8, tzinfo=timezone(timedelta(hours=-8)))),
    ],
)
def test_iso_times(text: str, expected: datetime) -> None:
    got = ISO_TIME.convert(text, None, None)
    assert got == expected and got.tzinfo is not None


@pytest.mark.parametrize(
    "args",
    [
        ["audit", "log", "--agency", "x", "--since", "last week"],
        ["incidents", "list", "--agency", "x", "--until", "tomorrow"],
        ["agreement", "add", "a", "b", "--approved-by", "x", "--valid-to", "soon"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_a_bad_time_is_a_usage_error_naming_the_option(args: list[str], tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, [*args, "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert out.exit_code == 2 and "is not an ISO 8601 date or time" in out.output
    assert args[-2] in out.output
    assert not (tmp_path / "x.db").exists()
