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
shared memory file, see :class:`_Worker`).

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
import socket
import struct
import subprocess
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import pyarrow as pa
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from crossbeat.store.base import StoreError

#: Rows ADBC reads before it fixes a column's type: all of them (with fewer, a column
#: whose first rows are NULL is typed INT64 and a later REAL value is refused).
_BATCH_ROWS = str(2**30)


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
    path = _database(conn)
    if path is None:
        return None
    sql, params = _statement(conn, query)
    data = WORKER.submit(path, sql, params)
    return pa.ipc.open_stream(data).read_all()


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

    def submit(self, path: str, sql: str, params: list[Any]) -> pa.Buffer:
        """Run one statement in the worker; return the result as an Arrow IPC stream.

        Raises
        ------
        StoreError
            The statement failed in the worker (its message), or the worker died.
        """
        request = pickle.dumps((path, sql, params))
        with self._lock:
            proc, sock = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                _send(proc.stdin, _BYTES, request)
                kind, payload = _receive(proc.stdout)
                if kind == _FD:
                    _msg, fds, _flags, _addr = socket.recv_fds(sock, 1, 1)
                    if not fds:
                        raise EOFError("no memory file passed")
                    try:
                        size = struct.unpack("<Q", payload)[0]
                        memory = mmap.mmap(fds[0], size, prot=mmap.PROT_READ) if size else b""
                    finally:
                        os.close(fds[0])
                    return pa.py_buffer(memory)
            except (OSError, EOFError) as exc:
                self._stop(kill=True)
                raise StoreError(f"the Arrow reader process stopped: {exc}") from exc
        if kind == _ERROR:
            raise StoreError(f"Arrow read failed: {payload.decode()}")
        return pa.py_buffer(payload)

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
#: The worker's read-only connections, by database file (a few, the oldest closed first).
_CONNECTIONS: OrderedDict[str, Any] = OrderedDict()


def _read(path: str, sql: str, params: list[Any]) -> pa.Table:
    """Run a statement on a database file with ADBC; return the rows."""
    import adbc_driver_sqlite.dbapi as adbc

    conn = _CONNECTIONS.pop(path, None)
    if conn is None:
        conn = adbc.connect(f"file:{quote(path)}?mode=ro", autocommit=True)
    _CONNECTIONS[path] = conn
    while len(_CONNECTIONS) > 4:
        _CONNECTIONS.popitem(last=False)[1].close()
    cur = conn.cursor()
    try:
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": _BATCH_ROWS})
        cur.execute(sql, params or None)
        return cur.fetch_arrow_table()
    finally:
        cur.close()


def _answer(out: IO[bytes], sock: socket.socket, table: pa.Table) -> None:
    """Send a table: in a memory file whose descriptor goes over ``sock``, or as bytes."""
    if not hasattr(os, "memfd_create"):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        _send(out, _BYTES, sink.getvalue().to_pybytes())
        return
    fd = os.memfd_create("crossbeat-arrow", os.MFD_CLOEXEC)
    try:
        with pa.OSFile(f"/proc/self/fd/{fd}", "wb") as sink:
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
        size = os.fstat(fd).st_size
        _send(out, _FD, struct.pack("<Q", size))
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
        path, sql, params = pickle.loads(request)
        try:
            table = _read(path, sql, params)
        except Exception as exc:  # noqa: BLE001 - the caller raises it
            _send(out, _ERROR, f"{type(exc).__name__}: {exc}".encode())
            continue
        _answer(out, sock, table)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
