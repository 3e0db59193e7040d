"""The audit walk: every CLI command and API operation that changes data writes an event.

The lists of commands and operations are generated — the click group walked
recursively, the application's routes read — so a command or route added later
fails :func:`test_every_command_is_classified` (or its API twin) until it is put in
one of two tables here:

* ``AUDITED`` / ``API_AUDITED``: how to run it on a small world, and the audit action
  and owner agency its event must carry. The test runs it and checks the event.
* ``READ_ONLY`` / ``API_READ_ONLY``: it changes no stored data, with why. Each
  read-only command that can run here is run too, and every table but the audit
  log's must be unchanged after it, so an exemption cannot hide a change.

Adding a command is one line in one table: e.g.
``"agency remove": Case("agency remove cityy --yes", "change", "cityy"),``.
"""

from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import h3
import pytest
from click.testing import CliRunner
from shapely.geometry import box, mapping
from sqlalchemy import select

from crossbeat.agencies import register_agency, set_jurisdiction
from crossbeat.areas import add_layer
from crossbeat.audit import AuditEvent, iter_events, log_size
from crossbeat.auth import totp
from crossbeat.auth.accounts import create_user, disable_user
from crossbeat.auth.tokens import create_token
from crossbeat.cli import cli
from crossbeat.clock import FrozenClock
from crossbeat.forecast.plans import save_patrol_plan
from crossbeat.forecast.service import run_forecast
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import load_profile
from crossbeat.ingest.quarantine import list_quarantine
from crossbeat.live.bulletins import create_bulletin
from crossbeat.live.field import Reporter
from crossbeat.model import Agency
from crossbeat.sharing.agreements import create_agreement, list_agreements
from crossbeat.sharing.groups import create_group
from crossbeat.sharing.own import operator_viewer
from crossbeat.sharing.request import Viewer
from crossbeat.store import Store, open_store
from crossbeat.store.base import close_all
from crossbeat.store.schema import metadata
from crossbeat.vault.kek import generate_kek, parse_kek
from tests.api_support import build_world
from tests.auth_support import PASSWORD
from tests.cli_support import subcommands
from tests.test_ingest_pipeline import PROFILE, row, write_csv

CROSSWALKS = Path(__file__).resolve().parents[1] / "crossbeat" / "demo" / "crosswalks"
FIXED_PROFILE = PROFILE.replace(
    'formats = ["%Y-%m-%d %H:%M"]', 'formats = ["%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M"]'
)


@dataclass(frozen=True)
class Case:
    """How to run a data-changing command and the event it must write.

    ``argv`` is the command line after ``crossbeat``, with ``{name}`` placeholders
    filled from the world (:class:`Template`); ``--db`` is added unless ``db`` names
    another database (a file under the world's folder).
    """

    argv: str
    action: str
    owner: str
    stdin: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    db: str | None = None


#: Every data-changing command, how to run it and the (action, owner) of its event.
AUDITED: dict[str, Case] = {
    "agency add": Case("agency add cityx --name 'City X' --boundary {boundary}", "change", "cityx"),
    "agency remove": Case("agency remove cityy --yes", "change", "cityy"),
    "analyse link-duplicates": Case("analyse link-duplicates --agency cityx", "change", "cityx"),
    "area add": Case("area add cityx precincts {boundary} --name-field name", "change", "cityx"),
    "area remove": Case("area remove cityx beats", "change", "cityx"),
    "ingest": Case("ingest --agency cityx --profile {profile} {more}", "ingest", "cityx"),
    "withdraw": Case("withdraw --agency cityx --reason unfounded R1", "withdraw", "cityx"),
    "quarantine retry": Case(
        "quarantine retry --agency cityx --profile {fixed}", "ingest", "cityx"
    ),
    "quarantine dismiss": Case(
        "quarantine dismiss --agency cityx --id {qid} --reason x", "change", "cityx"
    ),
    "keys rotate": Case("keys rotate --agency cityx", "key_rotation", "cityx"),
    "keys rewrap": Case(
        "keys rewrap --old-kek-file {kek_file}",
        "key_rotation",
        "cityx",
        env={"CROSSBEAT_KEK": "{new_kek}"},
    ),
    "user add": Case(
        "user add cityx bob --role analyst --password-stdin",
        "account_change",
        "cityx",
        stdin=PASSWORD + "\n",
    ),
    "user roles": Case("user roles ann --role officer", "account_change", "cityx"),
    "user password": Case(
        "user password ann --password-stdin", "account_change", "cityx", stdin=PASSWORD + " 2\n"
    ),
    "user reset-totp": Case("user reset-totp ann", "account_change", "cityx"),
    "user unlock": Case("user unlock ann", "account_change", "cityx"),
    "user disable": Case("user disable ann", "account_change", "cityx"),
    "user enable": Case("user enable dora", "account_change", "cityx"),
    "user disable-inactive": Case("user disable-inactive", "account_change", "cityy"),
    "token create": Case("token create cityx --purpose read", "account_change", "cityx"),
    "token revoke": Case("token revoke {token_id}", "account_change", "cityx"),
    "agreement add": Case(
        "agreement add cityy public --approved-by y.admin", "agreement_change", "cityy"
    ),
    "bulletin send": Case(
        "bulletin send --agency cityx --kind series --title T --to cityy --lat 45.55 --lon -122.65",
        "change",
        "cityy",
    ),
    "bulletin ack": Case("bulletin ack --agency cityy {bulletin_id}", "change", "cityx"),
    "agreement approve": Case(
        "agreement approve {pending_id} --by x.admin2", "agreement_change", "cityx"
    ),
    "agreement revoke": Case(
        "agreement revoke {agreement_id} --reason ended", "agreement_change", "cityx"
    ),
    "group add": Case(
        "group add g2 --name G2 --member cityx --member cityy", "agreement_change", "cityx"
    ),
    "group members": Case("group members g1 --add cityy", "agreement_change", "cityy"),
    "public-policy tighten": Case(
        "public-policy tighten cityx --delay 14d", "agreement_change", "cityx"
    ),
    "forecast run": Case(
        "forecast run --agency cityy --category 220 --start 2024-04-01 --model naive --cell 200",
        "change",
        "cityy",
    ),
    "patrol plan": Case(
        "patrol plan --agency cityy --card {card_id} --units 2 --shift-start 2024-04-01T08:00",
        "change",
        "cityy",
    ),
    "patrol roads": Case(
        "patrol roads --agency cityy {osm}",
        "change",
        "cityy",
    ),
    "gazetteer load": Case("gazetteer load --agency cityy {addresses}", "change", "cityy"),
    "patrol positions": Case(
        "patrol positions --agency cityy --plan {plan_id} {root}/pings.csv",
        "change",
        "cityy",
    ),
    "patrol dosage": Case(
        "patrol dosage --agency cityy --cell 1 --unit u1 --at 2024-04-01T09:00 --minutes 12",
        "change",
        "cityy",
    ),
    "demo": Case(
        "demo --no-serve --dir {root}/demo --size 0.01",
        "ingest",
        "rivertonpd",
        db="demo/crossbeat-demo.db",
    ),
}

