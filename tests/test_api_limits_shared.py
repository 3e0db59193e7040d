"""Issue #10: rate limits kept in the database hold across server processes.

Two real ``crossbeat serve`` processes on one database, each limiting the public to six
requests a minute: twelve requests spread over both get six answers, not twelve.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from limits import parse

from crossbeat.audit import generate_signing_key, write_signing_key
from crossbeat.store import Store
from crossbeat.store.ratelimits import DatabaseLimitStorage, LeasedLimiter, lease_size
from tests.live_support import free_port


def test_database_storage_counts_fixed_windows(store: Store) -> None:
    limits = DatabaseLimitStorage(store)
    assert limits.check()
    assert [limits.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert limits.get("k") == 3 and limits.get("other") == 0
    assert time.time() < limits.get_expiry("k") <= time.time() + 60
    assert limits.incr("short", 1) == 1
    time.sleep(1.05)
    assert limits.get("short") == 0  # the window ended
    assert limits.incr("short", 1) == 1  # and a new one starts at the hit
    limits.clear("k")
    assert limits.get("k") == 0
    assert limits.reset() == 1


def test_leases_never_exceed_the_shared_limit_and_write_once_per_lease(store: Store) -> None:
    # Three workers (three limiters on one database) share 500 a minute for one address.
    item = parse("500/minute")
    assert lease_size(item) == 10
    workers = [LeasedLimiter(DatabaseLimitStorage(store)) for _ in range(3)]
    answers = [workers[(i * 7) % 3].hit(item, "public", "a") for i in range(700)]
    allowed = sum(answers)
    # Never more than the limit; fewer by at most what the workers hold unused.
    assert 500 - 3 * (10 - 1) <= allowed <= 500
    assert answers[:480] == [True] * 480 and answers[-100:] == [False] * 100
    # One write per lease, and none once the window is known to be full.
    writes = sum(w.storage._hits for w in workers)
    assert writes <= 500 // 10 + 3, writes
    # Another address has its own count.
    assert workers[0].hit(item, "public", "b")
    stats = workers[1].get_window_stats(item, "public", "a")
    assert stats.remaining == 0 and stats.reset_time > time.time()


def test_a_small_limit_is_exact_across_workers(store: Store) -> None:
    item = parse("6/minute")
    assert lease_size(item) == 1
    one, two = (LeasedLimiter(DatabaseLimitStorage(store)) for _ in range(2))
    answers = [(one, two)[i % 2].hit(item, "sign-in", "a") for i in range(12)]
    assert answers == [True] * 6 + [False] * 6


def test_a_lease_ends_with_its_window(store: Store) -> None:
    item = parse("200/2 seconds")
    assert lease_size(item) == 4
    limiter = LeasedLimiter(DatabaseLimitStorage(store))
    assert sum(limiter.hit(item, "public", "a") for _ in range(210)) == 200
    time.sleep(2.1)
    assert limiter.hit(item, "public", "a")  # a new window, not the old full lease


def test_two_server_processes_share_one_limit(store: Store, tmp_path: Path) -> None:
    key = tmp_path / "audit.pem"
    write_signing_key(generate_signing_key(), key)
    env = {**os.environ, "CROSSBEAT_AUDIT_KEY_FILE": str(key),
           "CROSSBEAT_AUDIT_HEADS_FILE": str(tmp_path / "heads.jsonl"),
           "CROSSBEAT_RATE_LIMIT_STORAGE": "database://",
           "CROSSBEAT_PUBLIC_RATE_LIMIT": "6/minute",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # fmt: skip
    ports = [free_port(), free_port()]
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "crossbeat", "serve", "--db", store.url, "--port", str(p)],
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
        DatabaseLimitStorage(store).reset()  # forget the start-up probes
        answers = [httpx.get(f"{bases[i % 2]}/health", timeout=10) for i in range(12)]
        assert [r.status_code for r in answers] == [200] * 6 + [429] * 6
        assert all(int(r.headers["Retry-After"]) >= 1 for r in answers[6:])
        assert answers[7].json()["status"] == 429  # the one error shape
    finally:
        for server in servers:
            server.terminate()
            server.communicate(timeout=20)


def _wait_up(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stderr.read() if server.stderr else ""
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code in (200, 429):
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise AssertionError(f"{base} did not start")


def test_failed_sign_ins_are_counted_once_for_all_workers(store: Store) -> None:
    from crossbeat.api.throttle import LoginThrottle

    # Two throttles on one database, as two worker processes have.
    one, two = (LoginThrottle("3/15 minutes", DatabaseLimitStorage(store)) for _ in range(2))
    for throttle in (one, two, one):
        assert throttle.allows("198.51.100.9")
        throttle.failed("198.51.100.9")
    assert not one.allows("198.51.100.9") and not two.allows("198.51.100.9")
    assert two.allows("198.51.100.10")
    assert 1 <= two.retry_after("198.51.100.9") <= 15 * 60
