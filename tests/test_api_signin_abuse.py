"""Issue #7 findings 8 and 9: sign-in cannot enumerate accounts nor lock everyone out.

Before: a real account answered 423 after 5 failures while an unknown name answered 401
forever, and anyone could lock any known account. Now the password step answers an
unknown name, a wrong password and a locked account alike, and failed sign-ins are also
throttled per client address, so one address cannot lock more than two accounts.
"""

from __future__ import annotations

import statistics
import time

import pytest
from fastapi.testclient import TestClient

from crossbeat.audit import public_reads
from crossbeat.auth.accounts import get_user
from crossbeat.store import Store
from tests.api_support import CLIENT_IP, World, build_world, events, last_seq
from tests.auth_support import PASSWORD


@pytest.fixture
def world(store: Store) -> World:
    return build_world(store)


def _from(world: World, address: str) -> TestClient:
    """Return a client of one app (one throttle) that calls from ``address``."""
    client = world.client()
    client._transport.client = (address, 50000)  # type: ignore[attr-defined]
    return client


def _attempt(client: TestClient, username: str, password: str = "not the password") -> tuple:
    started = time.perf_counter()
    answer = client.post("/auth/login", json={"username": username, "password": password})
    return answer.status_code, answer.json().get("error"), time.perf_counter() - started


@pytest.mark.argon2_production  # the same argon2 work at the production cost
def test_unknown_names_answer_exactly_like_real_accounts(world: World) -> None:
    world.user("a.analyst")
    real = [_attempt(_from(world, "198.51.100.1"), "a.analyst") for _ in range(7)]
    ghost = [_attempt(_from(world, "198.51.100.2"), "no.such.user") for _ in range(7)]
    assert [r[:2] for r in real] == [g[:2] for g in ghost]  # 401 and the same words
    assert {r[0] for r in real} == {401}
    assert get_user(world.store, "a.analyst").locked  # the lock happened, unseen
    # Same work: argon2 on a dummy hash for the unknown name and the locked account.
    ratio = statistics.median(r[2] for r in real) / statistics.median(g[2] for g in ghost)
    assert 0.5 < ratio < 2.0, ratio
    # The right password on the locked account answers the same 401 as well.
    assert _attempt(_from(world, "198.51.100.3"), "a.analyst", PASSWORD)[:2] == real[0][:2]


def test_one_address_cannot_lock_everyone_out(world: World) -> None:
    names = ["a.analyst", "a.officer", "b.analyst", "b.officer", "a.auditor"]
    for name in names:
        world.user(name)
    attacker = _from(world, "192.0.2.66")
    before = last_seq(world.store)
    answers = [_attempt(attacker, name)[0] for name in names for _ in range(5)]
    assert answers[:10] == [401] * 10 and set(answers[10:]) == {429}
    locked = [name for name in names if get_user(world.store, name).locked]
    assert locked == names[:2]  # 10 failures lock at most two accounts
    refused = attacker.post("/auth/login", json={"username": "b.analyst", "password": "x"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    # The refusals are audited per window and address (an attack does not grow the log
    # per attempt): one event once the window has closed.
    world.clock.advance(minutes=15)
    public_reads.flush(world.store, world.clock.now())
    (throttled,) = events(world.store, before, action="denied")
    assert throttled.details["aggregated"]["requests"] == 16
    assert throttled.source_ip == "192.0.2.66" and throttled.resource_type == "login"
    # Another address signs in as usual.
    client = _from(world, CLIENT_IP)
    assert _attempt(client, "b.analyst", PASSWORD)[0] == 200


def test_locking_an_account_ends_its_open_sessions(world: World) -> None:
    client, _ = world.signed_in("b.officer")
    assert client.get("/auth/me").status_code == 200
    guesser = _from(world, "192.0.2.7")
    for _ in range(5):
        _attempt(guesser, "b.officer")
    assert get_user(world.store, "b.officer").locked
    assert client.get("/auth/me").status_code == 401
    ended = events(world.store, 0, action="logout")
    assert any(e.details.get("reason") == "locked" and e.owner_agencies == ("countyb",)
               for e in ended)  # fmt: skip


def test_a_nul_in_the_username_is_a_400_and_audited(world: World) -> None:
    before = last_seq(world.store)
    client = world.client()
    answer = client.post("/auth/login", json={"username": "a.ana\x00lyst", "password": "x"})
    assert answer.status_code == 400 and "NUL" in answer.json()["error"]
    (failed,) = events(world.store, before, action="login_failed")
    assert failed.details["stage"] == "malformed" and failed.source_ip == CLIENT_IP
    assert failed.details["username"] == "a.ana\ufffdlyst"
