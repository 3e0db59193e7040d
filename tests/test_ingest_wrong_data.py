"""No silent wrong data (issue 6): each case reproduced on a real store, and refused.

Every test builds the mistake as it happened in the trial — a profile in another time
zone than its agency, a file cut inside its last field, an agency id typo, an export
writing 00:00 for "time unknown", coordinates rounded to 3 decimals, a drafted profile
with its TODO left in — and shows that it is now refused or quarantined with a clear
message, and that the stored data did not change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from shapely.geometry import box, mapping
from sqlalchemy import func, inspect, select

from crossbeat.agencies import AgencyError, get_agency, register_agency, set_jurisdiction
from crossbeat.agency_removal import remove_agency
from crossbeat.audit import Action, events_for_owner, verify
from crossbeat.auth.accounts import create_user
from crossbeat.auth.tokens import create_token
from crossbeat.cli import cli
from crossbeat.ingest.check import check_profile
from crossbeat.ingest.draft import draft_profile
from crossbeat.ingest.pipeline import IngestError, ingest_files
from crossbeat.ingest.profile import ProfileError, load_profile, open_todos, parse_profile
from crossbeat.ingest.quarantine import list_quarantine
from crossbeat.model import Agency, incident_id
from crossbeat.sharing.agreements import create_agreement
from crossbeat.sharing.groups import create_group
from crossbeat.sharing.overrides import tighten_public_policy
from crossbeat.store import Store, open_store
from crossbeat.store.schema import incident_versions, incidents, ingest_batches, quarantine
from tests.auth_support import PASSWORD

REPO = Path(__file__).resolve().parents[1]
ZONE = "America/Los_Angeles"

PROFILE = """
name = "city-feed"

[source]
format = "csv"
timezone = "{zone}"

[id]
columns = ["id"]

[occurred_from]
column = "when"
formats = ["%Y-%m-%d %H:%M"]
{dates_extra}

[location]
x = "lon"
y = "lat"
address = "address"
{location_extra}

[[offences]]
scheme = "code-nibrs"
code = "code"

[[persons]]
role = "victim"
name = "victim"
"""

HEADER = ["id", "when", "code", "address", "victim", "lon", "lat"]
AREA = box(-122.8, 45.4, -122.5, 45.6)


def profile_text(zone: str = ZONE, dates_extra: str = "", location_extra: str = "") -> str:
    """Return the test profile with a time zone and extra keys."""
    return PROFILE.format(zone=zone, dates_extra=dates_extra, location_extra=location_extra)


def write_profile(tmp_path: Path, text: str, name: str = "feed.toml") -> Path:
    """Write a profile file."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def row(i: int, **over: str) -> dict[str, str]:
    """Return a valid source row; latitude and longitude have 6 decimals."""
    base = {
        "id": f"R{i}",
        "when": f"2024-03-{1 + i % 28:02d} {1 + i % 20:02d}:{(7 * i) % 60:02d}",
        "code": ["220", "13B", "240", "23F"][i % 4],
        "address": f"{100 + i} MAIN ST",
        "victim": f"Person {i}",
        "lon": f"{-122.68 + (i % 50) * 0.001:.6f}",
        "lat": f"{45.51 + (i % 40) * 0.001:.6f}",
    }
    base.update(over)
    return base


def csv_text(rows: list[dict[str, str]]) -> str:
    """Return rows as CSV text with the header, every line ending in a line break."""
    lines = [",".join(HEADER)] + [",".join(r[h] for h in HEADER) for r in rows]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    """Write rows as CSV."""
    path.write_text(csv_text(rows), encoding="utf-8")
    return path


def register(store: Store, agency_id: str, zone: str = ZONE) -> None:
    """Register an agency with a boundary around the test points."""
    register_agency(store, Agency(id=agency_id, name=agency_id.upper(), timezone=zone))
    set_jurisdiction(store, agency_id, f"{agency_id} area", mapping(AREA))


