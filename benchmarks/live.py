"""Live benchmark: commit-to-subscriber latency of the SSE stream, and public throughput.

Usage::

    python benchmarks/live.py                       # 100 subscribers, 40 events, wrk 10 s
    python benchmarks/live.py --subscribers 20 --events 10 --duration 3
    python benchmarks/live.py --no-latency --duration 5 --repeat 5   # throughput only

It builds a SQLite store in a temporary folder (four agencies; citya shares its records
with the three others, exactly, so every subscriber is sent every event), starts
``crossbeat serve`` on it in a separate process, and measures:

* **latency**: ``--subscribers`` SSE connections (API tokens spread over the four
  agencies: four policy views of each event) follow ``GET /api/v1/live`` while this
  another process commits ``--events`` field reports through the library, one every
  100 ms (after one that warms the server, not counted). The latency of an (event,
  subscriber) pair is the time from the commit's return to the frame's arrival, on the
  same monotonic clock. Target: p95 <= 250 ms.
* **throughput** on loopback with ``wrk`` (``apt-get install wrk``; if it is missing a
  Python load generator is used, and the output says so): the public aggregate
  ``GET /api/v1/aggregates?by=h3_7`` and a public z10 tile against ``GET /health``
  measured in the same run as the baseline (``/health`` asks nothing of the database:
  the server's floor on this machine), each for ``--duration`` seconds, in
  ``--repeat`` rounds (3; the median is printed), with ``crossbeat serve --workers``
  ``--workers`` (2). citya publishes to the public (a week's delay, counts of 5 and
  up); the aggregate and the tile are checked to hold incidents before they are
  measured, and a run with any answer other than 2xx/3xx (a 429, a 503) is refused.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from shapely.geometry import box, mapping

from crossbeat.agencies import register_agency, set_jurisdiction
from crossbeat.auth.accounts import create_user
from crossbeat.auth.tokens import create_token
from crossbeat.live.field import Reporter, create_report
from crossbeat.model import Agency
from crossbeat.sharing.agreements import create_agreement
from crossbeat.store import Store, open_store
from crossbeat.store.events import last_event_id
from crossbeat.vault.kek import generate_kek, parse_kek

AGENCIES = {
    "citya": box(-122.70, 45.50, -122.62, 45.56),
    "countyb": box(-122.62, 45.50, -122.54, 45.56),
    "transitc": box(-122.68, 45.525, -122.56, 45.535),
    "portd": box(-122.80, 45.56, -122.70, 45.60),
}
PASSWORD = "correct horse battery staple 7"


def machine() -> str:
    """Return a one-line description of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build(store: Store) -> None:
    """Register the agencies and citya's agreements with each of the others and the public."""
    for agency_id, geom in AGENCIES.items():
        register_agency(store, Agency(id=agency_id, name=agency_id.title(), timezone="UTC"))
        set_jurisdiction(store, agency_id, f"{agency_id} area", mapping(geom))
    admins = [f"citya.admin{i}" for i in (1, 2)]
    for name in admins:
        create_user(store, "citya", name, PASSWORD, ["agency_admin"])
    for other in list(AGENCIES)[1:]:
        create_agreement(
            store, "citya", other, offences=["all"], fields=["all"], precision="exact",
            purposes=["analysis"], approved_by=admins,
        )  # fmt: skip
    # And with the public, under its release policy (a week's delay, counts of 5 and up),
    # so that the public's aggregates and tiles measured below hold something.
    create_agreement(store, "citya", "public", approved_by=admins)


def report(store: Store, i: int) -> None:
    """Commit one field report of citya."""
    body = {"offence": ["23H", "13B", "220", "240"][i % 4],
            "occurred_from": "2026-06-14T10:15:00Z",
            "lat": 45.505 + (i % 50) * 0.001, "lon": -122.695 + (i % 70) * 0.001}  # fmt: skip
    create_report(store, "citya", body, by=Reporter("bench", "citya"))