#: A second run of a command whose other form changes data differently.
EXTRA_CASES: list[tuple[str, Case]] = [
    (
        "withdraw --expunge",
        Case("withdraw --agency cityx --expunge --reason order R2", "expunge", "cityx"),
    ),
    (
        "agency add (update)",
        Case("agency add cityy --name 'City Y' --timezone Europe/London", "change", "cityy"),
    ),
]

#: Commands that change no stored data, each with why. The argv (when not None) is run
#: and every table but the audit log's must be unchanged after it.
READ_ONLY: dict[str, tuple[str | None, str]] = {
    "agency list": ("agency list", "lists agencies"),
    **{
        f"analyse {n}": (f"analyse {n} --agency cityx", "an audited read through the policy")
        for n in (
            "kde",
            "hotspots",
            "emerging",
            "trends",
            "compstat",
            "nearrepeat",
            "series",
            "duplicates",
        )
    },
    "analyse similar": ("analyse similar --agency cityx R1", "an audited read through the policy"),
    "bulletin list": ("bulletin list --agency cityy", "lists bulletins"),
    "agreement history": ("agreement history {agreement_id}", "shows an agreement's versions"),
    "agreement list": ("agreement list", "lists agreements"),
    "area list": ("area list", "lists area layers"),
    "area show": ("area show cityx beats", "shows one area layer"),
    "agreement preview": ("agreement preview cityx public", "an audited read"),
    "audit checkpoint": (None, "signs a head of the audit log itself; no agency's data changes"),
    "audit keygen": ("audit keygen --out {root}/audit.pem", "writes a key file, not the database"),
    "audit log": ("audit log --agency cityx", "reads the audit log"),
    "audit verify": ("audit verify", "reads the audit log"),
    "db upgrade": ("db upgrade", "migrates the schema; no rows of data change"),
    "export": (
        "export --agency cityx --format gpkg --output {root}/export.gpkg",
        "an audited read through the policy (an export event), written to a file",
    ),
    "group list": ("group list", "lists groups"),
    "gazetteer list": ("gazetteer list", "lists loaded address files"),
    "gazetteer lookup": (
        "gazetteer lookup '100 N Main St'",
        "looks an address up in address points; no incident data",
    ),
    "forecast list": ("forecast list --agency cityy", "lists model cards"),
    "forecast show": ("forecast show --agency cityy {card_id}", "shows a model card"),
    "patrol evaluate": (
        "patrol evaluate --agency cityy --plan {plan_id}",
        "evaluates dosage; its incidents are an audited read",
    ),
    "forecast nij": (
        "forecast nij --agency cityy --category 220 --start 2024-04-01 --model naive --search 2 "
        "--out {root}/nij",
        "an audited read; writes files, not the database",
    ),
    "incidents list": ("incidents list --agency cityx", "an audited read through the policy"),
    "incidents show": ("incidents show --agency cityx R1", "an audited read through the policy"),
    "keys new-kek": ("keys new-kek", "prints a new key; stores nothing"),
    "keys status": ("keys status", "counts keys and rows"),
    "profile check": ("profile check {profile} {more}", "checks a profile against a file"),
    "profile draft": ("profile draft {more} --out {root}/draft.toml", "writes a draft file"),
    "public-policy show": ("public-policy show cityx", "shows a policy"),
    "quarantine list": ("quarantine list", "an audited read"),
    "serve": (None, "serves the API, whose operations are walked by the API tests below"),
    "taxonomy check": ("taxonomy check {crosswalk}", "checks crosswalk files"),
    "taxonomy coverage": ("taxonomy coverage", "an audited read of offence counts"),
    "taxonomy crosswalks": ("taxonomy crosswalks", "lists crosswalk files"),
    "taxonomy suggest": ("taxonomy suggest BURG", "suggests offence codes"),
    "taxonomy sensitivity": ("taxonomy sensitivity 'he hit his wife'", "explains one text's flags"),
    "taxonomy sensitivity-accuracy": ("taxonomy sensitivity-accuracy", "measures a shipped set"),
    "taxonomy suggest-accuracy": ("taxonomy suggest-accuracy", "measures a shipped set"),
    "token list": ("token list", "lists tokens"),
    "user list": ("user list", "lists users"),
}


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[str]:
    """Return every leaf command of a click group, as space-separated paths."""
    found = []
    for name, command in subcommands(group):
        if isinstance(command, click.Group):
            found += commands(command, (*prefix, name))
        else:
            found.append(" ".join((*prefix, name)))
    return found