def stored_state(store: Store) -> dict[str, Any]:
    """Return what the ingest tables hold, to show that a refusal changed nothing."""
    with store.connect() as conn:
        return {
            "incidents": sorted(
                (r.id, r.version, r.record_hash, str(r.occurred_from))
                for r in conn.execute(
                    select(
                        incidents.c.id,
                        incidents.c.version,
                        incidents.c.record_hash,
                        incidents.c.occurred_from,
                    )
                )
            ),
            "versions": conn.execute(select(func.count()).select_from(incident_versions)).scalar(),
            "batches": conn.execute(select(func.count()).select_from(ingest_batches)).scalar(),
            "quarantine": conn.execute(select(func.count()).select_from(quarantine)).scalar(),
            "agencies": sorted(a.id for a in _agencies(store)),
        }


def _agencies(store: Store) -> list[Agency]:
    from crossbeat.agencies import list_agencies

    return list_agencies(store)


def run(args: list[str], **kwargs: Any) -> Any:
    """Run the CLI in-process."""
    return CliRunner().invoke(cli, args, catch_exceptions=False, **kwargs)


# --- 1. the profile's time zone differs from the agency's ------------------------------
def test_time_zone_mismatch_is_refused_and_nothing_changes(store, tmp_path):
    register(store, "citypd")
    data = write_csv(tmp_path / "a.csv", [row(i) for i in range(10)])
    good = load_profile(write_profile(tmp_path, profile_text()))
    assert ingest_files(store, "citypd", good, [data]).new == 10
    before = stored_state(store)

    utc = load_profile(write_profile(tmp_path, profile_text("UTC"), "utc.toml"))
    with pytest.raises(IngestError) as err:
        ingest_files(store, "citypd", utc, [data])
    message = str(err.value)
    assert "UTC" in message and ZONE in message and "--accept-timezone" in message
    assert "nothing was stored" in message
    assert stored_state(store) == before  # without the check: 10 new versions, times shifted

    # Accepted on purpose, the difference is applied (every record is a new version).
    accepted = ingest_files(store, "citypd", utc, [data], accept_timezone=True)
    assert accepted.updated == 10


