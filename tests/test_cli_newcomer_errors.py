"""Bad input a new user gives the command line: one clear line naming the next step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from crossbeat.cli import cli
from crossbeat.vault.kek import KEK_SETTING, generate_kek

PROFILE = """
name = "tiny"
[source]
format = "csv"
timezone = "America/New_York"
[id]
columns = ["ID"]
[occurred_from]
column = "WHEN"
[location]
x = "LON"
y = "LAT"
[[offences]]
scheme = "code-nibrs"
code = "CODE"
"""

ROWS = "ID,WHEN,LON,LAT,CODE\n1,2023-03-04T13:22:00-05:00,-82.99,39.96,220\n"
PASSWORD = "correct horse battery staple"


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


def one_line_error(result: Result, *fragments: str) -> None:
    """The command failed with one ``Error:`` line holding ``fragments``, no traceback."""
    assert result.exit_code != 0, result.output
    # An uncaught exception (a traceback outside the test runner) is not a SystemExit.
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in errors[0], result.output


@pytest.fixture
def feed(tmp_path: Path) -> tuple[str, str]:
    profile = tmp_path / "tiny.toml"
    profile.write_text(PROFILE, encoding="utf-8")
    data = tmp_path / "export.csv"
    data.write_text(ROWS, encoding="utf-8")
    return str(profile), str(data)


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    not_db = tmp_path / "export.csv"
    not_db.write_text(ROWS, encoding="utf-8")
    one_line_error(run("agency", "list", "--db", f"sqlite:///{not_db}"), "not a database", "--db")


@pytest.mark.parametrize(
    "command", [["agency", "list"], ["serve"], ["db", "upgrade"]], ids=" ".join
)
def test_a_database_url_without_a_scheme_is_refused(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("crossbeat.cli._run_server", lambda _settings: pytest.fail("served"))
    out = run(*command, "--db", "foo")
    one_line_error(out, "'foo' is not a database URL", "sqlite:///", "postgresql://")
    assert list(tmp_path.iterdir()) == []  # no SQLite file named foo, no key file


def test_a_wrong_kek_is_one_line(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("agency", "add", "cityx", "--name", "City X", "--db", sqlite_url).exit_code == 0
    first = run("user", "add", "cityx", "a.b", "--role", "analyst", "--password-stdin",
                "--db", sqlite_url, input=PASSWORD + "\n")  # fmt: skip
    assert first.exit_code == 0, first.output
    monkeypatch.setenv(KEK_SETTING, generate_kek())
    second = run("user", "add", "cityx", "c.d", "--role", "analyst", "--password-stdin",
                 "--db", sqlite_url, input=PASSWORD + "\n")  # fmt: skip
    one_line_error(second, "configured KEK", "crossbeat keys rewrap")


def test_ingest_of_a_missing_file_writes_nothing(
    sqlite_url: str, feed: tuple[str, str], tmp_path: Path
) -> None:
    profile, _ = feed
    out = run("ingest", "--db", sqlite_url, "--agency", "cityx", "--profile", profile,
              str(tmp_path / "nope.csv"))  # fmt: skip
    one_line_error(out, "file not found", "nope.csv", "check the path")
    assert not (tmp_path / "crossbeat.db").exists()


def test_ingest_refuses_an_unregistered_agency(sqlite_url: str, feed: tuple[str, str]) -> None:
    profile, data = feed
    out = run("ingest", "--db", sqlite_url, "--agency", "cityx", "--profile", profile, data)
    one_line_error(out, "unknown agency 'cityx'", "crossbeat agency add cityx --name NAME")
    assert json.loads(run("agency", "list", "--json", "--db", sqlite_url).output) == []
    run("agency", "add", "cityx", "--name", "City X", "--timezone", "America/New_York",
        "--db", sqlite_url)  # fmt: skip
    again = run("ingest", "--db", sqlite_url, "--agency", "cityx", "--profile", profile, data)
    assert again.exit_code == 0, again.output


def test_an_agency_error_gets_no_profile_check_hint(
    sqlite_url: str, feed: tuple[str, str], tmp_path: Path
) -> None:
    profile, data = feed
    owned = tmp_path / "owned.toml"
    owned.write_text('agency = "cityx"\n' + PROFILE, encoding="utf-8")
    out = run("ingest", "--db", sqlite_url, "--agency", "cityy", "--profile", str(owned), data)
    one_line_error(out, "use --agency cityx")
    assert "profile check" not in out.output


def test_agency_add_keeps_the_time_zone_of_an_update(sqlite_url: str) -> None:
    run(
        "agency", "add", "cityx", "--name", "x", "--timezone", "America/Chicago", "--db", sqlite_url
    )
    assert run("agency", "add", "cityx", "--name", "City X", "--db", sqlite_url).exit_code == 0
    assert run("agency", "add", "cityy", "--name", "City Y", "--db", sqlite_url).exit_code == 0
    listed = json.loads(run("agency", "list", "--json", "--db", sqlite_url).output)
    assert {a["id"]: (a["name"], a["timezone"]) for a in listed} == {
        "cityx": ("City X", "America/Chicago"),
        "cityy": ("City Y", "UTC"),
    }


@pytest.mark.parametrize(
    "args",
    [
        ["withdraw", "--agency", "nosuch", "--reason", "x", "ID1"],
        ["quarantine", "list", "--agency", "nosuch"],
        ["quarantine", "dismiss", "--agency", "nosuch", "--id", "1", "--reason", "x"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_an_unknown_agency_is_an_error(sqlite_url: str, args: list[str]) -> None:
    assert run("db", "upgrade", "--db", sqlite_url).exit_code == 0
    one_line_error(run(*args, "--db", sqlite_url), "unknown agency 'nosuch'", "agency list")


def test_empty_answers_say_when_the_agency_is_unknown(sqlite_url: str) -> None:
    assert run("db", "upgrade", "--db", sqlite_url).exit_code == 0
    out = run("audit", "log", "--actor", "nobody", "--db", sqlite_url)
    assert out.exit_code == 0 and out.output.strip() == "no audit events match"
    out = run("audit", "log", "--agency", "nosuch", "--db", sqlite_url)
    assert out.exit_code == 0 and "no agency 'nosuch' is registered" in out.output
    out = run("taxonomy", "coverage", "--agency", "nosuch", "--db", sqlite_url)
    assert out.exit_code == 0 and "no agency 'nosuch' is registered" in out.output


def test_audit_keygen_into_a_missing_folder(tmp_path: Path) -> None:
    out = run("audit", "keygen", "--out", str(tmp_path / "no" / "such" / "audit.pem"))
    one_line_error(out, "create the folder first")


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    missing = run("taxonomy", "crosswalks", "--dir", str(tmp_path / "nope"))
    assert missing.exit_code == 2 and "does not exist" in missing.output
    port = run("serve", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--port", "99999")
    assert port.exit_code == 2 and "1<=x<=65535" in port.output


def test_preview_gives_one_verdict_and_shows_the_sample(
    sqlite_url: str, feed: tuple[str, str]
) -> None:
    profile, data = feed
    run("agency", "add", "cityx", "--name", "City X", "--timezone", "America/New_York",
        "--db", sqlite_url)  # fmt: skip
    run("agency", "add", "cityy", "--name", "City Y", "--db", sqlite_url)
    assert run("ingest", "--db", sqlite_url, "--agency", "cityx", "--profile", profile,
               data).exit_code == 0  # fmt: skip
    chief = run(
        "user",
        "add",
        "cityx",
        "cityx.chief",
        "--role",
        "agency_admin",
        "--password-stdin",
        "--db",
        sqlite_url,
        input="violet kettle under the bridge\n",
    )
    assert chief.exit_code == 0, chief.output
    added = run("agreement", "add", "cityx", "cityy", "--offences", "all", "--fields", "all",
                "--precision", "exact", "--purpose", "analysis", "--approved-by", "cityx.chief",
                "--db", sqlite_url)  # fmt: skip
    assert added.exit_code == 0, added.output
    out = run("agreement", "preview", "cityx", "cityy", "--sample", "1", "--db", sqlite_url)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[1] == "  allowed:" and lines[2].startswith("    - agreement ")
    samples = [json.loads(line.split("sample", 1)[1]) for line in lines if "  sample  " in line]
    assert len(samples) == 1 and samples[0]["agency_id"] == "cityx"
