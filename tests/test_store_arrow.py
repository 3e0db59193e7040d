"""The Arrow reader: a SELECT on a SQLite file read by ADBC in a worker process."""

from __future__ import annotations

import os
import signal

import pytest
from sqlalchemy import create_engine, text

from crossbeat.store.arrow import WORKER, arrow_applies, read_arrow
from crossbeat.store.base import StoreError


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.begin() as conn:
        conn.execute(text("PRAGMA journal_mode=WAL"))
        conn.execute(text("CREATE TABLE t (k INTEGER, x REAL, s TEXT)"))
        # A REAL column NULL in its first few thousand rows, then values.
        rows = [{"k": i, "x": None if i < 3000 else i / 4, "s": f"v{i % 3}"} for i in range(3100)]
        conn.execute(text("INSERT INTO t VALUES (:k, :x, :s)"), rows)
    yield engine
    engine.dispose()


def test_reads_what_the_connection_reads(engine):
    q = text("SELECT k, x, s FROM t WHERE k >= :lo ORDER BY k").bindparams(lo=5)
    with engine.connect() as conn:
        want = [tuple(r) for r in conn.execute(q)]
        table = read_arrow(conn, q)
    assert table is not None and str(table.schema.field("x").type) == "double"
    got = list(zip(*(table.column(n).to_pylist() for n in ("k", "x", "s")), strict=True))
    assert got == want and len(got) == 3095


def test_errors_are_raised_and_the_worker_recovers(engine):
    with engine.connect() as conn:
        with pytest.raises(StoreError, match="no such column"):
            read_arrow(conn, text("SELECT nope FROM t"))
        assert read_arrow(conn, text("SELECT count(*) AS n FROM t")).column("n").to_pylist() == [
            3100
        ]
        pid = WORKER.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        WORKER._proc.wait(timeout=10)  # a worker that died is started again
        assert read_arrow(conn, text("SELECT 1 AS one")).column("one").to_pylist() == [1]
        assert WORKER.pid not in (None, pid)


def test_not_for_memory_databases_or_a_transaction_that_wrote(engine):
    memory = create_engine("sqlite://")
    with memory.connect() as conn:
        assert not arrow_applies(conn) and read_arrow(conn, text("SELECT 1")) is None
    with engine.begin() as conn:
        assert arrow_applies(conn)
        conn.execute(text("UPDATE t SET s = 'changed' WHERE k = 1"))
        assert not arrow_applies(conn)
        assert read_arrow(conn, text("SELECT s FROM t WHERE k = 1")) is None
