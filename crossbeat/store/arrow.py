"""Query results as Arrow tables, with no Python object per value (issues #8 and #11).

The sqlite3 module builds a Python tuple of Python values for every row it returns
(about 2.5 µs per row of nine columns here, three times what SQLite itself takes), which
is the floor of any read of a million rows through it. ADBC's SQLite driver
(``adbc-driver-sqlite``) steps the same statement in C straight into Arrow columns.

It cannot run in this process, though: the driver links its own copy of SQLite (3.53
today; Python's ``sqlite3`` uses the system's), and two copies of SQLite in one process
do not see each other's POSIX locks. One copy's checkpoint can then overwrite the pages
the other is reading, and closing one copy's file descriptor drops the other's locks
("multiple copies of SQLite linked into the same application", in SQLite's *How To
Corrupt An SQLite Database File*). So :func:`read_arrow` sends the statement to a worker
process (:data:`WORKER`, started on first use and kept) that holds only ADBC's copy,
opens the database read-only and sends the table back in Arrow's IPC format (in a
shared memory file, see :class:`_Worker`). :func:`read_arrow_parts` sends several
statements at once: the worker reads them on :data:`THREADS` connections side by side
(ADBC steps SQLite without holding Python's global lock), all in read transactions of
one snapshot, and sends each table as soon as it is read, so that the caller works on
one while the worker reads the next.

What the worker sees is the last committed state of the database, as a statement of
the caller's connection sees it when that connection has not written in its
transaction (pysqlite opens a transaction only at the first write). When it has
written (a read that re-derived stale flags first), the worker would not see those
rows, so :func:`read_arrow` returns None and the caller reads through its own
connection. It also returns None for an in-memory database, for another backend, and
where ADBC is not installed. The statement may use SQLite's built-in functions only
(ADBC cannot call the Python functions an application registers on its connections;
CrossBeat registers none).
"""

from __future__ import annotations

import atexit
import mmap
import os
import pickle
import queue
import socket
import struct
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Generator, Sequence
from contextlib import closing
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import pyarrow as pa
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from crossbeat.store import generation
from crossbeat.store.base import StoreError

#: Rows ADBC reads before it fixes a column's type: all of them (with fewer, a column
#: whose first rows are NULL is typed INT64 and a later REAL value is refused).
_BATCH_ROWS = str(2**30)

#: Connections the worker reads the parts of one request with, side by side (one per
#: core of the 2-core machines this was measured on; more only wait for a core).
THREADS = 2
#: Times the worker begins its parallel read transactions again to get one snapshot.
_FENCE_TRIES = 5


def arrow_available() -> bool:
    """Return whether the ADBC SQLite driver is installed."""
    try:
        import adbc_driver_sqlite  # noqa: F401
    except ImportError:
        return False
    return True


def read_arrow(conn: Connection, query: ClauseElement) -> pa.Table | None:
    """Return the rows of a SELECT on a SQLite file as an Arrow table, or None.

    Parameters
    ----------
    conn
        The caller's connection (its database file is read; it is not used to read).
    query
        A SQLAlchemy SELECT (bound parameters as the caller's dialect sends them).

    Returns
    -------
    pyarrow.Table or None
        The result, columns named as in the SELECT list; None when the read must go
        through ``conn`` itself (see the module's docstring for when).
    """
    parts = read_arrow_parts(conn, [query], threads=1)
    if parts is None:
        return None
    return dict(parts)[0]


