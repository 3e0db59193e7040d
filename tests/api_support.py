"""Shared set-up for tests/test_api_*.py: an app on the test store, signing in over HTTP."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert

from crossbeat.api.app import create_app
from crossbeat.api.errors import SESSION_COOKIE
from crossbeat.audit import AuditEvent, generate_signing_key, iter_events, write_signing_key
from crossbeat.audit.witness import default_key_path
from crossbeat.auth import totp
from crossbeat.auth.accounts import Enrolment
from crossbeat.clock import FrozenClock
from crossbeat.model import Person, PersonalData, PersonRole
from crossbeat.settings import load_settings
from crossbeat.sharing.agreements import create_agreement
from crossbeat.store import Store
from crossbeat.store.schema import incident_personal
from crossbeat.vault.personal import seal_fields
from tests.auth_support import PASSWORD, make_user
from tests.sharing_support import AGENCIES, NOW, Inc, insert_incidents, setup_agencies

CLIENT_IP = "203.0.113.7"


def make_client(store: Store, clock: FrozenClock, **settings: Any) -> TestClient:
    """Return an HTTPS test client of an app serving ``store`` with ``clock``.

    A SQLite store's server keeps its audit key and heads beside the database; any other
    gets a key and heads file in a temporary folder (a server always signs).
    """
    if default_key_path(store.url) is None:
        folder = Path(tempfile.mkdtemp(prefix="crossbeat-audit-"))
        write_signing_key(generate_signing_key(), folder / "audit.pem")
        settings = {"audit_key_file": str(folder / "audit.pem"),
                    "audit_heads_file": str(folder / "heads.jsonl"), **settings}  # fmt: skip
    app = create_app(
        load_settings({}, database_url=store.url, **settings), store=store, clock=clock
    )
    return TestClient(app, base_url="https://testserver", client=(CLIENT_IP, 50000))


def sign_in(
    client: TestClient, clock: FrozenClock, enrolment: Enrolment, password: str = PASSWORD
) -> dict[str, Any]:
    """Sign in over HTTP (password, then a fresh one-time code); return the /auth/mfa body.

    The client keeps the session cookie; the body holds the CSRF token.
    """
    clock.advance(seconds=30)  # a code not used before
    first = client.post(
        "/auth/login", json={"username": enrolment.user.username, "password": password}
    )
    assert first.status_code == 200, first.text
    code = totp.code_at(enrolment.totp_secret, clock.now())
    second = client.post("/auth/mfa", json={"ticket": first.json()["mfa_ticket"], "code": code})
    assert second.status_code == 200, second.text
    assert client.cookies.get(SESSION_COOKIE)
    body: dict[str, Any] = second.json()
    return body


def csrf(body: dict[str, Any]) -> dict[str, str]:
    """Return the CSRF header for a signed-in client."""
    return {"X-CSRF-Token": body["csrf_token"]}


def events(store: Store, after: int = 0, **match: Any) -> list[AuditEvent]:
    """Return the audit events after ``after`` whose attributes equal ``match``."""
    found = []
    for event in iter_events(store, after=after):
        values = {k: getattr(event, k) for k in match}
        if values == match:
            found.append(event)
    return found


def last_seq(store: Store) -> int:
    """Return the sequence number of the newest audit event (0 when empty)."""
    seq = 0
    for event in iter_events(store):
        seq = event.seq or seq
    return seq


def assert_error(response: Any, status: int) -> dict[str, Any]:
    """Assert the canonical error shape and status; return the body."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"ok", "error", "errors", "status"}, body
    assert body["ok"] is False and body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["errors"], list) and all(isinstance(e, str) for e in body["errors"])
    assert body["errors"]
    return body


# -- a small world: three agencies, incidents with canaries, users of every role ----------------
USERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "a.analyst": ("citya", ("analyst",)),
    "a.officer": ("citya", ("officer",)),
    "a.admin": ("citya", ("agency_admin",)),
    "a.admin2": ("citya", ("agency_admin",)),
    "a.auditor": ("citya", ("auditor",)),
    "b.analyst": ("countyb", ("analyst",)),
    "b.officer": ("countyb", ("officer",)),
    "b.admin": ("countyb", ("agency_admin",)),
    "b.auditor": ("countyb", ("auditor",)),
    "root": ("transitc", ("platform_admin",)),
    "c.officer": ("transitc", ("officer",)),
}