def test_every_command_is_classified() -> None:
    every = set(commands(cli))
    assert len(every) > 40  # the walk found the nested groups
    unclassified = sorted(every - set(AUDITED) - set(READ_ONLY))
    assert not unclassified, (
        f"classify {unclassified} in tests/test_audit_walk.py: AUDITED (with a Case that "
        "runs it and the event it writes) or READ_ONLY (with why it changes no data)"
    )
    assert not set(AUDITED) & set(READ_ONLY)
    assert not (set(AUDITED) | set(READ_ONLY)) - every, "a classified command no longer exists"


# -- the small world every command runs on (built once, copied per test) -----------------
@dataclass
class Template:
    """A built world: its database file and the values the command lines refer to."""

    folder: Path
    values: dict[str, str]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, kek_text: str) -> Template:
    folder = tmp_path_factory.mktemp("walk")
    kek = parse_kek(kek_text)
    store = open_store(f"sqlite:///{folder / 'world.db'}", kek=kek)
    clock = FrozenClock(store.now())
    register_agency(store, Agency("cityx", "City X", timezone="America/Los_Angeles"))
    register_agency(store, Agency("cityy", "City Y", timezone="America/Los_Angeles"))
    set_jurisdiction(store, "cityx", "city", mapping(box(-122.7, 45.5, -122.6, 45.6)))
    (folder / "feed.toml").write_text(PROFILE, encoding="utf-8")
    (folder / "fixed.toml").write_text(FIXED_PROFILE, encoding="utf-8")
    rows = [row(i) for i in range(5)] + [row(5, when="03/05/2024 10:00"), row(6, lat="95")]
    ingest_files(
        store, "cityx", load_profile(folder / "feed.toml"), [write_csv(folder / "a.csv", rows)]
    )
    write_csv(folder / "b.csv", [row(i) for i in range(3, 9)])
    # Enough burglaries in City Y for a forecast and its patrol plan (issue #13).
    burglaries = [row(i, id=f"B{i}", code="220") for i in range(100, 180)]
    ingest_files(
        store,
        "cityy",
        load_profile(folder / "feed.toml"),
        [write_csv(folder / "y.csv", burglaries)],
    )
    card = run_forecast(
        store, operator_viewer("cityy"), category="220", start=datetime(2024, 4, 1, tzinfo=UTC),
        model="naive", cell_m=200.0,
    )  # fmt: skip
    plan = save_patrol_plan(
        store, "cityy", card.id, units=1, shift_start=datetime(2024, 4, 1, 8, tzinfo=UTC)
    )
    # A unit's positions in the plan's first box, for `patrol positions`.
    lat, lon = h3.cell_to_latlng(next(iter(plan["boxes"].values()))["h3_9"])
    at = datetime(2024, 4, 1, 9, tzinfo=UTC)
    pings = [f"u1,{(at + timedelta(minutes=2 * k)).isoformat()},{lon},{lat}" for k in range(3)]
    (folder / "pings.csv").write_text("unit,at,lon,lat\n" + "\n".join(pings) + "\n")
    qid = max(e.id for e in list_quarantine(store, agency_id="cityx"))
    boundary = folder / "boundary.geojson"
    boundary.write_text(
        '{"type": "Feature", "properties": {"name": "city"}, "geometry": '
        '{"type": "Polygon", "coordinates": [[[-122.8, 45.4], [-122.5, 45.4], [-122.5, 45.7], '
        "[-122.8, 45.7], [-122.8, 45.4]]]}}",
        encoding="utf-8",
    )
    add_layer(store, "cityx", "beats", boundary, name_field="name", kind="beat")
    create_user(store, "cityx", "ann", PASSWORD, ["analyst"], clock=clock)
    create_user(store, "cityx", "dora", PASSWORD, ["analyst"], clock=clock)
    disable_user(store, "dora", clock=clock)
    old = FrozenClock(clock.now() - timedelta(days=120))
    create_user(store, "cityy", "idle", PASSWORD, ["analyst"], clock=old)
    # Agreements are approved by admin accounts of the owner (two for personal fields).
    for agency, username in (("cityx", "x.admin"), ("cityx", "x.admin2"), ("cityy", "y.admin")):
        create_user(store, agency, username, PASSWORD, ["agency_admin"], clock=clock)
    token = create_token(store, "cityx", "read", clock=clock)
    agreement = create_agreement(store, "cityx", "public", approved_by="x.admin", clock=clock)
    pending = create_agreement(
        store,
        "cityx",
        "cityy",
        offences=["all"],
        fields=["offence", "occurred", "personal"],
        precision="exact",
        purposes=["investigation"],
        approved_by="x.admin",
        clock=clock,
    )
    assert pending.status(clock.now()) == "awaiting_approval"
    create_group(store, "g1", "Group one", members=["cityx"], clock=clock)
    sent = create_bulletin(
        store, Viewer.user("system", "cityx", ["analyst"]), Reporter("system", "cityx"),
        kind="bolo", title="Grey van", body="", anchor={"type": "point", "lat": 45.55,
        "lon": -122.65}, recipients=["cityy"],
    )  # fmt: skip
    (folder / "old.kek").write_text(kek_text, encoding="utf-8")
    close_all()
    values = {
        "root": "{root}",
        "profile": str(folder / "feed.toml"),
        "fixed": str(folder / "fixed.toml"),
        "more": str(folder / "b.csv"),
        "boundary": str(boundary),
        "qid": str(qid),
        "kek_file": str(folder / "old.kek"),
        "new_kek": generate_kek(),
        "token_id": token.token.id,
        "agreement_id": agreement.id,
        "pending_id": pending.id,
        "bulletin_id": sent.id,
        "crosswalk": str(next(CROSSWALKS.glob("*.toml"))),
        "card_id": card.id,
        "plan_id": plan["id"],
        "osm": str(Path(__file__).parent / "data" / "patrol_roads.osm"),
        "addresses": str(Path(__file__).parent / "data" / "gazetteer_small.csv"),
    }
    return Template(folder, values)