def serve(url: str, kek: str, port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    """Start ``crossbeat serve`` on the store; wait until it answers.

    The public rate limit is raised: the load generator is one address, which the
    default (600/minute) would refuse after a fraction of a second.
    """
    env = {**os.environ, "CROSSBEAT_KEK": kek, "CROSSBEAT_PUBLIC_RATE_LIMIT": "100000000/minute"}
    command = [sys.executable, "-m", "crossbeat", "serve", "--db", url, "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not start")


async def _subscribe(
    base: str, token: str, arrivals: dict[int, list[float]], ready: asyncio.Event
) -> None:
    """Follow the stream over a bare socket, noting when each ``id:`` line arrives (until
    cancelled).

    Not httpx: a hundred streams parsed by one Python client would measure the client.
    """
    url = httpx.URL(base)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(
        f"GET /api/v1/live HTTP/1.1\r\nHost: {url.host}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    try:
        while line := await reader.readline():
            if line.startswith(b"retry:"):
                ready.set()
            elif line.startswith(b"id: "):
                arrivals.setdefault(int(line[4:]), []).append(time.perf_counter())
    finally:
        writer.close()


def _committer(url: str, kek: str, events: int, start: Any, out: Any) -> None:
    """Commit ``events`` field reports, one every 100 ms; put (event id, commit time)."""
    store = open_store(url, kek=parse_kek(kek))
    report(store, 0)  # warm the normaliser and indexes of this process
    start.wait()
    for i in range(events):
        report(store, 10_000 + i)
        done = time.perf_counter()
        with store.connect() as conn:
            out.put((last_event_id(conn), done))
        # The first event (not counted) warms the server's reads: give it time.
        time.sleep(1.5 if i == 0 else 0.1)


def latency(url: str, kek: str, base: str, tokens: list[str], events: int) -> list[float]:
    """Return the commit-to-frame latencies (seconds) of every (event, subscriber).

    The commits come from another process (as from another worker or an ingest), so
    that committing does not compete with the subscribers for this one; both read the
    same monotonic clock.
    """
    arrivals: dict[int, list[float]] = {}
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_committer, args=(url, kek, events + 1, start, out))
    proc.start()

    async def main() -> None:
        readies = [asyncio.Event() for _ in tokens]
        tasks = [
            asyncio.create_task(_subscribe(base, t, arrivals, e))
            for t, e in zip(tokens, readies, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in readies)), 60)
        start.set()
        await asyncio.wait_for(asyncio.to_thread(proc.join), 300)
        await asyncio.sleep(3)  # frames of the last events still on their way
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    proc.join()
    commits = dict(out.get() for _ in range(events + 1))
    first = min(commits)  # the first event warms the server's reads: not counted
    return [t - commits[i] for i, ts in arrivals.items() if i in commits and i != first for t in ts]


def wrk(url: str, duration: int) -> tuple[float, str]:
    """Return requests/s for ``url`` (wrk, or a Python load generator) and the tool.

    Refuses a run with answers other than 2xx/3xx (a 429 or 503 is not throughput).
    """
    if shutil.which("wrk"):
        out = subprocess.run(
            ["wrk", "-t2", "-c32", f"-d{duration}s", url], capture_output=True, text=True,
            check=True,
        ).stdout  # fmt: skip
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        if bad:
            raise SystemExit(f"{url}: {bad.group(1)} answers were not 2xx/3xx:\n{out}")
        found = re.search(r"Requests/sec:\s+([\d.]+)", out)
        return (float(found.group(1)) if found else 0.0), "wrk -t2 -c32"
    return _python_load(url, duration), "python load generator (32 connections)"


def _python_load(url: str, duration: int) -> float:
    async def worker(client: httpx.AsyncClient, stop: float, counts: list[int]) -> None:
        while time.perf_counter() < stop:
            await client.get(url)
            counts[0] += 1

    async def main() -> float:
        counts = [0]
        async with httpx.AsyncClient() as client:
            start = time.perf_counter()
            stop = start + duration
            await asyncio.gather(*(worker(client, stop, counts) for _ in range(32)))
            return counts[0] / (time.perf_counter() - start)

    return asyncio.run(main())