def read_arrow_parts(
    conn: Connection, queries: Sequence[ClauseElement], *, threads: int = THREADS
) -> Generator[tuple[int, pa.Table], None, None] | None:
    """Return the rows of several SELECTs as Arrow tables, each as soon as it is read.

    The worker reads the statements on ``threads`` connections side by side (ADBC steps
    SQLite without Python's global lock), every connection in a read transaction of
    one snapshot of the database: each reads the data generation
    (:mod:`crossbeat.store.generation`, bumped by every audited change) as its
    transaction's first read, and the transactions are begun again until all read the
    same one (after a few tries, one connection reads every statement in turn). So the
    parts are consistent with each other, as the parts of one statement are.

    Parameters
    ----------
    conn
        The caller's connection (its database file is read; it is not used to read).
    queries
        SQLAlchemy SELECTs.
    threads
        How many connections of the worker read side by side (at most one per query).

    Returns
    -------
    generator of ``(position in queries, table)`` or None
        Every query's table once, in the order they are read (not the queries' order);
        close the generator (``contextlib.closing``) if it is left before its end. None
        when the read must go through ``conn`` itself (see the module's docstring).
    """
    path = _database(conn)
    if path is None:
        return None
    statements = [_statement(conn, q) for q in queries]
    fence = _statement(conn, generation.CURRENT) if threads > 1 and len(queries) > 1 else None
    return _tables(WORKER.submit(path, statements, fence, threads))


def _tables(
    buffers: Generator[tuple[int, pa.Buffer], None, None],
) -> Generator[tuple[int, pa.Table], None, None]:
    with closing(buffers):
        for k, data in buffers:
            yield k, pa.ipc.open_stream(data).read_all()


def arrow_applies(conn: Connection) -> bool:
    """Return whether :func:`read_arrow` reads for this connection (else it returns None)."""
    return _database(conn) is not None


def _database(conn: Connection) -> str | None:
    """Return the SQLite file the worker may read for this connection, or None."""
    if conn.dialect.name != "sqlite" or not arrow_available():
        return None
    database = make_url(str(conn.engine.url)).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    raw = conn.connection.driver_connection
    if raw is None or getattr(raw, "in_transaction", True):
        return None  # this transaction wrote: the worker would not see it
    return str(Path(database).expanduser().resolve())