@dataclass
class Run:
    """A copy of the template world for one test."""

    root: Path
    values: dict[str, str]
    kek_text: str

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'world.db'}"

    def fill(self, text: str) -> str:
        return text.format(**{**self.values, "root": str(self.root)})

    def invoke(self, argv: str, *, db: str | None = None, stdin: str | None = None,
               env: dict[str, str] | None = None) -> Any:  # fmt: skip
        args = [self.fill(a) for a in shlex.split(argv)]
        if db is None:
            args += ["--db", self.db_url]
        environment = {"CROSSBEAT_KEK": self.kek_text}
        environment.update({k: self.fill(v) for k, v in (env or {}).items()})
        return CliRunner().invoke(cli, args, input=stdin, env=environment)

    def store(self, db: str | None = None) -> Store:
        url = f"sqlite:///{self.root / db}" if db else self.db_url
        return open_store(url)


@pytest.fixture
def run(template: Template, tmp_path: Path, kek_text: str) -> Run:
    root = tmp_path / "world"
    shutil.copytree(template.folder, root)
    return Run(root, template.values, kek_text)


def _events_after(store: Store, before: int) -> list[AuditEvent]:
    return list(iter_events(store, after=before))


@pytest.mark.parametrize(
    "name, case",
    [*AUDITED.items(), *EXTRA_CASES],
    ids=[*AUDITED, *(n for n, _ in EXTRA_CASES)],
)
def test_data_changing_command_writes_an_audit_event(run: Run, name: str, case: Case) -> None:
    before = 0 if case.db else log_size(run.store())
    out = run.invoke(case.argv, db=case.db, stdin=case.stdin, env=case.env)
    assert out.exit_code == 0, f"crossbeat {name}: {out.output}"
    found = _events_after(run.store(case.db), before)
    matching = [e for e in found if e.action == case.action and case.owner in e.owner_agencies]
    assert matching, (
        f"crossbeat {name} wrote no {case.action!r} event owned by {case.owner}: "
        f"{[(e.action, e.owner_agencies) for e in found]}"
    )


#: Columns a read may write: the served sensitivity flags it re-derives before serving
#: (crossbeat.sharing.flags; derived from the data, never data themselves).
DERIVED = {"incidents": ("sens_served", "sens_rules", "occurred_local")}


def _data(store: Store) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table but the audit log's (reads append to it)."""
    out = {}
    with store.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name.startswith("audit_"):
                continue
            skip = DERIVED.get(table.name, ())
            rows = conn.execute(select(*(c for c in table.c if c.name not in skip))).all()
            out[table.name] = sorted(tuple(map(str, r)) for r in rows)
    return out


@pytest.mark.parametrize("name", sorted(n for n, (argv, _) in READ_ONLY.items() if argv))
def test_read_only_command_changes_no_data(run: Run, name: str) -> None:
    argv, _ = READ_ONLY[name]
    assert argv is not None
    before = _data(run.store())
    no_db = name.startswith(("taxonomy check", "taxonomy crosswalks", "taxonomy suggest",
                             "taxonomy sensitivity",
                             "keys new-kek", "audit keygen", "profile draft"))  # fmt: skip
    out = run.invoke(argv, db="" if no_db else None)
    assert out.exit_code in (0, 1), f"crossbeat {name}: {out.output}"  # 1: a finding, e.g. check
    assert _data(run.store()) == before, f"crossbeat {name} changed stored data"