def check_answers(base: str, runs: dict[str, str]) -> None:
    """Refuse to measure unless the public reads are real answers, and say what they hold.

    The aggregate must count the stored incidents in H3 cells and the tile must hold
    features: a throughput of empty or refused answers is not the figure.
    """
    aggregate = httpx.get(f"{base}{runs['GET /api/v1/aggregates?by=h3_7 (public)']}", timeout=30)
    body = aggregate.json()
    if aggregate.status_code != 200 or not body.get("cells") or not body.get("total"):
        raise SystemExit(f"the public aggregate is not a real answer: {aggregate.text[:300]}")
    tiles = [path for name, path in runs.items() if ".mvt" in name]
    for path in tiles:
        answer = httpx.get(f"{base}{path}", timeout=30)
        if answer.status_code != 200 or len(answer.content) < 100:
            raise SystemExit(f"the public tile {path} is not a real answer ({answer.status_code})")
        print(f"checked: the public tile holds {len(answer.content)} bytes of MVT")
    print(
        f"checked: the public aggregate counts {body['total']} incidents in "
        f"{len(body['cells'])} H3 cells (ETag {aggregate.headers.get('etag')})"
    )


def _tile(z: int, lat: float, lon: float) -> tuple[int, int, int]:
    """Return the XYZ tile of zoom ``z`` holding a point."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--incidents", type=int, default=300, help="stored before throughput")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of wrk runs (median)")
    parser.add_argument("--workers", type=int, default=2, help="crossbeat serve --workers")
    parser.add_argument(
        "--no-latency", action="store_true", help="measure the throughput only (no SSE run)"
    )
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    print(f"load average at start: {os.getloadavg()} (shared machine: compare the ratios)")
    folder = Path(tempfile.mkdtemp(prefix="crossbeat-live-bench-"))
    kek = generate_kek()
    url = f"sqlite:///{folder / 'live.db'}"
    store = open_store(url, kek=parse_kek(kek))
    build(store)
    for i in range(args.incidents):
        report(store, i)
    agencies = list(AGENCIES)
    per = {a: create_token(store, a, "read").secret for a in agencies}
    tokens = [per[agencies[i % len(agencies)]] for i in range(args.subscribers)]
    port = _free_port()
    server = serve(url, kek, port, args.workers)
    base = f"http://127.0.0.1:{port}"
    try:
        if not args.no_latency:
            lat = latency(url, kek, base, tokens, args.events)
            expected = args.events * args.subscribers
            print(
                f"live latency, commit -> SSE frame, {args.subscribers} subscribers "
                f"({len(agencies)} agencies), {args.events} events, {len(lat)}/{expected} "
                f"frames: p50 {statistics.median(lat) * 1000:.1f} ms, "
                f"p95 {_pct(lat, 0.95) * 1000:.1f} ms, max {max(lat) * 1000:.1f} ms "
                "(target p95 <= 250 ms)"
            )
        z, x, y = _tile(10, 45.53, -122.65)
        runs = {
            "GET /health (baseline)": "/health",
            "GET /api/v1/aggregates?by=h3_7 (public)": "/api/v1/aggregates?by=h3_7",
            f"GET /api/v1/tiles/incidents/{z}/{x}/{y}.mvt (public)": (
                f"/api/v1/tiles/incidents/{z}/{x}/{y}.mvt"
            ),
        }
        check_answers(base, runs)
        # Rounds of every endpoint in turn, so that each sees the machine's load alike.
        rates: dict[str, list[float]] = {name: [] for name in runs}
        tool = ""
        for _ in range(args.repeat):
            for name, path in runs.items():
                rate, tool = wrk(f"{base}{path}", args.duration)
                rates[name].append(rate)
        print(
            f"throughput on loopback with {tool}, {args.duration} s each, median of "
            f"{args.repeat} rounds, crossbeat serve --workers {args.workers}:"
        )
        health = statistics.median(rates["GET /health (baseline)"])
        for name, runs_of in rates.items():
            rate = statistics.median(runs_of)
            each = ", ".join(f"{r:.0f}" for r in runs_of)
            print(
                f"  {name:58s} {rate:8.0f} requests/s ({rate / health:.2f} x baseline; "
                f"rounds {each}; target >= 1000 on 2 cores)"
            )
        print(f"load average at end: {os.getloadavg()}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
