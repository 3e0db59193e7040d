"""Helpers for the live-stream tests: a real uvicorn server and an SSE reader."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn


def free_port() -> int:
    """Return a TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class Subscriber:
    """An SSE client in a thread: events land in :attr:`events` as (id, kind, data)."""

    def __init__(self, base: str, headers: dict[str, str] | None = None, query: str = "") -> None:
        self.base = base
        self.headers = dict(headers or {})
        self.query = query
        self.events: queue.Queue[tuple[int, str, dict[str, Any]]] = queue.Queue()
        self.ready = threading.Event()
        self.error: str | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(20), f"the stream did not open: {self.error}"
        assert self.error is None, self.error

    def _run(self) -> None:
        try:
            self._read()
        except Exception as exc:
            if not self._stop.is_set():
                self.error = repr(exc)
                raise

    def _read(self) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(5, read=None)) as client,
            client.stream("GET", f"{self.base}/api/v1/live{self.query}", headers=self.headers) as r,
        ):
            self._response = r
            if r.status_code != 200:
                self.error = f"{r.status_code}: {r.read()!r}"
                self.ready.set()
                return
            fields: dict[str, str] = {}
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("retry:"):
                    self.ready.set()
                elif line == "":
                    if "event" in fields:
                        self.events.put(
                            (int(fields["id"]), fields["event"], json.loads(fields["data"]))
                        )
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    fields[name] = value

    def take(self, n: int, timeout: float = 15) -> list[tuple[int, str, dict[str, Any]]]:
        """Return the next ``n`` events (fail after ``timeout`` seconds)."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            assert left > 0, f"got {len(out)} of {n} events: {out}"
            try:
                out.append(self.events.get(timeout=left))
            except queue.Empty:
                continue
        return out

    def nothing_more(self, wait: float = 1.0) -> bool:
        """Return whether no further event arrives within ``wait`` seconds."""
        try:
            self.events.get(timeout=wait)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        """Close the connection (the server notices within a second)."""
        self._stop.set()
        self._response.close()
        self.thread.join(timeout=5)