# -- the web API -------------------------------------------------------------------------
# Each scenario sets up what the operation needs, then performs it, and returns the
# owner agency whose access log must show it and the log size just before it.
def _login(world: Any) -> tuple[str, int]:
    enrolment = world.user("a.analyst")
    world.clock.advance(seconds=30)
    before = log_size(world.store)
    response = world.client().post(
        "/auth/login", json={"username": enrolment.user.username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return "citya", before


def _mfa(world: Any) -> tuple[str, int]:
    enrolment = world.user("a.analyst")
    world.clock.advance(seconds=30)
    client = world.client()
    first = client.post(
        "/auth/login", json={"username": enrolment.user.username, "password": PASSWORD}
    )
    before = log_size(world.store)
    code = totp.code_at(enrolment.totp_secret, world.clock.now())
    second = client.post("/auth/mfa", json={"ticket": first.json()["mfa_ticket"], "code": code})
    assert second.status_code == 200, second.text
    return "citya", before


def _logout(world: Any) -> tuple[str, int]:
    client, token = world.signed_in("a.analyst")
    before = log_size(world.store)
    assert client.post("/auth/logout", headers=token).status_code in (200, 204)
    (ended,) = [e for e in iter_events(world.store, after=before) if e.action == "logout"]
    assert ended.actor == world.user_id("a.analyst") and ended.actor_agency == "citya"
    return "citya", before


def _create_agreement(world: Any) -> tuple[str, int]:
    client, token = world.signed_in("a.admin")
    grant = {
        "grantee": "countyb",
        "offences": ["property"],
        "fields": ["offence", "occurred", "location"],
        "precision": "block",
        "purposes": ["analysis"],
        "reference": "board minute 12",  # the caller's approval is recorded, not named
    }
    before = log_size(world.store)
    response = client.post("/api/v1/agreements", json=grant, headers=token)
    assert response.status_code == 201, response.text
    return "citya", before


FIELD_REPORT = {"offence": "23H", "occurred_from": "2026-06-14T10:15:00-07:00",
                "lat": 45.531, "lon": -122.661}  # fmt: skip


def _field_report(world: Any) -> tuple[str, int]:
    client, token = world.signed_in("a.officer")
    before = log_size(world.store)
    response = client.post("/api/v1/incidents", json=FIELD_REPORT, headers=token)
    assert response.status_code == 201, response.text
    return "citya", before


def _field_update(world: Any) -> tuple[str, int]:
    client, token = world.signed_in("a.officer")
    made = client.post("/api/v1/incidents", json=FIELD_REPORT, headers=token).json()
    before = log_size(world.store)
    response = client.patch(
        f"/api/v1/incidents/{made['record']['id']}",
        json={"status": "closed"},
        headers={**token, "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    return "citya", before


def _bulletin(world: Any) -> dict[str, Any]:
    client, token = world.signed_in("a.analyst")
    body = {"kind": "bolo", "title": "Grey van", "recipients": ["countyb"],
            "anchor": {"type": "point", "lat": 45.53, "lon": -122.66}}  # fmt: skip
    response = client.post("/api/v1/bulletins", json=body, headers=token)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def _send_bulletin(world: Any) -> tuple[str, int]:
    before = log_size(world.store)
    _bulletin(world)
    return "countyb", before


def _ack_bulletin(world: Any) -> tuple[str, int]:
    made = _bulletin(world)
    client, token = world.signed_in("b.analyst")
    before = log_size(world.store)
    response = client.post(f"/api/v1/bulletins/{made['id']}/ack", headers=token)
    assert response.status_code == 200, response.text
    return "citya", before


def _upload(world: Any) -> tuple[str, int]:
    client, token = world.signed_in("a.officer")
    before = log_size(world.store)
    files = {"file": ("export.csv", b"id,when\n", "text/csv"),
             "profile": ("feed.toml", FIXED_PROFILE.encode(), "application/toml")}  # fmt: skip
    response = client.post("/api/v1/uploads", files=files, headers=token)
    assert response.status_code == 202, response.text
    return "citya", before


def _approve_agreement(world: Any) -> tuple[str, int]:
    client, token = world.signed_in("a.admin")
    grant = {
        "grantee": "countyb",
        "offences": ["all"],
        "fields": ["offence", "occurred", "personal"],
        "precision": "exact",
        "purposes": ["investigation"],
    }
    created = client.post("/api/v1/agreements", json=grant, headers=token)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "awaiting_approval"  # personal fields need two admins
    second, token2 = world.signed_in("a.admin2")
    before = log_size(world.store)
    response = second.post(f"/api/v1/agreements/{created.json()['id']}/approve", headers=token2)
    assert response.status_code == 200, response.text
    return "citya", before


def _revoke_agreement(world: Any) -> tuple[str, int]:
    client, token = world.signed_in("a.admin")
    (public,) = list_agreements(world.store, owner="citya")
    before = log_size(world.store)
    response = client.post(
        f"/api/v1/agreements/{public.id}/revoke", json={"reason": "x"}, headers=token
    )
    assert response.status_code == 200, response.text
    return "citya", before


def _forecast_world(world: Any) -> None:
    from tests.api_support import NOW
    from tests.sharing_support import Inc, insert_incidents

    insert_incidents(world.store, [
        Inc("citya", f"F{i}", 45.52 + (i % 7) * 0.002, -122.66 + (i % 5) * 0.002, ["220"],
            NOW - timedelta(days=2 + i % 60, hours=i % 24))
        for i in range(60)
    ])  # fmt: skip


def _post_forecast(world: Any) -> tuple[str, int]:
    from tests.api_support import NOW

    _forecast_world(world)
    client, token = world.signed_in("a.analyst")
    before = log_size(world.store)
    body = {"category": "220", "start": NOW.isoformat(), "model": "naive", "cell_m": 200}
    response = client.post("/api/v1/forecasts", json=body, headers=token)
    assert response.status_code == 201, response.text
    return "citya", before


def _post_patrol_plan(world: Any) -> tuple[str, int]:
    from tests.api_support import NOW

    _forecast_world(world)
    client, token = world.signed_in("a.analyst")
    body = {"category": "220", "start": NOW.isoformat(), "model": "naive", "cell_m": 200}
    card = client.post("/api/v1/forecasts", json=body, headers=token).json()
    before = log_size(world.store)
    plan = {"model_card_id": card["id"], "units": 2, "shift_start": NOW.isoformat(), "seed": 3}
    response = client.post("/api/v1/patrol-plans", json=plan, headers=token)
    assert response.status_code == 201, response.text
    return "citya", before


def _post_dosage(world: Any) -> tuple[str, int]:
    from tests.api_support import NOW

    client, token = world.signed_in("a.analyst")
    before = log_size(world.store)
    body = {"cell": 7, "unit": "a-1", "started_at": NOW.isoformat(), "minutes": 14}
    response = client.post("/api/v1/dosage", json=body, headers=token)
    assert response.status_code == 201, response.text
    return "citya", before


def _post_positions(world: Any) -> tuple[str, int]:
    from tests.api_support import NOW

    _forecast_world(world)
    client, token = world.signed_in("a.analyst")
    body = {"category": "220", "start": NOW.isoformat(), "model": "naive", "cell_m": 200}
    card = client.post("/api/v1/forecasts", json=body, headers=token).json()
    plan = {"model_card_id": card["id"], "units": 1, "shift_start": NOW.isoformat()}
    made = client.post("/api/v1/patrol-plans", json=plan, headers=token).json()
    lat, lon = h3.cell_to_latlng(next(iter(made["boxes"].values()))["h3_9"])
    before = log_size(world.store)
    pings = [
        {"unit": "a-1", "at": (NOW + timedelta(minutes=k)).isoformat(), "lon": lon, "lat": lat}
        for k in range(4)
    ]
    response = client.post(
        f"/api/v1/patrol-plans/{made['id']}/positions", json={"positions": pings}, headers=token
    )
    assert response.status_code == 201 and response.json()["minutes"] == 3.0, response.text
    return "citya", before


def _set_roles(world: Any) -> tuple[str, int]:
    world.user("a.analyst")
    client, token = world.signed_in("a.admin")
    before = log_size(world.store)
    response = client.put(
        "/api/v1/users/a.analyst/roles", json={"roles": ["analyst", "officer"]}, headers=token
    )
    assert response.status_code == 200, response.text
    return "citya", before


def _disable_user(world: Any) -> tuple[str, int]:
    world.user("a.analyst")
    client, token = world.signed_in("a.admin")
    before = log_size(world.store)
    response = client.post("/api/v1/users/a.analyst/disable", headers=token)
    assert response.status_code == 200, response.text
    return "citya", before


def _enable_user(world: Any) -> tuple[str, int]:
    world.user("a.analyst")
    client, token = world.signed_in("a.admin")
    assert client.post("/api/v1/users/a.analyst/disable", headers=token).status_code == 200
    before = log_size(world.store)
    response = client.post("/api/v1/users/a.analyst/enable", headers=token)
    assert response.status_code == 200, response.text
    return "citya", before


def _create_token(world: Any) -> tuple[str, int]:
    client, token = world.signed_in("a.admin")
    before = log_size(world.store)
    response = client.post("/api/v1/tokens", json={"purpose": "ingest"}, headers=token)
    assert response.status_code == 201, response.text
    return "citya", before


def _revoke_token(world: Any) -> tuple[str, int]:
    client, token = world.signed_in("a.admin")
    made = client.post("/api/v1/tokens", json={"purpose": "read"}, headers=token).json()
    before = log_size(world.store)
    response = client.post(f"/api/v1/tokens/{made['id']}/revoke", headers=token)
    assert response.status_code == 200, response.text
    return "citya", before


def _dismiss_quarantine(world: Any) -> tuple[str, int]:
    import tempfile

    from crossbeat.ingest.pipeline import ingest_files
    from crossbeat.ingest.profile import parse_profile
    from tests.test_ingest_pipeline import PROFILE, row, write_csv

    with tempfile.TemporaryDirectory() as tmp:
        bad = write_csv(Path(tmp) / "x.csv", [row(0), row(1, lat="95.0")])
        ingest_files(world.store, "citya", parse_profile(PROFILE), [bad], accept_timezone=True)
    client, token = world.signed_in("a.admin")
    (entry,) = client.get("/api/v1/quarantine", headers=token).json()["entries"]
    before = log_size(world.store)
    body = {"ids": [entry["id"]], "reason": "a test row"}
    response = client.post("/api/v1/quarantine/dismiss", json=body, headers=token)
    assert response.status_code == 200 and response.json() == {"dismissed": 1}, response.text
    return "citya", before


def _preview_draft(world: Any) -> tuple[str, int]:
    """A draft agreement previewed (stores nothing; audited as a sharing decision)."""
    client, token = world.signed_in("a.admin")
    draft = {
        "grantee": "countyb", "offences": ["property"], "precision": "block",
        "fields": ["offence", "occurred", "location"], "purposes": ["analysis"], "sample": 1,
    }  # fmt: skip
    before = log_size(world.store)
    response = client.post("/api/v1/agreements/preview", json=draft, headers=token)
    assert response.status_code == 200 and response.json()["valid"], response.text
    return "citya", before


def _quarantined_world(world: Any) -> dict[str, Any]:
    """Quarantine one row of citya's with an impossible date; return its entry."""
    import tempfile

    from crossbeat.ingest.pipeline import ingest_files
    from crossbeat.ingest.profile import parse_profile
    from tests.test_ingest_pipeline import PROFILE, row, write_csv

    with tempfile.TemporaryDirectory() as tmp:
        bad = write_csv(Path(tmp) / "x.csv", [row(0), row(1, when="2024-02-30 10:00")])
        ingest_files(world.store, "citya", parse_profile(PROFILE), [bad], accept_timezone=True)
    client, token = world.signed_in("a.admin")
    (entry,) = client.get("/api/v1/quarantine", headers=token).json()["entries"]
    return dict(entry)


def _fix_quarantine(world: Any) -> tuple[str, int]:
    entry = _quarantined_world(world)
    client, token = world.signed_in("a.admin")
    before = log_size(world.store)
    body = {"changes": {"when": "2024-02-28 10:00"}, "reason": "typo in the export"}
    response = client.post(f"/api/v1/quarantine/{entry['id']}/fix", json=body, headers=token)
    assert response.status_code == 200, response.text
    return "citya", before


def _retry_quarantine(world: Any) -> tuple[str, int]:
    from tests.test_ingest_pipeline import PROFILE

    entry = _quarantined_world(world)
    client, token = world.signed_in("a.admin")
    fix = {"changes": {"when": "2024-02-28 10:00"}, "reason": "typo in the export"}
    fixed = client.post(f"/api/v1/quarantine/{entry['id']}/fix", json=fix, headers=token)
    assert fixed.status_code == 200, fixed.text
    before = log_size(world.store)
    body = {"ids": [entry["id"]], "profile": PROFILE, "accept_timezone": True}
    response = client.post("/api/v1/quarantine/retry", json=body, headers=token)
    assert response.status_code == 200 and response.json()["retry"]["retried"] == 1, response.text
    return "citya", before


#: Every data-changing API operation: a scenario that performs it (returning the owner
#: agency whose access log must show it) and the actions its events may carry.
API_AUDITED: dict[str, tuple[Any, set[str]]] = {
    "POST /auth/login": (_login, {"login"}),
    "POST /auth/mfa": (_mfa, {"login"}),
    "POST /auth/logout": (_logout, {"logout"}),
    "POST /api/v1/agreements": (_create_agreement, {"agreement_change"}),
    "POST /api/v1/agreements/{agreement_id}/revoke": (_revoke_agreement, {"agreement_change"}),
    "POST /api/v1/agreements/{agreement_id}/approve": (_approve_agreement, {"agreement_change"}),
    "POST /api/v1/forecasts": (_post_forecast, {"change", "read"}),
    "POST /api/v1/patrol-plans": (_post_patrol_plan, {"change"}),
    "POST /api/v1/dosage": (_post_dosage, {"change"}),
    "POST /api/v1/patrol-plans/{plan_id}/positions": (_post_positions, {"change"}),
    "POST /api/v1/incidents": (_field_report, {"change"}),
    "PATCH /api/v1/incidents/{incident_id}": (_field_update, {"change"}),
    "POST /api/v1/bulletins": (_send_bulletin, {"change"}),
    "POST /api/v1/bulletins/{bulletin_id}/ack": (_ack_bulletin, {"change"}),
    "POST /api/v1/uploads": (_upload, {"change"}),
    "PUT /api/v1/users/{username}/roles": (_set_roles, {"account_change"}),
    "POST /api/v1/users/{username}/disable": (_disable_user, {"account_change"}),
    "POST /api/v1/users/{username}/enable": (_enable_user, {"account_change"}),
    "POST /api/v1/tokens": (_create_token, {"account_change"}),
    "POST /api/v1/tokens/{token_id}/revoke": (_revoke_token, {"account_change"}),
    "POST /api/v1/quarantine/dismiss": (_dismiss_quarantine, {"change"}),
    "POST /api/v1/agreements/preview": (_preview_draft, {"sharing_decision"}),
    "POST /api/v1/quarantine/{entry_id}/fix": (_fix_quarantine, {"change"}),
    "POST /api/v1/quarantine/retry": (_retry_quarantine, {"change", "ingest"}),
}

#: API operations that change no stored data (reads are audited by the sharing module).
API_READ_ONLY = {
    "GET /": "the public map page (its data comes from the audited reads)",
    "GET /methodology": "a page of the public map",
    "GET /app": "the analyst workspace page",
    "GET /admin": "the agency admin page",
    "GET /field": "the field app page",
    "GET /forecast": "the forecasts and patrol plans page",
    "GET /field/sw.js": "the field app's service worker script",
    "GET /field/manifest.webmanifest": "the field app's manifest",
    "GET /api/v1/jurisdictions": "agency boundaries, public facts, no incident data",
    "GET /api/v1/places": "address lookup in agencies' address points, no incident data",
    "GET /health": "a health check",
    "GET /ready": "a readiness check",
    "GET /docs": "the API documentation",
    "GET /docs/oauth2-redirect": "the API documentation",
    "GET /redoc": "the API documentation",
    "GET /openapi.json": "the API description",
    "GET /auth/me": "who is signed in",
    "GET /api/v1/incidents": "an audited read",
    "GET /api/v1/incidents/{incident_id}": "an audited read",
    "GET /api/v1/aggregates": "an audited read",
    "GET /api/v1/analysis/{name}": "an audited read of analysis arrays",
    "GET /api/v1/incidents/{incident_id}/similar": "an audited read of analysis arrays",
    "GET /api/v1/exports": "an audited read (export events)",
    "GET /api/v1/ogc": "the OGC API landing page",
    "GET /api/v1/ogc/conformance": "the OGC API conformance classes",
    "GET /api/v1/ogc/collections": "lists collections",
    "GET /api/v1/ogc/collections/{collection_id}": "describes a collection",
    "GET /api/v1/ogc/collections/{collection_id}/items": "an audited read",
    "GET /api/v1/ogc/collections/{collection_id}/items/{feature_id}": "an audited read",
    "GET /api/v1/tiles/incidents/{z}/{x}/{y}.mvt": "an audited read (one event per tile)",
    "GET /api/v1/agreements": "lists agreements",
    "GET /api/v1/agreements/preview": "an audited read",
    "GET /api/v1/agreements/{agreement_id}": "shows an agreement",
    "GET /api/v1/audit": "an audited read of the audit log",
    "GET /api/v1/forecasts": "lists model cards",
    "GET /api/v1/forecasts/{card_id}": "shows a model card",
    "GET /api/v1/patrol-plans/{plan_id}/dosage-evaluation": (
        "evaluates dosage; its incidents are an audited read"
    ),
    "GET /api/v1/live": "an audited stream read (one event per connection and owner)",
    "GET /api/v1/bulletins": "lists bulletins",
    "GET /api/v1/bulletins/{bulletin_id}": "shows a bulletin; its incidents are an audited read",
    "GET /api/v1/jobs": "lists upload jobs",
    "GET /api/v1/jobs/{job_id}": "shows an upload job",
    "GET /api/v1/users": "lists the agency's accounts",
    "GET /api/v1/tokens": "lists the agency's API tokens (never a secret)",
    "GET /api/v1/quarantine": "an audited read of quarantined rows",
    "GET /api/v1/incidents/{incident_id}/history": "an audited read (detail view)",
}


def operations(routes: Any, prefix: str = "") -> list[str]:
    """Return every operation of an application's routes as ``METHOD path``.

    Included routers are walked too (FastAPI may keep them as one route each).
    """
    found = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            found += operations(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
            continue
        methods = getattr(route, "methods", None) or set()
        found += [f"{m} {prefix}{route.path}" for m in sorted(methods - {"HEAD", "OPTIONS"})]
    return found


def test_every_api_operation_is_classified(store: Store, tmp_path: Path) -> None:
    from crossbeat.api.app import create_app
    from crossbeat.audit import generate_signing_key, write_signing_key
    from crossbeat.settings import load_settings

    key_file = tmp_path / "audit.pem"  # a server signs its audit heads (any backend)
    write_signing_key(generate_signing_key(), key_file)
    settings = load_settings(
        {},
        database_url=store.url,
        audit_key_file=str(key_file),
        audit_heads_file=str(tmp_path / "heads.jsonl"),
    )
    app = create_app(settings, store=store)
    every = set(operations(app.routes))
    assert len(every) > 10  # the walk found the routers' operations
    unclassified = sorted(every - set(API_AUDITED) - set(API_READ_ONLY))
    assert not unclassified, (
        f"classify {unclassified} in tests/test_audit_walk.py: API_AUDITED (a scenario and "
        "its audit actions) or API_READ_ONLY (why it changes no data)"
    )
    assert not (set(API_AUDITED) | set(API_READ_ONLY)) - every, "a classified route is gone"
    assert all(op.startswith(("GET ", "HEAD ")) for op in API_READ_ONLY), (
        "only GET operations may be exempt"
    )


@pytest.mark.parametrize("operation", sorted(API_AUDITED))
def test_data_changing_api_operation_writes_an_audit_event(store: Store, operation: str) -> None:
    world = build_world(store)
    scenario, actions = API_AUDITED[operation]
    owner, before = scenario(world)
    found = _events_after(store, before)
    assert any(e.action in actions and owner in e.owner_agencies for e in found), (
        f"{operation} wrote no {sorted(actions)} event owned by {owner}: "
        f"{[(e.action, e.owner_agencies) for e in found]}"
    )
