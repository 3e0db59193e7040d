"""The `crossbeat taxonomy` commands."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from crossbeat.cli import cli
from crossbeat.store import open_store
from crossbeat.taxonomy import available_crosswalks
from tests.test_taxonomy_coverage import fill


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["taxonomy", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_crosswalks_lists_the_schemes() -> None:
    code, out = run("crosswalks")
    assert code == 0
    for scheme in ("police-uk", "code-nibrs", "ncic", "sacramento-statute", "toronto-mci"):
        assert scheme in out
    code, out = run("crosswalks", "--json")
    rows = {r["scheme"]: r for r in json.loads(out)}
    assert rows["police-uk"]["rules"] == 14 and rows["police-uk"]["version"]


def test_crosswalks_with_an_agency_folder(tmp_path: Path) -> None:
    (tmp_path / "agency-x.toml").write_text(
        '[crosswalk]\nscheme = "agency-x"\nversion = "7"\n', encoding="utf-8"
    )
    code, out = run("crosswalks", "--dir", str(tmp_path), "--json")
    assert code == 0
    assert {r["scheme"]: r["version"] for r in json.loads(out)}["agency-x"] == "7"


def test_check_shipped_files_pass() -> None:
    files = [str(p) for p in available_crosswalks().values()]
    code, out = run("check", *files)
    assert code == 0
    assert out.count(": ok") == len(files)


def test_check_reports_problems_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "mine.toml"
    bad.write_text(
        '[crosswalk]\nscheme = "mine"\nversion = "1"\n\n'
        '[[map]]\nlocal = "A"\nnibrs = "999"\nmatch = "exact"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["taxonomy", "check", str(bad)])
    assert result.exit_code == 1
    assert "unknown NIBRS code '999'" in result.output
    assert "1 of 1 crosswalk file(s) have problems" in result.output


def test_suggest() -> None:
    code, out = run("suggest", "459 PC BURGLARY GARAGE", "--scheme", "sacramento-statute")
    assert code == 0
    assert out.splitlines()[0].startswith("220")
    code, out = run("suggest", "2311", "--scheme", "ncic", "--json", "--limit", "2")
    data = json.loads(out)
    assert data[0]["nibrs_code"] == "23H" and len(data) <= 2


def test_coverage(sqlite_url: str) -> None:
    fill(open_store(sqlite_url))
    code, out = run("coverage", "--db", sqlite_url)
    assert code == 0
    assert "sacpd / sacramento-statute: 6 offences, 2 mapped (33.3%), 4 unmapped" in out
    assert "XYZ BURGLARY OF SHED" in out and "suggest 220" in out
    assert "crossbeat taxonomy check" in out
    code, out = run("coverage", "--db", sqlite_url, "--agency", "colp", "--json")
    data = json.loads(out)
    assert data["unmapped"] == 0 and data["schemes"][0]["scheme"] == "police-uk"


def test_coverage_of_an_empty_store(sqlite_url: str) -> None:
    code, out = run("coverage", "--db", sqlite_url, "--agency", "nobody")
    assert code == 0 and "no offences stored for agency nobody" in out