def test_time_zone_mismatch_cli_ingest_and_profile_check(db_url, tmp_path):
    store_url = db_url
    run(["agency", "add", "citypd", "--name", "City PD", "--timezone", ZONE, "--db", store_url])
    data = write_csv(tmp_path / "a.csv", [row(i) for i in range(5)])
    utc = write_profile(tmp_path, profile_text("UTC"), "utc.toml")

    result = run(
        ["ingest", "--db", store_url, "--agency", "citypd", "--profile", str(utc), str(data)]
    )
    assert result.exit_code == 1
    assert "time zone mismatch" in result.output and "--accept-timezone" in result.output
    assert f"registered in {ZONE}" in result.output

    check = run(["profile", "check", str(utc), str(data), "--agency", "citypd", "--db", store_url])
    assert check.exit_code == 1
    assert "time zone mismatch" in check.output and "UTC" in check.output

    assert stored_state(open_store(store_url, upgrade=False))["batches"] == 0
    ok = run(
        ["ingest", "--db", store_url, "--agency", "citypd", "--profile", str(utc), str(data)]
        + ["--accept-timezone", "--json"]
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["new"] == 5


def test_routed_agency_time_zone_is_checked(store, tmp_path):
    register(store, "northpd", "America/New_York")
    register(store, "southpd", ZONE)
    text = profile_text().replace(
        'name = "city-feed"',
        'name = "region"\nagency_column = "agency"\n'
        'agency_map = { N = "northpd", S = "southpd" }\n'
        'agency_timezones = { northpd = "America/Chicago" }',
    )
    profile = parse_profile(text)
    path = tmp_path / "r.csv"
    path.write_text("agency," + csv_text([row(1)]).replace("\n", "\nN,", 1), encoding="utf-8")
    with pytest.raises(IngestError, match="agency_timezones.northpd"):
        ingest_files(store, None, profile, [path])
    assert stored_state(store)["incidents"] == []


# --- 2. a file cut in the middle of its last field ---------------------------------------
def test_file_cut_inside_last_field_is_quarantined_not_stored(store, tmp_path):
    register(store, "citypd")
    rows = [row(i) for i in range(1, 31)]
    whole = csv_text(rows)
    cut = whole[: whole.rindex("\n") - 4]  # the last latitude lost 4 digits (~5 km)
    assert cut.endswith(rows[-1]["lat"][:-4])
    path = tmp_path / "cut.csv"
    path.write_text(cut, encoding="utf-8")
    profile = load_profile(write_profile(tmp_path, profile_text()))

    summary = ingest_files(store, "citypd", profile, [path])
    assert (summary.new, summary.quarantined) == (29, 1)
    with store.connect() as conn:
        ids = set(conn.execute(select(incidents.c.source_id)).scalars())
    assert "R30" not in ids and len(ids) == 29
    (entry,) = list_quarantine(store, agency_id="citypd")
    assert entry.row_number == 30
    assert "may be truncated" in entry.reasons[0] and "'lat'" in entry.reasons[0]

    # profile check says so too, before anything is stored.
    report = check_profile(profile, path, agency_id="citypd")
    assert report.rejected == 1 and any("truncated" in r for r in report.reasons)


def test_complete_file_without_final_line_break_is_stored(store, tmp_path):
    register(store, "citypd")
    rows = [row(i) for i in range(1, 31)]
    path = tmp_path / "no-newline.csv"
    path.write_text(csv_text(rows).rstrip("\n"), encoding="utf-8")  # a complete last row
    profile = load_profile(write_profile(tmp_path, profile_text()))
    summary = ingest_files(store, "citypd", profile, [path])
    assert (summary.new, summary.quarantined) == (30, 0)


def test_final_record_shapes():
    from crossbeat.ingest.csv_ import LastColumn

    lat = LastColumn()
    for i in range(20):
        lat.add(f"45.5{i:05d}")
    assert lat.complete("45.512345", quoted=False)
    assert not lat.complete("45.51", quoted=False)
    assert lat.complete("45.51", quoted=True)  # a closed quote cannot be a cut
    codes = LastColumn()
    for value in ["ACTIVE", "CLOSED", "ACTIVE", "SUSPENDED"] * 5:
        codes.add(value)
    assert codes.complete("CLOSED", quoted=False)
    assert not codes.complete("CLOS", quoted=False)
    text = LastColumn()
    for value in ["theft from car", "burglary of a shed", "assault"] * 5:
        text.add(value)
    assert not text.complete("burglary of", quoted=False)  # free text: cannot tell


def test_cut_json_lines_record_is_quarantined(store, tmp_path):
    register(store, "citypd")
    text = profile_text().replace('format = "csv"', 'format = "jsonl"')
    profile = parse_profile(text)
    lines = [json.dumps(row(i)) for i in range(1, 6)]
    path = tmp_path / "cut.jsonl"
    path.write_text("\n".join(lines)[:-8], encoding="utf-8")
    summary = ingest_files(store, "citypd", profile, [path])
    assert (summary.new, summary.quarantined) == (4, 1)


# --- 3. an agency id typo ----------------------------------------------------------------
def test_unknown_agency_is_refused_naming_the_closest(store, tmp_path):
    register(store, "citypd")
    register(store, "countysd")
    register(store, "transitpd")
    data = write_csv(tmp_path / "a.csv", [row(i) for i in range(5)])
    profile = load_profile(write_profile(tmp_path, profile_text()))
    before = stored_state(store)
    with pytest.raises(IngestError) as err:
        ingest_files(store, "cityp", profile, [data])
    message = str(err.value)
    assert "unknown agency 'cityp'" in message and "never registers" in message
    assert message.index("citypd") < message.index("countysd")
    assert message.index("citypd") < message.index("transitpd")
    assert "crossbeat agency add cityp" in message
    assert stored_state(store) == before
    assert get_agency(store, "cityp") is None


def test_unknown_agency_cli_and_multi_agency_map(db_url, tmp_path):
    data = write_csv(tmp_path / "a.csv", [row(i) for i in range(3)])
    prof = write_profile(tmp_path, profile_text())
    result = run(
        ["ingest", "--db", db_url, "--agency", "citypd", "--profile", str(prof), str(data)]
    )
    assert result.exit_code == 1
    assert "unknown agency 'citypd'" in result.output and "no agency is registered" in result.output
    listed = run(["agency", "list", "--db", db_url, "--json"])
    assert json.loads(listed.output) == []


def _table_rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Return every row of every table except the audit log, as comparable tuples."""
    skip = {"audit_events", "audit_event_owners", "audit_head", "audit_tree_heads"}
    out: dict[str, list[tuple[Any, ...]]] = {}
    with store.connect() as conn:
        names = [n for n in inspect(conn).get_table_names() if n not in skip]
        for name in names:
            if name in ("spatial_ref_sys", "alembic_version"):
                continue
            if name.startswith("incidents_rtree_"):
                continue  # the R*Tree's own node storage; its rows are incidents_rtree's
            rows = conn.exec_driver_sql(f'SELECT * FROM "{name}"').all()
            out[name] = [
                tuple(v if isinstance(v, str | int | None) else repr(v) for v in r) for r in rows
            ]
    return out


def _agreement_args(owner: str) -> dict[str, Any]:
    """Share property crimes, personal fields included: two admins of the owner approve."""
    return {
        "offences": ["property"],
        "fields": ["all"],
        "precision": "block",
        "purposes": ["analysis"],
        "approved_by": [f"{owner}.admin", f"{owner}.admin2"],
        "reference": "MoU 1",
    }


def test_remove_agency_registered_by_mistake(store, tmp_path):
    register(store, "citypd")
    register(store, "typo")  # registered by mistake, then used
    profile = load_profile(write_profile(tmp_path, profile_text()))
    first = [row(i) for i in range(1, 9)] + [row(9, when="not a date")]
    for agency in ("citypd", "typo"):
        ingest_files(store, agency, profile, [write_csv(tmp_path / f"{agency}-1.csv", first)])
    changed = [row(i, code="120") for i in range(1, 4)]
    ingest_files(store, "typo", profile, [write_csv(tmp_path / "typo-2.csv", changed)])
    users = {
        a: create_user(store, a, f"{a}.analyst", PASSWORD, ["analyst"]) for a in ("citypd", "typo")
    }
    admins = {
        a: [
            create_user(store, a, f"{a}.{n}", PASSWORD, ["agency_admin"])
            for n in ("admin", "admin2")
        ]
        for a in ("citypd", "typo")
    }
    for agency in ("citypd", "typo"):
        create_token(store, agency, "ingest", label="nightly")
    create_agreement(store, "citypd", "typo", **_agreement_args("citypd"))
    typo_agreement = create_agreement(store, "typo", "citypd", **_agreement_args("typo"))
    create_group(store, "tf", "Task force", members=["citypd", "typo"])
    tighten_public_policy(store, "typo", {"precision": "h3:8"})

    before = _table_rows(store)
    typo_incidents = {incident_id("typo", f"R{i}") for i in range(1, 9)}
    owned = {"typo", users["typo"].user.id, typo_agreement.id} | typo_incidents
    owned |= {admin.user.id for admin in admins["typo"]}
    with store.connect() as conn:
        owned |= set(
            conn.execute(
                select(ingest_batches.c.id).where(ingest_batches.c.agency_id == "typo")
            ).scalars()
        )
        owned |= {
            a
            for (a,) in conn.exec_driver_sql(
                "SELECT id FROM sharing_agreements WHERE grantee_id = 'typo'"
            )
        }
    assert any("typo" in r for r in before["incidents"])

    with pytest.raises(AgencyError, match="confirm"):
        remove_agency(store, "typo", confirm="citypd")
    with pytest.raises(AgencyError, match="unknown agency 'typ'.*typo"):
        remove_agency(store, "typ", confirm="typ")
    assert _table_rows(store) == before

    summary = remove_agency(store, "typo", confirm="typo")
    assert summary.deleted["incidents"] == 8
    assert summary.deleted["incident_versions"] == 3
    assert summary.deleted["quarantine"] == 1
    assert summary.deleted["users"] == 3 and summary.deleted["api_tokens"] == 1
    assert summary.deleted["sharing_agreement_approvals"] == 4  # two per removed agreement
    assert summary.deleted["sharing_agreements"] == 2
    assert summary.deleted["agencies"] == 1

    after = _table_rows(store)
    # The data generation counts every audited change (tile ETags): the removal is one.
    assert after.pop("data_generation") != before.pop("data_generation")
    for name, rows in before.items():
        kept = set(after[name])
        assert kept <= set(rows), name  # nothing added or changed
        gone = [r for r in rows if r not in kept]
        expected = [r for r in rows if owned & set(r)]
        # Rows of the other agency's incidents tagged with typo's (overlapping) area go too.
        if name != "incident_jurisdictions":
            assert sorted(map(repr, gone)) == sorted(map(repr, expected)), name
        assert not [r for r in after[name] if owned & set(r)], name
    assert get_agency(store, "citypd") is not None and get_agency(store, "typo") is None
    with store.connect() as conn:
        left = conn.execute(select(func.count()).select_from(incidents)).scalar()
    assert left == 8  # citypd's

    (event,) = [
        e for e in events_for_owner(store, "typo") if e.details.get("operation") == "agency_remove"
    ]
    assert event.action == Action.CHANGE and event.record_count == 8
    assert event.details["deleted"]["incidents"] == 8
    assert verify(store).problems == []


def test_agency_remove_cli_requires_confirmation(db_url, tmp_path, monkeypatch):
    run(["agency", "add", "typo", "--name", "Typo", "--timezone", ZONE, "--db", db_url])
    data = write_csv(tmp_path / "a.csv", [row(i) for i in range(4)])
    prof = write_profile(tmp_path, profile_text())
    assert (
        run(
            ["ingest", "--db", db_url, "--agency", "typo", "--profile", str(prof), str(data)]
        ).exit_code
        == 0
    )

    refused = run(["agency", "remove", "typo", "--db", db_url])  # no terminal, no --yes
    assert refused.exit_code == 1 and "--yes" in refused.output
    monkeypatch.setattr("crossbeat.cli._interactive", lambda: True)  # a person at a terminal
    wrong = run(["agency", "remove", "typo", "--db", db_url], input="typ\n")
    assert wrong.exit_code == 1 and "Type its id to confirm" in wrong.output
    assert "confirm by giving its id" in wrong.output
    assert "typo" in run(["agency", "list", "--db", db_url]).output
    typed = run(["agency", "remove", "typo", "--db", db_url, "--json"], input="typo\n")
    assert typed.exit_code == 0, typed.output
    assert '"incidents": 4' in typed.output
    run(["agency", "add", "typo", "--name", "Typo", "--timezone", ZONE, "--db", db_url])
    assert (
        run(
            ["ingest", "--db", db_url, "--agency", "typo", "--profile", str(prof), str(data)]
        ).exit_code
        == 0
    )
    monkeypatch.setattr("crossbeat.cli._interactive", lambda: False)

    done = run(["agency", "remove", "typo", "--yes", "--db", db_url, "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["deleted"]["incidents"] == 4
    assert "typo" not in run(["agency", "list", "--db", db_url]).output


# --- 4. placeholder times ----------------------------------------------------------------
def test_placeholder_times_are_stored_as_day_precision(store, tmp_path):
    register(store, "citypd")
    extra = 'placeholder_times = ["00:00"]'
    profile = load_profile(write_profile(tmp_path, profile_text(dates_extra=extra)))
    data = write_csv(
        tmp_path / "a.csv",
        [row(1, when="2024-03-05 00:00"), row(2, when="2024-03-05 00:01")],
    )
    ingest_files(store, "citypd", profile, [data])
    with store.connect() as conn:
        got = {
            r.source_id: r
            for r in conn.execute(
                select(
                    incidents.c.source_id,
                    incidents.c.time_precision,
                    incidents.c.occurred_from,
                    incidents.c.occurred_to,
                )
            )
        }
    assert got["R1"].time_precision == "day"
    assert got["R1"].occurred_from.isoformat() == "2024-03-05T08:00:00+00:00"  # local midnight
    assert got["R1"].occurred_to.isoformat() == "2024-03-06T07:59:59.999999+00:00"
    assert got["R2"].time_precision == "minute"


def test_placeholder_times_must_be_times():
    with pytest.raises(ProfileError, match="placeholder time '24:00'"):
        parse_profile(profile_text(dates_extra='placeholder_times = ["24:00"]'))


def test_draft_proposes_placeholder_time_for_excess_midnights(tmp_path):
    rows = [row(i) for i in range(1, 41)]
    for r in rows[::4]:
        r["when"] = r["when"][:10] + " 00:00"
    path = write_csv(tmp_path / "export.csv", rows)
    draft = draft_profile(path, agency="citypd", timezone=ZONE)
    assert draft.profile.occurred_from is not None
    assert draft.profile.occurred_from.placeholder_times == ["00:00"]
    assert "10 of the 40 sampled times (25%) are exactly 00:00" in draft.text

    plain = write_csv(tmp_path / "plain.csv", [row(i) for i in range(1, 41)])
    assert (
        draft_profile(plain, agency="citypd", timezone=ZONE).profile.occurred_from.placeholder_times
        == []
    )


# --- 5. coordinates rounded by the source ------------------------------------------------
def test_declared_rounding_keeps_points_from_being_exact(store, tmp_path):
    register(store, "citypd")
    profile = load_profile(
        write_profile(tmp_path, profile_text(location_extra="precision_m = 111"))
    )
    rows = [row(i, lat=f"{45.51 + i * 0.001:.3f}", lon="-122.679") for i in range(3)]
    ingest_files(store, "citypd", profile, [write_csv(tmp_path / "a.csv", rows)])
    with store.connect() as conn:
        precisions = set(conn.execute(select(incidents.c.location_precision)).scalars())
    assert precisions == {"block"}


def test_draft_proposes_the_precision_the_coordinates_have(tmp_path):
    rounded = [
        row(i, lat=f"{45.51 + (i % 40) * 0.001:.3f}", lon=f"{-122.68 + (i % 50) * 0.001:.3f}")
        for i in range(1, 41)
    ]
    draft = draft_profile(write_csv(tmp_path / "r.csv", rounded), agency="citypd", timezone=ZONE)
    assert draft.profile.location.precision_m == 111
    assert draft.profile.location.precision.value == "block"
    assert "3 decimal places" in draft.text
    fine = draft_profile(
        write_csv(tmp_path / "f.csv", [row(i) for i in range(1, 41)]),
        agency="citypd",
        timezone=ZONE,
    )
    assert fine.profile.location.precision_m is None


# --- 6. a profile with an unsettled TODO -------------------------------------------------
def test_profile_with_open_todo_is_refused(db_url, tmp_path):
    text = profile_text("UTC").replace(
        'timezone = "UTC"', 'timezone = "UTC"  # TODO: the dates carry no UTC offset'
    )
    prof = write_profile(tmp_path, text)
    data = write_csv(tmp_path / "a.csv", [row(i) for i in range(3)])
    run(["agency", "add", "citypd", "--name", "City PD", "--timezone", "UTC", "--db", db_url])

    result = run(
        ["ingest", "--db", db_url, "--agency", "citypd", "--profile", str(prof), str(data)]
    )
    assert result.exit_code == 1
    assert "unsettled TODO" in result.output and "line 6:" in result.output
    check = run(["profile", "check", str(prof), str(data), "--agency", "citypd"])
    assert check.exit_code == 1 and "line 6:" in check.output and "TODO" in check.output
    assert json.loads(run(["agency", "list", "--db", db_url, "--json"]).output)[0]["id"] == "citypd"
    assert stored_state(open_store(db_url, upgrade=False))["incidents"] == []

    settled = prof.read_text().replace("  # TODO: the dates carry no UTC offset", "  # checked")
    prof.write_text(settled)
    ok = run(["ingest", "--db", db_url, "--agency", "citypd", "--profile", str(prof), str(data)])
    assert ok.exit_code == 0, ok.output


def test_library_ingest_refuses_open_todo(store, tmp_path):
    register(store, "citypd")
    profile = parse_profile(profile_text().replace("[id]", "[id]  # TODO check the id"))
    with pytest.raises(ProfileError, match="line"):
        ingest_files(store, "citypd", profile, [write_csv(tmp_path / "a.csv", [row(1)])])
    assert stored_state(store)["batches"] == 0


def test_drafted_profile_is_refused_until_its_todos_are_settled(tmp_path):
    path = write_csv(tmp_path / "export.csv", [row(i) for i in range(1, 30)])
    draft = draft_profile(path, agency="citypd")  # no --timezone: a TODO
    (todo,) = draft.profile.open_todos  # the header's "settle each TODO" is prose, not one
    assert "# TODO: the dates carry no UTC offset" in todo
    settled = draft_profile(path, agency="citypd", timezone=ZONE)
    assert settled.profile.open_todos == ()
    prof = write_profile(tmp_path, draft.text, "draft.toml")
    check = run(["profile", "check", str(prof), str(path)])
    assert check.exit_code == 1 and "Unsettled TODO" in check.output


@pytest.mark.parametrize(
    "path",
    sorted((REPO / "examples" / "profiles").glob("*.toml"))
    + sorted((REPO / "crossbeat" / "demo" / "profiles").glob("*.toml")),
    ids=lambda p: p.name,
)
def test_shipped_profiles_have_no_open_todo(path):
    assert open_todos(path.read_text(encoding="utf-8")) == []


def test_epoch_feed_never_uses_its_time_zone_and_is_not_refused(store, tmp_path):
    register(store, "transit")  # registered in America/Los_Angeles
    text = (
        profile_text("UTC")
        .replace('column = "when"', 'column = "ms"')
        .replace('formats = ["%Y-%m-%d %H:%M"]', 'formats = ["epoch_ms"]')
    )
    profile = parse_profile(text)
    path = tmp_path / "e.csv"
    path.write_text(
        "id,ms,code,address,victim,lon,lat\nT1,1709700000000,220,1 MAIN ST,A,-122.68,45.51\n",
        encoding="utf-8",
    )
    assert ingest_files(store, "transit", profile, [path]).new == 1
    daily = parse_profile(
        text.replace('formats = ["epoch_ms"]', 'formats = ["epoch_ms"]\nprecision = "day"')
    )
    with pytest.raises(IngestError, match="time zone mismatch"):  # local days: the zone matters
        ingest_files(store, "transit", daily, [path])


def test_quarantine_retry_refuses_the_same_mistakes(store, tmp_path):
    from crossbeat.ingest.quarantine import retry_quarantine

    register(store, "citypd")
    good = load_profile(write_profile(tmp_path, profile_text()))
    data = write_csv(tmp_path / "a.csv", [row(1), row(2, when="2024-02-30 10:00")])
    assert ingest_files(store, "citypd", good, [data]).quarantined == 1
    before = stored_state(store)
    todo = parse_profile(profile_text().replace("[id]", "[id]  # TODO check"))
    with pytest.raises(ProfileError, match="unsettled TODO"):
        retry_quarantine(store, todo, agency_id="citypd")
    shifted = parse_profile(profile_text("UTC"))
    with pytest.raises(ValueError, match="time zone mismatch"):
        retry_quarantine(store, shifted, agency_id="citypd")
    assert stored_state(store) == before
    assert retry_quarantine(store, shifted, agency_id="citypd", accept_timezone=True).retried == 1


def test_profile_check_with_db_names_an_unknown_agency(db_url, tmp_path):
    run(["agency", "add", "citypd", "--name", "City PD", "--timezone", ZONE, "--db", db_url])
    data = write_csv(tmp_path / "a.csv", [row(i) for i in range(3)])
    prof = write_profile(tmp_path, profile_text())
    out = run(["profile", "check", str(prof), str(data), "--agency", "cityp", "--db", db_url])
    assert out.exit_code == 1
    assert "unknown agency 'cityp'" in out.output and "citypd" in out.output
    as_json = run(
        ["profile", "check", str(prof), str(data), "--agency", "citypd", "--db", db_url, "--json"]
    )
    report = json.loads(as_json.output)
    assert as_json.exit_code == 0 and report["refusals"] == [] and report["todos"] == []


def test_draft_finds_the_placeholder_time_of_a_real_export():
    """Sacramento's 2006 export writes 0:01 for crimes whose time is unknown."""
    from tests.conftest import shared_data

    path = shared_data("sacramento-2006", "SacramentocrimeJanuary2006.csv")
    draft = draft_profile(path, agency="sacpd", timezone=ZONE)
    assert draft.profile.occurred_from is not None
    assert draft.profile.occurred_from.placeholder_times == ["00:01"]
    assert "52 of the 2000 sampled times (3%) are exactly 00:01" in draft.text
