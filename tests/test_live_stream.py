"""The live stream (SSE) on real servers and databases (issue #10).

Subscribers of different agencies get exactly what their grants allow, a revocation
cuts a partner off at once, a reconnect with Last-Event-ID loses nothing, and two
server processes on one PostgreSQL database each deliver what the other committed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from crossbeat.api.schemas import IncidentShared
from crossbeat.audit import generate_signing_key, write_signing_key
from crossbeat.auth.tokens import create_token
from crossbeat.clock import SystemClock
from crossbeat.live.field import Reporter, create_report
from crossbeat.sharing.agreements import create_agreement, list_agreements, revoke_agreement
from crossbeat.sharing.reads import read_incidents
from crossbeat.sharing.request import CallsFilter, ReadRequest, Viewer
from crossbeat.store import Store
from tests.api_support import build_world, events
from tests.live_support import Subscriber, free_port, serving

OFFICER = Reporter("officer-1", "citya")


def report(store: Store, agency: str = "citya", **changes: Any) -> str:
    """Create a field report of ``agency`` through the library; return its incident id."""
    body = {"offence": "23H", "occurred_from": "2026-06-14T10:15:00-07:00",
            "lat": 45.531, "lon": -122.661, **changes}  # fmt: skip
    if agency == "countyb":
        body.update(lat=45.531, lon=-122.58)
    return create_report(store, agency, body, by=Reporter("officer", agency)).incident_id


def bearer(store: Store, agency: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(store, agency, 'read').secret}"}


def as_read(store: Store, headers: dict[str, str], agency: str, incident: str) -> Any:
    """Return the record as GET /api/v1/incidents shows it to a token of ``agency``."""
    del headers
    viewer = Viewer.token("reference", agency)
    public = next(r.public_id for r in _rows(store) if r.id == incident)
    ids = frozenset({incident, public})
    return read_incidents(store, viewer, ReadRequest(ids=ids, calls=CallsFilter.INCLUDE)).records


def _rows(store: Store) -> list[Any]:
    from sqlalchemy import select

    from crossbeat.store.schema import incidents

    with store.connect() as conn:
        return list(conn.execute(select(incidents.c.id, incidents.c.public_id)))


def share(world: Any) -> None:
    """Have citya share its non-sensitive records with countyb, exactly, without delay."""
    admins = [world.user(n).user.username for n in ("a.admin", "a.admin2")]
    create_agreement(
        world.store, "citya", "countyb", offences=["all"], fields=["all"], precision="exact",
        purposes=["analysis"], approved_by=admins, clock=world.clock,
    )  # fmt: skip


def drain(sub: Subscriber) -> list[tuple[int, str, dict[str, Any]]]:
    """Return every event that arrives until the stream is quiet for 1.5 s."""
    out = []
    while True:
        try:
            out.append(sub.events.get(timeout=1.5))
        except Exception:
            return out


def test_subscribers_of_two_agencies_get_exactly_their_grants(store: Store) -> None:
    world = build_world(store)
    # citya shares its (non-sensitive) records with countyb directly, without delay.
    share(world)
    a_headers, b_headers = bearer(store, "citya"), bearer(store, "countyb")
    with serving(world.client().app) as base:
        a, b = Subscriber(base, a_headers), Subscriber(base, b_headers)
        plain = report(store)
        flagged = report(store, offence="11A", narrative="sexual assault in the car park")
        mine_b = report(store, "countyb")
        got_a, got_b = drain(a), drain(b)
        a.close(), b.close()
    made = [plain, flagged, mine_b]
    for agency, got in (("citya", got_a), ("countyb", got_b)):
        # Exactly the records, and the fields, that GET /api/v1/incidents gives them.
        expected = [r for i in made for r in as_read(store, {}, agency, i)]
        shaped = [IncidentShared.model_validate(r).model_dump(mode="json") for r in expected]
        assert [d for _, _, d in got] == shaped, agency
        assert all(k == "incident.created" for _, k, _ in got)
    assert [d["id"] for _, _, d in got_a][:2] == [plain, flagged]
    ids_b = {d["id"] for _, _, d in got_b}
    assert mine_b in ids_b and plain not in ids_b and flagged not in ids_b
    assert len(got_b) == 2  # citya's plain record, under its public id; never the flagged one
    # Audited per connection and owner agency, not once per event.
    streamed = events(store, resource_type="incident_stream")
    assert streamed and all(e.details["stream"] for e in streamed)
    assert len(streamed) <= 4


def test_revocation_cuts_a_partner_off_at_once(store: Store) -> None:
    world = build_world(store)
    share(world)
    with serving(world.client().app) as base:
        a, b = Subscriber(base, bearer(store, "citya")), Subscriber(base, bearer(store, "countyb"))
        before = report(store)
        assert a.take(1)[0][2]["id"] == before
        assert len(b.take(1)) == 1
        for agreement in list_agreements(store, owner="citya"):
            if agreement.revoked_at is None:
                revoke_agreement(store, agreement.id, reason="test", clock=world.clock)
        after = report(store)
        assert a.take(1)[0][2]["id"] == after  # the stream is still flowing...
        assert b.nothing_more(1.5)  # ...but not to countyb any more
        a.close(), b.close()


@pytest.mark.parametrize("resume", ["header", "query"])
def test_reconnect_with_last_event_id_loses_nothing(store: Store, resume: str) -> None:
    """A reconnect resumes after the last event: ``Last-Event-ID`` as EventSource sends it,
    or ``?after=`` as the web app sends it when it opens a new stream back online."""
    world = build_world(store)
    headers = bearer(store, "citya")
    with serving(world.client().app) as base:
        first = Subscriber(base, headers)
        made = [report(store)]
        got = first.take(1)
        first.close()
        made += [report(store) for _ in range(4)]  # committed while disconnected
        last = str(got[-1][0])
        if resume == "header":
            again = Subscriber(base, {**headers, "Last-Event-ID": last})
        else:
            again = Subscriber(base, headers, query=f"?after={last}")
        made.append(report(store))
        rest = again.take(5)
        assert again.nothing_more()
        again.close()
    ids = [d["id"] for _, _, d in got + rest]
    assert ids == made
    assert [i for i, _, _ in got + rest] == sorted(i for i, _, _ in got + rest)


def test_hostile_resume_points_are_refused_or_ignored(store: Store) -> None:
    """``?after=`` takes an event id (digits, a BIGINT): anything else is a 400 in the one
    error shape; a ``Last-Event-ID`` header that is not ours starts from now (as EventSource
    may send whatever id it last saw). Never a server error, on a real server."""
    import httpx

    world = build_world(store)
    headers = bearer(store, "citya")
    hostile = ["", " ", "-1", "1e309", "NaN", "x" * 50, "é\u202e", "9" * 19, "1" * 40, "²"]
    with serving(world.client().app) as base, httpx.Client(timeout=10) as client:
        for value in hostile:
            r = client.get(f"{base}/api/v1/live", params={"after": value}, headers=headers)
            assert r.status_code == 400, (value, r.status_code)
            body = r.json()
            assert body["ok"] is False and body["status"] == 400 and "after" in body["error"], body
        for value in ["-1", "9" * 19, "x", "1e3"]:
            sub = Subscriber(base, {**headers, "Last-Event-ID": value})
            made = report(store)
            assert [d["id"] for _, _, d in sub.take(1)] == [made], value
            sub.close()
        sub = Subscriber(base, headers, query="?after=999999999999999999")  # 18 digits
        assert sub.nothing_more(1.0)
        sub.close()


@pytest.mark.postgres
def test_two_server_processes_each_deliver_what_the_other_committed(
    pg_url: str, kek_text: str, tmp_path: Path
) -> None:
    from crossbeat.store import open_store
    from crossbeat.vault.kek import parse_kek

    store = open_store(pg_url, kek=parse_kek(kek_text))
    build_world(store)
    store.clock = SystemClock()  # the servers run on the real clock (tokens expire)
    key = tmp_path / "audit.pem"
    write_signing_key(generate_signing_key(), key)
    ports = [free_port(), free_port()]
    env = {**os.environ, "CROSSBEAT_AUDIT_KEY_FILE": str(key),
           "CROSSBEAT_AUDIT_HEADS_FILE": str(tmp_path / "heads.jsonl"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # fmt: skip
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "crossbeat", "serve", "--db", pg_url, "--port", str(p)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for p in ports
    ]
    try:
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        for base, server in zip(bases, servers, strict=True):
            _wait_up(base, server)
        token = {"Authorization": f"Bearer {create_token(store, 'citya', 'ingest').secret}"}
        read = bearer(store, "citya")
        subs = [Subscriber(base, read) for base in bases]
        body = {"offence": "23H", "occurred_from": "2026-06-14T10:15:00-07:00",
                "lat": 45.531, "lon": -122.661}  # fmt: skip
        made = []
        for base in bases:  # one report through each process
            r = httpx.post(f"{base}/api/v1/incidents", json=body, headers=token)
            assert r.status_code == 201, r.text
            made.append(r.json()["record"]["id"])
        for sub in subs:
            assert [d["id"] for _, _, d in sub.take(2)] == made
            sub.close()
    finally:
        for server in servers:
            server.terminate()
            server.communicate(timeout=20)  # and close the pipe


def _wait_up(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stderr.read() if server.stderr else ""
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise AssertionError(f"{base} did not start")


def test_bulletins_reach_only_their_sender_and_recipients(store: Store) -> None:
    from crossbeat.live.bulletins import acknowledge, create_bulletin
    from crossbeat.live.jobs import Submitter

    world = build_world(store)
    with serving(world.client().app) as base:
        subs = {a: Subscriber(base, bearer(store, a)) for a in ("citya", "countyb", "transitc")}
        sender = Viewer.user("u1", "citya", ["analyst"])
        made = create_bulletin(
            store, sender, Submitter("u1", "citya"), kind="officer_safety", title="Armed",
            body="", anchor={"type": "point", "lat": 45.53, "lon": -122.66},
            recipients=["countyb"],
        )  # fmt: skip
        acknowledge(store, Submitter("u2", "countyb"), made.id)
        for agency in ("citya", "countyb"):
            got = subs[agency].take(2)
            assert [(k, d["id"]) for _, k, d in got] == [
                ("bulletin.created", made.id),
                ("bulletin.acknowledged", made.id),
            ], agency
        assert subs["transitc"].nothing_more(1.5)
        for sub in subs.values():
            sub.close()
