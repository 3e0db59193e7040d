"""What a newcomer following the README tripped over, each now fixed (issue 6)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from crossbeat.audit import AuditEvent, append, iter_events
from crossbeat.auth.accounts import create_user
from crossbeat.auth.errors import UnknownRole, WeakPassword
from crossbeat.auth.passwords import check_password
from crossbeat.auth.roles import Role, parse_roles
from crossbeat.cli import cli
from crossbeat.model import incident_id
from crossbeat.store import open_store
from crossbeat.store.schema import incidents
from crossbeat.vault.kek import Kek
from tests.test_cli_newcomer_errors import PASSWORD, PROFILE, one_line_error

ROOT = Path(__file__).resolve().parents[1]
ADMINS = ("cityx.admin", "cityx.admin2")
ROWS = (
    "ID,WHEN,LON,LAT,CODE\n"
    "A-1,2023-03-04T13:22:00-05:00,-82.99,39.96,220\n"
    "A-2,2023-03-05T10:00:00-05:00,-82.98,39.95,13A\n"
    "A-3,2023-03-06T09:30:00-05:00,-82.97,39.94,290\n"
)


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


@pytest.fixture
def loaded(db_url: str, tmp_path: Path) -> str:
    """A database with agency cityx (three incidents) and agency cityy."""
    profile = tmp_path / "tiny.toml"
    profile.write_text(PROFILE, encoding="utf-8")
    data = tmp_path / "export.csv"
    data.write_text(ROWS, encoding="utf-8")
    for agency in ("cityx", "cityy"):
        added = run("agency", "add", agency, "--name", agency,
                    "--timezone", "America/New_York", "--db", db_url)  # fmt: skip
        assert added.exit_code == 0, added.output
    for admin in ADMINS:  # the approvers of cityx's agreements (admin accounts, issue #7)
        made = run("user", "add", "cityx", admin, "--role", "agency_admin", "--password-stdin",
                   "--db", db_url, input=PASSWORD + "\n")  # fmt: skip
        assert made.exit_code == 0, made.output
    out = run("ingest", "--db", db_url, "--agency", "cityx", "--profile", str(profile), str(data))
    assert out.exit_code == 0, out.output
    return db_url


# -- the demo port -------------------------------------------------------------------------
def test_the_demo_port_is_in_the_readme_and_the_makefile() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "make demo PORT=8001" in readme and "--port" in readme and "CROSSBEAT_PORT" in readme
    assert re.search(r"crossbeat demo \$\(if \$\(PORT\),--port \$\(PORT\)\)", makefile)
    help_text = " ".join(run("demo", "--help").output.split())
    assert "CROSSBEAT_PORT" in help_text


# -- roles, passwords, tokens -----------------------------------------------------------
@pytest.mark.parametrize(
    "spelling", ["agency_admin", "agency-admin", "agency admin", "Agency Admin"]
)
def test_every_spelling_of_a_role_the_readme_uses_is_accepted(spelling: str) -> None:
    assert parse_roles([spelling]) == {Role.AGENCY_ADMIN}


def test_a_misspelt_role_is_still_refused() -> None:
    with pytest.raises(UnknownRole, match="agency_admin"):
        parse_roles(["agency admn"])


def test_user_add_with_the_readme_role_name(sqlite_url: str) -> None:
    run("agency", "add", "cityx", "--name", "City X", "--db", sqlite_url)
    out = run("user", "add", "cityx", "ann", "--role", "agency admin", "--password-stdin",
              "--db", sqlite_url, input=PASSWORD + "\n")  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "ann of agency cityx: agency_admin" in out.output


def test_user_add_without_a_terminal_names_password_stdin(sqlite_url: str) -> None:
    run("agency", "add", "cityx", "--name", "City X", "--db", sqlite_url)
    out = run("user", "add", "cityx", "ann", "--role", "analyst", "--db", sqlite_url, input="")
    assert out.exit_code == 2, out.output
    assert "no password was given" in out.output and "--password-stdin" in out.output
    assert "Aborted" not in out.output
    listed = json.loads(run("user", "list", "--json", "--db", sqlite_url).output)
    assert listed == []


def test_a_password_refusal_gives_each_reason_once(sqlite_url: str) -> None:
    with pytest.raises(WeakPassword) as caught:
        check_password("bob-cityx-bob-1234", context=["bob", "cityx", "Bob", "BOB"])
    assert caught.value.reasons == ["it contains 'bob'", "it contains 'cityx'"]
    run("agency", "add", "cityx", "--name", "City X", "--db", sqlite_url)
    out = run("user", "add", "cityx", "bob", "--role", "analyst", "--password-stdin",
              "--db", sqlite_url, input="bob-cityx-bob-1234\n")  # fmt: skip
    one_line_error(out, "password refused")
    assert out.output.count("it contains 'bob'") == 1


def test_token_create_says_the_purpose_is_required() -> None:
    help_text = " ".join(run("token", "create", "--help").output.split())
    assert "--purpose is required" in help_text and "ingest" in help_text and "read" in help_text


# -- agreements ------------------------------------------------------------------------------
def test_agreement_add_names_the_options_an_agency_grantee_needs(loaded: str) -> None:
    help_text = " ".join(run("agreement", "add", "--help").output.split())
    assert "--offences, --fields, --precision and" in help_text
    assert help_text.count("required unless GRANTEE is public") == 4
    out = run("agreement", "add", "cityx", "cityy", "--approved-by", ADMINS[0], "--db", loaded)
    one_line_error(out, "offences: required", "needs --offences, --fields, --precision, --purpose")
    partial = run("agreement", "add", "cityx", "cityy", "--approved-by", ADMINS[0],
                  "--offences", "all", "--fields", "all", "--db", loaded)  # fmt: skip
    one_line_error(partial, "needs --precision, --purpose")
    assert "needs --offences" not in partial.output
    assert json.loads(run("agreement", "list", "--json", "--db", loaded).output) == []
    full = run("agreement", "add", "cityx", "cityy", "--approved-by", ADMINS[0],
               "--offences", "part1", "--fields", "offence,occurred,location",
               "--precision", "block", "--purpose", "analysis", "--db", loaded)  # fmt: skip
    assert full.exit_code == 0, full.output
    public = run("agreement", "add", "cityx", "public", "--approved-by", ADMINS[0], "--db", loaded)
    assert public.exit_code == 0, public.output


# -- withdraw and the incidents commands -----------------------------------------------------
def test_withdraw_of_only_unknown_ids_fails_and_changes_nothing(loaded: str) -> None:
    out = run("withdraw", "--agency", "cityx", "--reason", "typo", "NOPE-1", "NOPE-2",
              "--db", loaded)  # fmt: skip
    one_line_error(out, "none of the 2 source id(s)", "crossbeat incidents list --agency cityx")
    assert "0 withdrawn, 0 already, 2 unknown" in out.output
    listed = run("incidents", "list", "--agency", "cityx", "--db", loaded)
    assert len(listed.output.splitlines()) == 3
    mixed = run("withdraw", "--agency", "cityx", "--reason", "unfounded", "A-1", "NOPE",
                "--db", loaded)  # fmt: skip
    assert mixed.exit_code == 0 and "1 withdrawn, 0 already, 1 unknown" in mixed.output


def test_incidents_list_and_show_go_through_the_policy_and_are_audited(
    loaded: str, kek: Kek
) -> None:
    store = open_store(loaded, kek=kek)
    before = max((e.seq for e in iter_events(store)), default=0)
    out = run("incidents", "list", "--agency", "cityx", "--db", loaded)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    with store.begin() as conn:  # pages go in (random) public-id order, for the owner too
        public_of = dict(conn.execute(select(incidents.c.source_id, incidents.c.public_id)).all())
    assert [line.split("\t")[0] for line in lines] == sorted(
        ["A-1", "A-2", "A-3"], key=public_of.__getitem__
    )
    assert all(line.split("\t")[2] in {"220", "13A", "290"} for line in lines)
    page = json.loads(
        run(
            "incidents", "list", "--agency", "cityx", "--limit", "2", "--json", "--db", loaded
        ).output
    )
    assert len(page["records"]) == 2
    assert page["next_after"] == public_of[page["records"][1]["source_id"]]
    rest = run("incidents", "list", "--agency", "cityx", "--after", page["next_after"],
               "--json", "--db", loaded)  # fmt: skip
    assert len(json.loads(rest.output)["records"]) == 1
    filtered = run("incidents", "list", "--agency", "cityx", "--offence", "220",
                   "--since", "2023-03-04", "--until", "2023-03-05", "--db", loaded)  # fmt: skip
    assert [line.split("\t")[0] for line in filtered.output.splitlines()] == ["A-1"]
    shown = json.loads(run("incidents", "show", "--agency", "cityx", "A-2", "--json",
                           "--db", loaded).output)  # fmt: skip
    assert shown["source_id"] == "A-2" and shown["nibrs_code"] == "13A"
    assert shown["id"] == incident_id("cityx", "A-2")
    by_id = run("incidents", "show", "--agency", "cityx", shown["id"], "--db", loaded)
    assert "source_id: A-2" in by_id.output
    # Another agency's view of the same id: no agreement, so nothing (and exit 1).
    other = run("incidents", "show", "--agency", "cityy", shown["id"], "--db", loaded)
    one_line_error(other, "cityy has no live incident")
    events = [e for e in iter_events(store) if e.seq > before]
    reads = [e for e in events if e.action.value == "read" and "cityx" in e.owner_agencies]
    assert len(reads) >= 6
    assert {e.actor for e in reads} == {"system"}
    assert shown["id"] in {r for e in reads for r in e.record_ids}


def test_the_source_id_is_shown_to_the_owner_only(loaded: str) -> None:
    run(
        "agreement",
        "add",
        "cityx",
        "cityy",
        "--approved-by",
        ADMINS[0],
        "--approved-by",
        ADMINS[1],
        "--offences",
        "all",
        "--fields",
        "all",
        "--precision",
        "exact",
        "--purpose",
        "analysis",
        "--db",
        loaded,
    )
    partner = json.loads(run("incidents", "list", "--agency", "cityy", "--json", "--db", loaded)
                         .output)  # fmt: skip
    assert partner["records"] == []  # cityy's own list: cityx's records are not its own
    preview = json.loads(run("agreement", "preview", "cityx", "cityy", "--json", "--db", loaded)
                         .output)  # fmt: skip
    assert preview["sample"] and all("source_id" not in r for r in preview["sample"])
    own = json.loads(run("incidents", "list", "--agency", "cityx", "--json", "--db", loaded).output)
    assert all(r["source_id"] for r in own["records"])


# -- output off a terminal, crosswalks, the audit log -----------------------------------------
def test_profile_check_does_not_wrap_ids_off_a_terminal(tmp_path: Path) -> None:
    profile = tmp_path / "tiny.toml"
    profile.write_text(PROFILE, encoding="utf-8")
    long_id = "CASE-2023-0000000000000000000001"
    data = tmp_path / "export.csv"
    data.write_text(ROWS.replace("A-1", long_id), encoding="utf-8")
    out = run("profile", "check", str(profile), str(data))
    assert out.exit_code == 0, out.output
    assert long_id in out.output  # CliRunner's output is not a terminal


def test_taxonomy_crosswalks_lists_the_schemes_stored_in_the_database(
    tmp_path: Path, loaded: str
) -> None:
    out = run("taxonomy", "crosswalks", "--db", loaded)
    line = next(x for x in out.output.splitlines() if x.startswith("code-nibrs"))
    assert "[3 stored offences]" in line
    folder = tmp_path / "cw"
    folder.mkdir()
    shipped = (ROOT / "crossbeat" / "taxonomy" / "data").glob("**/code-nibrs.toml")
    text = next(iter(shipped)).read_text(encoding="utf-8")
    (folder / "local-x.toml").write_text(text.replace("code-nibrs", "local-x"), encoding="utf-8")
    rows = json.loads(run("taxonomy", "crosswalks", "--dir", str(folder), "--json").output)
    assert "local-x" in {r["scheme"] for r in rows}


def test_taxonomy_crosswalks_lists_the_demo_schemes(tmp_path: Path) -> None:
    from crossbeat.demo.build import copy_demo_sources

    folder = copy_demo_sources(tmp_path)
    out = run("taxonomy", "crosswalks", "--dir", str(folder))
    for scheme in ("riverton-local", "clackmer-ors", "metro-transit"):
        assert scheme in out.output
    assert (tmp_path / "profiles" / "riverton-pd.toml").is_file()


def test_the_audit_log_shows_users_by_name(loaded: str, kek: Kek) -> None:
    store = open_store(loaded, kek=kek)
    ann = create_user(store, "cityx", "ann.analyst", PASSWORD, ["analyst"]).user
    append(store, AuditEvent(action="read", actor=ann.id, actor_agency="cityx",
                             resource_type="incident", owner_agencies=("cityx",)))  # fmt: skip
    out = run("audit", "log", "--agency", "cityx", "--db", loaded)
    assert "ann.analyst@cityx" in out.output and ann.id not in out.output
    by_name = json.loads(run("audit", "log", "--actor", "ann.analyst", "--json",
                             "--db", loaded).output)  # fmt: skip
    assert [(e["actor"], e["actor_name"]) for e in by_name] == [(ann.id, "ann.analyst")]