def _statement(conn: Connection, query: ClauseElement) -> tuple[str, list[Any]]:
    """Return the SQL text and the positional parameters the dialect would send."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    assert isinstance(compiled, SQLCompiler)
    values = compiled.construct_params() or {}
    processors = compiled._bind_processors  # the types' own conversions (e.g. datetimes)
    names = compiled.positiontup or []
    params = []
    for name in names:
        value = values[name]
        convert = processors.get(name)
        params.append(convert(value) if callable(convert) and value is not None else value)
    return str(compiled), params


class _Worker:
    """One worker process reading with ADBC, started on first use and kept.

    A plain child process (``python -m crossbeat.store.arrow``) taking requests on its
    standard input, not :mod:`multiprocessing`: spawning that re-runs the caller's main
    script, and forking copies the caller's open SQLite connections. The result (often
    a hundred megabytes) is not copied through a pipe: the worker writes it into an
    anonymous memory file (``memfd``) and passes the file's descriptor over a Unix
    socket; this process maps it and Arrow reads the columns in place. (Where there is
    no ``memfd``, the bytes come through the pipe.) The worker exits when this process
    closes the pipe (or dies), and no file is left behind.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None

    def submit(
        self,
        path: str,
        statements: list[tuple[str, list[Any]]],
        fence: tuple[str, list[Any]] | None,
        threads: int,
    ) -> Generator[tuple[int, pa.Buffer], None, None]:
        """Run statements in the worker; yield each result as an Arrow IPC stream.

        Yields ``(position, buffer)`` as the worker finishes each statement. Leaving the
        generator before its end stops the worker (it is still answering).

        Raises
        ------
        StoreError
            A statement failed in the worker (its message), or the worker died.
        """
        request = pickle.dumps((path, statements, fence, threads))
        with self._lock:
            proc, sock = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            finished = False
            try:
                _send(proc.stdin, _BYTES, request)
                for _ in statements:
                    kind, payload = _receive(proc.stdout)
                    if kind == _ERROR:
                        finished = True  # the worker answers nothing more for this request
                        raise StoreError(f"Arrow read failed: {payload.decode()}")
                    yield self._take(kind, payload, sock)
                finished = True
            except (OSError, EOFError) as exc:
                raise StoreError(f"the Arrow reader process stopped: {exc}") from exc
            finally:
                if not finished:
                    self._stop(kill=True)

    @staticmethod
    def _take(kind: int, payload: bytes, sock: socket.socket) -> tuple[int, pa.Buffer]:
        """Return one answer's position and bytes (mapped from the passed memory file)."""
        k = _INDEX.unpack_from(payload)[0]
        if kind != _FD:
            return k, pa.py_buffer(payload[_INDEX.size :])
        _msg, fds, _flags, _addr = socket.recv_fds(sock, 1, 1)
        if not fds:
            raise EOFError("no memory file passed")
        try:
            size = struct.unpack_from("<Q", payload, _INDEX.size)[0]
            memory = mmap.mmap(fds[0], size, prot=mmap.PROT_READ) if size else b""
        finally:
            os.close(fds[0])
        return k, pa.py_buffer(memory)

    def _start(self) -> tuple[subprocess.Popen[bytes], socket.socket]:
        if self._proc is not None and self._sock is not None and self._proc.poll() is None:
            return self._proc, self._sock
        self._stop(kill=True)
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "crossbeat.store.arrow", str(theirs.fileno())],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                pass_fds=(theirs.fileno(),),
            )  # fmt: skip
        finally:
            theirs.close()
        self._proc, self._sock = proc, mine
        return proc, mine

    def _stop(self, *, kill: bool) -> None:
        proc, sock = self._proc, self._sock
        self._proc = self._sock = None
        if proc is not None and proc.poll() is None:
            if kill:
                proc.kill()
            else:
                assert proc.stdin is not None
                proc.stdin.close()
            proc.wait(timeout=10)
        if proc is not None:
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
        if sock is not None:
            sock.close()

    @property
    def pid(self) -> int | None:
        """The worker's process id (None: not running), for the benchmarks' CPU times."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def shutdown(self) -> None:
        """Stop the worker process (started again on the next read)."""
        with self._lock:
            self._stop(kill=False)


#: What an answer holds: an error message, the bytes, or the size of a passed memory file.
_ERROR, _BYTES, _FD = 0, 1, 2
_HEAD = struct.Struct("<BQ")
#: The position of the statement an answer is the result of (first in its payload).
_INDEX = struct.Struct("<I")


def _send(out: IO[bytes], kind: int, data: bytes) -> None:
    out.write(_HEAD.pack(kind, len(data)))
    out.write(data)
    out.flush()


def _receive(src: IO[bytes]) -> tuple[int, bytes]:
    head = src.read(_HEAD.size)
    if len(head) < _HEAD.size:
        raise EOFError("no answer")
    kind, size = _HEAD.unpack(head)
    data = src.read(size)
    if len(data) < size:
        raise EOFError("a cut answer")
    return int(kind), data


#: The worker of this process.
WORKER = _Worker()
atexit.register(WORKER.shutdown)


# -- in the worker process -----------------------------------------------------------------
#: The worker's read-only connections, by database file and slot (the oldest closed first).
_CONNECTIONS: OrderedDict[tuple[str, int], Any] = OrderedDict()

Statement = tuple[str, list[Any]]


def _connection(path: str, slot: int) -> Any:
    """Return the worker's read-only ADBC connection ``slot`` to a database file."""
    import adbc_driver_sqlite.dbapi as adbc

    key = (path, slot)
    conn = _CONNECTIONS.pop(key, None)
    if conn is None:
        conn = adbc.connect(f"file:{quote(path)}?mode=ro", autocommit=True)
    _CONNECTIONS[key] = conn
    while len(_CONNECTIONS) > 8:
        _CONNECTIONS.popitem(last=False)[1].close()
    return conn


