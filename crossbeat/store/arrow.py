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
opens the database read-only and sends the table back in Arrow's IPC format through a pipe.

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
import os
import pickle
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
from sqlalchemy.sql import Executable

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


def read_arrow(conn: Connection, query: Executable) -> pa.Table | None:
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
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


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


def _statement(conn: Connection, query: Executable) -> tuple[str, list[Any]]:
    """Return the SQL text and the positional parameters the dialect would send."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params()
    processors = compiled._bind_processors  # the types' own conversions (e.g. datetimes)
    names = compiled.positiontup or []
    params = []
    for name in names:
        value = values[name]
        convert = processors.get(name)
        params.append(convert(value) if convert is not None and value is not None else value)
    return str(compiled), params


class _Worker:
    """One worker process reading with ADBC, started on first use and kept.

    A plain child process (``python -m crossbeat.store.arrow``) talking over its
    standard input and output, not :mod:`multiprocessing`: spawning that re-runs the
    caller's main script, and forking copies the caller's open SQLite connections.
    The worker exits when this process closes the pipe (or dies).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def submit(self, path: str, sql: str, params: list[Any]) -> bytes:
        """Run one statement in the worker; return the result as an Arrow IPC stream.

        Raises
        ------
        StoreError
            The statement failed in the worker (its message), or the worker died.
        """
        request = pickle.dumps((path, sql, params))
        with self._lock:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
                proc = self._proc = subprocess.Popen(
                    [sys.executable, "-m", "crossbeat.store.arrow"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                )  # fmt: skip
            assert proc.stdin is not None and proc.stdout is not None
            try:
                _send(proc.stdin, request)
                ok, payload = _receive(proc.stdout)
            except (OSError, EOFError) as exc:
                proc.kill()
                self._proc = None
                raise StoreError(f"the Arrow reader process stopped: {exc}") from exc
        if not ok:
            raise StoreError(f"Arrow read failed: {payload.decode()}")
        return payload

    @property
    def pid(self) -> int | None:
        """The worker's process id (None: not running), for the benchmarks' CPU times."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def shutdown(self) -> None:
        """Stop the worker process (started again on the next read)."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=10)


def _send(out: IO[bytes], data: bytes, ok: bool = True) -> None:
    out.write(struct.pack("<?Q", ok, len(data)))
    out.write(data)
    out.flush()


def _receive(src: IO[bytes]) -> tuple[bool, bytes]:
    head = src.read(struct.calcsize("<?Q"))
    if len(head) < struct.calcsize("<?Q"):
        raise EOFError("no answer")
    ok, size = struct.unpack("<?Q", head)
    data = src.read(size)
    if len(data) < size:
        raise EOFError("a cut answer")
    return bool(ok), data


#: The worker of this process.
WORKER = _Worker()
atexit.register(WORKER.shutdown)


# -- in the worker process -----------------------------------------------------------------
#: The worker's read-only connections, by database file (a few, the oldest closed first).
_CONNECTIONS: OrderedDict[str, Any] = OrderedDict()


def _read(path: str, sql: str, params: list[Any]) -> bytes:
    """Run a statement on a database file with ADBC; return the rows as Arrow IPC."""
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
        table = cur.fetch_arrow_table()
    finally:
        cur.close()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as out:
        out.write_table(table)
    return sink.getvalue().to_pybytes()


def _serve() -> None:
    """Answer requests from standard input until it closes (the worker's main loop)."""
    src, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the answers' pipe
    while True:
        try:
            _ok, request = _receive(src)
        except EOFError:
            return
        path, sql, params = pickle.loads(request)
        try:
            _send(out, _read(path, sql, params))
        except Exception as exc:  # noqa: BLE001 - the caller raises it
            _send(out, f"{type(exc).__name__}: {exc}".encode(), ok=False)


if __name__ == "__main__":
    _serve()