#: The admin of each agency who approves its public agreement in :func:`build_world`.
APPROVERS = {"citya": "a.admin", "countyb": "b.admin", "transitc": "root"}

NARRATIVE = "Victim Rosalind Quarrington reported the theft at 1187 Larkspur Lane"


def normal_incident(i: int) -> Inc:
    """Return a harmless incident inside its owner's area, 10 to 30 days before NOW."""
    owner = sorted(AGENCIES)[i % 3]
    minx, miny, maxx, maxy = AGENCIES[owner][1].bounds
    return Inc(
        owner=owner,
        source_id=f"N{i}",
        lat=miny + (maxy - miny) * ((i * 37) % 100 + 0.5) / 101,
        lon=minx + (maxx - minx) * ((i * 61) % 100 + 0.5) / 101,
        codes=[["220", "240", "23H", "13B", "290"][i % 5]],
        occurred_from=NOW - timedelta(days=10 + i % 20, hours=i % 24, minutes=i),
    )


#: Sensitive incidents: flagged, flagged by a kept description, and a juvenile case.
CANARIES = [
    Inc("citya", "C-flagged", 45.53, -122.66, ["11A"], NOW - timedelta(days=20),
        flags=frozenset({"sexual_offence"})),
    Inc("citya", "C-desc", 45.52, -122.65, ["23H"], NOW - timedelta(days=20),
        descriptions=["SEXUAL ASSAULT IN PARKING LOT"]),
    Inc("countyb", "C-juvenile", 45.53, -122.60, ["220"], NOW - timedelta(days=23),
        flags=frozenset({"juvenile"})),
]  # fmt: skip


@dataclass
class World:
    """The store, its clock, the incidents and the users of the API tests."""

    store: Store
    clock: FrozenClock
    population: list[Inc]
    personal_id: str
    users: dict[str, Enrolment] = field(default_factory=dict)

    @property
    def personal_public_id(self) -> str:
        """The public id of the incident with personal data (what other agencies see)."""
        return next(i.public_id for i in self.population if i.id == self.personal_id)

    def user(self, username: str) -> Enrolment:
        """Return the enrolment of one of :data:`USERS`, creating the account on first use."""
        if username not in self.users:
            agency, roles = USERS[username]
            self.users[username] = make_user(
                self.store, self.clock, username, roles=roles, agency=agency
            )
        return self.users[username]

    def client(self) -> TestClient:
        """Return a new client (its own cookie jar) of an app on this world."""
        return make_client(self.store, self.clock)

    def signed_in(self, username: str) -> tuple[TestClient, dict[str, str]]:
        """Return a client signed in as ``username`` and its CSRF header."""
        client = self.client()
        body = sign_in(client, self.clock, self.user(username))
        return client, csrf(body)

    def user_id(self, username: str) -> str:
        """Return a user's id (the actor recorded in the audit log)."""
        return self.user(username).user.id

    @property
    def normal(self) -> list[Inc]:
        """Return the incidents that are not canaries."""
        canaries = {c.id for c in CANARIES}
        return [i for i in self.population if i.id not in canaries]


def build_world(store: Store) -> World:
    """Set up three agencies, 45 incidents (3 canaries) and public agreements."""
    clock = FrozenClock(NOW)
    store.clock = clock
    setup_agencies(store)
    population = [normal_incident(i) for i in range(42)] + CANARIES
    insert_incidents(store, population)
    personal = population[0]  # citya, theft
    assert personal.owner == "citya"
    _seal_personal(store, personal.id, personal.owner)
    world = World(store, clock, population, personal.id)
    for owner in AGENCIES:
        approver = world.user(APPROVERS[owner]).user.username
        create_agreement(store, owner, "public", approved_by=approver, clock=clock)
    return world


def _seal_personal(store: Store, incident_id: str, owner: str) -> None:
    """Store encrypted personal data for one incident, as the ingest does."""
    data = PersonalData(
        full_address="1187 Larkspur Lane",
        narrative=NARRATIVE,
        persons=(Person(PersonRole.VICTIM, name="Rosalind Quarrington", age=34),),
    )
    vault = store.vault
    assert vault is not None, "the test store needs a KEK"
    with store.begin() as conn:
        key = vault.active_key(store, conn, owner)
        sealed = seal_fields(key, incident_id, owner, data)
        conn.execute(
            insert(incident_personal).values(
                incident_id=incident_id, agency_id=owner, updated_at=NOW, **sealed
            )
        )