def _run(conn: Any, sql: str, params: list[Any]) -> pa.Table:
    """Run one statement on a connection; return the rows."""
    cur = conn.cursor()
    try:
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": _BATCH_ROWS})
        cur.execute(sql, params or None)
        return cur.fetch_arrow_table()
    finally:
        cur.close()


def _begin(conns: list[Any], fence: Statement | None) -> list[Any]:
    """Begin a read transaction on each connection, all on one snapshot; return those used.

    The snapshot of a transaction is fixed by its first read, the fence (the data
    generation): equal fences, no audited change between them. After
    :data:`_FENCE_TRIES` unequal tries, one connection only (one snapshot by itself).
    """
    for _try in range(_FENCE_TRIES if fence is not None and len(conns) > 1 else 0):
        seen = []
        for conn in conns:
            _run(conn, "BEGIN", [])
            seen.append(_run(conn, *fence).to_pylist())  # type: ignore[misc]
        if all(s == seen[0] for s in seen):
            return conns
        for conn in conns:
            _run(conn, "COMMIT", [])
    _run(conns[0], "BEGIN", [])
    return conns[:1]


def _read_parts(
    path: str, statements: list[Statement], fence: Statement | None, threads: int, emit: Any
) -> None:
    """Read statements on up to ``threads`` connections; ``emit(k, table)`` each when read."""
    count = max(1, min(threads, len(statements)))
    conns = _begin([_connection(path, slot) for slot in range(count)], fence)
    try:
        if len(conns) == 1:
            for k, (sql, params) in enumerate(statements):
                emit(k, _run(conns[0], sql, params))
            return
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for k in range(len(statements)):
            todo.put(k)
        done: queue.SimpleQueue[tuple[int, pa.Table | None, BaseException | None]] = (
            queue.SimpleQueue()
        )
        failed = threading.Event()

        def work(conn: Any) -> None:
            while not failed.is_set():
                try:
                    k = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    done.put((k, _run(conn, *statements[k]), None))
                except BaseException as exc:  # noqa: BLE001 - raised by the emitting thread
                    done.put((k, None, exc))

        workers = [threading.Thread(target=work, args=(c,), daemon=True) for c in conns]
        for t in workers:
            t.start()
        try:
            for _ in statements:
                k, table, exc = done.get()
                if exc is not None:
                    raise exc
                emit(k, table)
        finally:
            failed.set()
            for t in workers:
                t.join()
    finally:
        for conn in conns:
            try:
                _run(conn, "COMMIT", [])
            except Exception:  # noqa: BLE001 - a broken connection is closed instead
                for key, kept in list(_CONNECTIONS.items()):
                    if kept is conn:
                        del _CONNECTIONS[key]
                conn.close()


def _answer(out: IO[bytes], sock: socket.socket, k: int, table: pa.Table) -> None:
    """Send a table: in a memory file whose descriptor goes over ``sock``, or as bytes."""
    if not hasattr(os, "memfd_create"):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        _send(out, _BYTES, _INDEX.pack(k) + sink.getvalue().to_pybytes())
        return
    fd = os.memfd_create("crossbeat-arrow", os.MFD_CLOEXEC)
    try:
        with pa.OSFile(f"/proc/self/fd/{fd}", "wb") as sink:
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
        size = os.fstat(fd).st_size
        _send(out, _FD, _INDEX.pack(k) + struct.pack("<Q", size))
        socket.send_fds(sock, [b"f"], [fd])
    finally:
        os.close(fd)


def _serve(sock_fd: int) -> None:
    """Answer requests from standard input until it closes (the worker's main loop)."""
    src, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the answers' pipe
    sock = socket.socket(fileno=sock_fd)
    while True:
        try:
            _kind, request = _receive(src)
        except EOFError:
            return
        path, statements, fence, threads = pickle.loads(request)
        try:
            _read_parts(path, statements, fence, threads, lambda k, t: _answer(out, sock, k, t))
        except Exception as exc:  # noqa: BLE001 - the caller raises it
            _send(out, _ERROR, f"{type(exc).__name__}: {exc}".encode())


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
